"""Turning request paths into route templates, with a cardinality cap.

Why: a metric per raw path (/users/123, /users/124, ...) explodes Prometheus and makes
percentiles meaningless. Ids, UUIDs, hashes/tokens and emails become placeholders; a
`route` the middleware already wrote (the framework's own template) wins; past
`max_routes_per_method` distinct routes per method, new ones fold into `{other}`.
"""

from __future__ import annotations

import re

OTHER = "{other}"

_SCHEME_HOST = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*")


def _looks_random(seg: str) -> bool:
    """Tokens mix digits and letters; long slugs such as 'reset-password-confirmation' do not."""
    digits = sum(c.isdigit() for c in seg)
    upper = sum(c.isupper() for c in seg)
    return digits >= 2 and (upper >= 1 or digits >= 4)


# Each rule starts with a literal "/" (re's fast prefix scan) and ends at the segment's end;
# the rules run in order over the whole text, so a batch of paths joined by newlines takes
# a handful of C-level scans and no Python per path. Order: email, uuid, id, hash, token.
_END = r"(?=[/\n]|$)"
_RULES = (
    (re.compile(r"/[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}" + _END),
     "/{uuid}"),
    (re.compile(r"/[+-]?\d+(?:[.,]\d+)?" + _END), "/{id}"),
    (re.compile(r"/(?:0x)?(?=[a-fA-F]*\d)[0-9a-fA-F]{16,}" + _END), "/{hash}"),
)
_EMAIL = re.compile(r"/[^@/\s]+(?:@|%40)[^@/\s]+\.[A-Za-z]{2,}" + _END)
_TOKEN = re.compile(r"/[A-Za-z0-9_\-+=~.]{20,}" + _END)
_QUERY = re.compile(r"[?#][^\n]*")
_QUERY_ONLY = re.compile(r"\?[^\n]*")  # literal-led: re jumps between '?'s in C (~3x faster)


def _token_repl(m: re.Match[str]) -> str:
    seg = m.group(0)
    return "/{hash}" if _looks_random(seg[1:]) else seg


def _apply(text: str) -> str:
    """The placeholder rules over one path or many joined by newlines (query already gone)."""
    if "@" in text or "%40" in text:
        text = _EMAIL.sub("/{email}", text)
    for rx, repl in _RULES:
        text = rx.sub(repl, text)
    return _TOKEN.sub(_token_repl, text)


def normalise_path(path: str) -> str:
    """Drop scheme/host, query and fragment; replace variable segments with placeholders."""
    if not path:
        return "/"
    cut = len(path)
    for ch in "?#":
        i = path.find(ch)
        if 0 <= i < cut:
            cut = i
    path = path[:cut].replace("\n", " ")
    if "://" in path:
        path = _SCHEME_HOST.sub("", path)
    if not path.startswith("/"):
        path = "/" + path
    return _apply(path)


def normalise_paths(paths: list[str]) -> list[str]:
    """normalise_path over a batch: a few regex scans over the joined paths instead of
    Python work per path (new ids make most paths unique, so a cache rarely helps)."""
    if len(paths) < 4:
        return [normalise_path(p) for p in paths]
    joined = "\n".join(paths)
    if joined.count("\n") != len(paths) - 1 or "://" in joined:
        return [normalise_path(p) for p in paths]  # odd input: the careful path
    if "#" in joined:
        joined = _QUERY.sub("", joined)
    elif "?" in joined:
        joined = _QUERY_ONLY.sub("", joined)
    out = _apply(joined).split("\n")
    if out[0].startswith("/") and joined.count("\n/") == len(paths) - 1:
        return out  # every path was absolute (the usual case): no per-path check
    for i, p in enumerate(out):
        if not p.startswith("/"):
            out[i] = normalise_path(paths[i])
    return out


# Shape keys: ASCII digits other than 0 and 4 folded to "1". The rules above only ask "is
# it a digit" (\d, hex and token classes, the digit counts of _looks_random) and name no
# digit literally except the 0 of "0x" and the 4 and 0 of "%40", which stay as they are; so
# two paths with the same shape get the same placeholders and keep the same segments,
# which differ only in folded digits. Hence: a template with none of the folded digits is
# the template of *every* path of that shape (/api/users/8812 and /api/users/1 -> /api/users/{id}).
_FOLD = bytes.maketrans(b"12356789", b"11111111")
_FOLDED = frozenset("12356789")


def shape_keys(paths: list[str]) -> list[bytes] | None:
    """One shape key per path (a few C-level passes over the joined batch); None when a path
    holds a newline (the batch cannot be split back reliably)."""
    joined = "\n".join(paths)
    if joined.count("\n") != len(paths) - 1:
        return None
    return joined.encode("utf-8", "surrogatepass").translate(_FOLD).split(b"\n")


def shape_safe(template: str) -> bool:
    """True when `template` is the template of every path with the same shape key."""
    return _FOLDED.isdisjoint(template)


class RouteTable:
    """Route templates per method, capped; remembers which (method, path) maps where."""

    def __init__(self, max_routes_per_method: int = 1000, cache_size: int = 200_000,
                 max_methods: int = 32) -> None:
        self.max_routes_per_method = max_routes_per_method
        self.max_methods = max_methods
        self.cache_size = cache_size
        self._routes: dict[str, set[str]] = {}
        self._cache: dict[tuple[str, str], str] = {}

    def route_for(self, method: str, path: str | None, route: str | None = None) -> str:
        """Route template for one request; a given `route` wins over the path."""
        key = (method, route or path or "")
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if route:
            template = route.split("?", 1)[0] or "/"
        else:
            template = normalise_path(path or "")
        template = self._capped(self.method(method), template)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = template
        return template

    def method(self, method: str) -> str:
        """Scanners send junk methods; past `max_methods` distinct ones they fold into {other}."""
        if method in self._routes:
            return method
        if len(self._routes) < self.max_methods:
            self._routes[method] = set()
            return method
        return OTHER

    def capped(self, method: str, template: str) -> str:
        """Apply the per-method cap to an already normalised template."""
        return self._capped(method, template)

    def _capped(self, method: str, template: str) -> str:
        known = self._routes.setdefault(method, set())
        if template in known:
            return template
        if len(known) >= self.max_routes_per_method:
            return OTHER
        known.add(template)
        return template

    def route_count(self) -> int:
        return sum(len(v) for v in self._routes.values())
