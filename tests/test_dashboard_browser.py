"""The dashboard in a real browser, against the real system.

Debian's chromium (installed by scripts/ensure_chromium.sh when missing), driven by
Playwright, opens the dashboard served by daphne in front of the real pipeline:
exchange simulator, ingestor, engine and a private Redis, all on free ports. A
dislocation forced through the simulator's control API must show as one row that
opens, updates and closes in place; the matrix, the feed status and the connection
indicator must be filled; clicking its row opens both books and the profit curve the
engine wrote for it. A signal carrying HTML in its text fields must render as text.
Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
import redis
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from arbsite.redis_server import EmbeddedRedis
from signals_app.contracts.keys import SIGNALS_CHANNEL, SIGNALS_HISTORY
from tests.conftest import Pipeline
from tests.procs import REPO, Daphne, get_json, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "tests" / "artifacts"
XSS = '<img src=x onerror="window.__xss=1">'
# Open for a few seconds: long enough for updates (SIGNAL_UPDATE_MS is 1 s), short enough for the test.
DISLOCATION_S = 4


class WebServer(Daphne):
    """daphne wired to the pipeline's Redis and health endpoints."""

    def __init__(self, pipeline: Pipeline, workdir: Path, port: int | None = None) -> None:
        env = {
            **pipeline.env,
            "REDIS_URL": pipeline.redis_url,
            "INGESTOR_HEALTH_URL": f"http://127.0.0.1:{pipeline.ingestor_health}/health",
        }
        super().__init__(env, workdir, port)


class System:
    def __init__(self, redis_server: EmbeddedRedis, pipeline: Pipeline, web: WebServer, workdir: Path) -> None:
        self.redis_server = redis_server
        self.pipeline = pipeline
        self.web = web
        self.workdir = workdir

    def restart_web(self) -> None:
        """A new daphne on the same port (what a browser sees when the web process is restarted)."""
        self.web = WebServer(self.pipeline, self.workdir, self.web.port)

    def output(self) -> str:
        return f"{self.pipeline.output()}\n\n--- daphne\n{self.web.output()}"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """Simulator, ingestor, engine, private Redis and daphne, for every test of this module."""
    workdir = tmp_path_factory.mktemp("dashboard")
    redis_server = EmbeddedRedis().start()
    pipeline: Pipeline | None = None
    started: System | None = None
    try:
        pipeline = Pipeline(redis_server.url, workdir)
        started = System(redis_server, pipeline, WebServer(pipeline, workdir), workdir)
        yield started
    finally:
        if started is not None:
            started.web.stop()
        if pipeline is not None:
            pipeline.kill()
        redis_server.cleanup()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (never a browser build downloaded by Playwright), installed when missing."""
    ensure = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure_chromium.sh")], capture_output=True, text=True, timeout=900
    )
    if ensure.returncode != 0 or not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM}: scripts/ensure_chromium.sh failed:\n{ensure.stdout}\n{ensure.stderr}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class PageProblems:
    """Script errors and failed loads of a page; each test says which ones it expects."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        # /api/health answers 503 while a part is down (a feed reconnecting): the page shows it.
        self.expected: list[str] = ["status of 503"]

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(text in message.text for text in self.expected):
            self.seen.append(f"console error: {message.text}")


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Browser, system: System, problems: PageProblems) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 900}, device_scale_factor=1)
    opened = context.new_page()
    opened.on("pageerror", lambda error: problems.seen.append(f"page error: {error}"))
    opened.on("console", problems.on_console)
    opened.goto(system.web.url + "/")
    yield opened
    context.close()
    # A script error or a refused resource (CSP, 404) is a failure even when the assertions passed.
    assert not problems.seen, "\n".join(problems.seen)


# Every status a row shows, in order, per id: proof that one row went open -> update -> close.
WATCH_STATUSES = """() => {
    window.__statusLog = [];
    const body = document.getElementById("signal-rows");
    const note = (tr) => window.__statusLog.push([tr.getAttribute("data-id"), tr.getAttribute("data-status")]);
    body.querySelectorAll("tr[data-id]").forEach(note);
    new MutationObserver((mutations) => {
        for (const mutation of mutations) {
            if (mutation.type === "attributes" && mutation.target.matches("tr[data-id]")) note(mutation.target);
            for (const node of mutation.addedNodes) if (node.matches && node.matches("tr[data-id]")) note(node);
        }
    }).observe(body, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"]});
}"""


# Whether the table has a row for an id (with a given status, when one is given). Ids are
# compared as strings, never put into a CSS selector: the XSS test's id is full of quotes.
HAS_ROW = """([id, status]) => [...document.querySelectorAll('#signal-rows tr[data-id]')].some(
    (tr) => tr.getAttribute('data-id') === id && (!status || tr.getAttribute('data-status') === status))"""


def row_statuses(page: Page, signal_id: str) -> list[str]:
    log: list[list[str]] = page.evaluate("window.__statusLog")
    statuses: list[str] = []
    for row_id, status in log:
        if row_id == signal_id and (not statuses or statuses[-1] != status):
            statuses.append(status)
    return statuses


def rows_with_id(page: Page, signal_id: str) -> int:
    count: int = page.evaluate(
        "(id) => [...document.querySelectorAll('#signal-rows tr[data-id]')]"
        ".filter((tr) => tr.getAttribute('data-id') === id).length",
        signal_id,
    )
    return count


# The row of an id (`id`, the argument), found as HAS_ROW does, for the snippets below.
ROW_OF_ID = (
    "[...document.querySelectorAll('#signal-rows tr[data-id]')].find((row) => row.getAttribute('data-id') === id)"
)


def cell_texts(page: Page, signal_id: str) -> list[str]:
    texts: list[str] = page.evaluate(
        f"(id) => {{ const tr = {ROW_OF_ID}; return tr ? [...tr.cells].map((td) => td.textContent) : []; }}",
        signal_id,
    )
    return texts


def test_a_forced_dislocation_opens_updates_and_closes_one_row(page: Page, system: System) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
    assert page.text_content("#connection-text") == "connected"
    page.evaluate(WATCH_STATUSES)

    system.pipeline.control(
        "dislocate", asset="BTC", cheap="binance", rich="coinbase", net_pct=1.2, seconds=DISLOCATION_S
    )

    opened = page.wait_for_selector('#signal-rows tr[data-id^="BTC:binance:coinbase:"]', timeout=10_000)
    assert opened is not None
    signal_id = opened.get_attribute("data-id")
    assert signal_id is not None
    page.wait_for_function(
        "(id) => window.__statusLog.some(([rowId, status]) => rowId === id && status === 'update')",
        arg=signal_id,
        timeout=10_000,
    )
    # While it is open: the live picture (row, matrix, feeds, latency) for a person to look at.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
    page.wait_for_function(
        "(id) => window.__statusLog.some(([rowId, status]) => rowId === id && status === 'close')",
        arg=signal_id,
        timeout=DISLOCATION_S * 1000 + 10_000,
    )

    # One row for the opportunity, whose statuses went open -> update(s) -> close, in place.
    assert row_statuses(page, signal_id) == ["open", "update", "close"], page.evaluate("window.__statusLog")
    assert rows_with_id(page, signal_id) == 1
    status, history = get_json(f"{system.web.url}/api/signals/history?limit=1000")
    assert status == 200
    assert isinstance(history, list)
    messages = [signal for signal in history if signal["id"] == signal_id]
    assert messages[0]["status"] == "open"
    assert messages[-1]["status"] == "close"
    # The dislocation ended: the spread fell back under the threshold, and the row says so.
    assert messages[-1]["close_reason"] == "threshold", messages[-1]
    duration_s = messages[-1]["duration_ms"] / 1000
    cells = cell_texts(page, signal_id)
    assert cells[0] == "closedthreshold", cells
    assert reason_text(page, signal_id) == "threshold"
    assert cells[1].startswith("BTC"), cells
    assert cells[2] == "binance→coinbase", cells
    assert cells[12] == f"{duration_s:.1f}s", (cells, messages[-1])
    # Depth profit and net at the target notional: the last message's, or a dash without books.
    for index, field in ((10, "depth_profit"), (11, "net_spread_at_target_pct")):
        value = messages[-1][field]
        if value is None:
            assert cells[index] == "—", (cells, messages[-1])
        else:
            shown = float(cells[index].replace(",", "").replace("−", "-").replace("+", ""))
            assert shown == pytest.approx(value, abs=0.01), (cells, messages[-1])
    net = float(cells[6].replace("−", "-").replace("+", ""))
    assert net == pytest.approx(messages[-1]["net_spread_pct"], abs=1e-4)

    # The matrix has numbers for BTC in both directions.
    page.wait_for_function(
        """() => { const cells = document.querySelectorAll('.m-card[data-asset="BTC"] td[data-buy]');
            return cells.length === 2 && [...cells].every((td) => /^[+−]?\\d+\\.\\d{3}$/.test(td.textContent)); }""",
        timeout=5_000,
    )
    # Both venues live, with a message age and a rate.
    for exchange in ("binance", "coinbase"):
        row = page.wait_for_selector(f'#feed-rows tr[data-exchange="{exchange}"][data-state="live"]', timeout=5_000)
        assert row is not None
        texts = row.eval_on_selector_all("td", "(tds) => tds.map((td) => td.textContent)")
        assert texts[0] == "live"
        assert re.fullmatch(r"\d+\.\d\ds", texts[1]), texts
        assert re.fullmatch(r"[\d,]+\.\d/s", texts[2]), texts
    # Latency from the engine's health data.
    page.wait_for_function("() => /µs|ms/.test(document.getElementById('stat-p50').textContent)", timeout=5_000)
    page.wait_for_selector('#connection[data-state="connected"]')
    page.screenshot(path=str(ARTIFACTS / "dashboard-closed.png"))


def xss_signal(signal_id: str, now_ms: int, status: str, **fields: Any) -> dict[str, Any]:
    """A signal with the HTML string in every text field it can carry."""
    return {
        "type": "ARBITRAGE_OPPORTUNITY",
        "id": signal_id,
        "status": status,
        "action": f"BUY_{XSS}_SELL_COINBASE",
        "symbol": f"{XSS}/USDT",
        "asset": XSS,
        "buy_exchange": XSS,
        "sell_exchange": "coinbase",
        "buy_symbol": f"{XSS}/USDT",
        "sell_symbol": f"{XSS}/USD",
        "buy_price": 1.0,
        "sell_price": 1.02,
        "spread_pct": 2.0,
        "net_spread_pct": 1.3,
        "size": 10.0,
        "profit_per_unit": 0.013,
        "profit_estimate": 0.13,
        "fees_pct": {XSS: 0.1, "coinbase": 0.6},
        "opened_at": now_ms,
        "duration_ms": 0,
        "peak_net_spread_pct": 1.3,
        "tick_recv_ns": now_ms * 1_000_000,
        "timestamp": now_ms,
        **fields,
    }


def test_html_in_a_signal_is_shown_as_text(page: Page, system: System) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
    now_ms = int(time.time() * 1000)
    signal_id = f"{XSS}:binance:coinbase:{now_ms}"
    signal = xss_signal(signal_id, now_ms, "open")
    client = redis.Redis.from_url(system.redis_server.url)
    try:
        assert client.publish(SIGNALS_CHANNEL, json.dumps(signal)) >= 1
    finally:
        client.close()

    page.wait_for_function(HAS_ROW, arg=[signal_id, None], timeout=10_000)
    # The page's own handler too (what a WebSocket message goes through), with the HTML in every text field.
    page.evaluate("(text) => window.arbDashboard.inject(text)", json.dumps({**signal, "status": "update"}))
    page.wait_for_function(HAS_ROW, arg=[signal_id, "update"], timeout=5_000)
    page.wait_for_timeout(500)  # an injected <img src=x> would have failed to load and run onerror by now

    cells = cell_texts(page, signal_id)
    assert cells[1].startswith(XSS), cells
    assert cells[2].startswith(XSS), cells
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    # The filter menus list the new names as text as well.
    options: list[str] = page.eval_on_selector_all("#filter-asset option", "(os) => os.map((o) => o.textContent)")
    assert XSS in options
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-xss.png"))


def test_the_page_reconnects_by_itself_and_refills_what_it_missed(
    page: Page, system: System, problems: PageProblems
) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
    page.evaluate(WATCH_STATUSES)
    # The web process goes away: the page says so and keeps retrying.
    problems.expected.append("ERR_CONNECTION_REFUSED")
    system.web.stop()
    page.wait_for_selector('#connection[data-state="reconnecting"]', timeout=10_000)

    # An opportunity opens and closes while no browser can hear of it.
    system.pipeline.control("dislocate", asset="ETH", cheap="coinbase", rich="binance", net_pct=1.0, seconds=1.5)
    client = redis.Redis.from_url(system.redis_server.url)
    try:

        def closed_eth_in_history() -> str | None:
            for raw in cast(list[bytes], client.zrange(SIGNALS_HISTORY, 0, -1)):
                signal = json.loads(raw)
                if signal["id"].startswith("ETH:coinbase:binance:") and signal["status"] == "close":
                    return str(signal["id"])
            return None

        wait_until(lambda: closed_eth_in_history() is not None, 15, "the ETH opportunity closed in signals:history")
        missed_id = closed_eth_in_history()
    finally:
        client.close()
    assert missed_id is not None
    assert rows_with_id(page, missed_id) == 0

    # The web process is back: the page reconnects on its own and refills from the history API.
    system.restart_web()
    page.wait_for_selector('#connection[data-state="connected"]', timeout=40_000)
    page.wait_for_function(HAS_ROW, arg=[missed_id, "close"], timeout=10_000)
    assert rows_with_id(page, missed_id) == 1


def test_a_market_far_from_the_other_venues_shows_as_suspect_and_raises_nothing(page: Page, system: System) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
    page.evaluate(WATCH_STATUSES)
    # ETH 45 % cheaper on Binance than on Coinbase: not an opportunity but a broken market (beyond
    # MAX_MARKET_DEVIATION_PCT, 20): both are listed as suspect, and no row opens for it.
    asked_ms = time.time_ns() // 1_000_000
    system.pipeline.control("dislocate", asset="ETH", cheap="binance", rich="coinbase", net_pct=45.0, seconds=3)
    page.wait_for_selector('#suspect-rows li[data-market="binance:ETH/USDT"]', timeout=10_000)
    page.wait_for_selector('#suspect-rows li[data-market="coinbase:ETH/USD"]', timeout=5_000)
    assert page.is_visible("#suspects")
    text = page.text_content("#suspect-rows") or ""
    assert "from the median of 1 venues" in text, text
    status, health = get_json(f"{system.web.url}/api/health")
    assert status in (200, 503)
    assert isinstance(health, dict)
    listed = {(s["exchange"], s["symbol"]) for s in health["engine"]["suspect_markets"]}
    assert {("binance", "ETH/USDT"), ("coinbase", "ETH/USD")} <= listed, health["engine"]
    log: list[list[str]] = page.evaluate("window.__statusLog")
    opened_since = [row for row in log if row[0].startswith("ETH:") and int(row[0].rsplit(":", 1)[1]) >= asked_ms]
    assert not opened_since, log
    # When the dislocation ends and both agree again, the list empties (suspects last 10 s).
    page.wait_for_selector("#suspects", state="hidden", timeout=20_000)


# --- an opportunity's books: the depth panel ---------------------------------------------------
def depth_view(system: System, signal_id: str) -> tuple[int, Any]:
    return get_json(f"{system.web.url}/api/signals/{quote(signal_id, safe='')}/depth")


def click_row(page: Page, signal_id: str) -> None:
    """A real click on the row of `signal_id` (found by comparing ids, never in a selector)."""
    row = page.evaluate_handle(
        "(id) => [...document.querySelectorAll('#signal-rows tr[data-id]')].find((tr) => tr.dataset.id === id)",
        signal_id,
    ).as_element()
    assert row is not None, signal_id
    row.click()


def number(text: str | None) -> float:
    return float((text or "").replace(",", "").replace("−", "-").replace("+", ""))


def panel_levels(page: Page, side: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        f"#depth-{side} tr",
        "(rows) => rows.map((tr) => ({walked: tr.dataset.walked,"
        " price: tr.cells[0].textContent, size: tr.cells[1].textContent, cumulative: tr.cells[2].textContent}))",
    )
    return rows


# The view timestamps the panel showed, in order (it refetches while the signal updates).
WATCH_VIEWS = """() => {
    window.__depthViews = [];
    const panel = document.getElementById("depth-panel");
    new MutationObserver(() => {
        const shown = panel.getAttribute("data-view-timestamp");
        if (shown && window.__depthViews[window.__depthViews.length - 1] !== shown) window.__depthViews.push(shown);
    }).observe(panel, {attributes: true, attributeFilter: ["data-view-timestamp"]});
}"""


def test_clicking_an_opportunity_shows_both_books_and_its_profit_curve(page: Page, system: System) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
    page.evaluate(WATCH_STATUSES)
    asked_ms = time.time_ns() // 1_000_000
    system.pipeline.control(
        "dislocate", asset="BTC", cheap="binance", rich="coinbase", net_pct=1.2, seconds=DISLOCATION_S
    )
    # This dislocation's row (the first test's closed BTC row may still be in the table).
    signal_id: str = page.wait_for_function(
        """(since) => { const tr = [...document.querySelectorAll('#signal-rows tr[data-id^="BTC:binance:coinbase:"]')]
            .find((row) => Number(row.dataset.id.split(":").pop()) >= since && row.dataset.status !== "close");
            return tr ? tr.dataset.id : null; }""",
        arg=asked_ms,
        timeout=10_000,
    ).json_value()
    # The engine wrote the opportunity's books beside its signal (signals_app/contracts/depth_view.py).
    wait_until(lambda: depth_view(system, signal_id)[0] == 200, 5, f"GET /api/signals/{signal_id}/depth is a 200")

    page.evaluate(WATCH_VIEWS)
    click_row(page, signal_id)
    page.wait_for_selector('#depth-panel[data-state="shown"]', timeout=5_000)
    assert page.is_visible("#depth-panel")
    assert page.get_attribute(f'#signal-rows tr[data-id="{signal_id}"]', "data-selected") == "true"
    page.wait_for_function("() => Number(document.getElementById('depth-chart').dataset.points) > 1", timeout=5_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-depth.png"))

    # It stays open while the opportunity updates and closes; the panel follows the engine's views.
    page.wait_for_function(
        "(id) => window.__statusLog.some(([rowId, status]) => rowId === id && status === 'close')",
        arg=signal_id,
        timeout=DISLOCATION_S * 1000 + 10_000,
    )
    status, view = depth_view(system, signal_id)
    assert status == 200, view
    assert isinstance(view, dict)
    page.wait_for_function(
        "(at) => document.getElementById('depth-panel').dataset.viewTimestamp === at",
        arg=str(view["timestamp"]),
        timeout=5_000,
    )
    shown_views: list[str] = page.evaluate("window.__depthViews")
    assert len(shown_views) >= 2, shown_views  # refetched while the signal updated, not only on the click

    # The two markets, as the heading.
    assert page.text_content("#depth-buy-market") == f"binance {view['buy_symbol']}"
    assert page.text_content("#depth-sell-market") == f"coinbase {view['sell_symbol']}"
    assert page.text_content("#depth-status") == "closed"
    # Both books, level for level: the buy venue's asks and the sell venue's bids, best first.
    asks, bids = panel_levels(page, "asks"), panel_levels(page, "bids")
    assert len(asks) == len(view["asks"]) > 0
    assert len(bids) == len(view["bids"]) > 0
    for shown, level in [*zip(asks, view["asks"], strict=True), *zip(bids, view["bids"], strict=True)]:
        assert number(shown["price"]) == pytest.approx(level[0], abs=0.005), (shown, level)
        assert number(shown["size"]) == pytest.approx(level[1], rel=1e-3, abs=1e-6), (shown, level)
    assert number(asks[-1]["cumulative"]) == pytest.approx(sum(size for _, size in view["asks"]), rel=1e-3)
    # The best levels are the signal's own prices: the view was written with the message of its timestamp.
    _, history = get_json(f"{system.web.url}/api/signals/history?limit=1000")
    assert isinstance(history, list)
    (written_with,) = [s for s in history if s["id"] == signal_id and s["timestamp"] == view["timestamp"]]
    assert view["asks"][0][0] == written_with["buy_price"], (view["asks"][0], written_with)
    assert view["bids"][0][0] == written_with["sell_price"], (view["bids"][0], written_with)
    assert view["depth_size"] == written_with["depth_size"] is not None
    # The levels the walk took (up to depth_size) are highlighted; the ones behind are not.
    depth_size = view["depth_size"]
    for levels, side in ((asks, view["asks"]), (bids, view["bids"])):
        before = 0.0
        for row, (_, size) in zip(levels, side, strict=True):
            assert (row["walked"] != "no") == (before < depth_size * (1 - 1e-9)), (row, before, depth_size)
            before += size
    assert depth_size == 0 or asks[0]["walked"] != "no"

    # The chart: every point of the curve drawn, its peak where the curve's profit is highest.
    chart = page.eval_on_selector("#depth-chart", "(c) => [c.dataset.points, c.dataset.peakSize, c.width]")
    curve = view["curve"]
    assert int(chart[0]) == len(curve) > 1, (chart, curve)
    assert curve[0] == [0, 0, 0]
    peak = max(curve, key=lambda point: point[2])
    assert float(chart[1]) == peak[0], (chart, peak)
    assert chart[2] > 0
    assert number(page.text_content("#depth-size").split()[0]) == pytest.approx(depth_size, rel=1e-3)  # type: ignore[union-attr]
    page.screenshot(path=str(ARTIFACTS / "dashboard-depth-closed.png"))

    # Closed with Escape; the focus goes back to the row.
    page.keyboard.press("Escape")
    page.wait_for_selector("#depth-panel", state="hidden")
    assert page.evaluate("document.activeElement.dataset.id") == signal_id
    assert page.get_attribute(f'#signal-rows tr[data-id="{signal_id}"]', "data-selected") is None


def test_books_no_longer_held_are_said_so_as_text(page: Page, system: System, problems: PageProblems) -> None:
    """A signal in the history whose books the engine no longer holds (no signal:depth key): a 404."""
    problems.expected.append("status of 404")  # the browser logs the API's 404 for the books
    now_ms = int(time.time() * 1000)
    signal_id = f"{XSS}:binance:coinbase:{now_ms}"
    signal = xss_signal(
        signal_id,
        now_ms,
        "close",
        depth_size=4.0,
        depth_buy_vwap=1.0,
        depth_sell_vwap=1.02,
        depth_profit=0.05,
        depth_net_spread_pct=1.2,
        depth_levels=[1, 1],
        net_spread_at_target_pct=1.1,
        opened_at=now_ms - 2000,
        duration_ms=2000,
    )
    member = json.dumps(signal)
    client = redis.Redis.from_url(system.redis_server.url)
    try:
        client.zadd(SIGNALS_HISTORY, {member: now_ms})
        assert depth_view(system, signal_id)[0] == 404
        page.reload()
        page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
        page.wait_for_function(HAS_ROW, arg=[signal_id, "close"], timeout=10_000)

        click_row(page, signal_id)
        page.wait_for_selector('#depth-panel[data-state="gone"]', timeout=5_000)
        message = page.text_content("#depth-message") or ""
        assert "no longer held" in message, message
        assert page.is_visible("#depth-message")
        assert page.text_content("#depth-asset") == XSS
        assert page.text_content("#depth-buy-market") == f"{XSS} {XSS}/USDT"
        assert page.eval_on_selector_all("#depth-asks tr, #depth-bids tr", "(rows) => rows.length") == 0
        assert page.get_attribute("#depth-chart", "data-points") == "0"
        page.wait_for_timeout(300)  # an injected <img src=x> would have failed to load and run onerror by now
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-depth-gone.png"))

        # By keyboard: Escape closes it and gives the focus back to the row, Enter on the row opens it again.
        page.keyboard.press("Escape")
        page.wait_for_selector("#depth-panel", state="hidden")
        assert page.evaluate("document.activeElement.dataset.id") == signal_id
        page.keyboard.press("Enter")
        page.wait_for_selector('#depth-panel[data-state="gone"]', timeout=5_000)
        page.click("#depth-close")
        page.wait_for_selector("#depth-panel", state="hidden")
    finally:
        client.zrem(SIGNALS_HISTORY, member)
        client.close()


def reason_text(page: Page, signal_id: str) -> str | None:
    text: str | None = page.evaluate(
        f"(id) => {{ const tr = {ROW_OF_ID}; return tr ? tr.querySelector('.close-reason').textContent : null; }}",
        signal_id,
    )
    return text


def test_a_closed_row_says_why_it_closed_as_text(page: Page, system: System) -> None:
    page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
    now_ms = int(time.time() * 1000)
    opened = {**xss_signal(f"DOGE:kraken:okx:{now_ms}", now_ms, "open"), "asset": "DOGE", "buy_exchange": "kraken"}
    closed = {**opened, "status": "close", "close_reason": "engine_restart", "timestamp": now_ms + 1500}
    before_reasons = {**opened, "id": f"DOGE:kraken:okx:{now_ms + 1}", "status": "close", "timestamp": now_ms + 1600}
    client = redis.Redis.from_url(system.redis_server.url)
    try:
        assert client.publish(SIGNALS_CHANNEL, json.dumps(opened)) >= 1
        page.wait_for_function(HAS_ROW, arg=[opened["id"], "open"], timeout=10_000)
        assert reason_text(page, opened["id"]) == ""  # an open row has no reason
        for signal in (closed, before_reasons):
            assert client.publish(SIGNALS_CHANNEL, json.dumps(signal)) >= 1
    finally:
        client.close()
    page.wait_for_function(HAS_ROW, arg=[opened["id"], "close"], timeout=10_000)
    page.wait_for_function(HAS_ROW, arg=[before_reasons["id"], "close"], timeout=10_000)
    assert cell_texts(page, opened["id"])[0] == "closedengine restart"
    assert reason_text(page, opened["id"]) == "engine restart"
    # Whole, under the pill: the column is wide enough for the longest reason.
    assert page.evaluate(
        f"(id) => {{ const span = {ROW_OF_ID}.querySelector('.close-reason');"
        " return span.scrollWidth <= span.clientWidth; }",
        opened["id"],
    )
    assert reason_text(page, before_reasons["id"]) == ""  # a close from before the reasons: just closed

    # A reason is text, whatever it holds (the WebSocket's own path, as a frame would take it).
    html_id = f"{XSS}:binance:coinbase:{now_ms}"
    page.evaluate(
        "(text) => window.arbDashboard.inject(text)",
        json.dumps(xss_signal(html_id, now_ms, "close", close_reason=XSS)),
    )
    page.wait_for_function(HAS_ROW, arg=[html_id, "close"], timeout=5_000)
    page.wait_for_timeout(300)  # an injected <img src=x> would have failed to load and run onerror by now
    assert reason_text(page, html_id) == XSS.replace("_", " ")  # shown as the known ones are: "engine restart"
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-close-reasons.png"))


def test_a_missed_message_refills_from_history_and_is_shown(page: Page, system: System) -> None:
    """The web process dropped signals this page was too slow for: MISSED, then a refill from the history API."""
    page.wait_for_selector('#connection[data-state="connected"]', timeout=15_000)
    # The page's own loads of history are done (the first one and the one on opening the socket):
    # what goes into history from now on reaches it only by a refill.
    page.wait_for_function("() => Number(document.getElementById('feed-note').dataset.historyLoads) >= 2")
    now_ms = int(time.time() * 1000)
    # In history, never sent to this page (the kind of signal a MISSED stands for).
    dropped = {**xss_signal(f"LTC:gemini:okx:{now_ms}", now_ms, "open"), "asset": "LTC", "buy_exchange": "gemini"}
    client = redis.Redis.from_url(system.redis_server.url)
    try:
        client.zadd(SIGNALS_HISTORY, {json.dumps(dropped): now_ms})
    finally:
        client.close()
    page.wait_for_timeout(300)
    assert rows_with_id(page, dropped["id"]) == 0
    assert page.text_content("#feed-missed") == ""

    page.evaluate(
        "(text) => window.arbDashboard.inject(text)",
        json.dumps({"type": "MISSED", "missed": 7, "since": now_ms - 1000}),
    )
    page.wait_for_function(HAS_ROW, arg=[dropped["id"], "open"], timeout=10_000)
    note = page.text_content("#feed-missed") or ""
    assert note.startswith("fell behind: 7 signals missed after "), note
    assert note.endswith(", refilled from history"), note
    assert page.get_attribute("#feed-missed", "data-missed") == "7"
    # A second one adds to the count.
    page.evaluate(
        "(text) => window.arbDashboard.inject(text)", json.dumps({"type": "MISSED", "missed": 1, "since": None})
    )
    page.wait_for_function("() => document.getElementById('feed-missed').getAttribute('data-missed') === '8'")
    assert "1 signal missed, refilled from history (8 in all)" in (page.text_content("#feed-missed") or "")
