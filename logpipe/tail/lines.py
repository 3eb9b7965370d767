"""Bytes appended to a file -> complete lines with byte offsets, decoded and tagged.

One splitter per followed file. It holds back a partial last line until its newline
arrives (or `finish()` at EOF with --once), keeps only the first `max_line_bytes` of an
over-long line (tagged `_truncated`, the rest skipped up to its newline, so memory stays
bounded for a 50 MB line), decodes invalid UTF-8 with replacement (tagged
`_invalid_utf8`) and removes NUL bytes (tagged `_nul_bytes`; copytruncate holes are runs
of NULs). Works on whole chunks with C-level splitting: per-line Python is the cost.
"""

from __future__ import annotations

import operator
from itertools import accumulate, repeat

from logpipe import fields

TAG_NUL_BYTES = "_nul_bytes"


class LineBlock:
    """Complete lines from one read: starts[i]..ends[i] are the byte offsets of texts[i]
    (end is just past its newline). `tags` maps a start offset to that line's markers.

    `raw` is the file's bytes of every line, newline-separated (no final one), when they
    decoded as they are (no NUL, CR, over-long line or invalid UTF-8); `raw_base` is the file
    offset of raw[0], -1 when there is none. Such a block is lazy: its starts, ends and texts
    are made on first use, so a consumer that reads `raw` whole (the native core) never pays
    for a Python object per line."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._texts: list[str] = []
        self.tags: dict[int, list[str]] = {}
        self.raw = b""
        self.raw_base = -1
        self._lazy = 0  # lines of `raw` not made into starts/ends/texts yet

    def __len__(self) -> int:
        return len(self._texts) + self._lazy

    def __repr__(self) -> str:
        return f"LineBlock({len(self)} lines, raw_base={self.raw_base})"

    @property
    def starts(self) -> list[int]:
        if self._lazy:
            self._materialise()
        return self._starts

    @property
    def ends(self) -> list[int]:
        if self._lazy:
            self._materialise()
        return self._ends

    @property
    def texts(self) -> list[str]:
        if self._lazy:
            self._materialise()
        return self._texts

    def head(self, n: int) -> list[str]:
        """The first `n` texts, without making the rest."""
        if not self._lazy:
            return self._texts[:n]
        return [r.decode("utf-8") for r in self.raw.split(b"\n", n)[:n]]

    def set_raw(self, region: bytes, base: int, count: int) -> None:
        """Lines = `region` (`count` lines, checked clean) read at file offset `base`."""
        assert not self._texts and not self._lazy
        self.raw, self.raw_base, self._lazy = region, base, count

    def _materialise(self) -> None:
        region, base = self.raw, self.raw_base
        texts = region.decode("utf-8").split("\n")
        lens = map(len, region.split(b"\n")) if not region.isascii() else map(len, texts)
        bounds = list(accumulate(map(operator.add, lens, repeat(1)), initial=base))
        self._starts, self._ends, self._texts, self._lazy = bounds[:-1], bounds[1:], texts, 0

    def add(self, start: int, end: int, text: str, tags: list[str] | None = None) -> None:
        if self._lazy:
            self._materialise()
        self._starts.append(start)
        self._ends.append(end)
        self._texts.append(text)
        if tags:
            self.tags.setdefault(start, []).extend(tags)

    def extend(self, starts: list[int], ends: list[int], texts: list[str]) -> None:
        if self._lazy:
            self._materialise()
        self._starts.extend(starts)
        self._ends.extend(ends)
        self._texts.extend(texts)


class LineSplitter:
    """Incremental line splitter for one file, starting at byte `offset`."""

    def __init__(self, offset: int = 0, max_line_bytes: int = 1_048_576) -> None:
        self.offset = offset  # file offset just past the last byte fed
        self.max_line = max(1, max_line_bytes)
        self._part = b""  # bytes of the unfinished last line
        self._part_start = offset  # where the unfinished line starts
        self._skipping = False  # inside an over-long line: drop bytes until its newline
        self._head = b""  # kept prefix of the over-long line
        self._head_nul = False  # NUL bytes were dropped from it
        self._part_removed = 0  # NUL bytes dropped from the held partial line

    @property
    def consumed(self) -> int:
        """Offset up to which every line has been emitted (a safe resume point)."""
        return self._part_start

    @property
    def pending_bytes(self) -> int:
        return self.offset - self._part_start

    def feed(self, data: bytes) -> LineBlock:
        """Take the next bytes of the file; return the lines they complete."""
        out = LineBlock()
        if not data:
            return out
        if self._skipping:
            nl = data.find(b"\n")
            # A NUL in the skipped rest tags the line as it would had the line come whole.
            if data.find(b"\x00", 0, nl if nl >= 0 else len(data)) >= 0:
                self._head_nul = True
            if nl < 0:
                self.offset += len(data)
                return out
            end = self.offset + nl + 1
            self._emit_truncated(out, end)
            data = data[nl + 1:]
            self.offset = end
            if not data:
                return out
        buf = self._part + data if self._part else data
        base = self._part_start
        first_extra = self._part_removed  # NUL bytes already dropped from the held line
        self.offset += len(data)
        last_nl = buf.rfind(b"\n")
        if last_nl >= 0:
            _split_region(buf[:last_nl], base, self.max_line, out, first_extra)
            rest = buf[last_nl + 1:]
            base += last_nl + 1 + first_extra
            removed = 0
        else:
            rest = buf
            removed = first_extra
        self._part_start = base
        if len(rest) > self.max_line and b"\x00" in rest:
            # A copytruncate hole: megabytes of NULs before the next real line. Drop them
            # now (offsets are tracked apart from the bytes) so the line is kept whole.
            stripped = rest.replace(b"\x00", b"")
            removed += len(rest) - len(stripped)
            rest = stripped
        if len(rest) > self.max_line:
            self._skipping = True
            self._head = rest[: self.max_line]
            self._head_nul = removed > 0
            self._part = b""
            self._part_removed = 0
        else:
            self._part = rest
            self._part_removed = removed
        return out

    def finish(self) -> LineBlock:
        """EOF of a file read once: emit the unfinished last line as it is."""
        out = LineBlock()
        if self._skipping:
            self._emit_truncated(out, self.offset)
        elif self._part or self._part_removed:
            _split_region(self._part, self._part_start, self.max_line, out, self._part_removed)
            out.ends[-1] = self.offset  # no newline after the last line
            out.raw_base = -1  # the core's road assumes every line of `raw` ends in a newline
            self._part = b""
            self._part_removed = 0
            self._part_start = self.offset
        return out

    def _emit_truncated(self, out: LineBlock, end: int) -> None:
        text, tags = _decode_one(self._head)
        if self._head_nul and TAG_NUL_BYTES not in tags:
            tags.insert(0, TAG_NUL_BYTES)
        out.add(self._part_start, end, text, [*tags, fields.TAG_TRUNCATED])
        self._skipping = False
        self._head = b""
        self._part = b""
        self._part_start = end


def _decode_one(raw: bytes) -> tuple[str, list[str]]:
    tags: list[str] = []
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", b"")
        tags.append(TAG_NUL_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        tags.append(fields.TAG_INVALID_UTF8)
    if text.endswith("\r"):
        text = text[:-1]
    return text, tags


def _split_region(region: bytes, base: int, max_line: int, out: LineBlock, first_extra: int = 0) -> None:
    """Split `region` (whole lines without the final newline) starting at file offset `base`.

    `first_extra` NUL bytes were already removed from the first line: its span in the file is
    that much longer than its bytes here (and it is tagged)."""
    if (not first_extra and not len(out) and b"\x00" not in region and b"\r" not in region
            and _short_lines(region, max_line) and _decodes(region)):
        out.set_raw(region, base, region.count(b"\n") + 1)
        return
    raws = region.split(b"\n")
    lens = list(map(len, raws))
    spans = lens if not first_extra else [lens[0] + first_extra, *lens[1:]]
    bounds = list(accumulate(map(operator.add, spans, repeat(1)), initial=base))
    starts = bounds[:-1]
    ends = bounds[1:]
    clean = b"\x00" not in region and max(lens) <= max_line
    texts: list[str] | None = None
    if clean:
        try:
            texts = region.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            texts = None
        if texts is not None and b"\r" in region:
            texts = [t[:-1] if t.endswith("\r") else t for t in texts]
    if texts is None:
        texts = []
        for raw, start in zip(raws, starts, strict=True):
            tags: list[str] = []
            if b"\x00" in raw:  # before the length check: a NUL run is not content
                raw = raw.replace(b"\x00", b"")
                tags.append(TAG_NUL_BYTES)
            cut = len(raw) > max_line
            if cut:
                raw = raw[:max_line]
            text, more = _decode_one(raw)
            texts.append(text)
            if cut:  # last, as for a line cut across reads: the order must not depend on the chunking
                more.append(fields.TAG_TRUNCATED)
            if tags or more:
                out.tags.setdefault(start, []).extend(tags + more)
    if first_extra and TAG_NUL_BYTES not in out.tags.get(base, []):
        out.tags.setdefault(base, []).insert(0, TAG_NUL_BYTES)
    out.extend(starts, ends, texts)


def _short_lines(region: bytes, max_line: int) -> bool:
    """No line of `region` (newline-separated, no final one) is longer than `max_line`: jumps
    from line start to the last newline within reach, a few C-level searches per chunk."""
    p, n = 0, len(region)
    while n - p > max_line:
        q = region.rfind(b"\n", p, p + max_line + 1)
        if q < 0:
            return False
        p = q + 1
    return True


def _decodes(region: bytes) -> bool:
    if region.isascii():
        return True
    try:
        region.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
