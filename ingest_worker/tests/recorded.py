"""Reading the recorded frames of ../shared/market-data, and what the tests know about them.

The expected canonical symbols are written out here by hand, not derived with
the code under test. `lost` is the book-lost tick the parser tests expect where a
frame drops a market's book after a book tick of it was sent; `assert_book_lost_once`
checks a live feed's stream for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from signals_app.contracts.tick import BOOK, Tick, is_book_lost

# The recorded frames ship beside the repository (../shared/market-data), never inside it.
MARKET_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "market-data"
MARKET_DATA_ABSENT = "../shared/market-data is absent: the recorded frames ship beside the repository, not in it"

# Every market name in market-data/binance*, and its canonical symbol. The futures
# names (COIN-M perpetuals) are not spot markets: the spot parser must not know them.
BINANCE_SYMBOLS: dict[str, str | None] = {
    "ADARUB": "ADA/RUB",
    "AAVEUPUSDT": "AAVEUP/USDT",
    "BADGERBTC": "BADGER/BTC",
    "BLZETH": "BLZ/ETH",
    "BTCUSDT": "BTC/USDT",
    "BUSDTRY": "BUSD/TRY",
    "ETHUSDT": "ETH/USDT",
    "FTMUSDT": "FTM/USDT",
    "GTOBTC": "GTO/BTC",
    "LRCBTC": "LRC/BTC",
    "NKNUSDT": "NKN/USDT",
    "ONTTRY": "ONT/TRY",
    "PERLBNB": "PERL/BNB",
    "QSPBTC": "QSP/BTC",
    "RUNEEUR": "RUNE/EUR",
    "STEEMETH": "STEEM/ETH",
    "SWRVBUSD": "SWRV/BUSD",
    "SXPBTC": "SXP/BTC",
    "VETETH": "VET/ETH",
    "XMRBTC": "XMR/BTC",
    "BTCUSD_PERP": None,
    "ETHUSD_PERP": None,
}

# Every product in market-data/coinbase, and its canonical symbol.
COINBASE_SYMBOLS: dict[str, str] = {
    "BAND-BTC": "BAND/BTC",
    "BAND-GBP": "BAND/GBP",
    "CRV-EUR": "CRV/EUR",
    "DASH-BTC": "DASH/BTC",
    "NMR-EUR": "NMR/EUR",
    "NU-GBP": "NU/GBP",
    "SKL-BTC": "SKL/BTC",
    "SKL-GBP": "SKL/GBP",
    "SKL-USD": "SKL/USD",
    "YFI-BTC": "YFI/BTC",
}


def frames(path: Path) -> list[tuple[str, int]]:
    """(frame text, receive time in ns) of every line of a recorded `.jsonl` file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    recv_ns = [int(value) for value in path.with_suffix(".recv_ns").read_text().split()]
    assert len(lines) == len(recv_ns), f"{path}: {len(lines)} frames but {len(recv_ns)} receive times"
    return list(zip(lines, recv_ns, strict=True))


def files(folder: Path, pattern: str) -> list[Path]:
    """The recorded files matching `pattern`; at least one, or the test would prove nothing."""
    found = sorted(folder.glob(pattern))
    assert found, f"no recorded file matches {folder}/{pattern}"
    return found


def write_capture(out: Path, exchange: str, paths: list[Path]) -> Path:
    """A capture file (DESIGN.md) of recorded files of one exchange, merged in receive order.

    Ties keep the order of `paths`, then of lines: the file's order is the order a
    replay sends them in, so that `normalize` over the file sees what a client sees.
    """
    merged = sorted(
        (recv_ns, file_index, line_index, frame)
        for file_index, path in enumerate(paths)
        for line_index, (frame, recv_ns) in enumerate(frames(path))
    )
    with out.open("w", encoding="utf-8") as handle:
        for recv_ns, _, _, frame in merged:
            handle.write(json.dumps({"recv_ms": recv_ns / 1e6, "exchange": exchange, "raw": frame}) + "\n")
    return out


def lost(exchange: str, symbol: str, recv_ns: int) -> Tick:
    """The book-lost tick of a frame received at `recv_ns` that dropped the sent book of `symbol`:
    empty levels, no top, price and volume 0, the receive time as its timestamp. Written out field by
    field, not made with the contract's `book_lost`."""
    return Tick(exchange, symbol, BOOK, 0.0, 0.0, None, None, None, None, recv_ns // 1_000_000, recv_ns, [], [])


def assert_book_lost_once(messages: Sequence[object], exchange: str, symbol: str) -> None:
    """What a feed pushed (ticks and feed states) holds one book-lost tick, of `symbol`, as the contract
    defines it: after a book of the market (the one a fault dropped) and before the next (the
    resubscription's)."""
    pushed = [m for m in messages if isinstance(m, Tick)]
    assert [tick.symbol for tick in pushed if is_book_lost(tick)] == [symbol]
    ticks = [tick for tick in pushed if tick.symbol == symbol]
    [at] = [index for index, tick in enumerate(ticks) if is_book_lost(tick)]
    assert ticks[at] == lost(exchange, symbol, ticks[at].recv_ns)
    assert any(tick.type == BOOK for tick in ticks[:at]), "a book-lost tick before any book"
    assert any(tick.type == BOOK for tick in ticks[at + 1 :]), "no book after the book-lost tick"
