"""Faults on the server side: after each, what the receiver holds equals what was written —
nothing missing, and any duplicate is identical to its twin (same `_id`)."""

from __future__ import annotations

import threading
import time

import pytest
from fluentd_receiver import FluentdReceiver, assert_delivered, make_records

from logpipe.config import SinkConfig
from logpipe.ship.forward import ForwardSink


def sink_for(port: int, *, standby: list[str] | None = None, ack_timeout_s: float = 1.0,
             **kw) -> ForwardSink:
    cfg = SinkConfig(url=f"forward://127.0.0.1:{port}", standby=standby or [], ack_timeout_s=ack_timeout_s,
                     heartbeat_interval_s=1.0, **kw)
    return ForwardSink(cfg, backoff_base_s=0.05, backoff_max_s=0.3, connect_timeout_s=2.0,
                       chunk_max_records=400)


@pytest.fixture
def rx():
    with FluentdReceiver() as r:
        yield r


def test_close_mid_batch(rx):
    rx.faults.close_mid_batch = 2
    sink = sink_for(rx.port)
    records = make_records(2000)
    result = sink.send(records)
    assert result.retries >= 1
    assert assert_delivered(rx.records(), records) == 0  # nothing was stored before the close


def test_close_after_store_before_ack_makes_only_same_id_duplicates(rx):
    rx.faults.close_before_ack = 1
    sink = sink_for(rx.port)
    records = make_records(1000)
    result = sink.send(records)
    assert result.retries == 1
    assert assert_delivered(rx.records(), records) >= 1


def test_ack_delayed_past_timeout_resends_same_chunk_id(rx):
    rx.faults.delay_ack = 1
    rx.faults.delay_ack_s = 1.5
    sink = sink_for(rx.port, ack_timeout_s=0.5)
    records = make_records(300)  # 4 tags -> 4 chunks; the first one's ack comes too late
    result = sink.send(records)
    assert result.retries == 1 and "not acknowledged" in result.errors[0]
    assert rx.chunks[0] in rx.chunks[1:], "the resend must reuse the chunk id"
    assert assert_delivered(rx.records(), records) >= 1


def test_garbage_answer_disconnects_and_retries(rx):
    rx.faults.garbage_answers = 1
    sink = sink_for(rx.port)
    records = make_records(300)
    result = sink.send(records)
    assert result.retries == 1 and "undecodable" in result.errors[0]
    assert assert_delivered(rx.records(), records) >= 1  # the garbage-answered chunk came twice
    assert rx.connections == 2


def test_receiver_restart_between_batches_and_during_send(rx):
    sink = sink_for(rx.port)
    first = make_records(500)
    sink.send(first)
    rx.restart()  # idle connection now dead: detected before the next send, so no failed attempt
    second = make_records(500, start=500)
    result = sink.send(second)
    assert result.retries == 0
    # a restart while the receiver is down for a moment during a send
    third = make_records(3000, start=1000)
    rx.stop()
    threading.Timer(0.8, rx.start).start()
    started = time.monotonic()
    result = sink.send(third)
    assert result.retries >= 1 and time.monotonic() - started >= 0.7
    assert_delivered(rx.records(), first + second + third)


def test_failover_to_standby_and_back_to_primary():
    with FluentdReceiver() as primary, FluentdReceiver() as standby:
        sink = sink_for(primary.port, standby=[f"127.0.0.1:{standby.port}"])
        a, b, c = make_records(200), make_records(200, start=200), make_records(200, start=400)
        sink.send(a)
        port = primary.port
        primary.stop()
        sink.send(b)  # primary gone: the standby takes it
        assert standby.count == 200
        primary.port = port
        primary.start()
        time.sleep(1.1)  # heartbeat_interval_s: the sink probes the primary again
        sink.send(c)
        assert_delivered(primary.records() + standby.records(), a + b + c)
        assert {r["_id"] for r in primary.records()} >= {r["_id"] for r in c}


def test_all_servers_down_then_back(rx):
    port = rx.port
    rx.stop()
    sink = sink_for(port)
    records = make_records(100)

    def revive() -> None:
        rx.port = port
        rx.start()

    threading.Timer(1.0, revive).start()
    result = sink.send(records)
    assert result.retries >= 2
    assert assert_delivered(rx.records(), records) == 0


def test_server_without_keepalive_gets_one_chunk_per_connection():
    with FluentdReceiver(shared_key="k", keepalive=False) as rx:
        sink = sink_for(rx.port, shared_key="k")
        for i in range(3):
            assert sink.send(make_records(50, start=i * 50)).retries == 0
        assert rx.connections == len(rx.chunks) == 12  # 4 tags per batch -> 4 chunks
        assert_delivered(rx.records(), make_records(150))


def test_primary_rejecting_the_key_fails_over_to_standby_and_names_it():
    with FluentdReceiver(shared_key="k") as primary, FluentdReceiver(shared_key="k") as standby:
        primary.faults.reject_shared_key = True
        sink = sink_for(primary.port, standby=[f"127.0.0.1:{standby.port}"], shared_key="k")
        records = make_records(300)
        sink.send(records)
        assert primary.count == 0 and primary.handshake_failures
        assert assert_delivered(standby.records(), records) == 0
        assert f"127.0.0.1:{primary.port}" in sink.servers[0].fatal
        assert "shared_key mismatch" in sink.servers[0].fatal
