"""The emit-side verdict caches never let a record skip a scrub that would change it."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.emit.scrubbing import EmitScrubber
from logpipe.scrub import Scrubber

_PIECES = st.sampled_from(["ok", " ", "4111", "1111", "-", "@", "example.com", "bob", "token=", "eyJ", "x",
                           "://", "a:b@", "Bearer ", "/api/v1/items/", "42", "password"])
_TEXT = st.lists(_PIECES, max_size=12).map("".join)
_KEYS = st.sampled_from(["path", "msg", "user", "db_password", "note", "X-Api-Key", "route"])
_VALUES = st.one_of(_TEXT, st.integers(min_value=-(10**19), max_value=10**19), st.floats(allow_nan=False),
                    st.none(), st.booleans())


@settings(max_examples=400, deadline=None)
@given(records=st.lists(st.tuples(_TEXT, st.dictionaries(_KEYS, _VALUES, max_size=4),
                                  st.dictionaries(_KEYS, _VALUES, max_size=4)), min_size=1, max_size=6))
def test_clean_verdict_means_scrub_changes_nothing(records: list) -> None:  # type: ignore[type-arg]
    sc = Scrubber()
    guard = EmitScrubber(sc)
    contexts = {}
    for message, ctx, extra in records:
        ctx = contexts.setdefault(tuple(sorted(ctx.items(), key=repr)), ctx)  # reuse mappings, like bind does
        rec = {"message": message, "logger": "app", **ctx, **extra}
        if not guard.dirty("app", message, ctx, extra, None):
            assert sc.scrub_value(copy.deepcopy(rec)) == rec


@settings(max_examples=400, deadline=None)
@given(records=st.lists(st.tuples(_TEXT, st.dictionaries(_KEYS, _VALUES, max_size=4),
                                  st.dictionaries(_KEYS, _VALUES, max_size=4)), min_size=1, max_size=8),
       warm=st.booleans())
def test_batch_clean_verdict_means_scrub_changes_nothing_in_any_record(records: list, warm: bool) -> None:  # type: ignore[type-arg]
    sc = Scrubber()
    guard = EmitScrubber(sc)
    if warm:  # verdicts cached from earlier records must not leak into a batch's verdict
        for message, ctx, extra in records[::2]:
            guard.dirty("app", message, ctx, extra, None)
    if guard.all_clean([("app", message, ctx, extra) for message, ctx, extra in records]):
        for message, ctx, extra in records:
            rec = {"message": message, "logger": "app", **ctx, **extra}
            assert sc.scrub_value(copy.deepcopy(rec)) == rec


def test_writer_scrubs_in_the_core_and_still_scrubs_the_one_dirty_record(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from logpipe.emit.handlers import Writer

    sc = Scrubber()
    calls: list[int] = []
    real = sc.text_needs_scrub
    monkeypatch.setattr(sc, "text_needs_scrub", lambda text: calls.append(len(text)) or real(text))
    lines: list[bytes] = []

    class Sink:
        def write(self, data: bytes) -> None:
            lines.extend(bytes(data).splitlines())

    writer = Writer(static={}, schema="logpipe", scrubber=sc, app=Sink(), error=None, access=None,  # type: ignore[arg-type]
                    console=None, file_level=0, console_level=0)
    def batch(first: int) -> list:  # type: ignore[type-arg]
        return [(1.7e9, 20, "info", "app", ("GET %s", (f"/items/{i}",)), {"request_id": f"r{i:04x}"},
                 {"path": f"/items/{i}"}, None) for i in range(first, first + 64)]

    writer.process(batch(0))  # first sight of the field names: each is checked once
    calls.clear()
    lines.clear()
    entries = batch(64)
    writer.process(entries)
    assert len(lines) == 64 and calls == []  # the core scrubs each rendered line: no Python trigger
    entries[37] = (1.7e9, 20, "info", "app", ("GET %s", ("/users/bob@example.com",)), {"request_id": "r-37"},
                   {"path": "/users/bob@example.com"}, None)
    lines.clear()
    writer.process(entries)
    assert len(lines) == 64
    dirty = [line for line in lines if b"REDACTED" in line]
    assert len(dirty) == 1 and b"bob@example.com" not in dirty[0] and b'"request_id":"r-37"' in dirty[0]
    assert all(b"bob@" not in line for line in lines)
