"""ForwardSink against the spec-faithful receiver: encoding, tags, TLS, authentication, config errors."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from fluentd_receiver import FluentdReceiver, assert_delivered, make_records, make_test_pki

from logpipe.config import SinkConfig
from logpipe.ship.base import SinkConfigError, SinkFatalError, SinkStopped
from logpipe.ship.factory import make_sink
from logpipe.ship.forward import ForwardSink


def sink_for(rx: FluentdReceiver, scheme: str = "forward", **kw) -> ForwardSink:
    kw.setdefault("ack_timeout_s", 2.0)
    return ForwardSink(SinkConfig(url=f"{scheme}://127.0.0.1:{rx.port}", **kw), backoff_base_s=0.05,
                       backoff_max_s=0.3, connect_timeout_s=2.0)


@pytest.fixture
def rx():
    with FluentdReceiver() as r:
        yield r


def test_delivers_packed_forward_with_event_time_nanos_and_tags(rx):
    sink = make_sink(SinkConfig(url=f"forward://127.0.0.1:{rx.port}"))
    assert isinstance(sink, ForwardSink)
    records = make_records(3000)
    records.append({"@timestamp": "2026-11-24T07:00:00.123456789Z", "method": "GET", "status": 200,
                    "_id": "access-1"})  # no service: tag gets 'unknown'
    result = sink.send(records)
    sink.close()
    assert result.delivered == len(records) and result.retries == 0
    assert assert_delivered(rx.records(), records) == 0
    assert {e.mode for e in rx.events} == {"PackedForward"}
    assert all(e.event_time for e in rx.events)
    by_id = {e.record["_id"]: e for e in rx.events}
    e = by_id["rec-000000123"]
    assert (e.seconds % 60, e.nanos) == (3, 123_000)
    assert by_id["access-1"].nanos == 123_456_789
    tags = {e.tag for e in rx.events}
    assert tags == {"logpipe.api.app", "logpipe.api.error", "logpipe.worker.app", "logpipe.worker.error",
                    "logpipe.unknown.access"}
    # one PackedForward message per tag (these batches are small enough for one chunk each)
    assert len(rx.chunks) == len(tags)


def test_custom_tag_template_and_gzip(rx):
    sink = sink_for(rx, tag="k8s.{workspace_id}.{kind}", compress="gzip")
    records = make_records(500)
    sink.send(records)
    assert assert_delivered(rx.records(), records) == 0
    assert {e.mode for e in rx.events} == {"CompressedPackedForward"}
    assert {e.tag for e in rx.events} >= {"k8s.ws-0.error", "k8s.ws-1.app"}


def test_unencodable_values_are_converted_not_dropped(rx):
    sink = sink_for(rx)
    bad = [
        {"_id": "huge", "n": 10**30, "neg": -(2**70), "service": "api"},
        {"_id": "bytes", "raw": b"\xff\xfeok", "service": "api"},
        {"_id": "surrogate", "message": b"caf\xe9".decode("utf-8", "surrogateescape"), "service": "api"},
        {"_id": "keys", "nested": {1: "one", "deep": [10**25]}, "service": "api"},
    ]
    result = sink.send(bad)
    assert result.delivered == 4 and result.encode_failures == 4
    got = {r["_id"]: r for r in rx.records()}
    # the safe form (logpipe.safeform): big integers as text under _overflow.<path>, tagged
    assert got["huge"]["_overflow.n"] == str(10**30) and got["huge"]["_overflow.neg"] == str(-(2**70))
    assert "n" not in got["huge"] and got["huge"]["tags"] == ["_encode_failure"]
    assert got["bytes"]["raw"] == "\\xff\\xfeok"
    assert got["surrogate"]["message"] == "caf\\xe9"
    assert got["keys"]["nested"] == {"1": "one"} and got["keys"]["_overflow.nested.deep"] == f"[{10**25}]"


@pytest.mark.parametrize("url,needle", [
    ("forward://127.0.0.1:99999", "99999"),
    ("forward://127.0.0.1:abc", "invalid port"),
    ("udp://127.0.0.1:24224", "udp"),
    ("forward://:24224", "missing host"),
])
def test_bad_url_is_config_error_naming_it(url, needle):
    with pytest.raises(SinkConfigError) as err:
        make_sink(SinkConfig(url=url))
    assert needle in str(err.value)


def test_bad_standby_and_compress_are_config_errors():
    with pytest.raises(SinkConfigError, match="70000"):
        ForwardSink(SinkConfig(url="forward://a:1", standby=["b:70000"]))
    with pytest.raises(SinkConfigError, match="zstd"):
        ForwardSink(SinkConfig(url="forward://a:1", compress="zstd"))


def test_shared_key_and_user_auth_and_no_secret_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    with FluentdReceiver(shared_key="top-secret-key", users={"bob": "hunter2-pw"}) as rx:
        sink = sink_for(rx, shared_key="top-secret-key", username="bob", password="hunter2-pw")
        records = make_records(100)
        sink.send(records)
        assert assert_delivered(rx.records(), records) == 0
        assert rx.handshake_failures == []
        # a wrong password is a clear, immediate error naming the server
        bad = sink_for(rx, shared_key="top-secret-key", username="bob", password="nope-wrong")
        with pytest.raises(SinkFatalError) as err:
            bad.send(make_records(1))
        assert f"127.0.0.1:{rx.port}" in str(err.value) and "username/password" in str(err.value)
    text = caplog.text + str(err.value) + repr(sink.describe())
    assert "top-secret-key" not in text and "hunter2-pw" not in text and "nope-wrong" not in text


def test_rejected_shared_key_is_fatal_naming_server_and_fast():
    with FluentdReceiver(shared_key="right") as rx:
        sink = sink_for(rx, shared_key="wrong")
        started = time.monotonic()
        with pytest.raises(SinkFatalError) as err:
            sink.send(make_records(10))
        assert time.monotonic() - started < 2
        assert f"forward://127.0.0.1:{rx.port}" in str(err.value)
        assert "shared_key mismatch" in str(err.value)
        assert rx.count == 0


def test_server_requiring_auth_without_client_key_is_fatal():
    with FluentdReceiver(shared_key="k") as rx, pytest.raises(SinkFatalError, match="shared_key"):
        sink_for(rx).send(make_records(1))


def test_tls_verified_delivery(tmp_path):
    pki = make_test_pki(str(tmp_path))
    with FluentdReceiver(tls=pki.server_context(), shared_key="k") as rx:
        sink = sink_for(rx, "forwards", ca_file=pki.ca_file, shared_key="k")
        records = make_records(200)
        sink.send(records[:100])
        time.sleep(0.2)  # idle: TLS 1.3 session tickets must not look like a dead peer
        assert sink.send(records[100:]).retries == 0
        assert assert_delivered(rx.records(), records) == 0
        assert rx.connections == 1


def test_untrusted_certificate_is_refused(tmp_path):
    trusted = make_test_pki(str(tmp_path), "trusted")
    rogue = make_test_pki(str(tmp_path), "rogue")
    with FluentdReceiver(tls=rogue.server_context()) as rx:
        sink = sink_for(rx, "forwards", ca_file=trusted.ca_file)
        with pytest.raises(SinkFatalError) as err:
            sink.send(make_records(5))
        assert "certificate" in str(err.value) and str(rx.port) in str(err.value)
        assert rx.count == 0


def test_untrusted_primary_fails_over_to_trusted_standby(tmp_path):
    trusted = make_test_pki(str(tmp_path), "trusted")
    rogue = make_test_pki(str(tmp_path), "rogue")
    with FluentdReceiver(tls=rogue.server_context()) as bad, \
            FluentdReceiver(tls=trusted.server_context()) as good:
        sink = ForwardSink(SinkConfig(url=f"forwards://127.0.0.1:{bad.port}",
                                      standby=[f"127.0.0.1:{good.port}"], ca_file=trusted.ca_file))
        records = make_records(300)
        sink.send(records)
        assert bad.count == 0
        assert assert_delivered(good.records(), records) == 0
        assert "certificate" in sink.last_error or sink.servers[0].fatal


def test_insecure_warns_and_skips_verification(tmp_path):
    rogue = make_test_pki(str(tmp_path), "rogue")
    with FluentdReceiver(tls=rogue.server_context()) as rx:
        with pytest.warns(UserWarning, match="verification is OFF"):
            sink = sink_for(rx, "forwards", insecure=True)
        sink.send(make_records(3))
        assert rx.count == 3


def test_stop_event_ends_retry_loop_with_sink_stopped():
    sink = ForwardSink(SinkConfig(url="forward://127.0.0.1:1"), backoff_base_s=0.05, backoff_max_s=0.2)
    threading.Timer(0.4, sink.stop_event.set).start()
    started = time.monotonic()
    with pytest.raises(SinkStopped):
        sink.send(make_records(5))
    assert time.monotonic() - started < 3


def test_mutual_tls_client_certificate(tmp_path):
    pki = make_test_pki(str(tmp_path))
    with FluentdReceiver(tls=pki.server_context(client_ca=pki.ca_file)) as rx:
        # the server certificate doubles as a client certificate signed by the same CA
        sink = sink_for(rx, "forwards", ca_file=pki.ca_file, cert_file=pki.cert_file, key_file=pki.key_file)
        sink.send(make_records(20))
        assert rx.count == 20
        started = time.monotonic()
        with pytest.raises(SinkFatalError) as err:
            sink_for(rx, "forwards", ca_file=pki.ca_file).send(make_records(1))
        assert str(rx.port) in str(err.value) and time.monotonic() - started < 5
        assert rx.count == 20


def test_credentials_in_a_bad_url_are_masked():
    with pytest.raises(SinkConfigError) as err:
        make_sink(SinkConfig(url="forward://admin:pa55word@host:0x10"))
    assert "pa55word" not in str(err.value) and "***@host" in str(err.value)
