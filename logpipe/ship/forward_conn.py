"""One connection to one forward server: TCP (+TLS), handshake, writes, reading acks.

Failures are sorted into what the sink should do about them: `ServerRejected` (shared key
or user refused, certificate not trusted, TLS/auth mismatch) means this server will not
take our data until someone changes a configuration; every other OSError / ProtocolError
is transient (retry with backoff, maybe on another server).
"""

from __future__ import annotations

import select
import socket
import ssl
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgpack

from logpipe.ship.forward_auth import (
    HandshakeRejected,
    ProtocolError,
    build_ping,
    check_pong,
    is_helo,
    parse_helo,
)

DEFAULT_PORT = 24224
_TLS_SCHEMES = {"forwards": True, "tls": True, "forward": False, "tcp": False}


class ServerRejected(Exception):
    """This server refuses us for a reason a retry cannot fix; the message names the server."""


class NoHelo(ProtocolError):
    """We hold a shared key but the server said nothing: it most likely runs without <security>
    (or is not a forward input at all). It accepts the connection and waits for data, so
    without this the client would wait for a HELO, time out and retry for ever."""


@dataclass(frozen=True)
class ServerAddr:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'forwards' if self.tls else 'forward'}://{host}:{self.port}"


def parse_server(url: str, default_tls: bool | None = None) -> ServerAddr:
    """`forward://h:p`, `forwards://h:p`, `tcp://`, `tls://`, or bare `h:p` (standby entries
    inherit the primary's transport). Raises ValueError naming the bad part."""
    text = url.strip()
    if "://" not in text:
        if default_tls is None:
            raise ValueError(f"forward server {url!r} has no scheme (use forward:// or forwards://)")
        text = f"{'forwards' if default_tls else 'forward'}://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _TLS_SCHEMES:
        raise ValueError(f"forward server {url!r}: unsupported scheme {scheme!r} "
                         "(use forward://, forwards://, tcp:// or tls://)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"forward server {url!r}: invalid port (must be 1-65535)") from None
    if port is None:
        port = DEFAULT_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"forward server {url!r}: invalid port {port} (must be 1-65535)")
    if not parts.hostname:
        raise ValueError(f"forward server {url!r}: missing host")
    if parts.path not in ("", "/"):
        raise ValueError(f"forward server {url!r}: unexpected path {parts.path!r}")
    return ServerAddr(parts.hostname, port, _TLS_SCHEMES[scheme])


def make_tls_context(ca_file: str = "", cert_file: str = "", key_file: str = "",
                     insecure: bool = False) -> ssl.SSLContext:
    """Verification on by default; `insecure` turns it off and warns every time it is used."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file or None)
    if insecure:
        warnings.warn("forward sink: TLS certificate verification is OFF (insecure = true); "
                      "never use this in production", stacklevel=2)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ForwardConnection:
    """A connected, authenticated socket to one server (blocking I/O with deadlines)."""

    def __init__(self, server: ServerAddr, *, tls_context: ssl.SSLContext | None, shared_key: str,
                 username: str, password: str, hostname: str, timeout_s: float,
                 keepalive_probe_s: float, write_timeout_s: float | None = None,
                 helo_timeout_s: float | None = None) -> None:
        self.server = server
        self._tls = tls_context
        self._shared_key = shared_key
        self._username = username
        self._password = password
        self._hostname = hostname
        self._timeout = timeout_s
        # a server that stops reading (full buffer) gets as long as it gets to ack
        self._write_timeout = write_timeout_s or timeout_s
        self._probe = keepalive_probe_s
        # a Fluentd with <security> sends its HELO at once; silence this long is conclusive
        self._helo_timeout = helo_timeout_s or timeout_s
        self._sock: socket.socket | None = None
        self._unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 20, strict_map_key=False)
        self.keepalive = True  # the server's HELO may turn this off
        self.last_used = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------
    def connect(self) -> None:
        """Open, wrap in TLS, and authenticate. Raises ServerRejected / OSError / ProtocolError."""
        raw = socket.create_connection((self.server.host, self.server.port), timeout=self._timeout)
        try:
            self._tune(raw)
            sock: socket.socket = raw
            if self.server.tls:
                assert self._tls is not None
                try:
                    sock = self._tls.wrap_socket(raw, server_hostname=self.server.host)
                except ssl.SSLCertVerificationError as exc:
                    raise ServerRejected(f"{self.server}: TLS certificate not trusted: "
                                         f"{exc.verify_message or exc}") from None
            self._sock = sock
            if self._shared_key:
                self._handshake()
        except BaseException:
            self.close()
            raw.close()
            raise
        self.last_used = time.monotonic()

    def _tune(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        probe = max(1, int(self._probe))
        for name, value in (("TCP_KEEPIDLE", probe), ("TCP_KEEPINTVL", max(1, probe // 3)), ("TCP_KEEPCNT", 3)):
            opt = getattr(socket, name, None)
            if opt is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, opt, value)
                except OSError:
                    pass

    def _handshake(self) -> None:
        try:
            first = self._next_message(time.monotonic() + self._helo_timeout)
        except TimeoutError:
            raise NoHelo(f"{self.server}: no HELO within {self._helo_timeout:g}s although a shared_key is "
                         "set: the server does not seem to run <security> (or is not a forward input); "
                         "configure <security> there or remove the shared_key here") from None
        deadline = time.monotonic() + self._timeout
        helo = parse_helo(first)
        # Fluentd puts an auth salt in every HELO once <security> is on, even with user_auth
        # off; like its out_forward we then answer with the (maybe empty) credentials and let
        # the server decide.
        self.keepalive = helo.keepalive
        ping, salt = build_ping(helo, self._hostname, self._shared_key, self._username, self._password)
        self.sendall(msgpack.packb(ping, use_bin_type=True))
        try:
            check_pong(self._next_message(deadline), helo, salt, self._shared_key)
        except HandshakeRejected as exc:
            hint = ""
            if helo.auth_salt and not self._username and "username/password" in str(exc):
                hint = " (the server requires user authentication: set username and password)"
            raise ServerRejected(f"{self.server}: {exc}{hint}") from None
        except TimeoutError:
            raise ProtocolError(f"{self.server}: no PONG within {self._timeout:.0f}s") from None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def is_alive(self) -> bool:
        """Cheap pre-send check: an idle connection must have nothing to read; EOF or stray
        bytes mean the peer went away (or is confused) and we should reconnect first."""
        sock = self._sock
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                return True
            sock.setblocking(False)
            try:
                sock.recv(4096)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return True  # only TLS housekeeping (e.g. session tickets)
            finally:
                sock.settimeout(self._timeout)
            return False  # EOF, or bytes nobody asked for
        except (OSError, ValueError):
            return False

    # -- I/O -------------------------------------------------------------------------
    def sendall(self, data: bytes) -> None:
        sock = self._require()
        sock.settimeout(self._write_timeout)
        sock.sendall(data)
        self.last_used = time.monotonic()

    def send_parts(self, parts: tuple[bytes, ...]) -> None:
        """One message given in pieces (see EntryPacker.message_parts): each piece goes out
        as it is, so the big entries blob is never copied into a joined buffer."""
        sock = self._require()
        sock.settimeout(self._write_timeout)
        for part in parts:
            sock.sendall(part)
        self.last_used = time.monotonic()

    def poll_messages(self, deadline: float) -> list[Any]:
        """Wait until `deadline` (monotonic) for at least one message; [] on timeout."""
        try:
            return [self._next_message(deadline)] + self._buffered()
        except TimeoutError:
            return []

    def _buffered(self) -> list[Any]:
        out = []
        while True:
            try:
                out.append(self._unpacker.unpack())
            except msgpack.OutOfData:
                return out
            except (ValueError, msgpack.UnpackException) as exc:
                raise ProtocolError(f"{self.server}: undecodable answer ({type(exc).__name__}: {exc})") from None

    def _next_message(self, deadline: float) -> Any:
        sock = self._require()
        polled = False
        while True:
            try:
                msg = self._unpacker.unpack()
                if is_helo(msg) and not self._shared_key:
                    raise ServerRejected(f"{self.server}: server requires shared_key authentication "
                                         "(sent HELO) but no shared_key is configured")
                return msg
            except msgpack.OutOfData:
                pass
            except (ValueError, msgpack.UnpackException) as exc:
                raise ProtocolError(f"{self.server}: undecodable answer ({type(exc).__name__}: {exc})") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if polled:
                    raise TimeoutError
                polled = True  # past the deadline: still look once at what is already there
            sock.settimeout(min(max(remaining, 0.0), 0.25))
            try:
                data = sock.recv(65536)
            except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
                continue
            if not data:
                raise ConnectionError(f"{self.server}: connection closed by server")
            try:
                self._unpacker.feed(data)
            except msgpack.BufferFull:
                raise ProtocolError(f"{self.server}: oversized answer") from None

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionError(f"{self.server}: not connected")
        return self._sock
