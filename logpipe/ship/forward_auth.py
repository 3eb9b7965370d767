"""Client side of the forward protocol's HELO / PING / PONG handshake (spec v1).

    server -> ['HELO', {'nonce': bin, 'auth': salt-or-'', 'keepalive': bool}]
    client -> ['PING', self_hostname, shared_key_salt,
               sha512_hex(shared_key_salt + self_hostname + nonce + shared_key),
               username or '', sha512_hex(auth_salt + username + password) or '']
    server -> ['PONG', ok, reason, server_hostname,
               sha512_hex(shared_key_salt + server_hostname + nonce + shared_key)]

The client checks the PONG digest too, so a server that does not know the key (or a
man in the middle) is refused. Secrets never appear in exceptions or logs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any


class HandshakeRejected(Exception):
    """The server refused our credentials, or could not prove it knows the shared key."""


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow here (garbage, wrong message)."""


@dataclass
class Helo:
    nonce: bytes
    auth_salt: bytes  # empty: no user authentication requested
    keepalive: bool


def _b(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ProtocolError(f"expected bytes or string in handshake, got {type(value).__name__}")


def sha512_hex(*parts: bytes) -> str:
    h = hashlib.sha512()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def is_helo(message: Any) -> bool:
    return isinstance(message, list | tuple) and len(message) >= 1 and message[0] == "HELO"


def parse_helo(message: Any) -> Helo:
    """Validate a HELO message; anything else is a ProtocolError."""
    if not (is_helo(message) and len(message) == 2 and isinstance(message[1], dict)):
        raise ProtocolError(f"expected HELO, got {_short(message)}")
    opts = message[1]
    nonce = _b(opts.get("nonce", b""))
    if not nonce:
        raise ProtocolError("HELO without nonce")
    return Helo(nonce=nonce, auth_salt=_b(opts.get("auth", b"") or b""),
                keepalive=bool(opts.get("keepalive", True)))


def new_salt() -> str:
    """The PING's shared_key_salt: 32 hex digits, as Fluentd's out_forward makes it (tests
    replaying captured exchanges replace this to get the captured bytes)."""
    return os.urandom(16).hex()


def build_ping(helo: Helo, hostname: str, shared_key: str, username: str = "",
               password: str = "") -> tuple[list[Any], str]:
    """Return the PING message and the shared_key_salt used (needed to check the PONG).

    A HELO with an auth salt gets the user digest even when we have no credentials: Fluentd
    sends that salt whenever <security> is on, user_auth or not, and its own out_forward then
    answers with sha512(salt + "" + ""), leaving the decision to the server."""
    salt = new_salt()
    digest = sha512_hex(salt.encode(), hostname.encode(), helo.nonce, shared_key.encode())
    user_digest = ""
    if helo.auth_salt:
        user_digest = sha512_hex(helo.auth_salt, username.encode(), password.encode())
    return ["PING", hostname, salt, digest, username if helo.auth_salt else "", user_digest], salt


def check_pong(message: Any, helo: Helo, salt: str, shared_key: str) -> str:
    """Return the server's hostname if the PONG accepts us and proves the key; else raise."""
    if not (isinstance(message, list | tuple) and len(message) == 5 and message[0] == "PONG"):
        raise ProtocolError(f"expected PONG, got {_short(message)}")
    _, ok, reason, server_host, digest = message
    if not ok:
        raise HandshakeRejected(f"authentication rejected: {reason or 'no reason given'}")
    server_host_b = _b(server_host)
    expected = sha512_hex(salt.encode(), server_host_b, helo.nonce, shared_key.encode())
    if _b(digest).decode("ascii", "replace") != expected:
        raise HandshakeRejected("server could not prove it knows the shared key (PONG digest mismatch)")
    return server_host_b.decode("utf-8", "replace")


def _short(message: Any) -> str:
    text = repr(message)
    return text if len(text) <= 80 else text[:77] + "..."
