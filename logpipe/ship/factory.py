"""Turn a sink URL into a Sink: `-`, `null:`, `file:DIR`, `forward://`, `forwards://`, `http(s)://`."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from logpipe.config import SinkConfig
from logpipe.ship.base import Sink, SinkConfigError


def make_sink(cfg: SinkConfig) -> Sink:
    """Build the sink `cfg.url` names; a bad scheme or port is a SinkConfigError naming it."""
    url = cfg.urls[0].strip() if cfg.urls else cfg.url.strip()
    if url == "-":
        from logpipe.ship.stdout import StdoutSink

        return StdoutSink(cfg)
    if url == "null:":
        from logpipe.pipeline import NullSink

        return NullSink()
    if url.startswith("file:"):
        from logpipe.ship.archive import ArchiveSink

        return ArchiveSink(cfg)
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("forward", "forwards", "tcp", "tls"):
        if len(cfg.urls) > 1 or "," in cfg.url or "weight=" in url:
            from logpipe.ship.forward_balance import BalancedForwardSink

            return BalancedForwardSink(cfg)  # several active servers, load balanced by weight
        from logpipe.ship.forward import ForwardSink

        return ForwardSink(dataclasses.replace(cfg, url=url, urls=[]))
    if scheme in ("http", "https"):
        from logpipe.ship.elastic import ElasticSink

        return ElasticSink(cfg)
    raise SinkConfigError(
        f"unsupported sink URL {url!r}: use '-', null:, file:DIR, forward://host:24224, "
        "forwards://host:24224 or http(s)://host:9200"
    )
