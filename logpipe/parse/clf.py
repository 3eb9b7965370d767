"""nginx/Apache access logs: Common and Combined Log Format, optional trailing request time.

`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "ref" "UA" 0.012`

One regex serves both formats (the referrer/user-agent pair is optional) so a combined file
with a few common lines still parses. A request line that is not `METHOD URI PROTO` (TLS
handshakes sent to an HTTP port, scanners) keeps the record with status and bytes.
"""

from __future__ import annotations

import re
from typing import Any

from logpipe import fields as F
from logpipe.parse.common import split_query
from logpipe.parse.textfmt import _TextParser

REFERRER = "referrer"
REMOTE_USER = "remote_user"

_Q = r'[^"\\]*(?:\\.[^"\\]*)*'  # quoted text with backslash escapes, unrolled for speed
CLF_RE = re.compile(
    r'(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] '
    r'"(?:(?P<method>[A-Za-z]+) (?P<uri>[^\s"\\]+(?:\\.[^\s"\\]*)*)(?: [^\s"]+)?|(?P<req>' + _Q + r'))" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<ref>' + _Q + r')" "(?P<ua>' + _Q + r')")?'
    r'(?: (?P<rt>\d+\.\d+)(?=\s*$))?(?P<extra>.*)'
)


def _request_time(extra: str) -> float | None:
    """nginx `$request_time` (seconds with a fraction) as the last token after the standard fields."""
    token = extra.rstrip().rpartition(" ")[2]
    if "." in token and token.replace(".", "", 1).isdigit():
        return round(float(token) * 1000.0, 3)
    return None


class ClfParser(_TextParser):
    """Common and combined formats (both names map here; detection tells them apart)."""

    def _one(self, text: str, now: str) -> dict[str, Any] | None:
        m = CLF_RE.match(text)
        if m is None:
            return None
        ip, user, ts, method, uri, status, nbytes, ref, ua, rt = m.group(
            "ip", "user", "ts", "method", "uri", "status", "bytes", "ref", "ua", "rt")
        rec: dict[str, Any] = {F.TIMESTAMP: self.times.clf(ts) or now, F.MESSAGE: text}
        if method is not None:
            rec[F.METHOD] = method.upper()
            rec[F.PATH] = split_query(uri)
        rec[F.STATUS] = int(status)
        if rt is not None:
            rec[F.DURATION_MS] = round(float(rt) * 1000.0, 3)
        else:
            extra = m.group("extra")
            if extra:  # request time after other custom fields (e.g. "$http_x_forwarded_for")
                duration = _request_time(extra)
                if duration is not None:
                    rec[F.DURATION_MS] = duration
        rec[F.CLIENT_IP] = ip
        if ua is not None and ua != "-":
            rec[F.USER_AGENT] = ua
        rec[F.BYTES] = 0 if nbytes == "-" else int(nbytes)
        if ref is not None and ref != "-":
            rec[REFERRER] = ref
        if user != "-":
            rec[REMOTE_USER] = user
        return rec
