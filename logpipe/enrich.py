"""Add where a record came from, its deterministic id and the reader's tags; scrub PII.

The id is the content fingerprint of the source file followed by the byte offset of the
event's first byte (fixed-width hex). It depends on content, not on the inode, so a
restart, a retry or a replay of a `.gz` copy of the same file gives the same `_id`, and a
sink that stores by id (Elasticsearch `create`) never makes a second document. Records that
already carry an `_id` (archive segments being replayed) keep it and their origin fields.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from logpipe import fields
from logpipe.config import ScrubConfig

log = logging.getLogger("logpipe.enrich")


def make_id(fp: str, offset: int) -> str:
    """Deterministic record id: 16 hex chars of content fingerprint + 12 of byte offset."""
    return f"{fp}{offset:012x}"


def load_scrubber(cfg: ScrubConfig) -> Any | None:
    """The shared scrubber, or None when scrubbing is off."""
    if not cfg.enabled:
        return None
    from logpipe.scrub import Scrubber

    return Scrubber.from_config(cfg)


class Enricher:
    """Batch enrichment for one pipeline; cheap per record (a few dict stores)."""

    def __init__(self, host: str = "", scrubber: Any | None = None, scrub_cfg: ScrubConfig | None = None) -> None:
        self.host = host or socket.gethostname()
        self.scrubber = scrubber
        # A guard over a whole batch's text is only equivalent to per-line guards when no
        # user pattern could be anchored to line edges.
        self._batch_guard = scrubber is not None and not (scrub_cfg and scrub_cfg.extra_patterns)

    def apply(self, records: list[dict[str, Any]], texts: list[str], starts: list[int], path: str,
              fp: str, tags: dict[int, list[str]] | None = None, extra_tags: list[str] | None = None) -> None:
        """Enrich `records` in place; `texts`/`starts` are their raw events and offsets."""
        self.scrub(records, texts)  # before our own fields: an id must never look like a card number
        host = self.host
        H, F, O, I = fields.HOST, fields.LOG_FILE, fields.LOG_OFFSET, fields.ID  # noqa: E741, N806
        for rec, start in zip(records, starts, strict=True):
            if I in rec:
                continue
            rec[H] = host
            rec[F] = path
            rec[O] = start
            rec[I] = f"{fp}{start:012x}"
        if tags or extra_tags:
            self._merge_tags(records, starts, tags or {}, extra_tags or [])

    def scrub(self, records: list[dict[str, Any]], texts: list[str]) -> None:
        scrubber = self.scrubber
        if scrubber is None or not records:
            return
        if self._batch_guard and not scrubber.suspicious("\n".join(texts)):
            return
        suspicious = scrubber.suspicious
        scrub = scrubber.scrub_record
        ident = fields.ID
        for rec, text in zip(records, texts, strict=True):
            if suspicious(text):
                kept = rec.pop(ident, None)  # a replayed record's id is ours, not PII
                scrub(rec)
                if kept is not None:
                    rec[ident] = kept

    @staticmethod
    def _merge_tags(records: list[dict[str, Any]], starts: list[int], tags: dict[int, list[str]],
                    extra: list[str]) -> None:
        T = fields.TAGS  # noqa: N806
        for rec, start in zip(records, starts, strict=True):
            add = tags.get(start)
            if not add and not extra:
                continue
            have = rec.get(T)
            merged = list(have) if isinstance(have, list) else ([have] if have else [])
            for tag in (*(add or ()), *extra):
                if tag not in merged:
                    merged.append(tag)
            rec[T] = merged
