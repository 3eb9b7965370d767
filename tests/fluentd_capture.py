"""Record what a real Fluentd says on the forward protocol, as data files for tests.

Two directions:
  * `capture_server(...)`: talk to a running in_forward as a client would and keep every
    message both ways (HELO, PING, PONG, the ack for a plain and for a gzip-compressed chunk,
    the answer to a wrong key, the silence of an in_forward without <security>).
  * `capture_client(...)`: be a forward server that a running out_forward connects to, send it a
    HELO with a fixed nonce and auth salt, and keep the PING it answers with.

Each exchange is a JSON file: the inputs that decide the bytes (shared key, hostnames, salts,
chunk ids) and the messages in order, each as base64 of its exact msgpack bytes. Tests replay
these against logpipe's client with the same inputs injected, so the bytes compare exactly
(tests/test_fluentd_captures.py). Recapture (needs a Fluentd you run yourself):

    python tests/fluentd_capture.py server --port 24224 --key K [--user U --password P] OUT.json
    python tests/fluentd_capture.py client --port 24230 OUT.json   # then start an out_forward
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import socket
import time
from typing import Any

import msgpack

CLIENT_HOST = "capture-client"
CLIENT_SALT = "00112233445566778899aabbccddeeff"
CHUNK_PLAIN = "Y2FwdHVyZS1jaHVuay0wMQ=="
CHUNK_GZIP = "Y2FwdHVyZS1jaHVuay0wMg=="
RECORD = {"message": "captured", "level": "info", "service": "capture", "_id": "capture-1"}


def _sha512_hex(*parts: bytes) -> str:
    h = hashlib.sha512()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _b(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


class _Wire:
    """A socket that keeps every msgpack message it reads or writes, with its exact bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.log: list[dict[str, str]] = []
        self._buf = b""

    def send(self, who: str, obj: Any = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else msgpack.packb(obj, use_bin_type=True)
        self.sock.sendall(data)
        self.log.append({"from": who, "b64": base64.b64encode(data).decode()})

    def recv(self, who: str, timeout: float = 10.0) -> Any:
        """One message; its bytes are exactly the ones the peer sent for it."""
        deadline = time.monotonic() + timeout
        while True:
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
            unpacker.feed(self._buf)
            try:
                try:
                    obj = unpacker.unpack()
                except UnicodeDecodeError:  # out_forward sends entries as a str of raw bytes
                    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
                    unpacker.feed(self._buf)
                    obj = unpacker.unpack()
                used = unpacker.tell()
                data, self._buf = self._buf[:used], self._buf[used:]
                self.log.append({"from": who, "b64": base64.b64encode(data).decode()})
                return obj
            except msgpack.OutOfData:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self._buf += chunk

    def closed_by_peer(self, timeout: float = 3.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except OSError:
            return True


def _entries(n: int = 2) -> bytes:
    return b"".join(msgpack.packb([1764842400 + i, RECORD], use_bin_type=True) for i in range(n))


def capture_server(host: str, port: int, key: str, username: str = "", password: str = "",
                   wrong_key: bool = False) -> dict[str, Any]:
    sock = socket.create_connection((host, port), timeout=10)
    wire = _Wire(sock)
    out: dict[str, Any] = {"direction": "client->fluentd", "shared_key": key, "client_hostname": CLIENT_HOST,
                           "client_salt": CLIENT_SALT, "username": username, "password": password,
                           "wrong_key": wrong_key}
    helo = wire.recv("fluentd")
    nonce, auth = _b(helo[1]["nonce"]), _b(helo[1]["auth"])
    used_key = key + "-wrong" if wrong_key else key
    digest = _sha512_hex(CLIENT_SALT.encode(), CLIENT_HOST.encode(), nonce, used_key.encode())
    user_digest = _sha512_hex(auth, username.encode(), password.encode()) if auth else ""
    wire.send("client", ["PING", CLIENT_HOST, CLIENT_SALT, digest, username if auth else "", user_digest])
    pong = wire.recv("fluentd")
    out["closed_after_pong"] = None
    if pong[1]:
        packed = _entries()
        wire.send("client", ["capture.plain", packed, {"size": 2, "chunk": CHUNK_PLAIN}])
        wire.recv("fluentd")
        wire.send("client", ["capture.gzip", gzip.compress(_entries()),
                             {"size": 2, "chunk": CHUNK_GZIP, "compressed": "gzip"}])
        wire.recv("fluentd")
    else:
        out["closed_after_pong"] = wire.closed_by_peer()
    sock.close()
    out["messages"] = wire.log
    return out


def capture_silence(host: str, port: int, wait_s: float = 3.0) -> dict[str, Any]:
    """An in_forward without <security>: does it say anything before the client does?"""
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(wait_s)
    try:
        first = sock.recv(65536)
    except TimeoutError:
        first = None
    sock.close()
    return {"direction": "client->fluentd", "security": False, "wait_s": wait_s,
            "bytes_before_client_spoke": None if first is None else base64.b64encode(first).decode(),
            "messages": []}


def capture_client(port: int, key: str, nonce: bytes, auth: bytes, server_host: str = "capture-server",
                   timeout: float = 120.0) -> dict[str, Any]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    listener.settimeout(timeout)
    print(f"READY {port}", flush=True)
    sock, _ = listener.accept()
    listener.close()
    wire = _Wire(sock)
    wire.send("server", ["HELO", {"nonce": nonce, "auth": auth, "keepalive": True}])
    ping = wire.recv("fluentd", timeout=30)
    salt = _b(ping[2])
    ok = ping[3] == _sha512_hex(salt, _b(ping[1]), nonce, key.encode())
    wire.send("server", ["PONG", ok, "" if ok else "shared_key mismatch", server_host if ok else "",
                         _sha512_hex(salt, server_host.encode(), nonce, key.encode()) if ok else ""])
    message = wire.recv("fluentd", timeout=30)
    option = {(k.decode() if isinstance(k, bytes) else k): v
              for k, v in (message[-1] if isinstance(message[-1], dict) else {}).items()}
    if "chunk" in option:
        chunk = option["chunk"]
        wire.send("server", {"ack": chunk.decode() if isinstance(chunk, bytes) else chunk})
    time.sleep(0.5)
    sock.close()
    return {"direction": "fluentd->server", "shared_key": key, "server_hostname": server_host,
            "nonce_b64": base64.b64encode(nonce).decode(), "auth_b64": base64.b64encode(auth).decode(),
            "messages": wire.log}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["server", "wrong-key", "silence", "client"])
    ap.add_argument("out")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", default="")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--fluentd-version", default="")
    args = ap.parse_args(argv)
    if args.mode == "server":
        data = capture_server(args.host, args.port, args.key, args.user, args.password)
    elif args.mode == "wrong-key":
        data = capture_server(args.host, args.port, args.key, args.user, args.password, wrong_key=True)
    elif args.mode == "silence":
        data = capture_silence(args.host, args.port)
    else:
        data = capture_client(args.port, args.key, nonce=bytes(range(16)), auth=bytes(range(16, 32)))
    data["fluentd_version"] = args.fluentd_version
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
