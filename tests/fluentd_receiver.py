"""A forward-protocol server for tests and benchmarks (the server side of Fluentd's
Forward Protocol Specification v1), since no real Fluentd can run here.

It decodes all four event modes (Message, Forward, PackedForward,
CompressedPackedForward), EventTime (ext type 0) and integer/float times, answers
`{"ack": chunk}` for the `chunk` option, runs the HELO/PING/PONG handshake with a shared
key and optional username/password, serves TLS, and has fault switches (`Faults`) to
misbehave on purpose. Written from the spec, independently of logpipe's client code, and held
to what a real Fluentd 1.17 sends (tests/data/fluentd_captures/, tests/test_fluentd_captures.py):
where the two differ, the captures win.

Run alone (used by bench/bench_forward.py in a separate process so decoding does not
share the client's GIL):  python tests/fluentd_receiver.py --port 0 --count-only
It prints `READY <port>`, then answers `count` / `quit` lines on stdin.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack


@dataclass
class Faults:
    """Counters of misbehaviours still to perform (each use decrements its counter)."""

    close_mid_batch: int = 0  # drop the connection after the first bytes of a batch arrive
    close_before_ack: int = 0  # store a chunk, then close instead of acking (-> resend, duplicates)
    delay_ack: int = 0  # store a chunk, ack it only after delay_ack_s (past the client's timeout)
    delay_ack_s: float = 2.0
    garbage_answers: int = 0  # store a chunk, answer bytes that are not msgpack instead of an ack
    reject_shared_key: bool = False  # answer every PING with PONG(false)


@dataclass
class Event:
    tag: str
    seconds: int
    nanos: int
    record: dict[str, Any]
    mode: str
    event_time: bool  # sent as EventTime ext (not a plain integer)


def _sha512_hex(*parts: bytes) -> str:
    h = hashlib.sha512()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


class _EventTime:
    __slots__ = ("seconds", "nanos")

    def __init__(self, seconds: int, nanos: int) -> None:
        self.seconds, self.nanos = seconds, nanos


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 8:
        return _EventTime(*struct.unpack(">II", data))
    return msgpack.ExtType(code, data)


def _count_entries(unpacker: msgpack.Unpacker) -> range:
    """Walk the entries without building objects (count-only mode: benchmarks)."""
    n = 0
    while True:
        try:
            unpacker.skip()
        except msgpack.OutOfData:
            return range(n)
        n += 1


class FluentdReceiver:
    """Threaded forward server on 127.0.0.1. `events` holds what was decoded."""

    def __init__(self, *, port: int = 0, shared_key: str = "", users: dict[str, str] | None = None,
                 tls: ssl.SSLContext | None = None, hostname: str = "test-receiver",
                 keepalive: bool = True, store: bool = True, nonce: bytes | None = None,
                 auth_salt: bytes | None = None) -> None:
        self.port = port
        self.shared_key = shared_key
        self.users = users or {}
        self.tls = tls
        self.hostname = hostname
        self.keepalive = keepalive
        self.store = store
        # fixed HELO values, so a test can compare bytes with a captured Fluentd exchange
        self._nonce = nonce
        self._auth_salt = auth_salt
        self.faults = Faults()
        self.events: list[Event] = []
        self.count = 0
        self.chunks: list[str] = []  # chunk ids received (in arrival order, repeats included)
        self.acks_sent = 0
        self.handshake_failures: list[str] = []
        self.errors: list[str] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._running = False

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FluentdReceiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._running = True
        t = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True, name="receiver-accept")
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Close the listener and every connection (a crashed or restarted Fluentd)."""
        self._running = False
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)
        self._threads = [t for t in self._threads if t.is_alive()]

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    def __enter__(self) -> FluentdReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count >= count:
                return True
            time.sleep(0.02)
        return self.count >= count

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e.record for e in self.events]

    # -- connections -----------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True, name="receiver-conn")
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, raw: socket.socket) -> None:
        sock: socket.socket = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(30)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.errors.append(f"tls: {exc}")
                    return
                with self._lock:
                    self._conns.add(sock)
            unpacker = msgpack.Unpacker(raw=False, ext_hook=_ext_hook, max_buffer_size=256 << 20,
                                        strict_map_key=False)
            if self.shared_key and not self._handshake(sock, unpacker):
                return
            self._events_loop(sock, unpacker)
        except (OSError, ValueError) as exc:
            if self._running:
                self.errors.append(f"connection: {exc}")
        finally:
            with self._lock:
                self._conns.discard(raw)
                self._conns.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _read_one(self, sock: socket.socket, unpacker: msgpack.Unpacker) -> Any:
        while True:
            try:
                return unpacker.unpack()
            except msgpack.OutOfData:
                pass
            data = sock.recv(1 << 20)
            if not data:
                raise EOFError
            unpacker.feed(data)

    def _handshake(self, sock: socket.socket, unpacker: msgpack.Unpacker) -> bool:
        # As Fluentd's in_forward (tests/data/fluentd_captures/): with <security> the HELO always
        # carries a 16-byte auth salt, whether user authentication is on or not.
        nonce = self._nonce or os.urandom(16)
        auth_salt = self._auth_salt or os.urandom(16)
        helo = ["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": self.keepalive}]
        sock.sendall(msgpack.packb(helo, use_bin_type=True))
        try:
            ping = self._read_one(sock, unpacker)
        except EOFError:
            self.handshake_failures.append("closed before PING")
            return False
        ok, reason, salt = self._check_ping(ping, nonce, auth_salt)
        if not ok:
            self.handshake_failures.append(reason)
            sock.sendall(msgpack.packb(["PONG", False, reason, "", ""], use_bin_type=True))
            return False
        digest = _sha512_hex(salt, self.hostname.encode(), nonce, self.shared_key.encode())
        sock.sendall(msgpack.packb(["PONG", True, "", self.hostname, digest], use_bin_type=True))
        return True

    def _check_ping(self, ping: Any, nonce: bytes, auth_salt: bytes) -> tuple[bool, str, bytes]:
        if not (isinstance(ping, list) and len(ping) == 6 and ping[0] == "PING"):
            return False, "invalid ping message", b""
        _, hostname, salt, digest, username, password_digest = ping
        salt_b = _bytes(salt)
        if self.faults.reject_shared_key:
            return False, "shared_key mismatch", salt_b
        expected = _sha512_hex(salt_b, _bytes(hostname), nonce, self.shared_key.encode())
        if _bytes(digest).decode("ascii", "replace") != expected:
            return False, "shared_key mismatch", salt_b
        if self.users:
            password = self.users.get(str(username))
            if password is None:
                return False, "username/password mismatch", salt_b
            want = _sha512_hex(auth_salt, _bytes(username), password.encode())
            if _bytes(password_digest).decode("ascii", "replace") != want:
                return False, "username/password mismatch", salt_b
        return True, "", salt_b

    def _events_loop(self, sock: socket.socket, unpacker: msgpack.Unpacker) -> None:
        while self._running:
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                return
            if self.faults.close_mid_batch > 0:
                self.faults.close_mid_batch -= 1
                return  # whatever arrived is lost, un-acked
            unpacker.feed(data)
            for msg in unpacker:
                option = self._handle(msg)
                chunk = option.get("chunk") if isinstance(option, dict) else None
                if chunk is None:
                    continue
                with self._lock:
                    self.chunks.append(chunk)
                if not self._answer(sock, chunk):
                    return
                if not self.keepalive:
                    return

    def _answer(self, sock: socket.socket, chunk: Any) -> bool:
        """Send the ack (or a fault instead); False = close the connection."""
        f = self.faults
        if f.close_before_ack > 0:
            f.close_before_ack -= 1
            return False
        if f.garbage_answers > 0:
            f.garbage_answers -= 1
            sock.sendall(b"\xc1\xc1 this is not msgpack \xc1")
            return True
        if f.delay_ack > 0:
            f.delay_ack -= 1
            time.sleep(f.delay_ack_s)
        try:
            sock.sendall(msgpack.packb({"ack": chunk}, use_bin_type=True))
        except OSError:
            return False
        self.acks_sent += 1
        return True

    # -- decoding --------------------------------------------------------------------
    def _handle(self, msg: Any) -> Any:
        if not isinstance(msg, list) or len(msg) < 2 or not isinstance(msg[0], str):
            self.errors.append(f"not a forward message: {str(msg)[:80]}")
            return None
        tag, second = msg[0], msg[1]
        if isinstance(second, bytes | str):  # PackedForward / CompressedPackedForward
            option = msg[2] if len(msg) > 2 and isinstance(msg[2], dict) else {}
            payload = second if isinstance(second, bytes) else second.encode("utf-8", "surrogateescape")
            mode = "PackedForward"
            if option.get("compressed") == "gzip":
                payload = gzip.decompress(payload)  # handles several concatenated gzip members
                mode = "CompressedPackedForward"
            entries_unpacker = msgpack.Unpacker(raw=False, ext_hook=_ext_hook, max_buffer_size=0,
                                                strict_map_key=False)
            entries_unpacker.feed(payload)
            entries = list(entries_unpacker) if self.store else _count_entries(entries_unpacker)
        elif isinstance(second, list):  # Forward
            option = msg[2] if len(msg) > 2 and isinstance(msg[2], dict) else {}
            entries, mode = second, "Forward"
        else:  # Message: [tag, time, record, option?]
            option = msg[3] if len(msg) > 3 and isinstance(msg[3], dict) else {}
            entries, mode = [[second, msg[2] if len(msg) > 2 else {}]], "Message"
        if "size" in option and option["size"] != len(entries):
            self.errors.append(f"size option {option['size']} != {len(entries)} entries")
        if self.store:
            decoded = [self._event(tag, e, mode) for e in entries]
            with self._lock:
                self.events.extend(decoded)
                self.count += len(decoded)
        else:
            with self._lock:
                self.count += len(entries)
        return option

    @staticmethod
    def _event(tag: str, entry: Any, mode: str) -> Event:
        t, record = entry[0], entry[1]
        if isinstance(t, _EventTime):
            return Event(tag, t.seconds, t.nanos, record, mode, True)
        if isinstance(t, float):
            secs = int(t)
            return Event(tag, secs, int(round((t - secs) * 1e9)), record, mode, False)
        return Event(tag, int(t), 0, record, mode, False)


@dataclass
class TestPKI:
    """Files of a throwaway CA and a server certificate for 127.0.0.1 / localhost."""

    ca_file: str
    cert_file: str
    key_file: str
    paths: dict[str, str] = field(default_factory=dict)

    def server_context(self, client_ca: str = "") -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        return ctx


def make_test_pki(directory: str, name: str = "test") -> TestPKI:
    """A CA plus a server cert signed by it, with the `cryptography` package if present,
    else the openssl command line."""
    try:
        return _pki_cryptography(directory, name)
    except ImportError:
        return _pki_openssl(directory, name)


def _pki_cryptography(directory: str, name: str) -> TestPKI:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    files = {
        "ca_file": (ca.public_bytes(pem)),
        "cert_file": cert.public_bytes(pem),
        "key_file": key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
    }
    paths = {}
    for k, data in files.items():
        path = os.path.join(directory, f"{name}-{k}.pem")
        with open(path, "wb") as fh:
            fh.write(data)
        paths[k] = path
    return TestPKI(paths["ca_file"], paths["cert_file"], paths["key_file"], paths)


def _pki_openssl(directory: str, name: str) -> TestPKI:
    import subprocess

    def p(suffix: str) -> str:
        return os.path.join(directory, f"{name}-{suffix}")

    ext = p("ext.cnf")
    with open(ext, "w") as fh:
        fh.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n")
    run = [
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", f"/CN={name} CA"],
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", p("key.pem"), "-out", p("csr.pem"), "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", p("csr.pem"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
         "-CAcreateserial", "-out", p("cert.pem"), "-days", "2", "-extfile", ext],
    ]
    for cmd in run:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return TestPKI(p("ca.pem"), p("cert.pem"), p("key.pem"))


def make_records(n: int, start: int = 0, services: tuple[str, ...] = ("api", "worker")) -> list[dict[str, Any]]:
    """Records shaped like the tailer's output, each with a unique deterministic `_id`."""
    out = []
    for i in range(start, start + n):
        rec: dict[str, Any] = {
            "@timestamp": f"2026-11-24T07:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1_000_000:06d}Z",
            "level": "error" if i % 7 == 0 else "info",
            "logger": "app.handlers",
            "message": f"request handled number {i} with some padding text to look real",
            "service": services[i % len(services)],
            "workspace_id": f"ws-{i % 5}",
            "log_file": "/var/log/app/app.log",
            "log_offset": i * 200,
            "_id": f"rec-{i:09d}",
        }
        out.append(rec)
    return out


def assert_delivered(received: list[dict[str, Any]], written: list[dict[str, Any]]) -> int:
    """None missing, nothing foreign, and any duplicate equal to its twin (same `_id`).
    Returns the number of duplicates."""
    want = {r["_id"]: r for r in written}
    seen: dict[str, dict[str, Any]] = {}
    dups = 0
    for r in received:
        rid = r["_id"]
        assert rid in want, f"received a record nobody wrote: {rid}"
        if rid in seen:
            dups += 1
            assert r == seen[rid], f"duplicate {rid} differs from its twin"
        seen[rid] = r
    missing = sorted(set(want) - set(seen))
    assert not missing, f"{len(missing)} records missing, e.g. {missing[:5]}"
    return dups


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--shared-key", default="")
    ap.add_argument("--count-only", action="store_true", help="count events, do not keep them")
    args = ap.parse_args(argv)
    rx = FluentdReceiver(port=args.port, shared_key=args.shared_key, store=not args.count_only).start()
    print(f"READY {rx.port}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "count":
            print(rx.count, flush=True)
        elif cmd == "quit":
            break
    rx.stop()


if __name__ == "__main__":
    main()
