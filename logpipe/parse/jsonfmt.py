"""One JSON object per line: logpipe's own records and other producers' JSON logs.

The hot path is a logpipe record already in schema: one `orjson.loads` plus a few cheap
checks (timestamp shape, lower-case level). Everything else — other time/level/message key
names, epoch times, offsets, string tracebacks — goes through `_normalise`, which is only
paid by foreign JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from logpipe import fields as F
from logpipe.parse import exc
from logpipe.parse.common import failure, level_name
from logpipe.parse.ecs import from_ecs
from logpipe.parse.timefmt import TimeConverter, now_iso
from logpipe.safeform import coerce_level

_TS_KEYS = ("time", "timestamp", "ts", "asctime", "@t", "datetime", "date")
_LEVEL_KEYS = ("lvl", "severity", "levelname", "log.level", "loglevel", "@l")
_ALL_LEVEL_KEYS = ("level", *_LEVEL_KEYS)
_MSG_KEYS = ("msg", "@m", "event", "log")  # "log": Docker's json-file driver
_LOGGER_KEYS = ("logger_name", "log.logger")


class JsonParser:
    """`parse_batch(texts)` → records; never raises (bad lines become `_parse_failure` records)."""

    def __init__(self, *, tz: str = "UTC", service: str = "") -> None:
        self.times = TimeConverter(tz)
        self.service = service
        self.failed = 0  # lines shipped as _parse_failure so far
        self.coerced = 0  # records whose non-string level became text (tagged _encode_failure)

    def parse_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        loads = orjson.loads
        service = self.service
        now: str | None = None
        out: list[dict[str, Any]] = []
        append = out.append
        for text in texts:
            try:
                rec = loads(text)
            except Exception:
                rec = self._retry(text)
            if rec.__class__ is dict:
                ts = rec.get("@timestamp")
                if ts.__class__ is str and len(ts) == 27 and ts[26] == "Z" and "message" in rec:
                    lv = rec.get("level")
                    tags = rec.get("tags")
                    # (records without a level take the slow path: that is where ECS documents,
                    # whose level sits in log.level, are recognised)
                    if lv.__class__ is str and lv.islower() and (
                            tags is None or tags.__class__ is list):
                        if service and "service" not in rec:
                            rec["service"] = service
                        append(rec)
                        continue
                try:
                    if now is None:
                        now = now_iso()
                    append(self._normalise(rec, now))
                except Exception:
                    self.failed += 1
                    append(failure(text, now, service))
            else:
                if now is None:
                    now = now_iso()
                self.failed += 1
                append(failure(text, now, service))
        return out

    @staticmethod
    def _retry(text: str) -> Any:
        """Second chance for a BOM or stray control bytes around an otherwise valid object."""
        cleaned = text.strip().lstrip("\ufeff").strip("\x00")
        if cleaned and cleaned != text:
            try:
                return orjson.loads(cleaned)
            except Exception:
                return None
        return None

    def _normalise(self, rec: dict[str, Any], now: str) -> dict[str, Any]:
        """Bring a foreign JSON object to the record format, keeping its other fields."""
        if "ecs" in rec or "ecs.version" in rec:
            rec = from_ecs(rec)
        ts_raw: Any = None
        ts_key = None
        if "@timestamp" in rec:
            ts_raw, ts_key = rec["@timestamp"], "@timestamp"
        else:
            for key in _TS_KEYS:
                if key in rec:
                    ts_raw, ts_key = rec[key], key
                    break
        ts = self.times.any(ts_raw) if ts_key is not None else None

        level: Any = None
        level_key = None
        for key in _ALL_LEVEL_KEYS:
            if key in rec:
                level, level_key = rec[key], key
                break
        if level_key is None:
            log = rec.get("log")
            if isinstance(log, dict) and "level" in log:
                level = log["level"]

        msg_key = None
        if "message" not in rec:
            for key in _MSG_KEYS:
                value = rec.get(key)
                if value.__class__ is str:
                    msg_key = key
                    break

        out: dict[str, Any] = {F.TIMESTAMP: ts if ts is not None else now}
        coerced = False
        if level is not None:
            name = level_name(level)
            if name.__class__ is not str:  # {"level": 2.5}: text, tagged (logpipe.safeform rule 6)
                name, coerced = coerce_level(name), True
            out[F.LEVEL] = name
        # Consume the keys we renamed, then copy the rest in one C-level update.
        if ts_key is not None and ts is not None:
            del rec[ts_key]
        elif ts_key == F.TIMESTAMP:  # present but unusable: keep what the producer wrote
            out["timestamp_raw"] = rec.pop(F.TIMESTAMP)
        if level_key is not None:
            del rec[level_key]
        if msg_key is not None:
            out[F.MESSAGE] = rec.pop(msg_key)
        if F.LOGGER not in rec:
            for key in _LOGGER_KEYS:
                if key in rec:
                    out[F.LOGGER] = rec.pop(key)
                    break
        out.update(rec)
        if F.MESSAGE not in out:  # every record has a message, so consumers need no special case
            out[F.MESSAGE] = ""
        excv = out.get(F.EXCEPTION)
        if excv.__class__ is str and excv:
            out[F.EXCEPTION] = exc.from_string(excv)
        elif F.EXCEPTION not in out:
            info = out.get("exc_info")
            if info.__class__ is str and "Traceback" in info:
                out[F.EXCEPTION] = exc.from_string(out.pop("exc_info"))
        tags = out.get(F.TAGS)
        if tags is not None and tags.__class__ is not list:
            # Later stages append markers (e.g. _invalid_utf8) to a list.
            out[F.TAGS] = [str(t) for t in tags] if isinstance(tags, tuple | set) else [str(tags)]
        if coerced:
            self.coerced += 1
            have = out.get(F.TAGS)
            out[F.TAGS] = [*(have or ()), F.TAG_ENCODE_FAILURE]
        if self.service and F.SERVICE not in out:
            out[F.SERVICE] = self.service
        return out
