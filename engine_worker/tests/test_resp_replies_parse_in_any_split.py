"""engine_worker/resp.py's sans-I/O half: commands packed as Redis expects, replies parsed however TCP splits them."""

from __future__ import annotations

import random

import pytest

from engine_worker.resp import ErrorReply, RespParser, RespProtocolError, pack

REPLIES = (
    b"+OK\r\n"
    b":42\r\n"
    b"$15\r\n1705670123456-0\r\n"
    b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    b"$-1\r\n"
    b"*4\r\n$2\r\nid\r\n$0\r\n\r\n*2\r\n:1\r\n$4\r\na\r\nb\r\n*-1\r\n"
    b"$-0\r\n\r\n"
)
EXPECTED = [
    b"OK",
    42,
    b"1705670123456-0",
    ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value"),
    None,
    [b"id", b"", [1, b"a\r\nb"], None],
    b"",
]


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert pack("SET", "price:binance:BTC/USDT", b'{"bid":1.5}', "EX", 10) == (
        b'*5\r\n$3\r\nSET\r\n$22\r\nprice:binance:BTC/USDT\r\n$11\r\n{"bid":1.5}\r\n$2\r\nEX\r\n$2\r\n10\r\n'
    )
    assert (
        pack("ZREMRANGEBYRANK", "h", 0, -1001)
        == b"*4\r\n$15\r\nZREMRANGEBYRANK\r\n$1\r\nh\r\n$1\r\n0\r\n$5\r\n-1001\r\n"
    )


def test_replies_come_out_whole_and_in_order_in_one_piece() -> None:
    assert RespParser().feed(REPLIES) == EXPECTED


@pytest.mark.parametrize("seed", range(20))
def test_replies_come_out_whole_and_in_order_however_the_bytes_are_split(seed: int) -> None:
    rng = random.Random(seed)
    parser = RespParser()
    got = []
    at = 0
    while at < len(REPLIES):
        step = rng.randint(1, 9)
        got += parser.feed(REPLIES[at : at + step])
        at += step
    assert got == EXPECTED


def test_an_error_reply_has_its_code() -> None:
    (reply,) = RespParser().feed(b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")
    assert isinstance(reply, ErrorReply)
    assert reply.code == "OOM"


@pytest.mark.parametrize("data", [b"?what\r\n", b":12x\r\n", b"$abc\r\nxyz\r\n", b"*two\r\n"])
def test_bytes_that_are_not_resp_are_a_protocol_error(data: bytes) -> None:
    with pytest.raises(RespProtocolError):
        RespParser().feed(data)
