"""Write the synthetic demo capture: three minutes of Binance spot and Coinbase Exchange frames.

    python demo/make_demo_capture.py demo/demo_capture.jsonl

The output is a capture file (DESIGN.md, "Capture file"): one JSON object per
line, `{"recv_ms": ..., "exchange": ..., "raw": "<frame text>"}`, in receive
order. The frames are invented but shaped exactly like the venues' own:
Binance combined-stream `bookTicker` and `trade` frames (BTCUSDT, ETHUSDT,
SOLUSDT), Coinbase `ticker` and `heartbeat` frames with the modern field set
(BTC-USD, ETH-USD, SOL-USD) and a `subscriptions` answer at the start.

The market: each asset follows one random walk; each venue quotes around it
with its own slowly wandering offset of a few basis points, its own spread
and its own sizes, so that normally no net spread comes near the threshold.
Every 20-40 s one venue's quotes for one asset jump by 1.4-2.0 % for 5-15 s,
in alternating directions, which beats the 0.7 % round-trip taker fee of
binance (0.1 %) + coinbase (0.6 %) by a clear margin over the default 0.5 %
threshold. During one dislocation the moved venue falls silent for 5 s, so its
last quote goes stale (STALE_MS 2000) and the opportunity closes before it
opens again. A few bad frames (malformed JSON, a "nan" price, a crossed book,
unknown symbols) must be counted and skipped by whoever reads the file.

Deterministic: a fixed seed and a fixed start time (2024-01-19T12:00:00Z), no
clock read; the same script writes the same bytes. A summary goes to stderr.
Only the standard library and orjson.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

SEED = 20240119
START_US = 1_705_665_600_000_000  # 2024-01-19T12:00:00Z in Unix microseconds
DURATION_S = 180
END_US = START_US + DURATION_S * 1_000_000
GRID_US = 10_000  # the true mids and venue offsets are drawn on a 10 ms grid
MAX_BYTES = 1_000_000

BINANCE = "binance"
COINBASE = "coinbase"
FEE_PCT = {BINANCE: 0.1, COINBASE: 0.6}  # the default taker fees the dislocations must beat
THRESHOLD_PCT = 0.5

# Frame spacing per market, in ms. Binance's bookTicker is the chattier feed; Coinbase's
# ticker moves only on trades. Both stay well under STALE_MS (2000) so that only the
# planned silence makes a quote stale. Lower than the live rates to keep the file under 1 MB.
BINANCE_GAP_MS = (100.0, 500.0)
COINBASE_GAP_MS = (350.0, 1350.0)
BINANCE_TRADE_PROBABILITY = 0.06  # a trade frame follows this share of bookTicker frames


@dataclass(frozen=True)
class Asset:
    base: str
    price: float  # USD price at the start (mid of the day's market, roughly)
    step_sd: float  # random-walk step per 10 ms, as a fraction of the price
    size: float  # typical top-of-book size, in units of the asset
    binance_qty_decimals: int  # Binance lot step: BTC 0.00001, ETH 0.0001, SOL 0.01
    binance_update_id: int  # plausible starting ids, for realism only
    binance_trade_id: int
    coinbase_sequence: int
    coinbase_trade_id: int
    coinbase_volume_24h: float

    @property
    def binance_native(self) -> str:
        return f"{self.base}USDT"

    @property
    def coinbase_native(self) -> str:
        return f"{self.base}-USD"


ASSETS = (
    Asset("BTC", 41_310.0, 1.2e-5, 0.4, 5, 43_118_552_301, 3_377_814_022, 71_403_118_774, 598_112_403, 14_207.5),
    Asset("ETH", 2_468.0, 1.5e-5, 4.0, 4, 31_887_402_118, 1_318_447_210, 48_118_664_201, 489_330_812, 121_884.2),
    Asset("SOL", 93.4, 2.5e-5, 60.0, 2, 11_402_733_018, 582_119_440, 6_944_718_220, 151_009_217, 1_904_377.0),
)
PRICE_DECIMALS = 2  # tick size 0.01 for all three markets on both venues
PRICE_SCALE = 100  # ticks per unit of price, 10 ** PRICE_DECIMALS


@dataclass(frozen=True)
class Dislocation:
    """One venue's quotes for one asset shifted by `shift` (signed fraction) from start to end."""

    asset: str
    moved: str  # the venue whose quotes jump
    shift: float  # +0.017: the moved venue quotes 1.7 % higher
    start_us: int
    end_us: int

    @property
    def cheap(self) -> str:
        """The venue to buy on: the one quoting lower."""
        other = COINBASE if self.moved == BINANCE else BINANCE
        return self.moved if self.shift < 0 else other


@dataclass(frozen=True)
class Silence:
    venue: str
    start_us: int
    end_us: int


RAMP_US = 300_000  # dislocations build up and fade over 0.3 s


def plan_dislocations(rng: random.Random) -> tuple[list[Dislocation], Silence]:
    """Dislocations every 20-40 s, cheap venue alternating; the third one has a 5 s silence."""
    plan: list[Dislocation] = []
    silence: Silence | None = None
    t_s = rng.uniform(12.0, 18.0)
    index = 0
    while True:
        with_silence = index == 2
        duration_s = rng.uniform(13.0, 15.0) if with_silence else rng.uniform(5.0, 15.0)
        if t_s + duration_s > DURATION_S - 5:
            break
        asset = ASSETS[index % len(ASSETS)].base
        cheap = COINBASE if index % 2 == 0 else BINANCE
        moved = rng.choice((BINANCE, COINBASE))
        size = rng.uniform(0.014, 0.020)
        shift = -size if moved == cheap else size
        start_us = START_US + round(t_s * 1e6)
        plan.append(Dislocation(asset, moved, shift, start_us, start_us + round(duration_s * 1e6)))
        if with_silence:
            # The moved venue freezes 3 s in: its dislocated quote ages past STALE_MS and closes
            # the opportunity; it comes back still dislocated, and the opportunity opens again.
            silence = Silence(moved, start_us + 3_000_000, start_us + 8_000_000)
        t_s += rng.uniform(20.0, 40.0)  # starts 20-40 s apart, so they never overlap
        index += 1
    assert silence is not None, "the plan is too short for the silence"
    return plan, silence


class Market:
    """The true mid of every asset and every venue's offset from it, on a 10 ms grid."""

    def __init__(self, rng: random.Random, plan: list[Dislocation]) -> None:
        steps = (END_US - START_US) // GRID_US + 2
        self.mids: dict[str, list[float]] = {}
        self.offsets: dict[tuple[str, str], list[float]] = {}
        for asset in ASSETS:
            mid = asset.price
            path = []
            for _ in range(steps):
                path.append(mid)
                mid *= 1.0 + rng.gauss(0.0, asset.step_sd)
            self.mids[asset.base] = path
            for venue in (BINANCE, COINBASE):
                # Mean-reverting (about 5 s) with a stationary spread of 2 bp around the mid.
                reversion = GRID_US / 5_000_000
                step_sd = 2e-4 * math.sqrt(2 * reversion)
                offset = rng.gauss(0.0, 2e-4)
                offsets = []
                for _ in range(steps):
                    offsets.append(offset)
                    offset += -reversion * offset + rng.gauss(0.0, step_sd)
                self.offsets[(asset.base, venue)] = offsets
        self.plan = plan

    def venue_mid(self, base: str, venue: str, t_us: int) -> float:
        index = (t_us - START_US) // GRID_US
        mid = self.mids[base][index] * (1.0 + self.offsets[(base, venue)][index])
        for event in self.plan:
            if event.asset == base and event.moved == venue and event.start_us <= t_us < event.end_us + RAMP_US:
                ramp = min(1.0, (t_us - event.start_us) / RAMP_US, max(0.0, (event.end_us + RAMP_US - t_us) / RAMP_US))
                mid *= 1.0 + event.shift * ramp
        return mid


# --- number formats ---------------------------------------------------------------
def ticks_of(price: float) -> int:
    return round(price * PRICE_SCALE)


def fmt_ticks(ticks: int, width: int = PRICE_DECIMALS) -> str:
    """A price in ticks (0.01) as a decimal string with `width` decimals (Binance pads to 8)."""
    return f"{ticks // PRICE_SCALE}.{ticks % PRICE_SCALE:0{PRICE_DECIMALS}d}" + "0" * (width - PRICE_DECIMALS)


def fmt_qty(value: float, decimals: int) -> str:
    """A size rounded to the venue's lot step, padded to 8 decimals as both venues print them."""
    return f"{round(value, decimals):.{decimals}f}" + "0" * (8 - decimals)


def strip_zeros(text: str) -> str:
    """Coinbase prints its 24 h statistics and `last_size` without trailing zeros."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def iso_us(t_us: int) -> str:
    """`2024-01-19T12:00:01.234567Z`, as Coinbase writes `time`."""
    seconds, micros = divmod(t_us, 1_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{micros:06d}Z"


def draw_size(rng: random.Random, typical: float) -> float:
    return max(typical * 0.002, rng.lognormvariate(math.log(typical), 0.9))


def quote_ticks(rng: random.Random, mid: float, half_spread_bp: tuple[float, float]) -> tuple[int, int]:
    """Best bid and ask around `mid` in ticks, at least one tick apart."""
    half = mid * rng.uniform(*half_spread_bp) * 1e-4
    bid = math.floor((mid - half) * PRICE_SCALE)
    ask = max(bid + 1, math.ceil((mid + half) * PRICE_SCALE))
    return bid, ask


# --- the capture --------------------------------------------------------------------
Line = tuple[int, int, str, str]  # (recv_us, order, exchange, raw frame)


class Capture:
    def __init__(self) -> None:
        self.lines: list[Line] = []

    def add(self, recv_us: int, exchange: str, frame: Mapping[str, object] | str) -> None:
        raw = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        self.lines.append((recv_us, len(self.lines), exchange, raw))

    def render(self) -> bytes:
        out = bytearray()
        for recv_us, _, exchange, raw in sorted(self.lines):
            out += orjson.dumps({"recv_ms": recv_us / 1000, "exchange": exchange, "raw": raw})
            out += b"\n"
        return bytes(out)


def silent(silence: Silence, venue: str, t_us: int) -> bool:
    return venue == silence.venue and silence.start_us <= t_us < silence.end_us


def binance_frames(rng: random.Random, market: Market, silence: Silence, capture: Capture) -> None:
    capture.add(START_US + 180_000, BINANCE, '{"result":null,"id":1}')  # the SUBSCRIBE answer
    for asset in ASSETS:
        native = asset.binance_native
        stream = native.lower()
        update_id = asset.binance_update_id
        trade_id = asset.binance_trade_id
        t_us = START_US + 200_000 + rng.randrange(0, 200_000)
        while t_us < END_US:
            update_id += rng.randint(1, 40)
            if not silent(silence, BINANCE, t_us):
                bid, ask = quote_ticks(rng, market.venue_mid(asset.base, BINANCE, t_us), (0.05, 0.6))
                data = {
                    "u": update_id,
                    "s": native,
                    "b": fmt_ticks(bid, width=8),
                    "B": fmt_qty(draw_size(rng, asset.size), asset.binance_qty_decimals),
                    "a": fmt_ticks(ask, width=8),
                    "A": fmt_qty(draw_size(rng, asset.size), asset.binance_qty_decimals),
                }
                capture.add(t_us, BINANCE, {"stream": f"{stream}@bookTicker", "data": data})
                if rng.random() < BINANCE_TRADE_PROBABILITY:
                    trade_id += rng.randint(1, 30)
                    event_ms = (t_us + rng.randrange(2_000, 40_000)) // 1000
                    buyer_is_maker = rng.random() < 0.5  # a sell order hit the bid
                    trade = {
                        "e": "trade",
                        "E": event_ms,
                        "s": native,
                        "t": trade_id,
                        "p": fmt_ticks(bid if buyer_is_maker else ask, width=8),
                        "q": fmt_qty(draw_size(rng, asset.size * 0.1), asset.binance_qty_decimals),
                        "T": event_ms - rng.randint(0, 2),
                        "m": buyer_is_maker,
                        "M": True,
                    }
                    recv_us = event_ms * 1000 + rng.randrange(3_000, 25_000)
                    capture.add(recv_us, BINANCE, {"stream": f"{stream}@trade", "data": trade})
            t_us += round(rng.uniform(*BINANCE_GAP_MS) * 1000)


def coinbase_frames(rng: random.Random, market: Market, silence: Silence, capture: Capture) -> None:
    products = [asset.coinbase_native for asset in ASSETS]
    subscriptions = {
        "type": "subscriptions",
        "channels": [{"name": "ticker", "product_ids": products}, {"name": "heartbeat", "product_ids": products}],
    }
    capture.add(START_US + 150_000, COINBASE, subscriptions)
    for asset in ASSETS:
        native = asset.coinbase_native
        sequence = asset.coinbase_sequence
        trade_id = asset.coinbase_trade_id
        open_24h = asset.price * rng.uniform(0.98, 1.02)
        low_24h = min(open_24h, asset.price) * rng.uniform(0.97, 0.99)
        high_24h = max(open_24h, asset.price) * rng.uniform(1.01, 1.03)
        volume_24h = asset.coinbase_volume_24h
        volume_30d = volume_24h * rng.uniform(25.0, 35.0)
        next_ticker_us = START_US + 250_000 + rng.randrange(0, 400_000)
        next_heartbeat_us = START_US + 1_000_000 + rng.randrange(0, 5_000)
        while min(next_ticker_us, next_heartbeat_us) < END_US:
            if next_heartbeat_us <= next_ticker_us:
                t_us = next_heartbeat_us
                next_heartbeat_us += 1_000_000 + rng.randrange(-3_000, 3_000)
                sequence += rng.randint(1, 30)
                if silent(silence, COINBASE, t_us):
                    continue
                heartbeat = {
                    "type": "heartbeat",
                    "last_trade_id": trade_id,
                    "product_id": native,
                    "sequence": sequence,
                    "time": iso_us(t_us),
                }
                capture.add(t_us + rng.randrange(4_000, 30_000), COINBASE, heartbeat)
                continue
            t_us = next_ticker_us
            next_ticker_us += round(rng.uniform(*COINBASE_GAP_MS) * 1000)
            sequence += rng.randint(20, 400)
            trade_id += rng.randint(1, 25)
            if silent(silence, COINBASE, t_us):
                continue
            bid, ask = quote_ticks(rng, market.venue_mid(asset.base, COINBASE, t_us), (0.5, 2.5))
            side = "buy" if rng.random() < 0.5 else "sell"  # the taker's side: a buy lifts the ask
            price = (ask if side == "buy" else bid) / PRICE_SCALE
            last_size = draw_size(rng, asset.size * 0.1)
            volume_24h += last_size
            volume_30d += last_size
            low_24h = min(low_24h, price)
            high_24h = max(high_24h, price)
            ticker = {
                "type": "ticker",
                "sequence": sequence,
                "product_id": native,
                "price": fmt_ticks(ask if side == "buy" else bid),
                "open_24h": strip_zeros(fmt_ticks(ticks_of(open_24h))),
                "volume_24h": f"{volume_24h:.8f}",
                "low_24h": strip_zeros(fmt_ticks(ticks_of(low_24h))),
                "high_24h": strip_zeros(fmt_ticks(ticks_of(high_24h))),
                "volume_30d": f"{volume_30d:.8f}",
                "best_bid": fmt_ticks(bid),
                "best_bid_size": f"{draw_size(rng, asset.size):.8f}",
                "best_ask": fmt_ticks(ask),
                "best_ask_size": f"{draw_size(rng, asset.size):.8f}",
                "side": side,
                "time": iso_us(t_us),
                "trade_id": trade_id,
                "last_size": strip_zeros(f"{last_size:.8f}"),
            }
            capture.add(t_us + rng.randrange(4_000, 30_000), COINBASE, ticker)


def bad_frames(capture: Capture) -> list[str]:
    """Frames a reader must count and skip without crashing; their descriptions for the summary."""
    at = START_US
    capture.add(at + 9_503_117, BINANCE, '{"stream":"ethusdt@bookTicker","data":{"u":31887402999,"s":"ETHUSDT","b":"24')
    capture.add(
        at + 51_207_442,
        BINANCE,
        '{"stream":"solusdt@bookTicker","data":{"u":11402733999,"s":"SOLUSDT",'
        '"b":"nan","B":"12.50000000","a":"93.45000000","A":"8.20000000"}}',
    )
    capture.add(
        at + 86_330_905,
        COINBASE,
        '{"type":"ticker","sequence":48118670001,"product_id":"ETH-USD","price":"2471.05","open_24h":"2440.1",'
        '"volume_24h":"121900.10000000","low_24h":"2401.33","high_24h":"2502.9","volume_30d":"3702144.50000000",'
        '"best_bid":"2473.20","best_bid_size":"1.20000000","best_ask":"2471.05","best_ask_size":"0.85000000",'
        '"side":"buy","time":"2024-01-19T12:01:26.311204Z","trade_id":489331999,"last_size":"0.1"}',
    )
    capture.add(
        at + 118_016_230,
        COINBASE,
        '{"type":"ticker","sequence":71403119999,"product_id":"BTCUSD","price":"41300.01","open_24h":"41012.5",'
        '"volume_24h":"14290.00000000","low_24h":"40600","high_24h":"41900.99","volume_30d":"450118.00000000",'
        '"best_bid":"41300.00","best_bid_size":"0.30000000","best_ask":"41300.01","best_ask_size":"0.20000000",'
        '"side":"buy","time":"2024-01-19T12:01:58.002114Z","trade_id":598112999,"last_size":"0.01"}',
    )
    capture.add(
        at + 152_700_318,
        BINANCE,
        '{"stream":"btc_usdt@bookTicker","data":{"u":43118559999,"s":"BTC_USDT",'
        '"b":"41301.00000000","B":"0.50000000","a":"41301.01000000","A":"0.40000000"}}',
    )
    return [
        "t+9.5 s   binance  malformed JSON (a truncated ETHUSDT bookTicker)",
        "t+51.2 s  binance  SOLUSDT bookTicker with bid 'nan'",
        "t+86.3 s  coinbase ETH-USD ticker with a crossed book (bid 2473.20 > ask 2471.05)",
        "t+118.0 s coinbase unknown product 'BTCUSD'",
        "t+152.7 s binance  unknown symbol 'BTC_USDT'",
    ]


def expected_net_pct(market: Market, event: Dislocation) -> float:
    """The net spread at the middle of a dislocation from the venues' mids (spreads ignored)."""
    t_us = (event.start_us + event.end_us) // 2
    cheap = event.cheap
    rich = COINBASE if cheap == BINANCE else BINANCE
    cost = market.venue_mid(event.asset, cheap, t_us) * (1 + FEE_PCT[cheap] / 100)
    proceeds = market.venue_mid(event.asset, rich, t_us) * (1 - FEE_PCT[rich] / 100)
    return (proceeds - cost) / cost * 100


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.jsonl", file=sys.stderr)
        return 2
    rng = random.Random(SEED)
    plan, silence = plan_dislocations(rng)
    market = Market(rng, plan)
    capture = Capture()
    binance_frames(rng, market, silence, capture)
    coinbase_frames(rng, market, silence, capture)
    bad = bad_frames(capture)
    data = capture.render()
    if len(data) >= MAX_BYTES:
        print(f"the capture is {len(data)} bytes, over {MAX_BYTES}: lower the tick rates", file=sys.stderr)
        return 1
    Path(argv[1]).write_bytes(data)

    print(f"wrote {argv[1]}: {len(capture.lines)} lines, {len(data)} bytes, {DURATION_S} s", file=sys.stderr)
    print("dislocations (buy on the cheap venue, sell on the other):", file=sys.stderr)
    for number, event in enumerate(plan, 1):
        begin = (event.start_us - START_US) / 1e6
        end = (event.end_us + RAMP_US - START_US) / 1e6
        note = ""
        if event.start_us <= silence.start_us < event.end_us:
            quiet = (silence.start_us - START_US) / 1e6, (silence.end_us - START_US) / 1e6
            note = f"; {silence.venue} silent {quiet[0]:.1f}-{quiet[1]:.1f} s"
        print(
            f"  {number}. t+{begin:6.1f}-{end:6.1f} s {event.asset}: {event.moved} {event.shift * 100:+.2f} %,"
            f" buy {event.cheap}, net ~{expected_net_pct(market, event):.2f} %{note}",
            file=sys.stderr,
        )
    print("bad frames:", *(f"  {line}" for line in bad), sep="\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
