"""Several active forward servers: weighted shares, a killed server's unacked chunks resent
to the others, a hung server's chunks resent after the ack timeout, health-checked return."""

from __future__ import annotations

import threading
import time

import pytest
from fluentd_receiver import FluentdReceiver, assert_delivered, make_records

from logpipe.config import SinkConfig
from logpipe.ship.base import SendResult, SinkConfigError
from logpipe.ship.factory import make_sink
from logpipe.ship.forward_balance import BalancedForwardSink


def _url(rx: FluentdReceiver, weight: int | None = None) -> str:
    return f"forward://127.0.0.1:{rx.port}" + (f"?weight={weight}" if weight is not None else "")


def test_batches_are_shared_in_proportion_to_the_weights() -> None:
    with FluentdReceiver() as a, FluentdReceiver() as b, FluentdReceiver() as c:
        sink = make_sink(SinkConfig(url=",".join([_url(a, 50), _url(b, 30), _url(c, 20)])))
        assert isinstance(sink, BalancedForwardSink)
        try:
            for i in range(40):  # small uneven batches: the carry keeps the shares exact over time
                sink.send(make_records(37, start=i * 37))
        finally:
            sink.close()
        total = 40 * 37
        counts = [a.count, b.count, c.count]
        assert sum(counts) == total
        for got, weight in zip(counts, (50, 30, 20), strict=True):
            assert abs(got - total * weight / 100) <= 1, counts


def test_a_server_without_a_weight_counts_as_weight_60() -> None:
    """README: "shared between the live servers by weight (default 60, as out_forward)"."""
    with FluentdReceiver() as a, FluentdReceiver() as b, FluentdReceiver() as c:
        sink = make_sink(SinkConfig(url=",".join([_url(a), _url(b, 30), _url(c, 90)])))
        try:
            for i in range(30):
                sink.send(make_records(36, start=i * 36))
        finally:
            sink.close()
        total = 30 * 36
        counts = [a.count, b.count, c.count]
        assert sum(counts) == total
        for got, weight in zip(counts, (60, 30, 90), strict=True):
            assert abs(got - total * weight / 180) <= 1, counts


def test_a_killed_server_loses_nothing_and_duplicates_keep_their_id() -> None:
    receivers = [FluentdReceiver().start() for _ in range(3)]
    sink = make_sink(SinkConfig(urls=[_url(rx) for rx in receivers], heartbeat_interval_s=60))
    written = make_records(30_000)
    total = SendResult()
    sent = [0]

    def sender() -> None:
        for i in range(0, len(written), 500):
            total.merge(sink.send(written[i:i + 500]))
            sent[0] += 1

    thread = threading.Thread(target=sender, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 30
        while receivers[1].count < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)
        receivers[1].stop()  # crash: listener and connections closed mid-stream
        thread.join(timeout=120)
        assert not thread.is_alive(), "sender stuck after one of three servers died"
        received = [r for rx in receivers for r in rx.records()]
        dups = assert_delivered(received, written)  # none missing; a duplicate equals its twin
        assert total.delivered == len(written)
        assert total.rerouted >= 1
        assert sink.node_states() == {f"forward://127.0.0.1:{rx.port}": rx is not receivers[1] for rx in receivers}
        assert dups <= total.rerouted * 2000  # only resent chunks can repeat
    finally:
        sink.close()
        for rx in receivers:
            rx.stop()


def test_a_hung_server_has_its_chunks_resent_elsewhere_after_the_ack_timeout() -> None:
    with FluentdReceiver() as good, FluentdReceiver() as hung:
        hung.faults.delay_ack = 1000
        hung.faults.delay_ack_s = 5.0
        sink = make_sink(SinkConfig(url=f"{_url(good)},{_url(hung)}", ack_timeout_s=0.5, heartbeat_interval_s=60))
        written = make_records(2000)
        try:
            started = time.monotonic()
            result = sink.send(written)
            elapsed = time.monotonic() - started
        finally:
            sink.close()
        assert result.delivered == 2000 and result.rerouted >= 1
        assert elapsed < 5.0  # resent after the 0.5 s ack timeout, not after the server's 5 s delay
        assert assert_delivered(good.records() + hung.records(), written) == len(hung.records())


def test_a_server_that_comes_back_gets_its_share_again() -> None:
    a, b = FluentdReceiver().start(), FluentdReceiver().start()
    sink = make_sink(SinkConfig(url=f"{_url(a)},{_url(b)}", heartbeat_interval_s=0.5))
    try:
        port = b.port
        b.stop()
        sink.send(make_records(1000))
        assert b.count == 0 and a.count == 1000
        b2 = FluentdReceiver(port=port).start()
        deadline = time.monotonic() + 10
        i = 1
        while b2.count == 0 and time.monotonic() < deadline:  # health check after recover wait
            sink.send(make_records(100, start=i * 1000))
            i += 1
            time.sleep(0.1)
        assert b2.count > 0
        assert sink.node_states()[f"forward://127.0.0.1:{port}"] is True
        b2.stop()
    finally:
        sink.close()
        a.stop()


def test_bad_weights_are_config_errors() -> None:
    with pytest.raises(SinkConfigError, match="weight"):
        make_sink(SinkConfig(url="forward://127.0.0.1:1?weight=x,forward://127.0.0.1:2"))
    with pytest.raises(SinkConfigError, match="weight 0"):
        make_sink(SinkConfig(url="forward://127.0.0.1:1?weight=0,forward://127.0.0.1:2?weight=0"))
