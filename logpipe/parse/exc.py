"""Python tracebacks inside a joined event → the record's `exception` {type, message, stack}.

The multiline joiner glues a traceback to the log line before it; here we split it off again
so `message` stays the one-line human message and the stack is a structured field.
"""

from __future__ import annotations

import re
from typing import Any

TB_HEADER = "Traceback (most recent call last):"
GROUP_HEADER = "Exception Group Traceback (most recent call last):"
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
#: A traceback's last line: `ValueError: bad`, `pkg.mod.Error: x`, bare `KeyboardInterrupt`.
EXC_LINE = re.compile(r"[A-Za-z_][\w.]*(?::(?: |$)|$)")


def _exception_line(stack_lines: list[str]) -> tuple[str, str]:
    """Find the final exception's `Type: message` in a traceback's lines.

    The last traceback block wins (in a chain that is the exception that propagated). A plain
    block ends with the first unindented line after its frames; its message may continue on
    following lines until a blank line. Exception groups draw boxes with '|' and '+'; their
    first `Type: message` inside the box is the group itself.
    """
    last, grouped = -1, False
    for i, line in enumerate(stack_lines):
        if line.startswith("Traceback (most recent call last)"):
            last, grouped = i, False
        elif GROUP_HEADER in line:
            last, grouped = i, True
    if last < 0:
        return "", ""
    if grouped:
        for line in stack_lines[last + 1:]:
            body = line.strip().lstrip("+-").lstrip("|").strip()
            if body and not body.startswith(("File ", "Traceback", "Exception Group")) and EXC_LINE.match(body):
                return _split_type(body)
        return "", ""
    for j in range(last + 1, len(stack_lines)):
        line = stack_lines[j]
        if line and line[0] not in " \t":
            typ, msg = _split_type(line)
            more = []
            for extra in stack_lines[j + 1:]:
                if not extra.strip() or extra.startswith(_CHAIN):
                    break
                more.append(extra)
            if more:
                msg = "\n".join([msg, *more]).rstrip()
            return typ, msg
    return "", ""


def _split_type(line: str) -> tuple[str, str]:
    line = line.rstrip("\r")
    typ, sep, msg = line.partition(":")
    if not sep:
        return line.strip(), ""
    if " " in typ.strip():  # not an exception name after all
        return "", line
    return typ.strip(), msg.strip()


def split_traceback(text: str, *, skip_first_line: bool = True) -> tuple[str, dict[str, Any] | None]:
    """Return (message, exception-or-None) for a (possibly multi-line) event text.

    With `skip_first_line`, a traceback header on the first line is ignored (it is part of the
    log message itself); the message is everything before the traceback.
    """
    start = text.find("\n") if skip_first_line else 0
    if start < 0:
        return text, None
    i = text.find("Traceback (most recent call last):", start)
    if i < 0:
        return text, None
    line_start = text.rfind("\n", 0, i) + 1
    stack = text[line_start:].rstrip()
    head = text[:line_start].rstrip()
    typ, msg = _exception_line(stack.splitlines())
    if not head:
        head = f"{typ}: {msg}" if msg else (typ or stack.split("\n", 1)[0])
    return head, {"type": typ, "message": msg, "stack": stack}


def from_string(value: str) -> dict[str, Any]:
    """A formatted traceback string (python-json-logger `exc_info`, structlog) → exception dict."""
    stack = value.rstrip()
    typ, msg = _exception_line(stack.splitlines())
    return {"type": typ, "message": msg, "stack": stack}
