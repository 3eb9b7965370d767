"""Searches behind `logpipe query`: Lucene query string, time window, request story, follow."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from logpipe.es.timerange import iso
from logpipe.fields import LOG_OFFSET, REQUEST_ID, TIMESTAMP

DEFAULT_INDEX = "logpipe-*"
MAX_PAGE = 5000


@dataclass
class Hit:
    index: str
    id: str
    source: dict[str, Any]
    sort: list[Any]


def build_query(query: str, lower: datetime | None = None, upper: datetime | None = None,
                request_id: str | None = None) -> dict[str, Any]:
    """A bool query: the user's query string (AND by default, bare words in `message`) + filters."""
    must: list[dict[str, Any]] = []
    if query.strip():
        must.append({"query_string": {"query": query, "default_field": "message",
                                      "default_operator": "AND", "lenient": True}})
    filters: list[dict[str, Any]] = []
    if lower or upper:
        rng: dict[str, Any] = {"format": "strict_date_optional_time"}
        if lower:
            rng["gte"] = iso(lower)
        if upper:
            rng["lte"] = iso(upper)
        filters.append({"range": {TIMESTAMP: rng}})
    if request_id:
        filters.append({"term": {REQUEST_ID: request_id}})
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


def _sort(order: str) -> list[dict[str, Any]]:
    return [{TIMESTAMP: {"order": order, "unmapped_type": "date"}},
            {LOG_OFFSET: {"order": order, "unmapped_type": "long"}}]


def _hits(resp: Any) -> list[Hit]:
    return [Hit(h["_index"], h["_id"], h.get("_source", {}), h.get("sort", []))
            for h in resp["hits"]["hits"]]


def search(client: Elasticsearch, query: str, *, index: str = DEFAULT_INDEX, lower: datetime | None = None,
           upper: datetime | None = None, limit: int = 100, request_id: str | None = None,
           oldest_first: bool = False) -> list[Hit]:
    """Up to `limit` hits, newest first (or oldest first), paging with search_after past 5,000."""
    q = build_query(query, lower, upper, request_id)
    sort = _sort("asc" if oldest_first else "desc")
    out: list[Hit] = []
    after: list[Any] | None = None
    while len(out) < limit:
        size = min(MAX_PAGE, limit - len(out))
        kwargs: dict[str, Any] = {"index": index, "query": q, "sort": sort, "size": size,
                                  "track_total_hits": False, "allow_no_indices": True,
                                  "ignore_unavailable": "*" in index or "," in index}
        if after:
            kwargs["search_after"] = after
        page = _hits(client.search(**kwargs))
        out.extend(page)
        if len(page) < size:
            break
        after = page[-1].sort
    return out


def request_story(client: Elasticsearch, request_id: str, *, index: str = DEFAULT_INDEX,
                  limit: int = 10_000) -> list[Hit]:
    """Every record of one request across indices, by @timestamp then log_offset."""
    return search(client, "", index=index, request_id=request_id, limit=limit, oldest_first=True)


def follow(client: Elasticsearch, query: str, *, index: str = DEFAULT_INDEX, interval_s: float = 2.0,
           lag_s: float = 30.0, start: datetime | None = None, stop: threading.Event | None = None,
           max_polls: int | None = None) -> Iterator[Hit]:
    """Yield new matches as they become searchable, oldest first, each once.

    Each poll looks back `lag_s` behind the newest time seen (documents arrive late and become
    visible only after a refresh) and drops ids already shown; the id memory is bounded.
    """
    stop = stop or threading.Event()
    newest = start or datetime.now(UTC)
    floor = start or newest - timedelta(seconds=lag_s)  # never show anything older than this
    seen: set[str] = set()
    order: deque[str] = deque()
    polls = 0
    while not stop.is_set():
        lower = max(floor, newest - timedelta(seconds=lag_s))
        for hit in search(client, query, index=index, lower=lower, limit=MAX_PAGE, oldest_first=True):
            if hit.id in seen:
                continue
            seen.add(hit.id)
            order.append(hit.id)
            if len(order) > 100_000:
                seen.discard(order.popleft())
            ts = hit.source.get(TIMESTAMP)
            if isinstance(ts, str):
                try:
                    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
                    if t.tzinfo is not None and t > newest:
                        newest = t
                except ValueError:
                    pass
            yield hit
        polls += 1
        if max_polls is not None and polls >= max_polls:
            return
        stop.wait(interval_s)
