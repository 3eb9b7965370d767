"""Emit-side scrubbing: decide per record, cheaply, whether the full scrub must run.

Most of what a service logs repeats: message templates, logger names, field names,
user agents, routes, the bound context of a request. A string the trigger once found
clean stays clean, so verdicts are cached per string (and per context mapping, which is
immutable); only strings not seen before are checked, joined into one buffer so the
trigger's fixed cost is paid once per record. A record with anything suspicious goes
through `Scrubber.scrub_value` in full.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from logpipe.scrub import Scrubber

_CACHE_MAX = 20_000
_CACHE_STR_MAX = 512
_SMALL_INT = 10**12  # ints below this cannot be card numbers (13+ digits)
# Values whose rendering can never hold PII (the scrub rules cannot match it).
_INERT = frozenset((float, bool, type(None), _dt.datetime, _dt.date, _dt.time, _dt.timedelta, uuid.UUID))


class EmitScrubber:
    """Wraps a Scrubber with per-string and per-context verdict caches.

    Safe to share between threads: the caches only ever gain entries proven clean (set
    operations are atomic), and the context verdict is swapped as one tuple.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber
        self._clean: set[str] = set()
        self._clean_keys: set[str] = set()
        # (context mapping, verdict) as one tuple, so a reader never pairs one with the other's
        self._ctx_verdict: tuple[Mapping[str, Any] | None, bool] = (None, False)
        self._needs = scrubber.text_needs_scrub

    def dirty(self, logger: str, message: str, ctx: Mapping[str, Any] | None,
              extra: Mapping[str, Any] | None, exception: Mapping[str, Any] | None) -> bool:
        """False guarantees `scrub_value` would not change a record built from these parts."""
        misses: list[str] = []
        if self._collect(logger, message, ctx, extra, exception, misses, True):
            return True
        return self._misses_dirty(misses)

    def all_clean(self, parts: Iterable[tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]]) -> bool:
        """True guarantees no record built from these (logger, message, context, extra) parts needs
        the full scrub: one trigger check over every string not yet known clean, for a whole batch
        (the per-record check's fixed cost, paid once). False means: check each record with `dirty`."""
        misses: list[str] = []
        for logger, message, ctx, extra in parts:
            if self._collect(logger, message, ctx, extra, None, misses, False):
                return False
        return not self._misses_dirty(misses)

    def _collect(self, logger: str, message: str, ctx: Mapping[str, Any] | None, extra: Mapping[str, Any] | None,
                 exception: Mapping[str, Any] | None, misses: list[str], ctx_now: bool) -> bool:
        """True if certainly dirty; otherwise strings still to check are added to `misses`.
        `ctx_now`: check the context at once and cache its verdict (the same mapping recurs)."""
        clean = self._clean
        if message not in clean:
            misses.append(message)
        if logger not in clean:
            misses.append(logger)
        if ctx:
            seen, verdict = self._ctx_verdict
            if seen is not ctx:
                if not ctx_now:
                    if self._mapping_dirty(ctx, misses):
                        return True
                    verdict = False
                else:
                    verdict = self._mapping_dirty(ctx)
                    self._ctx_verdict = (ctx, verdict)
            if verdict:
                return True
        if extra and self._mapping_dirty(extra, misses):
            return True
        return exception is not None and self._mapping_dirty(exception, misses)

    def _misses_dirty(self, misses: list[str]) -> bool:
        if not misses:
            return False
        if self._needs(misses[0] if len(misses) == 1 else "\x00".join(misses)):
            return True
        self._remember(misses)
        return False

    def _mapping_dirty(self, mapping: Mapping[str, Any], misses: list[str] | None = None) -> bool:
        """Keys and scalar values; strings not yet known clean go to `misses` (or are checked now)."""
        pending: list[str] = [] if misses is None else misses
        clean_keys = self._clean_keys
        if not clean_keys.issuperset(mapping):
            sc = self.scrubber
            for key in mapping:
                if key not in clean_keys:
                    if not isinstance(key, str) or sc.is_sensitive_key(key) or self._needs(key):
                        return True
                    clean_keys.add(key)
        clean = self._clean
        for value in mapping.values():
            t = type(value)
            if t is str:
                if value not in clean:
                    pending.append(value)
            elif t is int:
                if value >= _SMALL_INT or value <= -_SMALL_INT:
                    return True
            elif t not in _INERT:
                return True  # nested or custom objects: the full scrub walks their rendering
        if misses is None and pending:
            if self._needs("\x00".join(pending)):
                return True
            self._remember(pending)
        return False

    def _remember(self, strings: list[str]) -> None:
        clean = self._clean
        if len(clean) > _CACHE_MAX:
            clean.clear()
        for text in strings:
            if len(text) <= _CACHE_STR_MAX:
                clean.add(text)
