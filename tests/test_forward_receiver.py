"""The test receiver is only worth something if it decodes what independent clients send:
fluent-logger for Message mode, and hand-built messages (straight from the spec, not from
logpipe's codec) for Forward, PackedForward, CompressedPackedForward, acks and the handshake."""

from __future__ import annotations

import gzip
import hashlib
import socket
import ssl
import struct
import time

import msgpack
import pytest
from fluent.sender import FluentSender
from fluentd_receiver import FluentdReceiver, make_test_pki


def _et(seconds: int, nanos: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanos))


def _read_msg(sock: socket.socket, unpacker: msgpack.Unpacker, timeout: float = 5.0):
    sock.settimeout(timeout)
    while True:
        try:
            return unpacker.unpack()
        except msgpack.OutOfData:
            data = sock.recv(65536)
            assert data, "receiver closed the connection"
            unpacker.feed(data)


@pytest.fixture
def rx():
    with FluentdReceiver() as r:
        yield r


def test_fluent_logger_message_mode_with_nanosecond_event_time(rx):
    sender = FluentSender("app", host="127.0.0.1", port=rx.port, nanosecond_precision=True)
    try:
        for i in range(50):
            assert sender.emit_with_time("web", 1_700_000_000.25 + i, {"n": i, "msg": "héllo"})
    finally:
        sender.close()
    assert rx.wait_for(50)
    assert [e.record["n"] for e in rx.events] == list(range(50))
    first = rx.events[0]
    assert (first.tag, first.mode, first.event_time) == ("app.web", "Message", True)
    assert first.seconds == 1_700_000_000 and abs(first.nanos - 250_000_000) < 1000
    assert first.record["msg"] == "héllo"
    assert rx.errors == []


def test_fluent_logger_integer_time(rx):
    sender = FluentSender("svc", host="127.0.0.1", port=rx.port)
    try:
        assert sender.emit_with_time("x", 1_700_000_123, {"a": 1})
    finally:
        sender.close()
    assert rx.wait_for(1)
    e = rx.events[0]
    assert (e.tag, e.seconds, e.nanos, e.event_time) == ("svc.x", 1_700_000_123, 0, False)


@pytest.mark.parametrize("mode", ["Message", "Forward", "PackedForward", "CompressedPackedForward"])
def test_all_four_modes_with_chunk_ack(rx, mode):
    entries = [[_et(1_700_000_000 + i, 123_456_789), {"i": i}] for i in range(3)]
    chunk = "Y2h1bmstaWQtMTIzNDU2Nw=="
    if mode == "Message":
        messages = [["t.m", e[0], e[1], {"chunk": f"{chunk}{n}"}] for n, e in enumerate(entries)]
    elif mode == "Forward":
        messages = [["t.m", entries, {"chunk": chunk, "size": 3}]]
    else:
        packed = b"".join(msgpack.packb(e, use_bin_type=True) for e in entries)
        option = {"chunk": chunk, "size": 3}
        if mode == "CompressedPackedForward":
            # two gzip members concatenated: the spec lets a sender append streams
            packed = gzip.compress(packed[:10]) + gzip.compress(packed[10:])
            option["compressed"] = "gzip"
        messages = [["t.m", packed, option]]
    with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as sock:
        unpacker = msgpack.Unpacker(raw=False)
        for m in messages:
            sock.sendall(msgpack.packb(m, use_bin_type=True))
        acks = [_read_msg(sock, unpacker) for _ in messages]
    assert acks == [{"ack": m[-1]["chunk"]} for m in messages]
    assert [e.record["i"] for e in rx.events] == [0, 1, 2]
    assert {e.mode for e in rx.events} == {mode}
    assert all(e.nanos == 123_456_789 and e.event_time for e in rx.events)
    assert rx.errors == []


def test_size_option_mismatch_is_reported(rx):
    with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as sock:
        sock.sendall(msgpack.packb(["t", [[1, {"a": 1}]], {"size": 2}], use_bin_type=True))
        assert rx.wait_for(1)
    time.sleep(0.05)
    assert any("size option" in e for e in rx.errors)


def _handshake(sock, unpacker, key: str, user: str = "", password: str = ""):
    helo = _read_msg(sock, unpacker)
    assert helo[0] == "HELO"
    nonce, auth = helo[1]["nonce"], helo[1]["auth"]
    salt = b"0123456789abcdef"
    digest = hashlib.sha512(salt + b"client-host" + nonce + key.encode()).hexdigest()
    pw = hashlib.sha512(auth + user.encode() + password.encode()).hexdigest() if auth else ""
    sock.sendall(msgpack.packb(["PING", "client-host", salt, digest, user, pw], use_bin_type=True))
    return _read_msg(sock, unpacker), salt, nonce


def test_handshake_shared_key_and_user_auth():
    with FluentdReceiver(shared_key="s3cret", users={"alice": "pw"}, hostname="agg-1") as rx:
        with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as sock:
            unpacker = msgpack.Unpacker(raw=False)
            pong, salt, nonce = _handshake(sock, unpacker, "s3cret", "alice", "pw")
            assert pong[:4] == ["PONG", True, "", "agg-1"]
            assert pong[4] == hashlib.sha512(salt + b"agg-1" + nonce + b"s3cret").hexdigest()
            sock.sendall(msgpack.packb(["t", 1, {"ok": 1}, {"chunk": "c1"}], use_bin_type=True))
            assert _read_msg(sock, unpacker) == {"ack": "c1"}
        for key, user, pw, reason in [("wrong", "alice", "pw", "shared_key mismatch"),
                                      ("s3cret", "alice", "bad", "username/password mismatch")]:
            with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as sock:
                pong, _, _ = _handshake(sock, msgpack.Unpacker(raw=False), key, user, pw)
                assert pong[:3] == ["PONG", False, reason]
        assert rx.count == 1


def test_tls_receiver(tmp_path):
    pki = make_test_pki(str(tmp_path))
    with FluentdReceiver(tls=pki.server_context()) as rx:
        ctx = ssl.create_default_context(cafile=pki.ca_file)
        with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(msgpack.packb(["t", [[1, {"tls": True}]], {"chunk": "z"}], use_bin_type=True))
            assert _read_msg(sock, msgpack.Unpacker(raw=False)) == {"ack": "z"}
        assert rx.events[0].record == {"tls": True}
