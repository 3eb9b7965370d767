"""Telling apart files whose first line is the same, without changing anyone else's key.

The key of a file is its content fingerprint (first line, see fingerprint.py), which also
makes the records' `_id`s. Files that start with the same line (W3C/CSV `#Fields:` headers)
share it. So each checkpoint entry also remembers a *check*: the length and hash of the
first bytes read from that file (up to CHECK_BYTES). A file is given an existing key only
when its own first bytes hash to that key's check; a file whose fingerprint matches a key
but whose content does not is a different file and gets a key of its own,
`<fingerprint>.<dev>.<inode>`. Files with a unique first line keep the bare fingerprint,
so their keys and `_id`s are what they always were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping

CHECK_BYTES = 65_536

Check = tuple[int, str]  # (length, blake2b hex of the first `length` bytes)


def make_check(head: bytes) -> Check:
    return (len(head), hashlib.blake2b(head, digest_size=8).hexdigest())


def fp_of(key: str) -> str:
    """The content fingerprint a key starts with."""
    return key.split(".", 1)[0]


def verifies(check: Check, read_head: Callable[[int], bytes]) -> bool:
    """Whether a file's first bytes are the ones `check` was taken from."""
    length, _ = check
    head = read_head(length)
    return len(head) == length and make_check(head) == tuple(check)


def resolve(fp: str, candidates: Mapping[str, Check | None], read_head: Callable[[int], bytes],
            suffix: str, taken: Collection[str] = ()) -> tuple[str, bool]:
    """(key, known) for a file with fingerprint `fp`.

    `candidates` are the keys already used for this fingerprint with their checks (None: an
    entry written before checks existed, trusted as before); `taken` are keys of other files
    being read now. `known` is False for content never seen: a fresh fingerprint keeps the
    bare key; a collision gets `fp.suffix`.
    """
    best: tuple[int, int, str] | None = None
    for key, check in candidates.items():
        if key in taken:
            continue
        if check is None:
            if key == fp and best is None:
                best = (-1, 0, key)
            continue
        if verifies(check, read_head):
            rank = (check[0], 2 if key.endswith("." + suffix) else 1 if key == fp else 0, key)
            if best is None or rank > best:
                best = rank
    if best is not None:
        return best[2], True
    if fp not in candidates and fp not in taken:
        return fp, False
    key = f"{fp}.{suffix}"
    n = 2
    while key in candidates or key in taken:  # a stale key of a file that reused this inode
        key = f"{fp}.{suffix}.{n}"
        n += 1
    return key, False
