"""Line splitting: partial lines, over-long lines, invalid UTF-8, NUL bytes, CRLF."""

from __future__ import annotations

from hypothesis import given, settings
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


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
       st.lists(st.integers(1, 30), min_size=1, max_size=20))
def test_any_chunking_gives_the_same_lines(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(p + b"\n" for p in parts)
    whole = LineSplitter(0, max_line_bytes=16).feed(data)
    s = LineSplitter(0, max_line_bytes=16)
    got_texts, got_starts, got_ends, got_tags, pos, i = [], [], [], {}, 0, 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        i += 1
        block = s.feed(data[pos:pos + n])
        got_texts += block.texts
        got_starts += block.starts
        got_ends += block.ends
        got_tags.update(block.tags)
        pos += n
    assert got_texts == whole.texts
    assert (got_starts, got_ends) == (whole.starts, whole.ends)
    assert {k: sorted(v) for k, v in got_tags.items()} == {k: sorted(v) for k, v in whole.tags.items()}
    assert s.consumed == len(data)


def test_nul_in_the_skipped_rest_of_an_over_long_line_tags_it_whatever_the_chunking() -> None:
    data = b"\x01" * 17 + b"\x00\n"  # found by the property test above
    whole = LineSplitter(0, max_line_bytes=16).feed(data)
    s = LineSplitter(0, max_line_bytes=16)
    tags: dict[int, list[str]] = {}
    for i in range(len(data)):
        tags.update(s.feed(data[i:i + 1]).tags)
    assert sorted(tags[0]) == sorted(whole.tags[0]) == sorted([TAG_NUL_BYTES, "_truncated"])


def test_copytruncate_nul_hole_larger_than_max_line_keeps_the_next_line() -> None:
    hole = b"\x00" * 5_000
    data = hole + b"first real line\nsecond\n"
    whole = LineSplitter(0, max_line_bytes=100).feed(data)
    assert whole.texts == ["first real line", "second"]
    assert whole.tags == {0: [TAG_NUL_BYTES]}
    assert whole.ends == [len(hole) + 16, len(data)]
    s = LineSplitter(0, max_line_bytes=100)  # the hole arriving in pieces, before its line ends
    got = []
    for i in range(0, len(data), 700):
        got.append(s.feed(data[i:i + 700]))
    texts = [t for b in got for t in b.texts]
    starts = [x for b in got for x in b.starts]
    ends = [x for b in got for x in b.ends]
    assert texts == ["first real line", "second"]
    assert starts == [0, len(hole) + 16] and ends == [len(hole) + 16, len(data)]
    assert any(b.tags.get(0) == [TAG_NUL_BYTES] for b in got)
    assert s.consumed == len(data)


def test_nul_hole_then_partial_line_at_eof() -> None:
    s = LineSplitter(10, max_line_bytes=50)
    assert s.feed(b"\x00" * 300 + b"tail").texts == []
    out = s.finish()
    assert out.texts == ["tail"] and out.starts == [10] and out.ends == [314]
    assert out.tags[10] == [TAG_NUL_BYTES]


def test_tag_order_of_a_line_cut_inside_a_character_does_not_depend_on_the_reads() -> None:
    """Found by the split fuzzer (tests/data/fuzz/regressions/split-tag-order-cut-utf8): one read
    gave [_truncated, _invalid_utf8], byte-sized reads [_invalid_utf8, _truncated]."""
    data = "ééé\n".encode()
    whole = LineSplitter(0, max_line_bytes=3).feed(data)
    s = LineSplitter(0, max_line_bytes=3)
    tags: dict[int, list[str]] = {}
    for i in range(len(data)):
        tags.update(s.feed(data[i:i + 1]).tags)
    assert whole.tags[0] == tags[0] == [fields.TAG_INVALID_UTF8, fields.TAG_TRUNCATED]


@given(st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"x")), min_size=1, max_size=8),
       st.integers(1, 14))
def test_the_long_line_check_agrees_with_splitting(lines: list[bytes], max_line: int) -> None:
    """The lazy block's over-long-line check (jumps between newlines) == measuring every line."""
    from logpipe.tail.lines import _short_lines

    region = b"\n".join(lines)
    assert _short_lines(region, max_line) == (max(map(len, lines)) <= max_line)


@given(st.lists(st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=6),
                min_size=1, max_size=8), st.integers(1, 10))
def test_a_lazy_block_gives_the_lines_an_eager_split_gives(texts: list[str], max_line: int) -> None:
    """A clean read is kept as bytes (lazy); its lines, made on demand, are the file's lines."""
    data = "".join(t + "\n" for t in texts).encode()
    block = LineSplitter(0, max_line).feed(data)
    sizes = [len(t.encode()) for t in texts]
    ends = [sum(sizes[: i + 1]) + i + 1 for i in range(len(texts))]
    assert len(block) == len(texts)
    assert block.raw_base == (0 if max(sizes) <= max_line else -1)
    if block.raw_base == 0:
        assert block.head(2) == texts[:2]
        assert (block.starts, block.ends, block.texts, block.tags) == ([0, *ends[:-1]], ends, texts, {})
