"""Where a checkpointed file went while the sidecar was down: its rotated siblings.

A glob such as `logs/*.log` or a plain path does not match `app.log.1`, `app.log-20261204`,
`app-20261204.log` or `app.log.1.gz`, so a file rotated while the sidecar was down would
never be finished. Its checkpoint entry still names the path; the siblings of that path
(same directory, same name stem) are where logrotate and friends put it.
"""

from __future__ import annotations

import os
import struct

_SEPARATORS = ".-_"
_NOT_LOGS = (".tmp", ".part", ".swp", "~", ".bz2", ".xz", ".zst", ".zip")


def is_sibling(name: str, base: str) -> bool:
    """Whether `name` is a rotated generation of the file named `base`."""
    if name == base or name.endswith(_NOT_LOGS):
        return False
    core = name[:-3] if name.endswith(".gz") else name
    if len(core) > len(base) and core.startswith(base) and core[len(base)] in _SEPARATORS:
        return True  # app.log.1, app.log-20261204, app.log.1.gz
    stem, ext = os.path.splitext(base)
    return (bool(stem and ext) and len(core) > len(base) and core.startswith(stem)
            and core[len(stem)] in _SEPARATORS and core.endswith(ext))  # app-20261204.log(.gz)


def rotated_siblings(path: str) -> list[str]:
    """Regular files beside `path` that look like its rotated generations."""
    directory, base = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if is_sibling(name, base):
            sib = os.path.join(directory, name)
            if os.path.isfile(sib):
                out.append(sib)
    return out


def gz_size_hint(path: str) -> int | None:
    """Decompressed size modulo 2**32 from the gzip trailer (cheap; None if unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int(struct.unpack("<I", fh.read(4))[0])
    except (OSError, struct.error):
        return None
