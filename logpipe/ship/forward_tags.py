"""Fluentd tags from a template such as `logpipe.{service}.{kind}`, so Fluentd can route.

Tags are computed per distinct tuple of the fields the template uses (cached), the record's
kind (access / error / app / metric / alert) by `logpipe.fields.record_kind`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any

from logpipe.fields import record_kind

_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")


def hashable_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Tag keys with dict/list values (odd but possible) become their repr()."""
    return tuple(v if isinstance(v, str | int | float | type(None)) else repr(v) for v in key)


class TagRenderer:
    """Render the tag template (e.g. `logpipe.{service}.{kind}`) per distinct field tuple;
    unsafe characters become `_`, missing values `unknown`."""

    def __init__(self, template: str) -> None:
        self.template = template or "logpipe.{service}.{kind}"
        names: list[str] = []
        for _, field_name, _, _ in string.Formatter().parse(self.template):
            if field_name is not None:
                if field_name == "" or field_name.isdigit():
                    raise ValueError(f"tag template {self.template!r}: use named fields like {{service}}")
                names.append(field_name)
        self.fields = tuple(dict.fromkeys(names))
        self.uses_kind = "kind" in self.fields
        self.plain = tuple(f for f in self.fields if f != "kind")  # read straight from the record
        self._cache: dict[tuple[Any, ...], str] = {}

    def key(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """Cheap grouping key: the raw values the tag depends on."""
        kind = record_kind(record) if self.uses_kind else ""
        return (kind, *[record.get(f) for f in self.plain])

    def tag_for_key(self, key: tuple[Any, ...]) -> str:
        tag = self._cache.get(key)
        if tag is None:
            values = {"kind": self._clean(key[0])} if self.uses_kind else {}
            for name, raw in zip(self.plain, key[1:], strict=True):
                values[name] = self._clean(raw)
            tag = self.template.format(**values)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = tag
        return tag

    def render(self, record: dict[str, Any]) -> str:
        key = self.key(record)
        try:
            return self.tag_for_key(key)
        except TypeError:
            return self.tag_for_key(hashable_key(key))

    @staticmethod
    def _clean(raw: Any) -> str:
        text = _TAG_UNSAFE.sub("_", str(raw)).strip("_") if raw is not None else ""
        return text or "unknown"

    def group(self, records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Records by tag, preserving order within each tag."""
        out: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            out.setdefault(self.render(record), []).append(record)
        return out
