"""ForwardSink: ship record batches to Fluentd over the forward protocol, with acks.

`send(records)` groups records by tag, packs each tag's records into PackedForward
chunks (each with a fresh `chunk` id), pipelines them over one connection and returns
only when every chunk's `ack` came back. A chunk not acknowledged within
`ack_timeout_s`, a dropped connection or a garbled answer closes the connection; after
a backoff (exponential, with jitter) the *same* chunk bytes — same chunk id — are sent
again, to the primary or a standby. Duplicates this may cause carry the same `_id`,
so Elasticsearch's `create` keeps one document.
"""

from __future__ import annotations

import logging
import random
import re
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from logpipe.config import SinkConfig
from logpipe.ship.base import SendResult, Sink, SinkConfigError, SinkFatalError, SinkStopped
from logpipe.ship.forward_auth import ProtocolError
from logpipe.ship.forward_codec import EntryPacker, new_chunk_id
from logpipe.ship.forward_conn import (
    ForwardConnection,
    NoHelo,
    ServerAddr,
    ServerRejected,
    make_tls_context,
    parse_server,
)
from logpipe.ship.forward_tags import TagRenderer
from logpipe.ship.ndjson import NdjsonSink

log = logging.getLogger("logpipe.ship.forward")

_TRANSIENT = (OSError, ProtocolError, ssl.SSLError, EOFError)
# TLS alerts by which a server refuses *us* (e.g. mutual TLS without an acceptable client
# certificate): retrying cannot help, so they are reported like a rejected handshake.
_TLS_REFUSALS = frozenset({
    "TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_ACCESS_DENIED", "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
})


def _tls_refusal(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) in _TLS_REFUSALS


def _mask(url: str) -> str:
    """Hide user:password@ in a URL before it goes into a message."""
    return re.sub(r"//[^/@]*@", "//***@", url)


class ServerUnavailable(RuntimeError):
    """`handoff` mode: this server failed; `chunks` are the ones it did not acknowledge,
    to be sent to another server as they are. `fatal`: it rejected us for good."""

    def __init__(self, message: str, chunks: list[Any], fatal: bool = False) -> None:
        super().__init__(message)
        self.chunks = chunks
        self.fatal = fatal


class _Unreachable(RuntimeError):
    """`handoff` mode: no connection could be made."""


@dataclass
class _ServerState:
    addr: ServerAddr
    failures: int = 0
    down_until: float = 0.0
    fatal: str = ""  # set once the server rejected us for good
    quiet: bool = False  # its "no HELO" was already said; retries back off without repeating it


@dataclass
class _Chunk:
    chunk_id: str
    data: tuple[bytes, ...]  # one message in parts (head, entries, option); resent as is
    count: int
    sent: bool = False


class ForwardSink(Sink, NdjsonSink):
    """Fluentd forward-protocol sink (see module docstring). Thread-compatible, not thread-safe:
    one pipeline thread calls `send`.

    Chunks default to at most 2,000 records / 1 MiB: a server decodes a chunk only once all
    of it arrived, so moderate chunks let it decode one while the next is packed and keep
    the wait for the batch's last ack short; the per-chunk cost (id, header, ack) is small.
    """

    name = "forward"

    def __init__(self, cfg: SinkConfig, *, chunk_max_bytes: int = 1024 * 1024,
                 chunk_max_records: int = 2_000, backoff_base_s: float = 0.2,
                 backoff_max_s: float = 5.0, connect_timeout_s: float = 5.0,
                 hostname: str | None = None, handoff: bool = False) -> None:
        super().__init__()
        self.handoff = handoff  # give up on the first failure (ServerUnavailable) instead of retrying
        primary = self._parse(cfg.url, None)
        self.servers = [_ServerState(primary)]
        for entry in cfg.standby:
            self.servers.append(_ServerState(self._parse(entry, primary.tls)))
        if cfg.compress not in ("", "gzip"):
            raise SinkConfigError(f"forward sink: compress must be '' or 'gzip', got {cfg.compress!r}")
        if cfg.ack_timeout_s <= 0:
            raise SinkConfigError(f"forward sink: ack_timeout_s must be > 0, got {cfg.ack_timeout_s}")
        try:
            self._tags = TagRenderer(cfg.tag)
        except ValueError as exc:
            raise SinkConfigError(f"forward sink: {exc}") from None
        self._tls: ssl.SSLContext | None = None
        if any(s.addr.tls for s in self.servers):
            try:
                self._tls = make_tls_context(cfg.ca_file, cfg.cert_file, cfg.key_file, cfg.insecure)
            except (OSError, ssl.SSLError) as exc:
                raise SinkConfigError(f"forward sink: cannot load TLS files (ca_file={cfg.ca_file!r}, "
                                      f"cert_file={cfg.cert_file!r}): {exc}") from None
            if cfg.insecure:
                log.warning("forward sink %s: TLS verification disabled (insecure = true)", primary)
        self._cfg = cfg
        self._compress = cfg.compress == "gzip"
        self._packer = EntryPacker()
        self._chunk_bytes = chunk_max_bytes
        self._chunk_records = chunk_max_records
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._connect_timeout = connect_timeout_s
        self._hostname = hostname or socket.gethostname()
        self._conn: ForwardConnection | None = None
        self._conn_index = -1
        self._next_primary_probe = 0.0
        self.last_error = ""  # for status lines; never contains secrets
        self.chunks_sent = 0
        self.chunks_resent = 0

    @staticmethod
    def _parse(url: str, default_tls: bool | None) -> ServerAddr:
        try:
            return parse_server(url, default_tls)
        except ValueError as exc:
            raise SinkConfigError(str(exc).replace(url, _mask(url))) from None

    # -- Sink API --------------------------------------------------------------------
    def send(self, records: list[dict[str, Any]]) -> SendResult:
        result = SendResult()
        if not records:
            return result
        reduced = self._packer.reduced
        self._deliver(self._chunks(records), result)
        result.delivered = len(records)
        result.encode_failures = self._packer.reduced - reduced
        return result

    def accepts_ndjson(self) -> bool:
        return self._packer.ndjson_ready()

    def send_ndjson(self, data: bytes, count: int) -> SendResult:
        """The core road's records as NDJSON: packed by the native encoder into the very
        chunks `send` would make of them, delivered the same way (acks, resends)."""
        result = SendResult()
        if not count:
            return result
        packed = self._packer.ndjson_chunks(data, self._tags, chunk_bytes=self._chunk_bytes,
                                            chunk_records=self._chunk_records)
        if packed is None:  # a record the native encoder leaves to the reference road
            return self.send([orjson.loads(line) for line in data.splitlines()])
        if sum(c for _, _, c in packed) != count:
            raise ValueError(f"NDJSON batch holds {sum(c for _, _, c in packed)} records, {count} announced")
        self._deliver((self._chunk(tag, entries, n) for tag, entries, n in packed), result)
        result.delivered = count
        return result

    def send_chunks(self, chunks: list[_Chunk]) -> SendResult:
        """Deliver chunks another server left unacknowledged: the same bytes and chunk ids."""
        result = SendResult()
        self._deliver(iter(chunks), result)
        result.delivered = sum(c.count for c in chunks)
        return result

    def _deliver(self, chunks: Iterator[_Chunk], result: SendResult) -> None:
        """Send until every chunk is acknowledged. In `handoff` mode the first failure ends
        the call with ServerUnavailable carrying the chunks still unacknowledged."""
        pending: OrderedDict[str, _Chunk] = OrderedDict()  # sent or built, not yet acked
        while True:
            if self.stop_event.is_set():
                raise SinkStopped("forward sink stopping with unacknowledged chunks")
            try:
                conn = self._connection(result)
            except (_Unreachable, SinkFatalError) as exc:
                if not self.handoff:
                    raise
                raise ServerUnavailable(str(exc), [*pending.values(), *chunks],
                                        fatal=isinstance(exc, SinkFatalError)) from None
            try:
                done = self._exchange(conn, chunks, pending)
            except ServerRejected as exc:
                if self.handoff:
                    self._drop_connection()
                    raise ServerUnavailable(str(exc), [*pending.values(), *chunks], fatal=True) from None
                self._fail(exc, result, fatal=True)
                continue
            except _TRANSIENT as exc:
                self._fail(exc, result, fatal=_tls_refusal(exc) and not self.handoff)
                if self.handoff:
                    raise ServerUnavailable(self.last_error or str(exc), [*pending.values(), *chunks],
                                            fatal=_tls_refusal(exc)) from None
                continue
            if done:
                break
        self._on_success()

    def _exchange(self, conn: ForwardConnection, chunks: Iterator[_Chunk],
                  pending: OrderedDict[str, _Chunk]) -> bool:
        """Resend what is pending (same bytes, same chunk id), then stream new chunks, then
        wait for every ack. A server whose HELO said keepalive=false takes one chunk per
        connection. True when everything is acknowledged."""
        limit = None if conn.keepalive else 1
        inflight: set[str] = set()
        for chunk in list(pending.values()):
            if limit is not None and len(inflight) >= limit:
                break
            conn.send_parts(chunk.data)
            inflight.add(chunk.chunk_id)
            if chunk.sent:
                self.chunks_resent += 1
            else:
                self.chunks_sent += 1
            chunk.sent = True
        while limit is None or len(inflight) < limit:
            chunk = next(chunks, None)
            if chunk is None:
                break
            pending[chunk.chunk_id] = chunk
            chunk.sent = True
            conn.send_parts(chunk.data)
            inflight.add(chunk.chunk_id)
            self.chunks_sent += 1
            self._collect_acks(conn, pending, time.monotonic())  # drain what is ready
        self._wait_acks(conn, pending, inflight)
        if not conn.keepalive:
            self._drop_connection()
            if not pending:  # build the next chunk now, to know whether anything is left
                nxt = next(chunks, None)
                if nxt is not None:
                    pending[nxt.chunk_id] = nxt
        return not pending

    def close(self) -> None:
        self._drop_connection()

    def check_connection(self, timeout_s: float = 10.0) -> str | None:
        """None once a server accepts us (the connection is kept for the first send), else one
        line saying why not, for the caller to report. A refusal, or silence although we hold a
        shared key, is conclusive and returned at once; other failures are retried until
        `timeout_s`. The HELO wait is capped at half of `timeout_s` so a one-shot run ends in time."""
        deadline = time.monotonic() + max(0.5, timeout_s)
        helo_wait = min(self._cfg.ack_timeout_s, max(0.5, timeout_s / 2))
        while True:
            problems: dict[int, str] = {}
            conclusive: set[int] = set()
            for i, state in enumerate(self.servers):
                conn = self._new_connection(state, helo_timeout_s=helo_wait)
                try:
                    conn.connect()
                except ServerRejected as exc:
                    problems[i] = str(exc)
                    conclusive.add(i)
                    continue
                except NoHelo as exc:
                    state.quiet = True  # the caller says it; the retries that follow do not
                    problems[i] = str(exc)
                    conclusive.add(i)
                    continue
                except _TRANSIENT as exc:
                    problems[i] = f"{state.addr}: connect failed: {exc}"
                    continue
                self._drop_connection()
                self._conn, self._conn_index = conn, i
                return None
            if len(conclusive) == len(self.servers) or time.monotonic() >= deadline:
                return "forward sink: " + "; ".join(problems.values())
            if self.stop_event.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                return "forward sink: stopped while checking the connection"

    def reset_backoff(self) -> None:
        """Forget reconnect backoff (a balancer's health check just saw the server accept)."""
        for state in self.servers:
            state.down_until = 0.0

    def describe(self) -> str:
        first = str(self.servers[0].addr)
        extra = len(self.servers) - 1
        return f"{first} (+{extra} standby)" if extra else first

    # -- chunks ----------------------------------------------------------------------
    def _chunks(self, records: list[dict[str, Any]]) -> Iterator[_Chunk]:
        """Lazily: one or more PackedForward chunks per tag, yielded as they fill, so the
        server decodes one chunk while the next is packed."""
        for tag, entries, count in self._packer.chunks(records, self._tags, chunk_bytes=self._chunk_bytes,
                                                       chunk_records=self._chunk_records,
                                                       vet=not self.json_clean_input):
            yield self._chunk(tag, entries, count)

    def _chunk(self, tag: str, entries: bytes, count: int) -> _Chunk:
        chunk_id = new_chunk_id()
        return _Chunk(chunk_id, self._packer.message_parts(tag, entries, count, chunk_id, self._compress), count)

    # -- acks ------------------------------------------------------------------------
    def _collect_acks(self, conn: ForwardConnection, pending: OrderedDict[str, _Chunk],
                      deadline: float) -> bool:
        """Read answers until `deadline`; True if any ack arrived. Anything but an ack for a
        chunk we sent is a protocol error (garbage -> reconnect)."""
        got = False
        for msg in conn.poll_messages(deadline):
            ack = msg.get("ack") if isinstance(msg, dict) else None
            if not isinstance(ack, str | bytes):
                raise ProtocolError(f"{conn.server}: unexpected answer {str(msg)[:80]!r}")
            if isinstance(ack, bytes):
                ack = ack.decode("ascii", "replace")
            if pending.pop(ack, None) is not None:
                got = True
        return got

    def _wait_acks(self, conn: ForwardConnection, pending: OrderedDict[str, _Chunk],
                   inflight: set[str]) -> None:
        timeout = self._cfg.ack_timeout_s
        deadline = time.monotonic() + timeout
        while inflight & pending.keys():
            if self.stop_event.is_set():
                raise SinkStopped("forward sink stopping while waiting for acks")
            now = time.monotonic()
            if now >= deadline:
                missing = len(inflight & pending.keys())
                raise TimeoutError(f"{conn.server}: {missing} chunk(s) not acknowledged "
                                   f"within {timeout:g}s")
            if self._collect_acks(conn, pending, min(deadline, now + 0.25)):
                deadline = time.monotonic() + timeout  # progress: the server is alive

    # -- connections, failover, backoff ----------------------------------------------
    def _connection(self, result: SendResult) -> ForwardConnection:
        conn = self._conn
        now = time.monotonic()
        if conn is not None:
            idle = now - conn.last_used
            alive = conn.is_alive()
            if not alive:
                log.info("forward sink: %s went away while idle (%.1fs); reconnecting", conn.server, idle)
                self._drop_connection()
            elif self._conn_index > 0 and now >= self._next_primary_probe:
                self._next_primary_probe = now + max(1.0, self._cfg.heartbeat_interval_s)
                better = self._try_servers(range(self._conn_index), result)
                if better is not None:
                    log.info("forward sink: back on preferred server %s", better.server)
                    return better
                return conn
            else:
                return conn
        while True:
            if self.stop_event.is_set():
                raise SinkStopped("forward sink stopping while reconnecting")
            conn = self._try_servers(range(len(self.servers)), result)
            if conn is not None:
                return conn
            if self.handoff:  # the balancer moves this server's work elsewhere
                raise _Unreachable(self.last_error or f"{self.servers[0].addr}: unreachable")
            live = [s for s in self.servers if not s.fatal]
            if not live:
                raise SinkFatalError("forward sink: every server rejected us: " +
                                     "; ".join(s.fatal for s in self.servers))
            wait = min(s.down_until for s in live) - time.monotonic()
            if wait > 0 and self.stop_event.wait(wait):
                raise SinkStopped("forward sink stopping during backoff")

    def _try_servers(self, indexes: range, result: SendResult) -> ForwardConnection | None:
        for i in indexes:
            state = self.servers[i]
            if state.fatal or state.down_until > time.monotonic():
                continue
            conn = self._new_connection(state)
            try:
                conn.connect()
            except ServerRejected as exc:
                self._mark_fatal(state, str(exc))
                continue
            except NoHelo as exc:
                # a configuration mismatch, not an outage: back off, and say it once
                self._mark_down(state, str(exc), result, loud=not state.quiet)
                state.quiet = True
                continue
            except _TRANSIENT as exc:
                if _tls_refusal(exc):
                    self._mark_fatal(state, f"{state.addr}: TLS refused by server: {exc}")
                else:
                    self._mark_down(state, f"{state.addr}: connect failed: {exc}", result)
                continue
            self._drop_connection()
            self._conn, self._conn_index = conn, i
            if i > 0:
                self._next_primary_probe = time.monotonic() + max(1.0, self._cfg.heartbeat_interval_s)
                log.warning("forward sink: using standby %s", state.addr)
            return conn
        return None

    def _new_connection(self, state: _ServerState, helo_timeout_s: float | None = None) -> ForwardConnection:
        return ForwardConnection(
            state.addr, tls_context=self._tls, shared_key=self._cfg.shared_key,
            username=self._cfg.username, password=self._cfg.password, hostname=self._hostname,
            timeout_s=self._connect_timeout, keepalive_probe_s=self._cfg.heartbeat_interval_s,
            write_timeout_s=self._cfg.ack_timeout_s, helo_timeout_s=helo_timeout_s or self._cfg.ack_timeout_s)

    def _fail(self, exc: BaseException, result: SendResult, *, fatal: bool) -> None:
        conn = self._conn
        self._drop_connection()
        if conn is None:
            return
        state = next(s for s in self.servers if s.addr == conn.server)
        msg = str(exc) or type(exc).__name__
        if str(conn.server) not in msg:
            msg = f"{conn.server}: {msg}"
        if fatal:
            self._mark_fatal(state, msg)
        else:
            self._mark_down(state, msg, result)

    def _mark_down(self, state: _ServerState, message: str, result: SendResult, *, loud: bool = True) -> None:
        state.failures += 1
        delay = min(self._backoff_max, self._backoff_base * 2 ** min(state.failures - 1, 20))
        delay *= random.uniform(0.5, 1.0)  # jitter: many sidecars must not retry in lockstep
        state.down_until = time.monotonic() + delay
        result.retries += 1
        if len(result.errors) < 20:
            result.errors.append(message)
        self.last_error = message
        log.log(logging.WARNING if loud else logging.DEBUG, "forward sink: %s (retry in %.2fs)", message, delay)

    def _mark_fatal(self, state: _ServerState, message: str) -> None:
        state.fatal = message
        self.last_error = message
        log.error("forward sink: %s", message)
        if all(s.fatal for s in self.servers):
            raise SinkFatalError(f"forward sink: {message}" if len(self.servers) == 1 else
                                 "forward sink: every server rejected us: " +
                                 "; ".join(s.fatal for s in self.servers))

    def _on_success(self) -> None:
        for state in self.servers:
            if state.down_until <= time.monotonic():
                state.failures = 0
        if self._conn is not None:
            self.servers[self._conn_index].failures = 0
            self.servers[self._conn_index].quiet = False
        self.last_error = ""

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._conn_index = None, -1
