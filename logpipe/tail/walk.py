"""Recursive (`**`) glob that reads each directory once per scan.

`glob.glob(recursive=True)` follows directory symlinks without remembering where it has
been: a link back up the tree (`logs/a/up -> ..`) makes it walk paths like
`logs/a/up/a/up/...` until the kernel's symlink limit, and two such links make that
exponential. Here every directory is identified by (device, inode) and entered once;
meeting it again is reported to `on_loop`, once per directory and scan.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from pathlib import Path


def _is_glob(part: str) -> bool:
    return any(ch in part for ch in "*?[")


def _name_matches(name: str, pat: str) -> bool:
    """glob's rules: wildcards do not match a leading dot."""
    if name.startswith(".") and not pat.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pat)


def match_parts(parts: tuple[str, ...], pats: tuple[str, ...]) -> bool:
    """Whether relative path components match pattern components (`**` = any depth)."""
    if not pats:
        return not parts
    head = pats[0]
    if head == "**":
        for i in range(len(parts) + 1):
            if i and parts[i - 1].startswith("."):
                return False  # `**` does not enter hidden directories (as glob)
            if match_parts(parts[i:], pats[1:]):
                return True
        return False
    return bool(parts) and _name_matches(parts[0], head) and match_parts(parts[1:], pats[1:])


def walk_glob(pattern: str, on_loop: Callable[[str], None] | None = None) -> list[str]:
    """Regular files matching `pattern`, sorted, each directory entered at most once."""
    parts = Path(pattern).parts
    cut = next((i for i, p in enumerate(parts) if _is_glob(p)), len(parts))
    base = str(Path(*parts[:cut])) if cut else ""
    pats = tuple(parts[cut:])
    out: list[str] = []
    visited: set[tuple[int, int]] = set()
    stack: list[tuple[str, tuple[str, ...]]] = [(base or ".", ())]
    while stack:
        directory, rel = stack.pop()
        try:
            st = os.stat(directory)
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in visited:
            if on_loop is not None:
                on_loop(directory)
            continue
        visited.add(ident)
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            sub = (*rel, entry.name)
            try:
                if entry.is_dir():
                    if not entry.name.startswith("."):
                        stack.append((entry.path, sub))
                elif entry.is_file() and match_parts(sub, pats):
                    out.append(os.path.join(base, *sub) if base else os.path.join(*sub))
            except OSError:
                continue
    return sorted(out)
