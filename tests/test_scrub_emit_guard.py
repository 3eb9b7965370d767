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
