"""Load balancing over several active Fluentd aggregators, as out_forward does.

`--sink forward://a:24224,forward://b:24224` (or `[sink] urls`) lists the active servers;
`?weight=N` on a URL sets its share (default 60, as out_forward; 0 = standby-like, no
share). `[sink] standby` servers get traffic only while no active server is live.

Each batch is split across the live servers in proportion to their weights (a carry per
server keeps the long-run shares exact even for small batches) and the slices go out in
parallel, one `ForwardSink` per server, each with its own connection and acks. A server
that fails (connection lost or refused, acks missing after `ack_timeout_s`) is marked
down and its *unacknowledged* chunks -- the same bytes, same chunk ids -- go to another
live server right away; a record the dead server had received but not acknowledged may
then arrive twice, always with the same `_id`. A down server is health-checked (a TCP
connect) after `heartbeat_interval_s` and gets its share again once it accepts. With every
server down, `send` waits and probes (backpressure, nothing dropped) until `stop_event`.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from logpipe.config import SinkConfig
from logpipe.ship.base import SendResult, Sink, SinkConfigError, SinkFatalError, SinkStopped
from logpipe.ship.forward import ForwardSink, ServerUnavailable
from logpipe.ship.forward_conn import parse_server

log = logging.getLogger("logpipe.ship.forward")

DEFAULT_WEIGHT = 60  # out_forward's default


def split_weight(url: str) -> tuple[str, int]:
    """`forward://h:1?weight=20` -> (`forward://h:1`, 20); a bad weight is a SinkConfigError."""
    parts = urlsplit(url.strip())
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"weight"}
    if unknown:
        raise SinkConfigError(f"forward server {url!r}: unknown option(s) {', '.join(sorted(unknown))} (only weight=N)")
    weight = DEFAULT_WEIGHT
    if "weight" in query:
        try:
            weight = int(query["weight"][-1])
        except ValueError:
            weight = -1
        if not 0 <= weight <= 1000:
            raise SinkConfigError(f"forward server {url!r}: weight must be an integer 0-1000")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), weight


def server_urls(cfg: SinkConfig) -> list[str]:
    """The active servers: `[sink] urls`, else `url` split at commas."""
    return [u.strip() for u in cfg.urls if u.strip()] if cfg.urls else [u for u in cfg.url.split(",") if u.strip()]


@dataclass
class _Member:
    url: str  # without the weight, as shown in messages and metrics
    weight: int
    standby: bool
    sink: ForwardSink
    host: str
    port: int
    executor: ThreadPoolExecutor  # one thread: a ForwardSink is used by one thread at a time
    down_until: float = 0.0
    fatal: str = ""
    carry: float = 0.0  # share owed from earlier batches (fractions of a record)
    failures: int = field(default=0)


class BalancedForwardSink(Sink):
    """Several active forward servers, weighted; see the module docstring."""

    name = "forward"

    def __init__(self, cfg: SinkConfig, **forward_options: Any) -> None:
        super().__init__()
        self.recover_wait_s = max(0.5, cfg.heartbeat_interval_s)
        self.probe_timeout_s = 1.0
        self.members: list[_Member] = []
        entries = [(u, False) for u in server_urls(cfg)] + [(u, True) for u in cfg.standby]
        default_tls: bool | None = None
        for raw, standby in entries:
            url, weight = split_weight(raw)
            try:
                addr = parse_server(url, default_tls)
            except ValueError as exc:
                raise SinkConfigError(str(exc)) from None
            default_tls = addr.tls if default_tls is None else default_tls
            if not urlsplit(url).scheme:
                url = f"{'forwards' if addr.tls else 'forward'}://{url}"
            member_cfg = dataclasses.replace(cfg, url=url, urls=[], standby=[])
            sink = ForwardSink(member_cfg, handoff=True, **forward_options)
            sink.stop_event = self.stop_event  # one stop for all
            self.members.append(_Member(str(addr), weight, standby, sink, addr.host, addr.port,
                                        ThreadPoolExecutor(1, thread_name_prefix=f"fwd-{addr.port}")))
        if not any(m.weight > 0 and not m.standby for m in self.members):
            raise SinkConfigError("forward sink: every active server has weight 0")
        self.states: dict[str, bool] = {m.url: True for m in self.members}
        self._lock = threading.Lock()

    # -- Sink API --------------------------------------------------------------------
    def describe(self) -> str:
        active = [f"{m.url} (weight {m.weight})" for m in self.members if not m.standby]
        standby = sum(m.standby for m in self.members)
        return ", ".join(active) + (f" (+{standby} standby)" if standby else "")

    def node_states(self) -> dict[str, bool]:
        return self.states

    def check_connection(self, timeout_s: float = 10.0) -> str | None:
        """None as soon as one active server accepts us; else every server's reason."""
        problems = []
        for member in self.members:
            if member.standby:
                continue
            problem = member.sink.check_connection(timeout_s)
            if problem is None:
                return None
            problems.append(problem)
        return "; ".join(problems) or None

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        result = SendResult()
        if not records:
            return result
        running: dict[Future[SendResult], tuple[_Member, int]] = {}
        start = 0
        for member, n in self._shares(len(records)):
            running[self._submit(member, records[start:start + n])] = (member, n)
            start += n
        problems: list[BaseException] = []
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                member, n = running.pop(fut)
                try:
                    result.merge(fut.result())
                    self._mark_up(member)
                except ServerUnavailable as exc:
                    unacked = sum(c.count for c in exc.chunks)
                    result.delivered += n - unacked  # acknowledged before the server failed
                    self._mark_down(member, str(exc), exc.fatal, result)
                    if exc.chunks:
                        try:
                            target = self._pick(exclude=member)
                        except (SinkStopped, SinkFatalError) as stop:
                            problems.append(stop)
                            continue
                        result.rerouted += len(exc.chunks)
                        log.warning("forward sink: %d unacknowledged chunk(s) of %s resent to %s",
                                    len(exc.chunks), member.url, target.url)
                        running[target.executor.submit(self._resend, target, exc.chunks)] = (target, unacked)
                except BaseException as exc:  # noqa: BLE001 - reported once every slice finished
                    problems.append(exc)
        if problems:
            raise next((p for p in problems if not isinstance(p, SinkStopped)), problems[0])
        return result

    def close(self) -> None:
        for m in self.members:
            m.executor.shutdown(wait=True)
            m.sink.close()

    # -- selection -------------------------------------------------------------------
    def _submit(self, member: _Member, records: list[dict[str, Any]]) -> Future[SendResult]:
        member.sink.json_clean_input = self.json_clean_input
        return member.executor.submit(member.sink.send, records)

    @staticmethod
    def _resend(member: _Member, chunks: list[Any]) -> SendResult:
        return member.sink.send_chunks(chunks)

    def _live(self) -> list[_Member]:
        """Active servers that are up (a down one whose wait is over is probed first); the
        standby servers when no active one is."""
        now = time.monotonic()
        for standby in (False, True):
            live = [m for m in self.members if m.standby == standby and not m.fatal and m.weight > 0
                    and (m.down_until <= now and (m.down_until == 0 or self._probe(m)))]
            if live:
                return live
        return []

    def _shares(self, n: int) -> list[tuple[_Member, int]]:
        """Split `n` records over the live servers by weight (smooth: carries remainders)."""
        live = self._pick_many()
        total = sum(m.weight for m in live)
        out: list[tuple[_Member, int]] = []
        given = 0
        for m in live:
            m.carry += n * m.weight / total
        for m in sorted(live, key=lambda m: m.carry, reverse=True):
            take = min(n - given, max(0, int(m.carry)))
            m.carry -= take
            given += take
            if take:
                out.append((m, take))
        if given < n:  # rounding leftovers to the server owed the most
            m = max(live, key=lambda m: m.carry)
            m.carry -= n - given
            out.append((m, n - given))
        return out

    def _pick_many(self) -> list[_Member]:
        """The live servers; with none, wait and probe until one accepts (backpressure)."""
        delay = 0.2
        while True:
            live = self._live()
            if live:
                return live
            if all(m.fatal for m in self.members):
                raise SinkFatalError("forward sink: every server rejected us: " +
                                     "; ".join(m.fatal for m in self.members))
            soonest = min(m.down_until for m in self.members if not m.fatal) - time.monotonic()
            if self.stop_event.wait(max(0.05, min(delay, soonest))):
                raise SinkStopped("forward sink stopping: no server is up")
            delay = min(self.recover_wait_s, delay * 2)
            for m in self.members:  # waiting anyway: let every server be probed again
                m.down_until = min(m.down_until, time.monotonic())

    def _pick(self, exclude: _Member) -> _Member:
        """The live server (other than `exclude` when possible) owed the most share."""
        live = self._pick_many()
        others = [m for m in live if m is not exclude] or live
        return max(others, key=lambda m: (m.carry + m.weight, -m.failures))

    def _probe(self, member: _Member) -> bool:
        """Health check of a server that was down: does it accept a TCP connection?"""
        try:
            with socket.create_connection((member.host, member.port), timeout=self.probe_timeout_s):
                pass
        except OSError:
            member.down_until = time.monotonic() + self.recover_wait_s
            return False
        member.down_until = 0.0
        member.sink.reset_backoff()
        return True

    def _mark_down(self, member: _Member, message: str, fatal: bool, result: SendResult) -> None:
        with self._lock:
            member.failures += 1
            member.down_until = time.monotonic() + self.recover_wait_s
            if fatal:
                member.fatal = message
            self.states[member.url] = False
        result.retries += 1
        if len(result.errors) < 20:
            result.errors.append(message)
        log.warning("forward sink: %s is down (%s); its share goes to the other servers", member.url, message)

    def _mark_up(self, member: _Member) -> None:
        if not self.states[member.url]:
            with self._lock:
                member.failures = 0
                self.states[member.url] = True
            log.info("forward sink: %s is up again", member.url)
