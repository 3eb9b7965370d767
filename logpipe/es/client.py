"""Build an `Elasticsearch` client from a sink URL and options, keeping secrets out of sight.

Credentials come from the URL (`https://user:pass@host:9200`), the config (`[sink]`) or the
`LOGPIPE_ES_USERNAME` / `LOGPIPE_ES_PASSWORD` / `LOGPIPE_ES_API_KEY` environment variables.
Every string we show a user goes through `mask_url` / `Masker` so none of them is printed.

Several nodes of one cluster are a comma-separated list (`http://a:9200,http://b:9200`, one
scheme): credentials and TLS settings apply to every node. Nodes are the ones listed (no
sniffing). `build_client` hands the list to the client's own node pool, which moves on to the
next node when one does not answer (fine for queries and setup); the bulk sink keeps one
client per node instead and chooses the node itself (`logpipe.es.nodes`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from elasticsearch import Elasticsearch

ENV_USERNAME = "LOGPIPE_ES_USERNAME"
ENV_PASSWORD = "LOGPIPE_ES_PASSWORD"
ENV_API_KEY = "LOGPIPE_ES_API_KEY"
ENV_CA_FILE = "LOGPIPE_ES_CA_FILE"
MASK = "***"


def split_urls(text: str) -> list[str]:
    """`http://a:9200, http://b:9200` -> both URLs; mixing http and https is a ValueError."""
    urls = [u.strip().rstrip("/") for u in text.split(",") if u.strip()]
    schemes = {urlsplit(u).scheme.lower() for u in urls}
    if len(schemes) > 1:
        raise ValueError(f"Elasticsearch URLs mix schemes ({', '.join(sorted(schemes))}): "
                         f"{', '.join(mask_url(u) for u in urls)}; use one scheme for every node")
    return urls


@dataclass
class EsOptions:
    """Connection settings for one cluster (a subset of SinkConfig, usable without it)."""

    url: str
    username: str = ""
    password: str = ""
    api_key: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure: bool = False
    request_timeout_s: float = 60.0
    connections: int = 4

    @classmethod
    def from_sink_config(cls, cfg: Any, request_timeout_s: float = 60.0) -> EsOptions:
        """Take the Elasticsearch-relevant fields of a SinkConfig."""
        return cls(
            url=cfg.url, username=cfg.username, password=cfg.password, api_key=cfg.api_key,
            ca_file=cfg.ca_file, cert_file=cfg.cert_file, key_file=cfg.key_file,
            insecure=cfg.insecure, request_timeout_s=request_timeout_s,
            connections=max(2, int(getattr(cfg, "concurrency", 2)) + 2),
        )

    def resolved(self) -> EsOptions:
        """Fill credentials from the URL(s) and LOGPIPE_ES_* env vars; strip them from the URL(s).

        Credentials written into a URL win over the fields (the most explicit place, and
        usually a command-line flag); empty fields fall back to the environment."""
        username, password = self.username, self.password
        cleaned: list[str] = []
        from_url = False
        for url in split_urls(self.url) or [self.url.strip()]:
            parts = urlsplit(url)
            if parts.username and not from_url:
                username = parts.username
                password = parts.password if parts.password is not None else password
                from_url = True
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            netloc = host + (f":{parts.port}" if parts.port else "")
            cleaned.append(urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")))
        return EsOptions(
            url=",".join(cleaned),
            username=username or os.environ.get(ENV_USERNAME, ""),
            password=password or os.environ.get(ENV_PASSWORD, ""),
            api_key=self.api_key or os.environ.get(ENV_API_KEY, ""),
            ca_file=self.ca_file or os.environ.get(ENV_CA_FILE, ""),
            cert_file=self.cert_file, key_file=self.key_file, insecure=self.insecure,
            request_timeout_s=self.request_timeout_s, connections=self.connections,
        )

    def secrets(self) -> list[str]:
        """Every secret value these options carry (for masking free text)."""
        found = [self.password, self.api_key]
        for url in self.url.split(","):
            password = urlsplit(url.strip()).password
            if password:
                found.append(password)
        if ":" in self.api_key:
            found.extend(self.api_key.split(":", 1))
        return [s for s in found if s and len(s) >= 3]


def mask_url(url: str) -> str:
    """`https://user:secret@host:9200/x` -> `https://user:***@host:9200/x` (each URL of a list)."""
    if "," in url:
        return ",".join(mask_url(u) for u in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    user = parts.username or ""
    netloc = f"{user}:{MASK}@{host}" if parts.password is not None else f"{user}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Masker:
    """Replaces known secret values in any text (error messages from the client can echo them)."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


class BytesNdjsonSerializer(NdjsonSerializer):
    """NDJSON serializer that passes a ready bulk body (bytes ending in a newline) through.

    The stock one copies every body into a bytearray and then into new bytes: two extra
    copies of a multi-megabyte buffer per bulk request, which on a small box show up as
    page faults and system time. Anything else is serialized as before."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return super().dumps(data)


def build_client(opts: EsOptions) -> Elasticsearch:
    """An 8.x client that does no retries of its own (callers own the retry policy), except
    that with several nodes a request that cannot reach one node is tried on the others."""
    o = opts.resolved()
    hosts = o.url.split(",")
    kwargs: dict[str, Any] = {
        "request_timeout": o.request_timeout_s,
        "max_retries": len(hosts) - 1,
        "retry_on_timeout": len(hosts) > 1,
        "connections_per_node": max(2, o.connections),
        "serializers": {OrjsonSerializer.mimetype: OrjsonSerializer(),
                        BytesNdjsonSerializer.mimetype: BytesNdjsonSerializer()},
    }
    if o.api_key:
        kwargs["api_key"] = tuple(o.api_key.split(":", 1)) if ":" in o.api_key else o.api_key
    elif o.username:
        kwargs["basic_auth"] = (o.username, o.password)
    if o.url.startswith("https"):
        if o.ca_file:
            kwargs["ca_certs"] = o.ca_file
        if o.cert_file:
            kwargs["client_cert"] = o.cert_file
        if o.key_file:
            kwargs["client_key"] = o.key_file
        if o.insecure:
            kwargs["verify_certs"] = False
            kwargs["ssl_show_warn"] = False
            print(f"WARNING: TLS verification is OFF for {mask_url(o.url)} (insecure=true); "
                  "never use this in production", file=sys.stderr)
    return Elasticsearch(hosts, **kwargs)


def describe_error(exc: BaseException, masker: Masker | None = None) -> str:
    """One line for a client exception: the server's reason when there is one."""
    info = getattr(exc, "body", None)
    text = ""
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        err = info["error"]
        root = (err.get("root_cause") or [{}])[0]
        reason = root.get("reason") or err.get("reason") or ""
        etype = root.get("type") or err.get("type") or ""
        caused = err.get("caused_by", {}) if isinstance(err.get("caused_by"), dict) else {}
        if caused.get("reason") and caused.get("reason") not in reason:
            reason = f"{reason}: {caused['reason']}"
        text = f"{etype}: {reason}" if etype else reason
    elif isinstance(info, dict) and info.get("error"):
        text = str(info["error"])
    elif isinstance(info, str | bytes) and info and not isinstance(info, dict):
        text = "not an Elasticsearch response (is this the right URL?)"
    if not text:
        text = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
    if isinstance(status, int):
        text = f"HTTP {status} {text}"
    text = " ".join(text.split())
    return masker(text) if masker else text


def describe_transport_error(exc: BaseException, masker: Masker | None = None) -> str:
    """Short reason for a connection-level failure ('connection refused', 'timed out', ...)."""
    texts = [str(getattr(exc, "message", "") or exc)]
    for inner in getattr(exc, "errors", ()) or ():
        texts.append(repr(inner))
    joined = " ".join(texts)
    low = joined.lower()
    if "connection refused" in low:
        text = "connection refused"
    elif "timed out" in low or "timeout" in type(exc).__name__.lower():
        text = "timed out"
    elif "name or service not known" in low or "nodename nor servname" in low or "getaddrinfo" in low:
        text = "host name not found"
    elif "certificate" in low:
        text = "TLS certificate problem: " + joined
    else:
        text = joined
    text = " ".join(text.split())[:300]
    return masker(text) if masker else text
