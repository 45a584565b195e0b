/*
 * Arbitrage Sniper dashboard: the live signal feed, the spread matrix, feed status and latency.
 *
 * Clicking a signal row (or Enter on it) opens its books: GET /api/signals/<id>/depth, both books'
 * levels and the profit curve of the depth walk drawn on a canvas, refetched (at most once a
 * second) while the signal updates.
 *
 * Data paths:
 *   - signals: GET history once, then the /ws/signals/ WebSocket; every reconnect refills from the
 *     history API, and so does a MISSED message (the web process dropped signals this page was
 *     too far behind to take: signals_app/contracts/live_feed.py), which the feed's footer shows.
 *     Messages are queued and applied once per animation frame, coalesced by id, so 200
 *     signals/s cost one DOM pass per frame, not 200. A closed row says why it closed
 *     (close_reason).
 *   - /api/markets every second: the matrix of net spreads (buy on the row, sell on the column).
 *   - /api/health every two seconds: feeds, latency, components.
 *
 * Every piece of data reaches the page through textContent / createTextNode / setAttribute,
 * never as HTML. The page's Content-Security-Policy forbids inline script as a second line.
 */
(function () {
  "use strict";

  var config = readConfig();
  var STATUS_RANK = { open: 0, update: 1, close: 2 };
  var REDUCED_MOTION = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  // A flash is a class on the node for FLASH_MS (strong, then soft, then gone): three style
  // changes per flash. Animating background colours instead repaints every flashing cell on every
  // frame, which at 200 signals/s costs more than everything else on the page together.
  var FLASH_MS = 900;
  var FLASH_SOFT_MS = 350;
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var STABLE_CONNECTION_MS = 5000; // a connection that lasted this long resets the backoff
  var FETCH_TIMEOUT_MS = 4000;

  function readConfig() {
    var defaults = {
      threshold_pct: 0.5,
      exchanges: [],
      assets: [],
      ws_path: "/ws/signals/",
      history_url: "/api/signals/history",
      markets_url: "/api/markets",
      health_url: "/api/health",
      depth_url: "/api/signals/{id}/depth",
      depth_refresh_ms: 1000,
      history_limit: 200,
      refill_limit: 1000,
      markets_interval_ms: 1000,
      health_interval_ms: 2000,
      max_rows: 300,
    };
    var node = document.getElementById("dashboard-config");
    if (!node) return defaults;
    try {
      var parsed = JSON.parse(node.textContent || "{}");
      for (var key in defaults) {
        if (Object.prototype.hasOwnProperty.call(parsed, key)) defaults[key] = parsed[key];
      }
    } catch (err) {
      /* keep the defaults */
    }
    return defaults;
  }

  // --- small helpers -------------------------------------------------------------------------
  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function isNum(value) {
    return typeof value === "number" && isFinite(value);
  }

  function str(value) {
    return value === undefined || value === null ? "" : String(value);
  }

  // Text only: a node whose text did not change is not touched (no layout, no style recalc).
  function setText(node, text) {
    if (node.__text !== text) {
      node.__text = text;
      node.textContent = text;
    }
  }

  function setClass(node, className) {
    if (node.className !== className) node.className = className;
  }

  var flashing = []; // nodes with a flash class, swept by sweepFlashes()
  
  // At most this many new flashes per applied batch: in a burst, flashing every changed cell
  // would cost more frames than it tells anyone; the first changes of a batch still flash.
  var FLASH_BUDGET = 32;
  var flashBudget = FLASH_BUDGET;

  function flash(node, kind) {
    if (REDUCED_MOTION || flashBudget <= 0) return;
    flashBudget--;
    var now = Date.now();
    if (node.__flash) node.classList.remove(node.__flash, "fl-soft");
    else flashing.push(node);
    node.__flash = "fl-" + kind;
    node.__flashAt = now;
    node.__flashSoft = false;
    node.classList.add(node.__flash);
  }

  function sweepFlashes() {
    if (!flashing.length) return;
    var now = Date.now();
    var kept = [];
    for (var i = 0; i < flashing.length; i++) {
      var node = flashing[i];
      var age = now - node.__flashAt;
      if (age >= FLASH_MS) {
        node.classList.remove(node.__flash, "fl-soft");
        node.__flash = null;
        continue;
      }
      if (age >= FLASH_SOFT_MS && !node.__flashSoft) {
        node.__flashSoft = true;
        node.classList.add("fl-soft");
      }
      kept.push(node);
    }
    flashing = kept;
  }

  // --- number formatting (formatters built once: constructing Intl objects is slow) ----------
  function formatter(min, max) {
    return new Intl.NumberFormat("en-US", { minimumFractionDigits: min, maximumFractionDigits: max });
  }
  var F0 = formatter(0, 0);
  var F1 = formatter(1, 1);
  var F2 = formatter(2, 2);
  var F3 = formatter(3, 3);
  var F4 = formatter(4, 4);
  var F6 = formatter(4, 6);
  var F8 = formatter(2, 8);
  var DASH = "—";

  function fmtPrice(value) {
    if (!isNum(value)) return DASH;
    var abs = Math.abs(value);
    if (abs >= 1000) return F2.format(value);
    if (abs >= 1) return F4.format(value);
    if (abs >= 0.01) return F6.format(value);
    return F8.format(value);
  }

  function fmtPct(value, formatterToUse) {
    if (!isNum(value)) return DASH;
    var text = (formatterToUse || F4).format(value);
    return value > 0 ? "+" + text : text.replace("-", "−");
  }

  function fmtSize(value) {
    if (!isNum(value)) return DASH;
    var abs = Math.abs(value);
    if (abs >= 1000) return F2.format(value);
    if (abs >= 1) return F4.format(value);
    return F6.format(value);
  }

  function fmtMoney(value) {
    if (!isNum(value)) return DASH;
    var abs = Math.abs(value);
    var text = abs >= 1 ? F2.format(value) : F4.format(value);
    return value < 0 ? text.replace("-", "−") : text;
  }

  function fmtDuration(ms, precise) {
    if (!isNum(ms) || ms < 0) ms = 0;
    var s = ms / 1000;
    if (s < 60) return (precise ? s.toFixed(1) : Math.floor(s).toString()) + "s";
    var m = Math.floor(s / 60);
    var rest = Math.floor(s % 60);
    if (m < 60) return m + "m " + (rest < 10 ? "0" : "") + rest + "s";
    var h = Math.floor(m / 60);
    var mm = m % 60;
    return h + "h " + (mm < 10 ? "0" : "") + mm + "m";
  }

  function fmtAge(ms) {
    if (!isNum(ms)) return DASH;
    if (ms < 1000) return "now";
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m";
    var h = Math.floor(m / 60);
    if (h < 48) return h + "h";
    return Math.floor(h / 24) + "d";
  }

  function fmtMicros(us) {
    if (!isNum(us)) return DASH;
    if (us < 1000) return F0.format(us) + " µs";
    if (us < 100000) return F2.format(us / 1000) + " ms";
    return F0.format(us / 1000) + " ms";
  }

  function fmtSeconds(s) {
    if (!isNum(s)) return DASH;
    if (s < 10) return s.toFixed(2) + "s";
    if (s < 600) return F0.format(s) + "s";
    return fmtAge(s * 1000);
  }

  function quoteOf(symbol) {
    var text = str(symbol);
    var slash = text.indexOf("/");
    return slash >= 0 ? text.slice(slash + 1) : "";
  }

  // --- server clock: ages are measured on the engine's clock, not the browser's ---------------
  // The lowest (receive time - signal timestamp) seen recently is the clock offset plus the
  // smallest delivery delay; subtracting it keeps ages right when the two clocks disagree.
  var clockSamples = [];
  var clockOffsetMs = 0;
  function observeClock(timestamp) {
    if (!isNum(timestamp)) return;
    clockSamples.push(Date.now() - timestamp);
    if (clockSamples.length > 64) clockSamples.shift();
    var lowest = Infinity;
    for (var i = 0; i < clockSamples.length; i++) if (clockSamples[i] < lowest) lowest = clockSamples[i];
    clockOffsetMs = lowest;
  }
  function serverNow() {
    return Date.now() - clockOffsetMs;
  }

  // --- the signal table -------------------------------------------------------------------------
  var tbody = $("signal-rows");
  var emptyNode = $("signals-empty");
  var rowsById = new Map(); // id -> row
  var order = []; // rows sorted newest opportunity first (opened_at desc, id desc)
  var filters = { asset: "", exchange: "", status: "" };
  var knownAssets = new Set();
  var knownExchanges = new Set();
  var stats = { received: 0, arrivals: [], openCount: 0 };

  function validSignal(obj) {
    return (
      obj !== null &&
      typeof obj === "object" &&
      typeof obj.id === "string" &&
      obj.id.length > 0 &&
      Object.prototype.hasOwnProperty.call(STATUS_RANK, obj.status)
    );
  }

  // Merge rule: the newest message of an id wins; at the same timestamp the later status does,
  // and a close is final (a late open or update never reopens it).
  function supersedes(next, current) {
    if (current.status === "close" && next.status !== "close") return false;
    var a = isNum(next.timestamp) ? next.timestamp : 0;
    var b = isNum(current.timestamp) ? current.timestamp : 0;
    if (a !== b) return a > b;
    return STATUS_RANK[next.status] >= STATUS_RANK[current.status];
  }

  function openedAtOf(signal) {
    if (isNum(signal.opened_at)) return signal.opened_at;
    if (isNum(signal.timestamp)) return signal.timestamp;
    return 0;
  }

  function compareRows(a, b) {
    // newest first; ties by id so that the order is stable
    if (a.openedAt !== b.openedAt) return b.openedAt - a.openedAt;
    return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
  }

  function insertionIndex(row) {
    var lo = 0;
    var hi = order.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (compareRows(order[mid], row) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function buildRow(signal) {
    var tr = el("tr", "sig");
    var cells = {
      status: el("td", "c-status"),
      asset: el("td", "c-asset"),
      route: el("td", "c-route"),
      buy: el("td", "num"),
      sell: el("td", "num"),
      gross: el("td", "num"),
      net: el("td", "num strong"),
      peak: el("td", "num"),
      size: el("td", "num"),
      profit: el("td", "num"),
      depthProfit: el("td", "num"),
      atTarget: el("td", "num"),
      duration: el("td", "num"),
      age: el("td", "num muted"),
    };
    var pill = el("span", "pill");
    cells.status.appendChild(pill);
    var reason = el("span", "close-reason");
    cells.status.appendChild(reason);

    var assetName = el("span", "asset-name");
    var assetQuotes = el("span", "asset-quotes");
    cells.asset.appendChild(assetName);
    cells.asset.appendChild(assetQuotes);

    var buyEx = el("span", "ex ex-buy");
    var arrow = el("span", "arrow", "→");
    var sellEx = el("span", "ex ex-sell");
    cells.route.appendChild(buyEx);
    cells.route.appendChild(arrow);
    cells.route.appendChild(sellEx);

    for (var name in cells) tr.appendChild(cells[name]);
    tr.setAttribute("data-id", signal.id);
    tr.tabIndex = 0; // Enter or Space opens its books, as a click does
    tr.setAttribute("aria-haspopup", "dialog");
    return {
      id: signal.id,
      tr: tr,
      cells: cells,
      pill: pill,
      reason: reason,
      assetName: assetName,
      assetQuotes: assetQuotes,
      buyEx: buyEx,
      sellEx: sellEx,
      signal: null,
      openedAt: openedAtOf(signal),
      asset: "",
      buyExchange: "",
      sellExchange: "",
    };
  }

  function renderRow(row, signal, previous, live) {
    var cells = row.cells;
    var status = signal.status;
    row.signal = signal;
    row.asset = str(signal.asset);
    row.buyExchange = str(signal.buy_exchange);
    row.sellExchange = str(signal.sell_exchange);
    noteOption(knownAssets, row.asset, $("filter-asset"));
    noteOption(knownExchanges, row.buyExchange, $("filter-exchange"));
    noteOption(knownExchanges, row.sellExchange, $("filter-exchange"));

    if (row.tr.getAttribute("data-status") !== status) row.tr.setAttribute("data-status", status);
    setClass(row.tr, status === "close" ? "sig is-closed" : "sig");
    setText(row.pill, status === "close" ? "closed" : status);
    setClass(row.pill, "pill pill-" + status);
    var reasonText = status === "close" ? closeReasonText(signal.close_reason) : "";
    setText(row.reason, reasonText);
    if (row.reason.title !== reasonText) row.reason.title = reasonText ? "closed: " + reasonText : "";

    setText(row.assetName, row.asset);
    var buyQuote = quoteOf(signal.buy_symbol || signal.symbol);
    var sellQuote = quoteOf(signal.sell_symbol);
    setText(row.assetQuotes, buyQuote && sellQuote && buyQuote !== sellQuote ? buyQuote + "/" + sellQuote : buyQuote);
    setText(row.buyEx, row.buyExchange);
    setText(row.sellEx, row.sellExchange);
    var tip = str(signal.action) + "  ·  " + str(signal.buy_symbol) + " → " + str(signal.sell_symbol) + "  ·  " + row.id;
    if (row.tip !== tip) {
      row.tip = tip;
      row.tr.title = tip;
    }

    setText(cells.buy, fmtPrice(signal.buy_price));
    setText(cells.sell, fmtPrice(signal.sell_price));
    setText(cells.gross, fmtPct(signal.spread_pct));
    setText(cells.net, fmtPct(signal.net_spread_pct));
    setText(cells.peak, fmtPct(signal.peak_net_spread_pct));
    setText(cells.size, fmtSize(signal.size));
    setText(cells.profit, fmtMoney(signal.profit_estimate));
    // Depth (null without a book on both markets): the walk's profit, its size and levels on hover.
    setText(cells.depthProfit, fmtMoney(signal.depth_profit));
    setClass(cells.depthProfit, "num " + (signal.depth_profit > 0 ? "pos" : ""));
    var depthTip = isNum(signal.depth_size)
      ? "depth " + fmtSize(signal.depth_size) + " " + row.asset + " over " + (signal.depth_levels || []).join(" + ") +
        " levels · vwap " + fmtPrice(signal.depth_buy_vwap) + " → " + fmtPrice(signal.depth_sell_vwap) +
        " · net " + fmtPct(signal.depth_net_spread_pct) + " %"
      : "no order book on both markets";
    if (cells.depthProfit.title !== depthTip) cells.depthProfit.title = depthTip;
    setText(cells.atTarget, fmtPct(signal.net_spread_at_target_pct));
    setClass(
      cells.atTarget,
      "num " + (signal.net_spread_at_target_pct > 0 ? "pos" : signal.net_spread_at_target_pct < 0 ? "neg" : "")
    );
    setClass(cells.net, "num strong " + (signal.net_spread_pct > 0 ? "pos" : "neg"));
    setClass(cells.profit, "num " + (signal.profit_estimate > 0 ? "pos" : signal.profit_estimate < 0 ? "neg" : ""));
    renderTimes(row, serverNow());

    if (!live) return;
    if (!previous) {
      flash(row.tr, "fresh");
      return;
    }
    if (status === "close" && previous.status !== "close") {
      flash(row.tr, "close");
      return;
    }
    flashChange(cells.buy, signal.buy_price, previous.buy_price);
    flashChange(cells.sell, signal.sell_price, previous.sell_price);
    flashChange(cells.net, signal.net_spread_pct, previous.net_spread_pct);
    flashChange(cells.profit, signal.profit_estimate, previous.profit_estimate);
    if (status !== previous.status) flash(row.cells.status, "fresh");
  }

  // DESIGN.md lifecycle rule 8: threshold, stale, feed_down, engine_restart; "" for a close from
  // before the reasons. Whatever the string, it is shown as text.
  function closeReasonText(reason) {
    return typeof reason === "string" ? reason.replace(/_/g, " ") : "";
  }

  function flashChange(node, now, before) {
    if (!isNum(now) || !isNum(before) || now === before) return;
    flash(node, now > before ? "up" : "down");
  }

  function renderTimes(row, now) {
    var signal = row.signal;
    if (signal.status === "close") {
      var duration = isNum(signal.duration_ms) ? signal.duration_ms : signal.timestamp - row.openedAt;
      setText(row.cells.duration, fmtDuration(duration, true));
    } else {
      setText(row.cells.duration, fmtDuration(now - row.openedAt, false));
    }
    setText(row.cells.age, fmtAge(now - (isNum(signal.timestamp) ? signal.timestamp : row.openedAt)));
  }

  function matchesFilters(row) {
    if (filters.asset && row.asset !== filters.asset) return false;
    if (filters.exchange && row.buyExchange !== filters.exchange && row.sellExchange !== filters.exchange) return false;
    var closed = row.signal && row.signal.status === "close";
    if (filters.status === "live" && closed) return false;
    if (filters.status === "closed" && !closed) return false;
    return true;
  }

  function applyFilter(row) {
    var hide = !matchesFilters(row);
    if (row.tr.hidden !== hide) row.tr.hidden = hide;
  }

  function noteOption(set, value, select) {
    if (!value || set.has(value) || !select) return;
    set.add(value);
    var option = document.createElement("option");
    option.value = value;
    option.textContent = value;
    // keep the options sorted after "all"
    var before = null;
    for (var i = 1; i < select.options.length; i++) {
      if (select.options[i].value > value) {
        before = select.options[i];
        break;
      }
    }
    select.insertBefore(option, before);
  }

  function applySignal(signal, live) {
    var row = rowsById.get(signal.id);
    if (row) {
      if (!supersedes(signal, row.signal)) return;
      var previous = row.signal;
      renderRow(row, signal, previous, live);
      applyFilter(row);
      if (row.id === depth.id) depthSignalChanged(signal);
      return;
    }
    row = buildRow(signal);
    renderRow(row, signal, null, live);
    applyFilter(row);
    var index = insertionIndex(row);
    var next = order[index];
    tbody.insertBefore(row.tr, next ? next.tr : null);
    order.splice(index, 0, row);
    rowsById.set(row.id, row);
    if (row.id === depth.id) depthSignalChanged(signal); // its row had left the table (the cap) and is back
  }

  // Too many rows: closed ones leave first, oldest first; open ones only when nothing else is left.
  function enforceCap() {
    var excess = order.length - config.max_rows;
    if (excess <= 0) return;
    for (var i = order.length - 1; i >= 0 && excess > 0; i--) {
      if (order[i].signal.status === "close") {
        removeRowAt(i);
        excess--;
      }
    }
    while (excess > 0) {
      removeRowAt(order.length - 1);
      excess--;
    }
  }

  function removeRowAt(index) {
    var row = order[index];
    order.splice(index, 1);
    rowsById.delete(row.id);
    if (row.tr.parentNode) row.tr.parentNode.removeChild(row.tr);
  }

  // --- the batched apply: one DOM pass per animation frame ------------------------------------
  var queue = [];
  var flushPending = false;
  var frameHandle = 0;
  var fallbackHandle = 0;

  function enqueue(item, live) {
    queue.push({ item: item, live: live });
    if (flushPending) return;
    flushPending = true;
    frameHandle = window.requestAnimationFrame(flush);
    // A hidden tab gets no animation frames: apply anyway, a few times a second.
    fallbackHandle = window.setTimeout(flush, 250);
  }

  function flush() {
    if (!flushPending) return;
    flushPending = false;
    window.cancelAnimationFrame(frameHandle);
    window.clearTimeout(fallbackHandle);
    var batch = queue;
    queue = [];
    flashBudget = FLASH_BUDGET;
    // Coalesce: only the newest message of each id in this batch reaches the DOM.
    var latest = new Map();
    for (var i = 0; i < batch.length; i++) {
      var entry = batch[i];
      var signal = entry.item;
      if (typeof signal === "string") {
        try {
          signal = JSON.parse(signal);
        } catch (err) {
          continue;
        }
      }
      var signals = Array.isArray(signal) ? signal : [signal];
      for (var j = 0; j < signals.length; j++) {
        var s = signals[j];
        if (!validSignal(s)) continue;
        if (entry.live) {
          stats.received++;
          observeClock(s.timestamp);
        }
        var held = latest.get(s.id);
        if (!held || supersedes(s, held.signal)) latest.set(s.id, { signal: s, live: entry.live || (held && held.live) });
      }
    }
    latest.forEach(function (value) {
      applySignal(value.signal, value.live);
    });
    enforceCap();
    updateFeedSummary();
  }

  function updateFeedSummary() {
    var open = 0;
    var shown = 0;
    var best = null;
    for (var i = 0; i < order.length; i++) {
      var row = order[i];
      if (row.signal.status !== "close") {
        open++;
        var net = row.signal.net_spread_pct;
        if (isNum(net) && (best === null || net > best)) best = net;
      }
      if (!row.tr.hidden) shown++;
    }
    stats.openCount = open;
    setText($("stat-open"), String(open));
    setText($("stat-received"), F0.format(stats.received));
    setText($("stat-best"), best === null ? DASH : fmtPct(best, F3));
    var filtered = shown !== order.length ? " (" + shown + " shown)" : "";
    setText($("feed-count"), open + " open · " + order.length + " rows" + filtered);
    emptyNode.hidden = shown > 0;
    if (shown === 0 && order.length > 0) {
      setText(emptyNode.firstElementChild, "No signal matches the filters");
    } else {
      setText(emptyNode.firstElementChild, "Watching the books");
    }
  }

  function refilter() {
    for (var i = 0; i < order.length; i++) applyFilter(order[i]);
    updateFeedSummary();
  }

  ["asset", "exchange", "status"].forEach(function (name) {
    var select = $("filter-" + name);
    if (!select) return;
    select.addEventListener("change", function () {
      filters[name] = select.value;
      refilter();
    });
  });
  (config.assets || []).forEach(function (asset) {
    noteOption(knownAssets, str(asset), $("filter-asset"));
  });
  (config.exchanges || []).forEach(function (exchange) {
    noteOption(knownExchanges, str(exchange), $("filter-exchange"));
  });

  // --- once a second: ages, durations, clock, message rate --------------------------------------
  function tick() {
    var now = serverNow();
    for (var i = 0; i < order.length; i++) {
      var row = order[i];
      if (!row.tr.hidden) renderTimes(row, now);
    }
    var date = new Date(now);
    setText($("clock"), date.toISOString().slice(11, 19) + " UTC");
    var arrivals = stats.arrivals;
    arrivals.push({ at: Date.now(), count: stats.received });
    while (arrivals.length > 6) arrivals.shift();
    if (arrivals.length > 1) {
      var first = arrivals[0];
      var last = arrivals[arrivals.length - 1];
      var rate = (last.count - first.count) / Math.max((last.at - first.at) / 1000, 0.001);
      setText($("stat-rate"), F1.format(rate));
    }
    renderConnectionDetail();
  }

  // --- fetch with a timeout; JSON bodies are read for error statuses too (503 from /api/health) --
  function fetchJson(url) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller
      ? window.setTimeout(function () {
          controller.abort();
        }, FETCH_TIMEOUT_MS)
      : 0;
    return fetch(url, {
      cache: "no-store",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: controller ? controller.signal : undefined,
    })
      .then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch (err) {
            body = null;
          }
          return { status: response.status, ok: response.ok, body: body };
        });
      })
      .finally(function () {
        window.clearTimeout(timer);
      });
  }

  // --- history: the initial load and the refill after each reconnect ---------------------------
  var feedNote = $("feed-note");
  var historyLoads = 0; // finished loads, on #feed-note's data-history-loads (what a test waits for)
  function loadHistory(limit, live) {
    return fetchJson(config.history_url + "?limit=" + encodeURIComponent(limit))
      .then(function (result) {
        if (!result.ok || !Array.isArray(result.body)) {
          setText(feedNote, "history unavailable (HTTP " + result.status + ")");
          return;
        }
        setText(feedNote, "");
        // oldest first, as the API serves them; the merge rule keeps the newest status per id
        for (var i = 0; i < result.body.length; i++) enqueue(result.body[i], live);
      })
      .catch(function () {
        setText(feedNote, "history unavailable (network)");
      })
      .then(function () {
        historyLoads += 1;
        feedNote.setAttribute("data-history-loads", String(historyLoads));
      });
  }

  // --- the WebSocket, reconnecting with exponential backoff and jitter --------------------------
  var connection = {
    socket: null,
    attempt: 0,
    openedAt: 0,
    everOpened: false,
    retryAt: 0,
    retryTimer: 0,
    state: "connecting",
  };

  function setConnectionState(state) {
    connection.state = state;
    var node = $("connection");
    if (node.getAttribute("data-state") !== state) node.setAttribute("data-state", state);
    setText($("connection-text"), state);
    renderConnectionDetail();
  }

  function renderConnectionDetail() {
    var detail = "";
    if (connection.state === "reconnecting") {
      var wait = Math.max(0, connection.retryAt - Date.now());
      detail = wait > 0 ? "retry in " + Math.ceil(wait / 1000) + "s · attempt " + connection.attempt : "retrying…";
    } else if (connection.state === "connected") {
      detail = "since " + new Date(connection.openedAt).toISOString().slice(11, 19);
    }
    setText($("connection-detail"), detail);
  }

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + config.ws_path;
  }

  function connect() {
    connection.retryTimer = 0;
    setConnectionState(connection.everOpened ? "reconnecting" : "connecting");
    var socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (err) {
      scheduleReconnect();
      return;
    }
    connection.socket = socket;
    socket.onopen = function () {
      connection.openedAt = Date.now();
      var reconnected = connection.everOpened;
      connection.everOpened = true;
      setConnectionState("connected");
      // What was published while we were away (or between the first history load and now).
      loadHistory(reconnected ? config.refill_limit : config.history_limit, false);
    };
    socket.onmessage = function (event) {
      if (typeof event.data === "string") receiveFrame(event.data);
    };
    socket.onerror = function () {
      /* onclose follows and schedules the retry */
    };
    socket.onclose = function () {
      if (connection.socket !== socket) return;
      connection.socket = null;
      if (connection.openedAt && Date.now() - connection.openedAt >= STABLE_CONNECTION_MS) connection.attempt = 0;
      connection.openedAt = 0;
      scheduleReconnect();
    };
  }

  // A frame of /ws/signals/: a signal, or the MISSED control message (only then is it parsed here:
  // a signal's "type" is never "MISSED", so a frame without that text needs no look).
  var missed = { total: 0, times: 0 };
  var missedNote = $("feed-missed");
  function receiveFrame(text) {
    if (text.indexOf('"MISSED"') !== -1) {
      var message = null;
      try {
        message = JSON.parse(text);
      } catch (err) {
        /* not JSON: the batch drops it */
      }
      if (message && message.type === "MISSED") {
        onMissed(message);
        return;
      }
    }
    enqueue(text, true);
  }

  function onMissed(message) {
    var count = isNum(message.missed) && message.missed > 0 ? message.missed : 0;
    missed.total += count;
    missed.times++;
    var since = isNum(message.since) ? " after " + new Date(message.since).toISOString().slice(11, 23) : "";
    setText(
      missedNote,
      "fell behind: " + F0.format(count) + " signal" + (count === 1 ? "" : "s") + " missed" + since +
        ", refilled from history" + (missed.times > 1 ? " (" + F0.format(missed.total) + " in all)" : "")
    );
    missedNote.setAttribute("data-missed", String(missed.total));
    // The dropped signals are in signals:history: refill as after a reconnection.
    loadHistory(config.refill_limit, false);
  }

  function scheduleReconnect() {
    if (connection.retryTimer) return;
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, connection.attempt));
    // "equal jitter": half fixed, half random, so that browsers do not reconnect in lockstep
    var delay = ceiling / 2 + Math.random() * (ceiling / 2);
    connection.attempt++;
    connection.retryAt = Date.now() + delay;
    connection.retryTimer = window.setTimeout(connect, delay);
    setConnectionState("reconnecting");
  }

  window.addEventListener("online", function () {
    // the network is back: do not sit out the rest of a long backoff
    if (connection.retryTimer) {
      window.clearTimeout(connection.retryTimer);
      connection.retryTimer = 0;
      connection.attempt = 0;
      connect();
    }
  });

  // --- the spread matrix from /api/markets ----------------------------------------------------
  var matrixNode = $("matrix");
  var matrixLayoutKey = "";
  var matrixCells = new Map(); // "asset|buy|sell" -> td
  var matrixHeads = new Map(); // asset -> node of the asset's mid price
  var marketsUpdatedAt = 0;

  function nearBand() {
    // "near": within half the threshold below it (at least 0.1 percentage points)
    return Math.max(0.1, config.threshold_pct / 2);
  }

  function spreadClass(value) {
    if (!isNum(value)) return "m-cell m-none";
    if (value > config.threshold_pct) return "m-cell m-pos";
    if (value > config.threshold_pct - nearBand()) return "m-cell m-near";
    if (value >= 0) return "m-cell m-flat";
    return "m-cell m-neg";
  }

  function stringList(value) {
    if (!Array.isArray(value)) return [];
    var out = [];
    for (var i = 0; i < value.length; i++) if (typeof value[i] === "string" && value[i]) out.push(value[i]);
    return out;
  }

  function buildMatrix(assets, exchanges) {
    clear(matrixNode);
    matrixCells.clear();
    matrixHeads.clear();
    if (!assets.length || exchanges.length < 2) {
      matrixNode.appendChild(el("div", "empty-small", "Waiting for quotes from two or more exchanges"));
      return;
    }
    assets.forEach(function (asset) {
      var card = el("div", "m-card");
      card.setAttribute("data-asset", asset);
      var head = el("div", "m-head");
      head.appendChild(el("span", "m-asset", asset));
      var mid = el("span", "m-mid num", "");
      head.appendChild(mid);
      matrixHeads.set(asset, mid);
      card.appendChild(head);

      var table = el("table", "m-table");
      var thead = el("thead");
      var headRow = el("tr");
      var corner = el("th", "m-corner");
      corner.title = "net spread % of buying on the row's exchange and selling on the column's";
      corner.appendChild(el("span", "m-corner-sell", "sell →"));
      corner.appendChild(el("span", "m-corner-buy", "buy ↓"));
      headRow.appendChild(corner);
      exchanges.forEach(function (exchange) {
        var th = el("th", "m-col", exchange);
        th.scope = "col";
        headRow.appendChild(th);
      });
      thead.appendChild(headRow);
      table.appendChild(thead);
      var body = el("tbody");
      exchanges.forEach(function (buy) {
        var tr = el("tr");
        var th = el("th", "m-row", buy);
        th.scope = "row";
        tr.appendChild(th);
        exchanges.forEach(function (sell) {
          var td = el("td", buy === sell ? "m-cell m-self" : "m-cell m-none", buy === sell ? "·" : DASH);
          if (buy !== sell) {
            td.setAttribute("data-buy", buy);
            td.setAttribute("data-sell", sell);
            matrixCells.set(asset + "|" + buy + "|" + sell, td);
          }
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      table.appendChild(body);
      card.appendChild(table);
      matrixNode.appendChild(card);
    });
  }

  // Best ask and best bid of each (asset, exchange) from the quote cache, for the cells' tooltips.
  function bookOf(markets) {
    var book = {};
    if (!Array.isArray(markets)) return book;
    for (var i = 0; i < markets.length; i++) {
      var tick = markets[i];
      if (!tick || typeof tick !== "object") continue;
      var symbol = str(tick.symbol);
      var slash = symbol.indexOf("/");
      if (slash <= 0) continue;
      var key = symbol.slice(0, slash) + "|" + str(tick.exchange);
      var entry = book[key] || (book[key] = { bid: null, ask: null, mid: null, symbols: [] });
      if (isNum(tick.bid) && (entry.bid === null || tick.bid > entry.bid)) entry.bid = tick.bid;
      if (isNum(tick.ask) && (entry.ask === null || tick.ask < entry.ask)) entry.ask = tick.ask;
      if (isNum(tick.price)) entry.mid = tick.price;
      entry.symbols.push(symbol);
    }
    return book;
  }

  // The matrix is the engine's (its fees, STALE_MS and threshold): colour it by the engine's threshold.
  var engineMatrixError = null; // why the engine publishes no current matrix, or null

  function renderMarkets(data) {
    var engine = data && typeof data.engine === "object" && data.engine ? data.engine : null;
    if (engine && isNum(engine.threshold_pct)) config.threshold_pct = engine.threshold_pct;
    engineMatrixError = engine && engine.ok === false ? str(engine.error) || "no matrix from the engine" : null;
    var matrix = data && typeof data.matrix === "object" && data.matrix ? data.matrix : {};
    var assets = stringList(data && data.assets);
    if (!assets.length) assets = Object.keys(matrix);
    var exchanges = stringList(data && data.exchanges);
    if (!exchanges.length) {
      var seen = new Set();
      Object.keys(matrix).forEach(function (asset) {
        Object.keys(matrix[asset] || {}).forEach(function (buy) {
          seen.add(buy);
          Object.keys(matrix[asset][buy] || {}).forEach(function (sell) {
            seen.add(sell);
          });
        });
      });
      exchanges = Array.from(seen).sort();
    }
    var key = assets.join(",") + "|" + exchanges.join(",");
    if (key !== matrixLayoutKey) {
      matrixLayoutKey = key;
      buildMatrix(assets, exchanges);
    }
    var book = bookOf(data && data.markets);
    assets.forEach(function (asset) {
      var rowsOf = matrix[asset] && typeof matrix[asset] === "object" ? matrix[asset] : {};
      var mids = [];
      exchanges.forEach(function (buy) {
        var buyQuotes = book[asset + "|" + buy];
        if (buyQuotes && isNum(buyQuotes.mid)) mids.push(buyQuotes.mid);
        exchanges.forEach(function (sell) {
          if (buy === sell) return;
          var td = matrixCells.get(asset + "|" + buy + "|" + sell);
          if (!td) return;
          var row = rowsOf[buy] && typeof rowsOf[buy] === "object" ? rowsOf[buy] : {};
          var value = row[sell];
          setText(td, fmtPct(value, F3));
          setClass(td, spreadClass(value));
          if (isNum(value)) {
            // stronger colour for a bigger spread, either way
            var strength = Math.min(1, Math.abs(value) / Math.max(config.threshold_pct * 2, 0.5));
            td.style.setProperty("--m-strength", strength.toFixed(2));
          }
          var sellQuotes = book[asset + "|" + sell];
          var tip =
            "buy " + asset + " on " + buy + (buyQuotes && isNum(buyQuotes.ask) ? " at ask " + fmtPrice(buyQuotes.ask) : "") +
            ", sell on " + sell + (sellQuotes && isNum(sellQuotes.bid) ? " at bid " + fmtPrice(sellQuotes.bid) : "") +
            ": net " + fmtPct(value) + " % after fees";
          if (td.title !== tip) td.title = tip;
        });
      });
      var head = matrixHeads.get(asset);
      if (head) {
        var mid = mids.length ? mids.reduce(function (a, b) { return a + b; }, 0) / mids.length : null;
        setText(head, mid === null ? "" : fmtPrice(mid));
      }
    });
  }

  function pollMarkets() {
    fetchJson(config.markets_url)
      .then(function (result) {
        if (result.ok && result.body && typeof result.body === "object") {
          renderMarkets(result.body);
          marketsUpdatedAt = Date.now();
          matrixNode.classList.remove("is-stale");
        } else {
          matrixNode.classList.add("is-stale");
        }
      })
      .catch(function () {
        matrixNode.classList.add("is-stale");
      })
      .finally(function () {
        var age = marketsUpdatedAt ? (Date.now() - marketsUpdatedAt) / 1000 : null;
        var meta = age === null ? "no data" : age > 3 ? "stale " + fmtAge(age * 1000) : "";
        if (age !== null && engineMatrixError) {
          meta = "engine: " + engineMatrixError;
          matrixNode.classList.add("is-stale");
        }
        setText($("matrix-meta"), meta);
        window.setTimeout(pollMarkets, config.markets_interval_ms);
      });
  }

  // --- feeds, latency and components from /api/health --------------------------------------------
  var feedRowsNode = $("feed-rows");
  var feedRows = new Map(); // exchange -> {tr, pill, age, rate}
  var healthUpdatedAt = 0;

  function feedTone(state) {
    if (state === "live") return "live";
    if (state === "connecting" || state === "reconnecting" || state === "subscribing") return "warn";
    return "down";
  }

  function feedRow(exchange) {
    var row = feedRows.get(exchange);
    if (row) return row;
    var tr = el("tr");
    tr.setAttribute("data-exchange", exchange);
    var name = el("th", "feed-name", exchange);
    name.scope = "row";
    var stateCell = el("td");
    var pill = el("span", "pill pill-muted", "…");
    stateCell.appendChild(pill);
    var age = el("td", "num", DASH);
    var rate = el("td", "num", DASH);
    tr.appendChild(name);
    tr.appendChild(stateCell);
    tr.appendChild(age);
    tr.appendChild(rate);
    // sorted by name
    var before = null;
    feedRows.forEach(function (other, otherName) {
      if (otherName > exchange && (!before || otherName < before.name)) before = { name: otherName, tr: other.tr };
    });
    feedRowsNode.insertBefore(tr, before ? before.tr : null);
    row = { tr: tr, pill: pill, age: age, rate: rate };
    feedRows.set(exchange, row);
    return row;
  }

  function renderHealth(status, body) {
    var data = body && typeof body === "object" ? body : {};
    var failing = stringList(data.failing);
    var feeds = data.feeds && typeof data.feeds === "object" ? data.feeds : {};
    var names = new Set(stringList(config.exchanges));
    Object.keys(feeds).forEach(function (name) {
      names.add(name);
    });
    names.forEach(function (exchange) {
      var feed = feeds[exchange] && typeof feeds[exchange] === "object" ? feeds[exchange] : null;
      var row = feedRow(exchange);
      // Health unreachable: nothing is known. Reachable: a configured exchange that the health
      // data does not mention (or whose state is unknown to the ingestor) is down.
      var state = !status ? "unknown" : feed ? str(feed.state) || "down" : "down";
      var tone = !status ? "muted" : feedTone(state);
      if (tone === "live" && feed && feed.ok === false) tone = "warn"; // live but silent too long
      setText(row.pill, state);
      setClass(row.pill, "pill pill-" + tone);
      if (row.tr.getAttribute("data-state") !== state) row.tr.setAttribute("data-state", state);
      var age = feed ? feed.last_message_age_s : null;
      setText(row.age, isNum(age) ? fmtSeconds(age) : DASH);
      setClass(row.age, "num" + (isNum(age) && age > 2 ? " warn" : ""));
      var rate = feed ? feed.message_rate : null;
      setText(row.rate, isNum(rate) ? F1.format(rate) + "/s" : DASH);
    });

    var engine = data.engine && typeof data.engine === "object" ? data.engine : {};
    renderSuspects(Array.isArray(engine.suspect_markets) ? engine.suspect_markets : []);
    var latencyRows = document.querySelectorAll("[data-latency]");
    for (var i = 0; i < latencyRows.length; i++) {
      var tr = latencyRows[i];
      var figures = engine[tr.getAttribute("data-latency")];
      figures = figures && typeof figures === "object" ? figures : {};
      var cells = tr.querySelectorAll("td");
      var keys = ["p50_us", "p90_us", "p99_us", "max_us"];
      for (var k = 0; k < keys.length && k < cells.length; k++) setText(cells[k], fmtMicros(figures[keys[k]]));
    }
    var toSignal = engine.latency_frame_to_signal_published || {};
    setText($("stat-p50"), fmtMicros(toSignal.p50_us));
    setText($("stat-p99"), fmtMicros(toSignal.p99_us));
    setText($("engine-ticks"), isNum(engine.ticks) ? F0.format(engine.ticks) : DASH);
    var counts = engine.signals && typeof engine.signals === "object" ? engine.signals : {};
    setText($("engine-open"), isNum(counts.open) ? F0.format(counts.open) : DASH);
    setText($("engine-update"), isNum(counts.update) ? F0.format(counts.update) : DASH);
    setText($("engine-close"), isNum(counts.close) ? F0.format(counts.close) : DASH);

    renderComponents(data, failing);

    var system = $("system-status");
    var ok = status === 200 && (data.status === undefined || data.status === "ok");
    var label;
    if (!status) label = "health unreachable";
    else if (ok) label = "system ok";
    else if (status === 503 || data.status === "degraded") label = "degraded" + (failing.length ? ": " + failing.join(", ") : "");
    else label = "health unavailable (HTTP " + status + ")";
    setText(system, label);
    setClass(system, "pill " + (ok ? "pill-live" : status ? "pill-warn" : "pill-down"));
    system.setAttribute("data-state", ok ? "ok" : "degraded");
  }

  // Markets the engine leaves out (MAX_MARKET_DEVIATION_PCT): listed under the feeds.
  var suspectsKey = "";
  function renderSuspects(suspects) {
    var valid = suspects.filter(function (s) {
      return s && typeof s === "object" && typeof s.exchange === "string" && typeof s.symbol === "string";
    });
    var key = valid
      .map(function (s) {
        return s.exchange + " " + s.symbol + " " + s.deviation_pct;
      })
      .join("|");
    if (key === suspectsKey) return;
    suspectsKey = key;
    var list = $("suspect-rows");
    clear(list);
    valid.forEach(function (s) {
      var item = el("li", "suspect");
      item.setAttribute("data-market", s.exchange + ":" + s.symbol);
      item.appendChild(el("span", "ex", s.exchange));
      item.appendChild(el("span", "suspect-symbol", " " + s.symbol + " "));
      item.appendChild(
        el("span", "num warn", fmtPct(s.deviation_pct, F2) + " % from the median of " + s.venues_compared + " venues")
      );
      item.title = "mid " + fmtPrice(s.mid) + " vs median " + fmtPrice(s.median_mid) + ": left out";
      list.appendChild(item);
    });
    $("suspects").hidden = valid.length === 0;
  }

  function componentOk(name, part, failing) {
    for (var i = 0; i < failing.length; i++) {
      if (failing[i] === name || failing[i].indexOf(name + ":") === 0 || failing[i].indexOf(name + ".") === 0) return false;
    }
    if (part && typeof part === "object") {
      if (part.ok === false || part.connected === false) return false;
      if (typeof part.status === "string" && part.status !== "ok") return false;
    }
    return true;
  }

  function renderComponents(data, failing) {
    var node = $("components");
    var names = ["redis", "database", "engine", "ingestor"];
    if (node.childElementCount !== names.length) {
      clear(node);
      names.forEach(function (name) {
        var pill = el("span", "pill pill-muted", name);
        pill.setAttribute("data-component", name);
        node.appendChild(pill);
      });
    }
    names.forEach(function (name, index) {
      var pill = node.children[index];
      var present = Object.prototype.hasOwnProperty.call(data, name);
      var ok = componentOk(name, data[name], failing);
      setClass(pill, "pill " + (!present && ok ? "pill-muted" : ok ? "pill-live" : "pill-down"));
      pill.title = name + ": " + (!present && ok ? "not reported" : ok ? "ok" : "failing");
    });
  }

  function pollHealth() {
    fetchJson(config.health_url)
      .then(function (result) {
        renderHealth(result.status, result.body);
        healthUpdatedAt = Date.now();
      })
      .catch(function () {
        renderHealth(0, null);
      })
      .finally(function () {
        setText($("health-meta"), healthUpdatedAt ? "" : "no data");
        window.setTimeout(pollHealth, config.health_interval_ms);
      });
  }

  // --- the depth panel: one opportunity's books and the profit curve of its walk ---------------------
  // GET /api/signals/<id>/depth (signals_app/contracts/depth_view.py): the buy market's asks, the sell
  // market's bids, and curve = [[size, cost, profit], ...] cumulative along the walk without its
  // threshold stop, from [0, 0, 0]. Opened by a click on a row (or Enter / Space on a focused one),
  // refetched at most every depth_refresh_ms while the signal updates, closed by × or Escape.
  var depthPanel = $("depth-panel");
  var depthChart = $("depth-chart");
  var depthAsks = $("depth-asks");
  var depthBids = $("depth-bids");
  var depthMessage = $("depth-message");
  var depthReadout = $("depth-readout");
  var depth = {
    id: null, // the signal whose books are shown; null while the panel is closed
    signal: null, // its newest message
    view: null, // the depth view on show
    opener: null, // the row that opened the panel: focus goes back to it on close
    seq: 0, // bumped on open and close: an answer to an older request is dropped
    inFlight: false,
    again: false, // the signal changed while a request was out: fetch once more after it
    lastFetchAt: 0,
    timer: 0,
    points: [], // the curve's points, as drawn
    peak: -1, // index of the highest profit
    hover: -1, // index of the point under the pointer (or picked with the arrow keys)
    plot: null, // the chart's geometry of the last draw, for the pointer
    zoom: false, // sizes up to a little past where the profit turns negative, rather than the whole curve
  };
  var CHART = {
    padLeft: 48,
    padRight: 14,
    padTop: 14,
    padBottom: 38,
    grid: "#1e2633",
    axis: "#2a3445",
    label: "#8391a7",
    zero: "#8391a7",
    up: "#22c55e",
    upFill: "rgba(34, 197, 94, 0.14)",
    down: "#f0525b",
    downFill: "rgba(240, 82, 91, 0.13)",
    mark: "#4cb3ff",
    peak: "#f5a524",
    text: "#d8dee9",
  };

  function depthUrl(id) {
    return config.depth_url.replace("{id}", encodeURIComponent(id));
  }

  function validLevels(levels) {
    var out = [];
    if (!Array.isArray(levels)) return out;
    for (var i = 0; i < levels.length; i++) {
      var level = levels[i];
      if (Array.isArray(level) && isNum(level[0]) && isNum(level[1])) out.push(level);
    }
    return out;
  }

  function validCurve(curve) {
    var out = [];
    if (!Array.isArray(curve)) return out;
    for (var i = 0; i < curve.length; i++) {
      var point = curve[i];
      if (Array.isArray(point) && isNum(point[0]) && isNum(point[1]) && isNum(point[2])) out.push(point);
    }
    return out;
  }

  function marketText(exchange, symbol) {
    return str(exchange) + " " + str(symbol);
  }

  function renderDepthHead(signal, view) {
    var source = view || signal || {};
    var asset = str(signal && signal.asset) || str(source.buy_symbol).split("/")[0];
    setText($("depth-asset"), asset);
    setText($("depth-buy-market"), marketText(source.buy_exchange, source.buy_symbol));
    setText($("depth-sell-market"), marketText(source.sell_exchange, source.sell_symbol));
    setText($("depth-asks-market"), "· buy on " + marketText(source.buy_exchange, source.buy_symbol));
    setText($("depth-bids-market"), "· sell on " + marketText(source.sell_exchange, source.sell_symbol));
    var status = signal ? str(signal.status) : "";
    var pill = $("depth-status");
    setText(pill, status === "close" ? "closed" : status);
    setClass(pill, "pill " + (STATUS_RANK.hasOwnProperty(status) ? "pill-" + status : "pill-muted"));
  }

  function depthAsset() {
    return str(depth.signal && depth.signal.asset);
  }

  function sizeText(value) {
    return isNum(value) ? fmtSize(value) + (depthAsset() ? " " + depthAsset() : "") : DASH;
  }

  function renderDepthFigures(view) {
    var source = view || depth.signal || {};
    setText($("depth-size"), sizeText(source.depth_size));
    setText($("depth-profit"), fmtMoney(source.depth_profit));
    setClass($("depth-profit"), "num " + (source.depth_profit > 0 ? "pos" : source.depth_profit < 0 ? "neg" : ""));
    var peak = depth.peak >= 0 ? depth.points[depth.peak] : null;
    setText($("depth-peak"), peak ? fmtMoney(peak[2]) : DASH);
    setText($("depth-peak-size"), peak ? sizeText(peak[0]) : DASH);
    var threshold = view && isNum(view.threshold_pct) ? view.threshold_pct : null;
    setText($("depth-threshold"), threshold === null ? DASH : "> " + F2.format(threshold) + " %");
    var at = view && isNum(view.timestamp) ? new Date(view.timestamp).toISOString().slice(11, 23) : DASH;
    setText($("depth-time"), at);
  }

  // The asks or bids, best first, with their running size; the levels the walk took are marked.
  function renderLevels(tbody, levels, depthSize) {
    clear(tbody);
    var fragment = document.createDocumentFragment();
    var cumulative = 0;
    var walked = isNum(depthSize) ? depthSize * (1 - 1e-9) : 0; // summed floats: a hair under is the same size
    for (var i = 0; i < levels.length; i++) {
      var price = levels[i][0];
      var size = levels[i][1];
      var before = cumulative;
      cumulative += size;
      var tr = el("tr");
      var taken = before < walked;
      var partial = taken && cumulative > depthSize * (1 + 1e-9);
      tr.setAttribute("data-walked", taken ? (partial ? "partial" : "full") : "no");
      if (taken) {
        tr.className = partial ? "is-walked is-partial" : "is-walked";
        tr.title = partial
          ? "the walk took " + fmtSize(depthSize - before) + " of this level's " + fmtSize(size)
          : "the walk took all of this level";
      }
      tr.appendChild(el("td", "num", fmtPrice(price)));
      tr.appendChild(el("td", "num", fmtSize(size)));
      tr.appendChild(el("td", "num muted", fmtSize(cumulative)));
      fragment.appendChild(tr);
    }
    tbody.appendChild(fragment);
  }

  function setDepthState(state, message) {
    depthPanel.setAttribute("data-state", state);
    setText(depthMessage, message || "");
    setClass(depthMessage, "depth-message" + (state === "gone" || state === "error" ? " is-" + state : ""));
  }

  function clearDepthBooks() {
    depth.view = null;
    depth.points = [];
    depth.peak = -1;
    depth.hover = -1;
    clear(depthAsks);
    clear(depthBids);
    depthPanel.removeAttribute("data-view-timestamp");
    drawDepthChart();
  }

  function showDepthView(view) {
    depth.view = view;
    depth.points = validCurve(view.curve);
    depth.peak = -1;
    for (var i = 0; i < depth.points.length; i++) {
      if (depth.peak < 0 || depth.points[i][2] > depth.points[depth.peak][2]) depth.peak = i;
    }
    if (depth.hover >= depth.points.length) depth.hover = -1;
    renderDepthHead(depth.signal, view);
    renderDepthFigures(view);
    renderLevels(depthAsks, validLevels(view.asks), view.depth_size);
    renderLevels(depthBids, validLevels(view.bids), view.depth_size);
    depthPanel.setAttribute("data-view-timestamp", str(view.timestamp));
    setDepthState("shown", "");
    drawDepthChart();
  }

  function depthGone() {
    clearDepthBooks();
    renderDepthFigures(null);
    var noDepth = depth.signal && !isNum(depth.signal.depth_size);
    setDepthState(
      "gone",
      "The books of this opportunity are no longer held" +
        (noDepth
          ? ": it was raised without an order book on both markets, so the engine kept none."
          : ": the engine keeps them for an hour after the opportunity's last update with depth.")
    );
  }

  function depthUnavailable(status, body) {
    var reason = body && typeof body === "object" && typeof body.error === "string" ? ": " + body.error : "";
    var what = status ? "HTTP " + status + reason : "network";
    var kept = depth.view && isNum(depth.view.timestamp)
      ? " Showing the books of " + new Date(depth.view.timestamp).toISOString().slice(11, 19) + " UTC."
      : "";
    setDepthState("error", "Books unavailable (" + what + ")." + kept);
  }

  function fetchDepth() {
    if (depth.id === null) return;
    if (depth.inFlight) {
      depth.again = true;
      return;
    }
    var wait = depth.lastFetchAt + config.depth_refresh_ms - Date.now();
    if (wait > 0) {
      if (!depth.timer) {
        depth.timer = window.setTimeout(function () {
          depth.timer = 0;
          fetchDepth();
        }, wait);
      }
      return;
    }
    var seq = depth.seq;
    var id = depth.id;
    depth.inFlight = true;
    depth.again = false;
    depth.lastFetchAt = Date.now();
    fetchJson(depthUrl(id))
      .then(
        function (result) {
          if (seq !== depth.seq) return;
          var view = result.body;
          var valid = view && typeof view === "object" && view.id === id && Array.isArray(view.curve);
          if (result.status === 200 && valid) showDepthView(view);
          else if (result.status === 404) depthGone();
          else depthUnavailable(result.status, result.body);
        },
        function () {
          if (seq === depth.seq) depthUnavailable(0, null);
        }
      )
      .finally(function () {
        if (seq !== depth.seq) return;
        depth.inFlight = false;
        if (depth.again) fetchDepth();
      });
  }

  // A newer message of the panel's signal: its status in the head, and its books again (throttled).
  function depthSignalChanged(signal) {
    depth.signal = signal;
    renderDepthHead(signal, depth.view);
    if (!depth.view) renderDepthFigures(null);
    fetchDepth();
  }

  function markOpener(tr, on) {
    if (!tr) return;
    if (on) {
      tr.setAttribute("data-selected", "true");
      tr.setAttribute("aria-expanded", "true");
    } else {
      tr.removeAttribute("data-selected");
      tr.removeAttribute("aria-expanded");
    }
  }

  function resetDepth() {
    window.clearTimeout(depth.timer);
    depth.timer = 0;
    depth.seq++;
    depth.inFlight = false;
    depth.again = false;
    depth.lastFetchAt = 0;
    markOpener(depth.opener, false);
    depth.opener = null;
  }

  function openDepth(row) {
    if (depth.id !== row.id) {
      resetDepth();
      depth.id = row.id;
      depth.signal = row.signal;
      clearDepthBooks();
      renderDepthHead(row.signal, null);
      renderDepthFigures(null);
      setDepthState("loading", "Loading the books…");
    }
    if (depth.opener !== row.tr) {
      markOpener(depth.opener, false);
      depth.opener = row.tr;
      markOpener(row.tr, true);
    }
    depthPanel.hidden = false;
    depthPanel.focus();
    fetchDepth(); // at once for a new signal; again on a second click, within the throttle
    drawDepthChart(); // the canvas has its size only now that the panel shows
  }

  function closeDepth() {
    if (depth.id === null) return;
    var opener = depth.opener;
    resetDepth();
    depth.id = null;
    depth.signal = null;
    clearDepthBooks();
    depthPanel.hidden = true;
    setDepthState("closed", "");
    if (opener && opener.isConnected && !opener.hidden) opener.focus();
  }

  // --- the chart ---------------------------------------------------------------------------------------
  function niceStep(range, count) {
    var raw = range / Math.max(1, count);
    var magnitude = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var normal = raw / magnitude;
    return (normal < 1.5 ? 1 : normal < 3 ? 2 : normal < 7 ? 5 : 10) * magnitude;
  }

  function axisTicks(lo, hi, count) {
    var step = niceStep(hi - lo, count);
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 50; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return { values: out, step: step };
  }

  function axisLabel(value, step) {
    var decimals = Math.min(8, Math.max(0, -Math.floor(Math.log(step) / Math.LN10 + 1e-9)));
    var text = Math.abs(value) >= 1000 && decimals === 0 ? F0.format(value) : value.toFixed(decimals);
    return value < 0 ? text.replace("-", "−") : text;
  }

  // Profit at `size` on the curve (straight between its points: each step trades at one price pair).
  function profitAt(points, size) {
    for (var i = 1; i < points.length; i++) {
      var a = points[i - 1];
      var b = points[i];
      if (size <= b[0] + 1e-12) {
        var span = b[0] - a[0];
        return span > 0 ? a[2] + ((b[2] - a[2]) * (size - a[0])) / span : b[2];
      }
    }
    return points.length ? points[points.length - 1][2] : 0;
  }

  // The chart's size axis: the whole curve, or (zoomed) up to half as far again as where the
  // profit first turns negative after its peak.
  function zoomedSize(points, peakIndex) {
    var whole = points.length ? points[points.length - 1][0] : 0;
    for (var i = 1; i < points.length; i++) if (points[i][0] > whole) whole = points[i][0];
    if (!depth.zoom || peakIndex <= 0) return whole;
    for (var k = peakIndex + 1; k < points.length; k++) {
      if (points[k][2] < 0) return Math.min(whole, points[k][0] * 1.5);
    }
    return whole;
  }

  function quoteLabel(view) {
    var buy = quoteOf(view && view.buy_symbol);
    var sell = quoteOf(view && view.sell_symbol);
    return buy && buy === sell ? buy : "common quote";
  }

  function drawDepthChart() {
    var canvas = depthChart;
    var points = depth.points;
    var peakIndex = depth.peak;
    var ctx = canvas.getContext && canvas.getContext("2d");
    var width = Math.round(canvas.clientWidth);
    var height = Math.round(canvas.clientHeight);
    if (!ctx || !width || !height) {
      depth.plot = null;
      canvas.setAttribute("data-points", "0");
      canvas.removeAttribute("data-peak-size");
      return; // hidden: drawn again when the panel opens (or the books come back)
    }
    var ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px " + getComputedStyle(document.body).fontFamily;
    var left = CHART.padLeft;
    var right = width - CHART.padRight;
    var top = CHART.padTop;
    var bottom = height - CHART.padBottom;
    if (points.length < 2 || right - left < 20 || bottom - top < 20) {
      depth.plot = null;
      canvas.setAttribute("data-points", String(points.length));
      if (points.length) canvas.setAttribute("data-peak-size", String(points[peakIndex][0]));
      else canvas.removeAttribute("data-peak-size");
      ctx.fillStyle = CHART.label;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(depth.id === null ? "" : depth.view ? "no curve: a book side is empty" : "", width / 2, height / 2);
      return;
    }

    var xMax = zoomedSize(points, peakIndex);
    var yMin = 0;
    var yMax = 0;
    for (var i = 0; i < points.length && points[i][0] <= xMax; i++) {
      if (points[i][2] < yMin) yMin = points[i][2];
      if (points[i][2] > yMax) yMax = points[i][2];
    }
    var atEdge = profitAt(points, xMax);
    if (atEdge < yMin) yMin = atEdge;
    if (atEdge > yMax) yMax = atEdge;
    if (!(xMax > 0)) xMax = 1;
    if (yMax - yMin <= 0) {
      yMax += 1;
      yMin -= 1;
    }
    var pad = (yMax - yMin) * 0.08;
    yMax += pad;
    yMin = yMin < 0 ? yMin - pad : yMin;
    // room on the left for the widest profit label and the axis title
    var yTicks = axisTicks(yMin, yMax, 5);
    var labelWidth = 0;
    yTicks.values.forEach(function (value) {
      labelWidth = Math.max(labelWidth, ctx.measureText(axisLabel(value, yTicks.step)).width);
    });
    left = Math.max(CHART.padLeft, Math.ceil(labelWidth) + 28);
    function px(size) {
      return left + (size / xMax) * (right - left);
    }
    function py(profit) {
      return bottom - ((profit - yMin) / (yMax - yMin)) * (bottom - top);
    }
    depth.plot = { left: left, right: right, px: px };

    // grid and tick labels
    ctx.lineWidth = 1;
    ctx.strokeStyle = CHART.grid;
    ctx.fillStyle = CHART.label;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    yTicks.values.forEach(function (value) {
      var y = Math.round(py(value)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
      ctx.stroke();
      ctx.fillText(axisLabel(value, yTicks.step), left - 6, y);
    });
    var xTicks = axisTicks(0, xMax, Math.max(2, Math.floor((right - left) / 80)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    xTicks.values.forEach(function (value) {
      var x = Math.round(px(value)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.fillText(axisLabel(value, xTicks.step), x, bottom + 5);
    });
    // axes and their titles
    ctx.strokeStyle = CHART.axis;
    ctx.beginPath();
    ctx.moveTo(left + 0.5, top);
    ctx.lineTo(left + 0.5, bottom + 0.5);
    ctx.lineTo(right, bottom + 0.5);
    ctx.stroke();
    ctx.fillStyle = CHART.label;
    ctx.textBaseline = "bottom";
    ctx.fillText("cumulative size" + (depthAsset() ? " (" + depthAsset() + ")" : ""), (left + right) / 2, height - 2);
    ctx.save();
    ctx.translate(10, (top + bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText("cumulative profit (" + quoteLabel(depth.view) + ")", 0, 0);
    ctx.restore();

    // the curve: filled to the zero line, green above it and red below
    var zeroY = py(0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top - 6, right - left + 6, bottom - top + 6); // zoomed: the rest of the curve runs off
    ctx.clip();
    function curvePath() {
      ctx.beginPath();
      ctx.moveTo(px(points[0][0]), py(points[0][2]));
      for (var k = 1; k < points.length; k++) ctx.lineTo(px(points[k][0]), py(points[k][2]));
    }
    [
      [top, zeroY, CHART.up, CHART.upFill],
      [zeroY, bottom, CHART.down, CHART.downFill],
    ].forEach(function (band) {
      if (band[1] <= band[0]) return;
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, band[0], right - left, band[1] - band[0]);
      ctx.clip();
      curvePath();
      ctx.lineTo(px(points[points.length - 1][0]), zeroY);
      ctx.lineTo(px(points[0][0]), zeroY);
      ctx.closePath();
      ctx.fillStyle = band[3];
      ctx.fill();
      curvePath();
      ctx.strokeStyle = band[2];
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke();
      ctx.restore();
    });

    ctx.restore();

    // the zero line
    ctx.save();
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = CHART.zero;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(left, Math.round(zeroY) + 0.5);
    ctx.lineTo(right, Math.round(zeroY) + 0.5);
    ctx.stroke();
    ctx.restore();

    // the peak
    var peak = points[peakIndex];
    ctx.strokeStyle = CHART.peak;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(px(peak[0]), py(peak[2]), 4.5, 0, Math.PI * 2);
    ctx.stroke();

    // where the walk with the threshold stopped: the signal's depth size
    var depthSize = depth.view && depth.view.depth_size;
    if (isNum(depthSize)) {
      var mx = Math.round(px(Math.min(depthSize, xMax))) + 0.5;
      ctx.save();
      ctx.setLineDash([2, 3]);
      ctx.strokeStyle = CHART.mark;
      ctx.beginPath();
      ctx.moveTo(mx, top);
      ctx.lineTo(mx, bottom);
      ctx.stroke();
      ctx.restore();
      ctx.fillStyle = CHART.mark;
      ctx.beginPath();
      ctx.arc(mx, py(profitAt(points, depthSize)), 4, 0, Math.PI * 2);
      ctx.fill();
      ctx.textAlign = mx > (left + right) / 2 ? "right" : "left";
      ctx.textBaseline = "top";
      ctx.fillText("depth " + fmtSize(depthSize), mx + (ctx.textAlign === "right" ? -5 : 5), top + 1);
    }

    // the point under the pointer
    if (depth.hover >= 0 && depth.hover < points.length) {
      var h = points[depth.hover];
      var hx = px(h[0]);
      ctx.strokeStyle = CHART.text;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(Math.round(hx) + 0.5, top);
      ctx.lineTo(Math.round(hx) + 0.5, bottom);
      ctx.stroke();
      ctx.fillStyle = CHART.text;
      ctx.beginPath();
      ctx.arc(hx, py(h[2]), 3.5, 0, Math.PI * 2);
      ctx.fill();
    }
    renderReadout();

    canvas.setAttribute("data-points", String(points.length));
    canvas.setAttribute("data-peak-size", String(peak[0]));
    canvas.setAttribute(
      "aria-label",
      "Cumulative profit against cumulative size over " + points.length + " points: highest " + fmtMoney(peak[2]) +
        " at " + sizeText(peak[0]) + (isNum(depthSize) ? "; the walk stops at " + sizeText(depthSize) : "")
    );
  }

  function renderReadout() {
    var point = depth.hover >= 0 ? depth.points[depth.hover] : null;
    if (!point) {
      setText(depthReadout, depth.points.length > 1 ? "hover or use ← → on the chart to read a point" : "");
      return;
    }
    setText(
      depthReadout,
      "size " + sizeText(point[0]) + " · cost " + fmtMoney(point[1]) + " · profit " + fmtMoney(point[2]) +
        (point[1] > 0 ? " (" + fmtPct((point[2] / point[1]) * 100, F3) + " %)" : "")
    );
  }

  function hoverAt(clientX) {
    if (!depth.plot || depth.points.length < 2) return;
    var x = clientX - depthChart.getBoundingClientRect().left;
    var best = -1;
    var bestDistance = Infinity;
    for (var i = 0; i < depth.points.length; i++) {
      var distance = Math.abs(depth.plot.px(depth.points[i][0]) - x);
      if (distance < bestDistance) {
        bestDistance = distance;
        best = i;
      }
    }
    if (best !== depth.hover) {
      depth.hover = best;
      drawDepthChart();
    }
  }

  $("depth-zoom").addEventListener("click", function () {
    depth.zoom = !depth.zoom;
    this.setAttribute("aria-pressed", depth.zoom ? "true" : "false");
    drawDepthChart();
  });
  depthChart.tabIndex = 0;
  depthChart.addEventListener("mousemove", function (event) {
    hoverAt(event.clientX);
  });
  depthChart.addEventListener("mouseleave", function () {
    if (depth.hover !== -1) {
      depth.hover = -1;
      drawDepthChart();
    }
  });
  depthChart.addEventListener("keydown", function (event) {
    var count = depth.points.length;
    if (!count || (event.key !== "ArrowLeft" && event.key !== "ArrowRight")) return;
    event.preventDefault();
    var start = depth.hover < 0 ? (depth.peak >= 0 ? depth.peak : 0) : depth.hover;
    depth.hover = Math.max(0, Math.min(count - 1, start + (event.key === "ArrowRight" ? 1 : -1)));
    drawDepthChart();
  });
  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      if (!depthPanel.hidden) drawDepthChart();
    }).observe(depthChart);
  } else {
    window.addEventListener("resize", function () {
      if (!depthPanel.hidden) drawDepthChart();
    });
  }

  // --- opening and closing ------------------------------------------------------------------------------
  function rowOf(target) {
    var tr = target && target.closest ? target.closest("tr[data-id]") : null;
    return tr && tbody.contains(tr) ? rowsById.get(tr.getAttribute("data-id")) || null : null;
  }

  tbody.addEventListener("click", function (event) {
    var row = rowOf(event.target);
    if (!row) return;
    var selection = window.getSelection ? String(window.getSelection()) : "";
    if (selection) return; // selecting text to copy it, not asking for the books
    openDepth(row);
  });
  tbody.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    var row = rowOf(event.target);
    if (!row || event.target !== row.tr) return;
    event.preventDefault();
    openDepth(row);
  });
  $("depth-close").addEventListener("click", closeDepth);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && depth.id !== null) closeDepth();
  });

  // --- start ---------------------------------------------------------------------------------------
  setText($("stat-threshold"), "> " + F2.format(config.threshold_pct) + " %");
  var emptyText = emptyNode.querySelector(".empty-text");
  if (emptyText) {
    setText(
      emptyText,
      "Opportunities appear here the moment a net spread, fees included, crosses " + F2.format(config.threshold_pct) + " %."
    );
  }
  updateFeedSummary();
  stringList(config.exchanges).forEach(feedRow);
  tick();
  window.setInterval(tick, 1000);
  window.setInterval(sweepFlashes, 100);
  pollMarkets();
  pollHealth();
  loadHistory(config.history_limit, false).then(connect);

  // For tests and the console: the same path a WebSocket message takes.
  window.arbDashboard = {
    inject: function (text) {
      receiveFrame(text);
    },
    rows: function () {
      return order.length;
    },
    openDepth: function (id) {
      var row = rowsById.get(id);
      if (row) openDepth(row);
      return Boolean(row);
    },
  };
})();
