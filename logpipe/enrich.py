"""Add where a record came from, its deterministic id and the reader's tags; scrub PII.

The id is the content fingerprint of the source file followed by the byte offset of the
event's first byte (fixed-width hex). It depends on content, not on the inode, so a
restart, a retry or a replay of a `.gz` copy of the same file gives the same `_id`, and a
sink that stores by id (Elasticsearch `create`) never makes a second document.

The id is always ours, with one exception: records read back from our own archive segments
(`keep_ids`, what makes `replay logpipe-archive/` idempotent) keep their `_id` and origin
fields. Any other input `_id` is the producer's: it moves to `_source_id` (two different
records sharing one would otherwise become one document).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from logpipe import fields
from logpipe.config import ScrubConfig

if TYPE_CHECKING:
    from logpipe.scrub import Scrubber


def make_id(fp: str, offset: int) -> str:
    """Deterministic record id: 16 hex chars of content fingerprint + 12 of byte offset."""
    return f"{fp}{offset:012x}"


def load_scrubber(cfg: ScrubConfig) -> Scrubber | None:
    """The shared scrubber, or None when scrubbing is off."""
    if not cfg.enabled:
        return None
    from logpipe.scrub import Scrubber

    return Scrubber.from_config(cfg)


def scrub_keeping_id(scrubber: Scrubber, rec: dict[str, Any]) -> None:
    """Scrub a record in place; a replayed record's `_id` is ours, not PII."""
    kept = rec.pop(fields.ID, None)
    scrubber.scrub_record(rec)
    if kept is not None:
        rec[fields.ID] = kept


class Enricher:
    """Batch enrichment for one pipeline; cheap per record (a few dict stores).

    Scrubbing is in-process: the scrubber checks a whole slice of raw texts in one call, and
    only the records of the lines its exact per-line check flags are scrubbed.
    """

    def __init__(self, host: str = "", scrubber: Scrubber | None = None) -> None:
        self.host = host or socket.gethostname()
        self.scrubber = scrubber

    def apply(self, records: list[dict[str, Any]], texts: list[str], starts: list[int], path: str,
              fp: str, tags: dict[int, list[str]] | None = None, extra_tags: list[str] | None = None,
              *, keep_ids: bool = False) -> None:
        """Enrich `records` in place; `texts`/`starts` are their raw events and offsets.
        `keep_ids`: they come from our own archive, so an `_id` they carry is ours."""
        self.scrub(records, texts)  # before our own fields: an id must never look like a card number
        host = self.host
        H, F, O, I = fields.HOST, fields.LOG_FILE, fields.LOG_OFFSET, fields.ID  # noqa: E741, N806
        S = fields.SOURCE_ID  # noqa: N806
        for rec, start in zip(records, starts, strict=True):
            if I in rec:
                if keep_ids and rec[I].__class__ is str and rec[I]:  # enriched before by us: keep it all
                    continue
                rec[S] = rec.pop(I)  # the producer's id: kept as data, never used as ours
            rec[H] = host
            rec[F] = path
            rec[O] = start
            rec[I] = f"{fp}{start:012x}"
        if tags or extra_tags:
            self._merge_tags(records, starts, tags or {}, extra_tags or [])

    def scrub(self, records: list[dict[str, Any]], texts: list[str]) -> None:
        """Scrub the records whose raw text (texts[i] for records[i]) the scrubber flags."""
        scrubber = self.scrubber
        if scrubber is None or not records:
            return
        for i in scrubber.suspicious_indices(texts):
            scrub_keeping_id(scrubber, records[i])

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
