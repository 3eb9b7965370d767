"""Content fingerprints: how a file is recognised after rename, copy, gzip or inode reuse.

The fingerprint hashes a prefix of the file that never changes once written: its first
line (at least MIN_BYTES, so a file can be read as soon as one line is complete), capped at
MAX_BYTES. Two different files that start with the same line are told apart by a check of
their first bytes kept in the checkpoint (identity.py). It depends only on content, so a `.gz` copy of a file
gets the same fingerprint (and hence the same record ids) as the original, while a new file
that reuses an old inode gets a different one.
"""

from __future__ import annotations

import hashlib
import os

MIN_BYTES = 1
MAX_BYTES = 512
HEAD_READ = 4096


def prefix_length(head: bytes, at_eof: bool = False) -> int | None:
    """Length of the fingerprinted prefix of `head`, or None while it is not stable yet.

    `at_eof` (a file read once, or `--once`) accepts whatever is there.
    """
    if len(head) >= MAX_BYTES:
        nl = head.find(b"\n", MIN_BYTES - 1, MAX_BYTES)
        return nl + 1 if nl >= 0 else MAX_BYTES
    nl = head.find(b"\n", MIN_BYTES - 1)
    if nl >= 0:
        return nl + 1
    if at_eof and head:
        return len(head)
    return None


def fingerprint(head: bytes, at_eof: bool = False) -> str | None:
    """16 hex chars identifying the content that starts with `head` (None: not enough yet)."""
    n = prefix_length(head, at_eof)
    if n is None:
        return None
    return hashlib.blake2b(head[:n], digest_size=8).hexdigest()


def read_head(fd: int, size: int = HEAD_READ) -> bytes:
    """The first bytes of an open file, without moving any read position."""
    return os.pread(fd, size, 0)
