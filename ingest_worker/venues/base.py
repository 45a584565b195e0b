"""What every venue parser shares: drop counting, rate-limited warnings, tick validation.

A parser turns one frame (text or bytes, exactly as received) and its receive
time into zero or more ticks. It never raises and never reads a clock: bad
data is dropped and counted under a reason, control frames (subscription
answers, heartbeats) are counted as such, and channels we do not use are
counted as ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple

from ingest_worker.book import L2Book, Levels, Texts
from signals_app.contracts import tick as tick_contract
from signals_app.contracts.symbols import SymbolTable
from signals_app.contracts.tick import Tick

log = logging.getLogger("ingest_worker.parse")

# Drop reasons; a counter exists for each so that /metrics shows zeros too.
MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
BAD_PRICE = "bad_price"
BAD_SIZE = "bad_size"
CROSSED_BOOK = "crossed_book"
STALE = "stale"
UNKNOWN_SYMBOL = "unknown_symbol"
UNKNOWN_MESSAGE = "unknown_message"
BAD_TIMESTAMP = "bad_timestamp"
BOOK_GAP = "book_gap"  # an order-book update that fails the venue's checksum or sequence: the book is dropped
UNEXPECTED = "unexpected"
DROP_REASONS = (
    MALFORMED_JSON,
    MISSING_FIELD,
    BAD_PRICE,
    BAD_SIZE,
    CROSSED_BOOK,
    STALE,
    UNKNOWN_SYMBOL,
    UNKNOWN_MESSAGE,
    BAD_TIMESTAMP,
    BOOK_GAP,
    UNEXPECTED,
)

# Beyond these a number is a feed bug, not a market: no asset trades above ten
# billion of its quote, and no top-of-book size reaches a quadrillion units.
MAX_PRICE = 1e10
MAX_SIZE = 1e15
INF = float("inf")
NO_TICKS: list[Tick] = []  # shared empty answer; callers must not mutate it

# DESIGN.md: a tick's exchange time must be within 60 s of the clock (its receive time).
MAX_TICK_AGE_MS = 60_000
CLOCK_SKEW_MS = 1000  # a book tick whose venue time is further than this from its receive time is counted
DEPTH_LEVELS = 20  # DESIGN.md: levels a side a book tick carries unless DEPTH_LEVELS says otherwise
LOG_EVERY_NS = 10_000_000_000  # at most one warning per reason per 10 s of receive time
# Outcomes of a book frame that gives no book tick (`book_tick`), counted as ignored under these kinds.
BOOK_UNCHANGED = "book_unchanged"  # the top depth_levels levels are what the last book tick carried
ONE_SIDED_BOOK = "one_sided_book"  # no bid or no ask: no book tick to give


class TextKeepalive(NamedTuple):
    """A venue's application-level keepalive: this text, sent at least every `interval_s` (module `KEEPALIVE`)."""

    message: str
    interval_s: float


class ParseStats:
    """Counters of one parser: frames seen, ticks made, control frames, ignored and dropped frames."""

    __slots__ = ("book_ticks", "books_lost", "clock_skewed", "control", "dropped", "frames", "ignored", "ticks")

    def __init__(self) -> None:
        self.frames = 0
        self.ticks = 0
        self.book_ticks = 0  # of the ticks, book ticks
        self.books_lost = 0  # of the ticks, book-lost ticks: a book the engine had was dropped
        # Book ticks whose venue time is more than CLOCK_SKEW_MS off the receive time: sent, and counted
        # (a venue clock that drifts, or a book held up on its way), DESIGN.md "Depth" data health.
        self.clock_skewed = 0
        self.control: dict[str, int] = {}
        self.ignored: dict[str, int] = {}
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)

    @classmethod
    def combined(cls, parts: Iterable[ParseStats]) -> ParseStats:
        """The sum of several parsers' counters (one feed over several connections)."""
        total = cls()
        for part in parts:
            total.frames += part.frames
            total.ticks += part.ticks
            total.book_ticks += part.book_ticks
            total.books_lost += part.books_lost
            total.clock_skewed += part.clock_skewed
            for mine, theirs in ((total.control, part.control), (total.ignored, part.ignored)):
                for kind, count in theirs.items():
                    mine[kind] = mine.get(kind, 0) + count
            for reason, count in part.dropped.items():
                total.dropped[reason] = total.dropped.get(reason, 0) + count
        return total

    def books(self) -> dict[str, int]:
        """The book counters (shown beside `as_dict` in the feed's /health, under `books`)."""
        return {"ticks": self.book_ticks, "clock_skewed": self.clock_skewed, "lost": self.books_lost}

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "ticks": self.ticks,
            "control": dict(sorted(self.control.items())),
            "ignored": dict(sorted(self.ignored.items())),
            "dropped": {reason: count for reason, count in sorted(self.dropped.items()) if count},
        }


class VenueParser:
    """Base of the venue parsers. Subclasses implement `_parse`; `parse` is the safe entry point.

    A parser that keeps order books puts the native name of a market whose book it had to
    drop (a failed checksum, a gap, a crossed book) in `resync_needed`, once per loss; the
    live client takes the names out and asks the venue for a fresh snapshot
    (ingest_worker/feed.py). `awaiting_snapshot()` names the markets still without a book.
    """

    name: ClassVar[str]
    # The ignored kind of a book frame that changes nothing within the top `depth_levels` levels.
    UNCHANGED_BOOK: ClassVar[str] = BOOK_UNCHANGED
    ONE_SIDED: ClassVar[str] = ONE_SIDED_BOOK  # and of one that leaves a side empty

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
    ) -> None:
        self.symbols = symbols if symbols is not None else self.default_symbols()
        # A book tick carries at most this many levels a side (DEPTH_LEVELS).
        self.depth_levels = depth_levels
        # symbol -> the levels of the last book tick sent: a frame that changes nothing within
        # them sends none (DESIGN.md "Depth").
        self._sent_levels: dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {}
        # Symbols whose sent book was forgotten during this frame: unless the frame sends the market
        # a new book, the engine is told the book is gone (a book-lost tick) and walks none of it.
        self._forgotten: set[str] = set()
        # Reject ticks whose exchange time is further than this from the receive time
        # (the injected clock); None turns the check off (`normalize` without --max-age-s).
        self.max_age_ms = max_age_ms
        self.stats = ParseStats()
        # Markets whose book was dropped and that need a fresh snapshot. Filled here, emptied by
        # the live client; the set object is never replaced, so a caller may hold on to it.
        self.resync_needed: set[str] = set()
        self._last_log_ns: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}

    @classmethod
    def default_symbols(cls) -> SymbolTable:
        raise NotImplementedError

    def new_connection(self) -> None:
        """A new connection begins: it subscribes to everything afresh, so no resync is pending
        (and no book-lost tick: the feed's `down` already told the engine to forget the venue)."""
        self.resync_needed.clear()
        self._sent_levels.clear()  # the engine forgot the venue at `down`: every book goes afresh
        self._forgotten.clear()

    def awaiting_snapshot(self) -> set[str]:
        """Markets whose book was dropped and has not been rebuilt by a snapshot (none for book-less parsers)."""
        return set()

    def resubscribe_messages(self, natives: Iterable[str]) -> list[dict[str, Any]] | None:
        """The messages that get fresh snapshots of `natives` when they depend on this connection's
        state (Bitfinex unsubscribes by channel id); None: the venue's `resubscribe_messages`."""
        return None

    def parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        """Ticks in `frame`; never raises, whatever the bytes."""
        self.stats.frames += 1
        try:
            ticks = self._parse(frame, recv_ns)
        except Exception as exc:  # noqa: BLE001 - the safety net: a parser bug must not kill the feed
            ticks = self.drop(UNEXPECTED, recv_ns, f"{type(exc).__name__}: {exc}")
        return self.outcome(ticks, recv_ns)

    def outcome(self, ticks: list[Tick], recv_ns: int) -> list[Tick]:
        """What one frame (or REST answer) gives, counted: its ticks, then a book-lost tick for each
        market whose sent book it forgot and did not replace."""
        if self._forgotten:
            ticks = [*ticks, *self._books_lost(recv_ns)]
        self.stats.ticks += len(ticks)
        return ticks

    def _books_lost(self, recv_ns: int) -> list[Tick]:
        """A book-lost tick for each market whose sent book this frame forgot and did not replace."""
        timestamp = recv_ns // 1_000_000
        lost = [tick_contract.book_lost(self.name, symbol, timestamp, recv_ns) for symbol in sorted(self._forgotten)]
        self._forgotten.clear()
        self.stats.books_lost += len(lost)
        return lost

    def _parse(self, frame: str | bytes, recv_ns: int) -> list[Tick]:
        raise NotImplementedError

    # --- outcomes other than ticks -------------------------------------------
    def drop(self, reason: str, recv_ns: int, detail: object = "") -> list[Tick]:
        """Count a dropped frame and warn (rate-limited)."""
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + 1
        self._warn(reason, recv_ns, "dropped frame (%s): %.200s", reason, detail)
        return NO_TICKS

    def exchange_error(self, recv_ns: int, frame: object) -> list[Tick]:
        """An error frame from the exchange: a control frame, but one an operator must see."""
        self.control("error")
        self._warn("error", recv_ns, "exchange error: %.300s", frame)
        return NO_TICKS

    def _warn(self, key: str, recv_ns: int, message: str, *args: object) -> None:
        """Log at most once per key every 10 s of receive time, saying how many were held back."""
        last = self._last_log_ns.get(key)
        if last is None or recv_ns - last >= LOG_EVERY_NS or recv_ns < last:
            suppressed = self._suppressed.pop(key, 0)
            more = f" (+{suppressed} more since the last warning)" if suppressed else ""
            log.warning("%s: " + message + "%s", self.name, *args, more)
            self._last_log_ns[key] = recv_ns
        else:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1

    def control(self, kind: str) -> list[Tick]:
        self.stats.control[kind] = self.stats.control.get(kind, 0) + 1
        return NO_TICKS

    def ignore(self, kind: str) -> list[Tick]:
        self.stats.ignored[kind] = self.stats.ignored.get(kind, 0) + 1
        return NO_TICKS

    # --- validation ----------------------------------------------------------
    def make_quote(
        self,
        symbol: str,
        raw_bid: object,
        raw_ask: object,
        raw_bid_size: object,
        raw_ask_size: object,
        timestamp: int,
        recv_ns: int,
    ) -> list[Tick]:
        """One validated quote tick, or a counted drop. Sizes may be None (the feed gives none)."""
        try:
            bid = _number(raw_bid)
            ask = _number(raw_ask)
        except (TypeError, ValueError):
            return self.drop(BAD_PRICE, recv_ns, f"{symbol} bid={raw_bid!r} ask={raw_ask!r}")
        # One chained comparison rejects NaN (every comparison is False), inf, zero and negatives.
        if not (0.0 < bid < MAX_PRICE and 0.0 < ask < MAX_PRICE):
            return self.drop(BAD_PRICE, recv_ns, f"{symbol} bid={raw_bid!r} ask={raw_ask!r}")
        if bid >= ask:
            return self.drop(CROSSED_BOOK, recv_ns, f"{symbol} bid={bid} >= ask={ask}")
        bid_size: float | None = None
        ask_size: float | None = None
        try:
            if raw_bid_size is not None:
                bid_size = _number(raw_bid_size)
                if not 0.0 < bid_size < MAX_SIZE:
                    raise ValueError
            if raw_ask_size is not None:
                ask_size = _number(raw_ask_size)
                if not 0.0 < ask_size < MAX_SIZE:
                    raise ValueError
        except (TypeError, ValueError):
            return self.drop(BAD_SIZE, recv_ns, f"{symbol} sizes {raw_bid_size!r}/{raw_ask_size!r}")
        if self.max_age_ms is not None and abs(recv_ns // 1_000_000 - timestamp) > self.max_age_ms:
            return self.drop(STALE, recv_ns, f"{symbol} event time {timestamp} vs receive {recv_ns // 1_000_000}")
        return [tick_contract.quote(self.name, symbol, bid, ask, bid_size, ask_size, timestamp, recv_ns)]

    def make_book(self, symbol: str, book: L2Book, timestamp: int, recv_ns: int) -> list[Tick]:
        """A book tick of the top `depth_levels` of `book` (already checked: not crossed), or none
        when they are what the last book tick of `symbol` carried; a one-sided book gives none."""
        n = self.depth_levels
        bids = book.bid_levels(n)
        asks = book.ask_levels(n)
        if not bids or not asks:
            return NO_TICKS
        last = self._sent_levels.get(symbol)
        if last is not None and last[0] == bids and last[1] == asks:
            return NO_TICKS
        off_ms = abs(recv_ns // 1_000_000 - timestamp)
        if self.max_age_ms is not None and off_ms > self.max_age_ms:
            return self.drop(STALE, recv_ns, f"{symbol} event time {timestamp} vs receive {recv_ns // 1_000_000}")
        self._sent_levels[symbol] = (bids, asks)
        if self._forgotten:
            self._forgotten.discard(symbol)  # a new book replaces the one forgotten earlier in this frame
        stats = self.stats
        stats.book_ticks += 1
        if off_ms > CLOCK_SKEW_MS:
            stats.clock_skewed += 1
        return [
            tick_contract.book(
                self.name, symbol, [list(level) for level in bids], [list(level) for level in asks], timestamp, recv_ns
            )
        ]

    def book_tick(self, symbol: str, book: L2Book, timestamp: int, recv_ns: int) -> list[Tick]:
        """make_book, with the frame's one outcome counted when it gives no tick: `one_sided_book`
        (and the next book is sent whatever it holds) or `book_unchanged`, as ignored; stale, dropped."""
        if book.best_bid() is None or book.best_ask() is None:
            # Not a lost book (no rule failed: a side emptied, often for a moment between two of
            # Bitfinex's one-level updates): no book-lost tick. The engine still holds the last book
            # sent, so a later loss is still told (a book was sent), and the next book goes
            # whatever it holds (no levels equal these).
            if symbol in self._sent_levels:
                self._sent_levels[symbol] = ([], [])
            return self.ignore(ONE_SIDED_BOOK)
        return self.book_ticks(symbol, book, timestamp, recv_ns)

    def book_ticks(self, symbol: str, book: L2Book, timestamp: int, recv_ns: int) -> list[Tick]:
        """make_book, with the frame's outcome counted when it gives no tick: ignored under the
        parser's ONE_SIDED kind (a side is empty) or UNCHANGED_BOOK kind (the top levels are what
        was sent), unless make_book dropped it as stale."""
        stale = self.stats.dropped[STALE]
        ticks = self.make_book(symbol, book, timestamp, recv_ns)
        if ticks or self.stats.dropped[STALE] != stale:
            return ticks
        if book.best_bid() is None or book.best_ask() is None:
            return self.ignore(self.ONE_SIDED)
        return self.ignore(self.UNCHANGED_BOOK)

    def forget_book(self, symbol: str) -> None:
        """The book of `symbol` was dropped: the next one is sent whatever it holds, and unless this
        frame sends one the engine gets a book-lost tick (when it had been sent a book of it)."""
        if self._sent_levels.pop(symbol, None) is not None:
            self._forgotten.add(symbol)

    def make_trade(self, symbol: str, raw_price: object, raw_size: object, timestamp: int, recv_ns: int) -> list[Tick]:
        """One validated trade tick, or a counted drop."""
        try:
            price = _number(raw_price)
        except (TypeError, ValueError):
            return self.drop(BAD_PRICE, recv_ns, f"{symbol} price={raw_price!r}")
        if not 0.0 < price < MAX_PRICE:
            return self.drop(BAD_PRICE, recv_ns, f"{symbol} price={raw_price!r}")
        try:
            size = _number(raw_size)
        except (TypeError, ValueError):
            return self.drop(BAD_SIZE, recv_ns, f"{symbol} size={raw_size!r}")
        if not 0.0 < size < MAX_SIZE:
            return self.drop(BAD_SIZE, recv_ns, f"{symbol} size={raw_size!r}")
        if self.max_age_ms is not None and abs(recv_ns // 1_000_000 - timestamp) > self.max_age_ms:
            return self.drop(STALE, recv_ns, f"{symbol} event time {timestamp} vs receive {recv_ns // 1_000_000}")
        return [tick_contract.trade(self.name, symbol, price, size, timestamp, recv_ns)]


class BookParser(VenueParser):
    """A parser that keeps one L2 book per market name from the venue's snapshots and updates.

    A snapshot's book is kept with `keep`; when the venue's rules fail (a checksum, a gap, a
    crossed book, an update before any snapshot) `lose_book` drops it, forgets the levels last
    sent (the next book tick goes whatever it holds) and puts the name in `resync_needed` once
    per loss; the name is awaited until a snapshot comes. While a market has a book its
    ticker is no quote (`has_book_of`): the book sets its top. `sequence` holds the venue's
    sequence number of the last frame applied to each book, where the venue numbers them.
    """

    def __init__(
        self,
        symbols: SymbolTable | None = None,
        *,
        max_age_ms: int | None = MAX_TICK_AGE_MS,
        depth_levels: int = DEPTH_LEVELS,
    ) -> None:
        super().__init__(symbols, max_age_ms=max_age_ms, depth_levels=depth_levels)
        self._kept: dict[str, L2Book] = {}  # market name -> its book since its snapshot
        self._kept_symbols: dict[str, str] = {}  # market name -> the canonical symbol of its book
        self._booked: dict[str, int] = {}  # canonical symbol -> how many books of it are kept
        # Names whose book was dropped (or whose update came before any snapshot): only a
        # snapshot starts them again, and each is put in resync_needed once per loss.
        self._awaited: set[str] = set()
        self.sequence: dict[str, int] = {}  # market name -> the venue's sequence number of its book

    def new_connection(self) -> None:
        """Forget every book: a new connection's subscription sends each market's snapshot afresh."""
        for native in list(self._kept):
            self._forget(native)
        self._awaited.clear()
        super().new_connection()

    def awaiting_snapshot(self) -> set[str]:
        """Names whose book was dropped, or whose updates came before any snapshot."""
        return set(self._awaited)

    def book(self, native: str) -> L2Book | None:
        """The book kept for `native` (read it, do not change it); None without a snapshot."""
        return self._kept.get(native)

    def has_book_of(self, symbol: str) -> bool:
        """Whether a book of `symbol` is kept: its ticker then gives no quote."""
        return symbol in self._booked

    def keep(self, native: str, symbol: str, book: L2Book) -> None:
        """A snapshot came: `book` is the market's book from now on. One that replaces a kept book
        sends its tick only if its levels are not what was sent (a lost one's go whatever they are)."""
        if native not in self._kept:
            self._booked[symbol] = self._booked.get(symbol, 0) + 1
            self._kept_symbols[native] = symbol
        self._kept[native] = book
        self._awaited.discard(native)
        self.sequence.pop(native, None)

    def lose_book(self, native: str, reason: str, recv_ns: int, detail: str) -> list[Tick]:
        """The market has no usable book until its next snapshot: drop the frame under `reason`,
        and ask once for that snapshot."""
        self._forget(native)
        if native not in self._awaited:  # one request per loss, however many updates follow before the snapshot
            self._awaited.add(native)
            self.resync_needed.add(native)
        return self.drop(reason, recv_ns, detail)

    def apply_levels(
        self,
        native: str,
        symbol: str,
        book: L2Book | None,
        bids: Levels,
        asks: Levels,
        bid_texts: Texts,
        ask_texts: Texts,
        recv_ns: int,
        depth: int | None = None,
    ) -> L2Book | list[Tick]:
        """A snapshot (`book` None: a new book of `depth` levels a side, kept unless crossed) or an
        update of `book` applied: the book, or the drop when it is crossed (the book is lost)."""
        if book is None:
            book = L2Book(depth, texts=bid_texts is not None)
            book.replace(bids, asks, bid_texts, ask_texts)
            if book.crossed():
                return self.lose_book(native, CROSSED_BOOK, recv_ns, f"{native} snapshot crossed: {book.top()}")
            self.keep(native, symbol, book)
        else:
            book.update(bids, asks, bid_texts, ask_texts)
            if book.crossed():  # resting orders never cross: an update was missed
                return self.lose_book(native, BOOK_GAP, recv_ns, f"{native} book crossed: {book.top()}")
        return book

    def _forget(self, native: str) -> None:
        self.sequence.pop(native, None)
        if self._kept.pop(native, None) is None:
            return
        symbol = self._kept_symbols.pop(native)
        self.forget_book(symbol)
        left = self._booked.pop(symbol) - 1
        if left:
            self._booked[symbol] = left


def _number(value: object) -> float:
    """A price or size from the wire: a decimal string or a JSON number, never a boolean."""
    cls = value.__class__
    if cls is str:
        return float(value)  # type: ignore[arg-type]
    if cls is float or cls is int:
        return float(value)  # type: ignore[arg-type]
    raise TypeError(f"not a number: {value!r}")
