"""A small Lucene query-string subset, parsed to a tree and evaluated against records.

Used by `logpipe query --archive` so the same query works offline. Supported:
`field:value`, bare terms (searched in `message`), `"quoted phrases"`, wildcards `*` `?`,
`AND` / `OR` / `NOT` (also `&&`, `||`, `!`, `+`/`-` prefixes, implicit AND between clauses),
parentheses, `field:(a OR b)`, ranges `status:>=500`, `status:[500 TO 599]`, `{a TO b}`,
`_exists_:field`. Semantics follow the index template: text fields (`message`,
`exception.message`, `exception.stack`) match words case-insensitively; other fields match
the whole value exactly; numbers compare numerically.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TEXT_FIELDS = frozenset({"message", "exception.message", "exception.stack", "deadletter.reason"})
DEFAULT_FIELD = "message"
_WORD = re.compile(r"\w+", re.UNICODE)


class QuerySyntaxError(ValueError):
    """The query cannot be parsed; the message points at the position."""


@dataclass
class Tok:
    kind: str  # TERM PHRASE LPAREN RPAREN COLON AND OR NOT PLUS RANGE EOF
    text: str
    pos: int


_SPECIAL = set('():"[]{}')


def tokenize(query: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "(":
            toks.append(Tok("LPAREN", ch, i))
            i += 1
        elif ch == ")":
            toks.append(Tok("RPAREN", ch, i))
            i += 1
        elif ch == ":":
            toks.append(Tok("COLON", ch, i))
            i += 1
        elif ch == '"':
            j, buf = i + 1, []
            while j < n and query[j] != '"':
                if query[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(query[j])
                j += 1
            if j >= n:
                raise QuerySyntaxError(f"unterminated quote starting at position {i + 1}")
            toks.append(Tok("PHRASE", "".join(buf), i))
            i = j + 1
        elif ch in "[{":
            close = query.find("]" if ch == "[" else "}", i)
            alt = query.find("}" if ch == "[" else "]", i)  # mixed brackets like [1 TO 5}
            ends = [e for e in (close, alt) if e >= 0]
            if not ends:
                raise QuerySyntaxError(f"unterminated range starting at position {i + 1}")
            end = min(ends)
            toks.append(Tok("RANGE", query[i:end + 1], i))
            i = end + 1
        elif query.startswith("&&", i):
            toks.append(Tok("AND", "&&", i))
            i += 2
        elif query.startswith("||", i):
            toks.append(Tok("OR", "||", i))
            i += 2
        elif ch in "!-+" and (not toks or toks[-1].kind in ("LPAREN", "AND", "OR", "NOT", "PLUS")
                              or query[i - 1].isspace()):
            toks.append(Tok("PLUS" if ch == "+" else "NOT", ch, i))
            i += 1
        else:
            j, buf = i, []
            while j < n and not query[j].isspace() and query[j] not in _SPECIAL:
                if query[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(query[j])
                j += 1
            word = "".join(buf)
            kind = {"AND": "AND", "OR": "OR", "NOT": "NOT"}.get(word, "TERM")
            toks.append(Tok(kind, word, i))
            i = j
    toks.append(Tok("EOF", "", n))
    return toks


# -- tree ---------------------------------------------------------------------------------
Node = tuple  # ("and", [nodes]) | ("or", [nodes]) | ("not", node) | ("match", field, kind, value)


class _Parser:
    def __init__(self, query: str) -> None:
        self.toks = tokenize(query)
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            return ("all",)
        node = self.or_expr(None)
        if self.peek().kind != "EOF":
            tok = self.peek()
            raise QuerySyntaxError(f"unexpected {tok.text!r} at position {tok.pos + 1}")
        return node

    def or_expr(self, field: str | None) -> Node:
        parts = [self.and_expr(field)]
        while self.peek().kind == "OR":
            self.take()
            parts.append(self.and_expr(field))
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_expr(self, field: str | None) -> Node:
        parts = [self.unary(field)]
        while self.peek().kind not in ("OR", "RPAREN", "EOF"):
            if self.peek().kind == "AND":
                self.take()
            parts.append(self.unary(field))
        return parts[0] if len(parts) == 1 else ("and", parts)

    def unary(self, field: str | None) -> Node:
        tok = self.peek()
        if tok.kind == "NOT":
            self.take()
            return ("not", self.unary(field))
        if tok.kind == "PLUS":
            self.take()
        return self.primary(field)

    def primary(self, field: str | None) -> Node:
        tok = self.take()
        if tok.kind == "LPAREN":
            node = self.or_expr(field)
            if self.take().kind != "RPAREN":
                raise QuerySyntaxError(f"missing ')' for '(' at position {tok.pos + 1}")
            return node
        if tok.kind == "TERM" and self.peek().kind == "COLON" and field is None:
            self.take()
            nxt = self.peek()
            if nxt.kind == "LPAREN":
                self.take()
                node = self.or_expr(tok.text)
                if self.take().kind != "RPAREN":
                    raise QuerySyntaxError(f"missing ')' after {tok.text}:( at position {nxt.pos + 1}")
                return node
            if nxt.kind not in ("TERM", "PHRASE", "RANGE"):
                raise QuerySyntaxError(f"missing value after '{tok.text}:' at position {nxt.pos + 1}")
            return self.value(tok.text, self.take())
        if tok.kind in ("TERM", "PHRASE", "RANGE"):
            return self.value(field, tok)
        if tok.kind == "EOF":
            raise QuerySyntaxError("query ends where a term was expected")
        raise QuerySyntaxError(f"unexpected {tok.text!r} at position {tok.pos + 1}")

    def value(self, field: str | None, tok: Tok) -> Node:
        fld = field or DEFAULT_FIELD
        if fld == "_exists_":
            return ("exists", tok.text)
        if tok.kind == "PHRASE":
            return ("match", fld, "phrase", tok.text)
        if tok.kind == "RANGE":
            return ("match", fld, "range", _parse_range(tok))
        text = tok.text
        for op in (">=", "<=", ">", "<"):
            if text.startswith(op) and len(text) > len(op):
                bound = text[len(op):]
                lo = (bound, op == ">=") if op.startswith(">") else None
                hi = (bound, op == "<=") if op.startswith("<") else None
                return ("match", fld, "range", (lo, hi))
        if text == "*":
            return ("exists", fld)
        if "*" in text or "?" in text:
            return ("match", fld, "wildcard", text)
        return ("match", fld, "term", text)


def _parse_range(tok: Tok) -> tuple[Any, Any]:
    inner = tok.text[1:-1].strip()
    parts = re.split(r"\s+TO\s+", inner)
    if len(parts) != 2:
        raise QuerySyntaxError(f"range {tok.text!r} at position {tok.pos + 1} needs the form [a TO b]")
    lo_s, hi_s = (p.strip().strip('"') for p in parts)
    lo = None if lo_s == "*" else (lo_s, tok.text[0] == "[")
    hi = None if hi_s == "*" else (hi_s, tok.text[-1] == "]")
    return (lo, hi)


def parse(query: str) -> Node:
    """Parse `query` into a tree; raises QuerySyntaxError with a position on bad syntax."""
    return _Parser(query).parse()


# -- evaluation ---------------------------------------------------------------------------
def get_field(record: dict[str, Any], path: str) -> Any:
    """Flat key first (`event.kind` as written by logpipe), then nested objects."""
    if path in record:
        return record[path]
    if path.endswith(".keyword") and path[:-8] in record:
        return record[path[:-8]]
    node: Any = record
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if v is not None]
    return [value]


def _num(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return float(x)
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _cmp(value: Any, bound: str) -> int | None:
    """Compare a record value with a range bound: numeric when both are numbers, else text."""
    a, b = _num(value), _num(bound)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    if isinstance(value, int | float | bool):
        return None
    sa, sb = str(value), bound
    return (sa > sb) - (sa < sb)


def _in_range(value: Any, rng: tuple[Any, Any]) -> bool:
    lo, hi = rng
    if lo is not None:
        c = _cmp(value, lo[0])
        if c is None or c < 0 or (c == 0 and not lo[1]):
            return False
    if hi is not None:
        c = _cmp(value, hi[0])
        if c is None or c > 0 or (c == 0 and not hi[1]):
            return False
    return True


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _match_one(value: Any, field: str, kind: str, arg: Any) -> bool:
    text_field = field in TEXT_FIELDS
    if kind == "range":
        return _in_range(value, arg)
    if isinstance(value, dict):
        return False
    if text_field and isinstance(value, str):
        words = _words(value)
        if kind == "wildcard":
            pat = arg.lower()
            return any(fnmatch.fnmatchcase(w, pat) for w in words)
        needle = _words(arg)
        if not needle:
            return False
        if len(needle) == 1:
            return needle[0] in words
        k = len(needle)
        return any(words[i:i + k] == needle for i in range(len(words) - k + 1))
    if isinstance(value, bool):
        sval = "true" if value else "false"
    else:
        sval = str(value)
    if kind == "wildcard":
        return fnmatch.fnmatchcase(sval, arg)
    if isinstance(value, int | float) and not isinstance(value, bool):
        n = _num(arg)
        return n is not None and float(value) == n
    return sval == arg


def compile_query(query: str) -> Callable[[dict[str, Any]], bool]:
    """Parse once, return a predicate over records."""
    tree = parse(query)
    return lambda record: evaluate(tree, record)


def evaluate(node: Node, record: dict[str, Any]) -> bool:
    op = node[0]
    if op == "match":
        _, field, kind, arg = node
        return any(_match_one(v, field, kind, arg) for v in _values(get_field(record, field)))
    if op == "and":
        return all(evaluate(n, record) for n in node[1])
    if op == "or":
        return any(evaluate(n, record) for n in node[1])
    if op == "not":
        return not evaluate(node[1], record)
    if op == "exists":
        return bool(_values(get_field(record, node[1])))
    if op == "all":
        return True
    raise ValueError(f"unknown node {op}")
