"""Conformance with a real Fluentd, kept by CI: exchanges captured from Fluentd 1.17.1
(tests/data/fluentd_captures/, made with tests/fluentd_capture.py) replayed byte for byte.

* against logpipe's client: a scripted server sends the captured Fluentd messages; with the
  PING salt and chunk ids injected, what the client sends must equal the captured bytes;
* against tests/fluentd_receiver.py: with the captured nonce and salt injected, the receiver
  must answer with exactly the bytes Fluentd answered with.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest
from fluentd_capture import CHUNK_GZIP, CHUNK_PLAIN, CLIENT_HOST, CLIENT_SALT
from fluentd_receiver import FluentdReceiver, make_records

from logpipe.config import SinkConfig
from logpipe.ship import forward as forward_mod
from logpipe.ship import forward_auth
from logpipe.ship.base import SinkFatalError
from logpipe.ship.forward import ForwardSink

CAPTURES = Path(__file__).parent / "data" / "fluentd_captures"


def load(name: str) -> dict[str, Any]:
    data = json.loads((CAPTURES / f"{name}.json").read_text(encoding="utf-8"))
    for m in data["messages"]:
        m["raw"] = base64.b64decode(m["b64"])
        m["obj"] = msgpack.unpackb(m["raw"], raw=True, strict_map_key=False)
    return data


def _read_message(sock: socket.socket, buf: bytearray) -> bytes:
    """The exact bytes of the next msgpack message on `sock`."""
    while True:
        unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
        unpacker.feed(bytes(buf))
        try:
            unpacker.skip()
            used = unpacker.tell()
            out = bytes(buf[:used])
            del buf[:used]
            return out
        except msgpack.OutOfData:
            pass
        data = sock.recv(65536)
        if not data:
            raise EOFError("peer closed")
        buf.extend(data)


class ScriptedFluentd:
    """Plays the Fluentd side of one captured exchange and keeps what the client sent."""

    def __init__(self, messages: list[dict[str, Any]], fluentd_side: str = "fluentd") -> None:
        self.script = messages
        self.side = fluentd_side
        self.received: list[bytes] = []
        self.error: BaseException | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ScriptedFluentd:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            self._listener.settimeout(10)
            conn, _ = self._listener.accept()
            conn.settimeout(10)
            buf = bytearray()
            with conn:
                for m in self.script:
                    if m["from"] == self.side:
                        conn.sendall(m["raw"])
                    else:
                        self.received.append(_read_message(conn, buf))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


@pytest.fixture
def injected(monkeypatch):
    """Make the client's random choices the captured ones: PING salt, then chunk ids."""
    def set_(salt: str, chunk_ids: list[str]) -> None:
        monkeypatch.setattr(forward_auth, "new_salt", lambda: salt)
        ids = iter(chunk_ids)
        monkeypatch.setattr(forward_mod, "new_chunk_id", lambda: next(ids))
    return set_


def _sink(port: int, **kw: Any) -> ForwardSink:
    hostname = kw.pop("hostname", CLIENT_HOST)
    cfg = SinkConfig(url=f"forward://127.0.0.1:{port}", ack_timeout_s=5.0, **kw)
    return ForwardSink(cfg, hostname=hostname, backoff_base_s=0.05, backoff_max_s=0.1)


def _records(n: int) -> list[dict[str, Any]]:
    """n records for one tag, so one chunk."""
    return [dict(r, level="info") for r in make_records(n, services=("capture",))]


def _option(message: bytes) -> dict[bytes, Any]:
    return msgpack.unpackb(message, raw=True, strict_map_key=False)[-1]


def test_captured_fluentd_sends_an_auth_salt_without_user_auth():
    """What the receiver got wrong: Fluentd's HELO carries a salt even with user_auth off."""
    helo = load("security_no_user_auth")["messages"][0]["obj"]
    assert helo[0] == b"HELO" and len(helo[1][b"auth"]) == 16


def test_client_ping_is_fluentd_out_forwards_ping(injected):
    """Same HELO (with an auth salt), same hostname and salt: our PING is the one Fluentd's own
    out_forward sent, byte for byte (empty username, digest of the salt alone). Before the
    fix the client refused such a HELO ("requires username/password authentication")."""
    cap = load("out_forward_ping")
    fluentd_ping = cap["messages"][1]
    assert fluentd_ping["from"] == "fluentd"
    ping = fluentd_ping["obj"]
    script = [dict(m, **{"from": "fluentd" if m["from"] == "server" else "client"}) for m in cap["messages"]]
    injected(ping[2].decode(), ["chunk-from-logpipe"])
    # the captured ack names out_forward's chunk; answer ours instead
    script[4] = {"from": "fluentd", "raw": msgpack.packb({"ack": "chunk-from-logpipe"})}
    with ScriptedFluentd(script) as server:
        sink = _sink(server.port, shared_key=cap["shared_key"], hostname=ping[1].decode())
        result = sink.send(_records(3))
    assert server.error is None, server.error
    assert server.received[0] == fluentd_ping["raw"]
    assert result.delivered == 3


@pytest.mark.parametrize("compress, chunk_id, ack_at", [("", CHUNK_PLAIN, 4), ("gzip", CHUNK_GZIP, 6)])
def test_client_against_captured_fluentd_without_user_auth(injected, compress, chunk_id, ack_at):
    """The committed fluent.conf's security (user_auth false): the client's PING equals the
    captured one, it accepts real Fluentd's PONG (digest checked) and its ack, for a plain
    and a gzip-compressed chunk."""
    cap = load("security_no_user_auth")
    msgs = cap["messages"]
    injected(CLIENT_SALT, [chunk_id])
    script = msgs[:3] + [{"from": "client"}, msgs[ack_at]]
    with ScriptedFluentd(script) as server:
        result = _sink(server.port, shared_key=cap["shared_key"], compress=compress).send(_records(4))
    assert server.error is None, server.error
    assert server.received[0] == msgs[1]["raw"]
    option = _option(server.received[1])
    assert option[b"chunk"] == chunk_id.encode() and option[b"size"] == 4
    assert option.get(b"compressed") == (b"gzip" if compress else None)
    assert result.delivered == 4


def test_client_with_user_auth_matches_capture(injected):
    cap = load("security_user_auth")
    msgs = cap["messages"]
    injected(CLIENT_SALT, [CHUNK_PLAIN])
    script = msgs[:3] + [{"from": "client"}, msgs[4]]
    with ScriptedFluentd(script) as server:
        result = _sink(server.port, shared_key=cap["shared_key"], username=cap["username"],
                       password=cap["password"]).send(_records(2))
    assert server.error is None, server.error
    assert server.received[0] == msgs[1]["raw"]
    assert result.delivered == 2


def test_client_wrong_key_gets_fluentds_refusal_named(injected):
    cap = load("wrong_key")
    injected(CLIENT_SALT, [CHUNK_PLAIN])
    with ScriptedFluentd(cap["messages"]) as server:
        sink = _sink(server.port, shared_key=cap["shared_key"] + "-wrong")
        with pytest.raises(SinkFatalError) as err:
            sink.send(_records(1))
    assert server.received[0] == cap["messages"][1]["raw"]
    assert "shared_key mismatch" in str(err.value) and f"127.0.0.1:{server.port}" in str(err.value)


def test_client_without_credentials_against_user_auth_says_what_is_missing(injected):
    cap = load("user_auth_no_credentials")
    injected(CLIENT_SALT, [CHUNK_PLAIN])
    with ScriptedFluentd(cap["messages"]) as server, pytest.raises(SinkFatalError) as err:
        _sink(server.port, shared_key=cap["shared_key"]).send(_records(1))
    assert server.received[0] == cap["messages"][1]["raw"]
    assert "username/password mismatch" in str(err.value)
    assert "requires user authentication" in str(err.value)


# -- the receiver answers as Fluentd did --------------------------------------------------

def _replay_against_receiver(cap: dict[str, Any], rx: FluentdReceiver) -> tuple[list[bytes], bool]:
    """Send the captured client messages; return the receiver's answers and whether it closed."""
    answers: list[bytes] = []
    buf = bytearray()
    closed = False
    with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as sock:
        for m in cap["messages"]:
            if m["from"] == "client":
                sock.sendall(m["raw"])
            else:
                answers.append(_read_message(sock, buf))
        if cap.get("closed_after_pong"):
            try:
                closed = sock.recv(1) == b""
            except OSError:
                closed = True
    return answers, closed


def _receiver_for(cap: dict[str, Any], **kw: Any) -> FluentdReceiver:
    helo = cap["messages"][0]["obj"][1]
    pong = next(m["obj"] for m in cap["messages"] if m["obj"][0] == b"PONG")
    hostname = pong[3].decode() or "unused"
    return FluentdReceiver(shared_key=cap["shared_key"], hostname=hostname, nonce=helo[b"nonce"],
                           auth_salt=helo[b"auth"], **kw)


@pytest.mark.parametrize("name, users", [
    ("security_no_user_auth", None),
    ("security_user_auth", {"alice": "pw-alice"}),
    ("wrong_key", None),
    ("user_auth_no_credentials", {"alice": "pw-alice"}),
])
def test_receiver_answers_byte_for_byte_as_fluentd(name, users):
    cap = load(name)
    with _receiver_for(cap, users=users) as rx:
        answers, closed = _replay_against_receiver(cap, rx)
    assert answers == [m["raw"] for m in cap["messages"] if m["from"] == "fluentd"]
    assert closed == bool(cap.get("closed_after_pong"))


def test_receiver_without_security_is_silent_like_fluentd():
    cap = load("no_security")
    assert cap["bytes_before_client_spoke"] is None
    with FluentdReceiver() as rx, socket.create_connection(("127.0.0.1", rx.port), timeout=5) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
