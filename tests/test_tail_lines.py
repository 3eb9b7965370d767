"""Line splitting: partial lines, over-long lines, invalid UTF-8, NUL bytes, CRLF."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logpipe import fields
from logpipe.tail.lines import TAG_NUL_BYTES, LineSplitter


def test_partial_line_is_held_until_its_newline() -> None:
    s = LineSplitter(0)
    assert s.feed(b"hello wo").texts == []
    assert s.consumed == 0
    block = s.feed(b"rld\nnext")
    assert block.texts == ["hello world"]
    assert (block.starts, block.ends) == ([0], [12])
    assert s.consumed == 12
    assert s.finish().texts == ["next"]


def test_long_line_is_truncated_tagged_and_the_rest_skipped() -> None:
    s = LineSplitter(0, max_line_bytes=10)
    out = s.feed(b"short\n" + b"x" * 25)
    assert out.texts == ["short"]
    out = s.feed(b"y" * 5_000)  # memory stays bounded: nothing held beyond the first 10 bytes
    assert out.texts == [] and s._part == b"" and len(s._head) == 10
    out = s.feed(b"zz\nafter\n")
    assert out.texts == ["xxxxxxxxxx", "after"]
    assert out.tags[6] == [fields.TAG_TRUNCATED]
    assert out.starts[1] == 6 + 25 + 5_000 + 3


def test_long_line_inside_one_chunk_is_truncated() -> None:
    out = LineSplitter(0, max_line_bytes=4).feed(b"abcdefgh\nok\n")
    assert out.texts == ["abcd", "ok"]
    assert out.tags == {0: [fields.TAG_TRUNCATED]}
    assert out.ends == [9, 12]


def test_invalid_utf8_nul_and_crlf() -> None:
    out = LineSplitter(0).feed(b"caf\xe9\r\n\x00\x00\x00real line\nplain\r\n")
    assert out.texts == ["caf\ufffd", "real line", "plain"]
    assert out.tags[0] == [fields.TAG_INVALID_UTF8]
    assert out.tags[6] == [TAG_NUL_BYTES]
    assert set(out.tags) == {0, 6}
    assert out.starts == [0, 6, 19]


@given(st.lists(st.binary(max_size=40), max_size=12), st.lists(st.integers(1, 30), min_size=1, max_size=20))
def test_any_chunking_gives_the_same_lines(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(p + b"\n" for p in parts)
    whole = LineSplitter(0, max_line_bytes=16).feed(data)
    s = LineSplitter(0, max_line_bytes=16)
    got_texts, got_starts, pos, i = [], [], 0, 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        i += 1
        block = s.feed(data[pos:pos + n])
        got_texts += block.texts
        got_starts += block.starts
        pos += n
    assert got_texts == whole.texts
    assert got_starts == whole.starts
    assert s.consumed == len(data)
