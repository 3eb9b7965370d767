"""Bad input never raises into the caller and always yields one valid JSON line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import logging
import uuid
from pathlib import Path

import pytest
from emit_support import (
    flushed,
    logdir_fixture,  # noqa: F401  (pytest fixture "logdir")
    read_json_lines,
)

from logpipe import fields as F
from logpipe import get_logger
from logpipe.emit.render import dumps


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Custom:
    def __repr__(self) -> str:
        return "<Custom 7>"


class Broken:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__


def test_unencodable_values_render_via_fallback(logdir: Path) -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    get_logger("bad").info(
        "values", when=when, day=dt.date(2026, 1, 2), amount=decimal.Decimal("12.50"), tags={"b", "a"},
        blob=b"\x00\xffok", obj=Custom(), colour=Colour.RED, point=Point(1, 2), uid=uuid.UUID(int=1),
        big=2**80, nested={1: {"deep": [Custom()]}}, delta=dt.timedelta(seconds=1.5), path=Path("/tmp/x"),
    )
    flushed()
    (rec,) = read_json_lines(logdir / "app.log")
    assert rec["when"] == "2026-01-02T03:04:05+00:00"
    assert rec["day"] == "2026-01-02"
    assert rec["amount"] == "12.50"
    assert rec["tags"] == ["a", "b"]
    assert rec["blob"] == "\x00\\xffok"
    assert rec["obj"] == "<Custom 7>"
    assert rec["colour"] == "red"
    assert rec["point"] == {"x": 1, "y": 2}
    assert rec["uid"] == str(uuid.UUID(int=1))
    assert rec["big"] == str(2**80)
    assert rec["nested"] == {"1": {"deep": ["<Custom 7>"]}}
    assert rec["delta"] == 1.5 and rec["path"] == "/tmp/x"


def test_surrogates_and_nul_bytes_still_one_valid_line(logdir: Path) -> None:
    std = logging.getLogger("bad.text")
    std.info("lone \udc80 surrogate and \x00 nul")
    get_logger("bad.text").info("field", value="x\ud800y", key_with_nul="a\x00b")
    std.info("multi\nline\r\nmessage")
    flushed()
    raw = (logdir / "app.log").read_bytes()
    assert raw.count(b"\n") == 3
    a, b, c = read_json_lines(logdir / "app.log")
    assert a[F.MESSAGE] == "lone \ufffd surrogate and \x00 nul"
    assert b["value"] == "x\ufffdy" and b["key_with_nul"] == "a\x00b"
    assert c[F.MESSAGE] == "multi\nline\r\nmessage"


def test_broken_repr_does_not_raise_into_caller(logdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    # pytest's own capture handler would raise on the broken repr; only ours is under test.
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if getattr(h, "logpipe", False)])
    std = logging.getLogger("bad.repr")
    std.info("value is %r", Broken())
    std.info(Broken())
    std.info("%s %s", "too few")
    get_logger("bad.repr").info(Broken(), field=Broken())
    get_logger("bad.repr").info("fine after")
    flushed()
    recs = read_json_lines(logdir / "app.log")
    assert len(recs) == 5
    assert "unformattable args" in recs[0][F.MESSAGE] and "Broken" in recs[0][F.MESSAGE]
    assert "unrepresentable Broken" in recs[1][F.MESSAGE]
    assert "too few" in recs[2][F.MESSAGE]
    assert "unrepresentable Broken" in recs[3]["field"]
    assert recs[4][F.MESSAGE] == "fine after"


def test_exception_with_broken_str(logdir: Path) -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    try:
        raise Weird()
    except Weird:
        logging.getLogger("bad.exc").exception("weird")
    flushed()
    (rec,) = read_json_lines(logdir / "error.log")
    assert rec[F.EXCEPTION]["type"].endswith("Weird")
    assert "Traceback" in rec[F.EXCEPTION]["stack"]


def test_field_named_like_a_core_field_does_not_overwrite_it(logdir: Path) -> None:
    get_logger("clash").info("real message", level_=1, service="fake", pid="nope")
    flushed()
    (rec,) = read_json_lines(logdir / "app.log")
    assert rec[F.SERVICE] == "svc" and rec["service_"] == "fake" and rec["pid_"] == "nope"


def test_dumps_handles_deep_nesting_and_cycles() -> None:
    deep: list = []
    cur = deep
    for _ in range(400):
        nxt: list = []
        cur.append(nxt)
        cur = nxt
    out = dumps({"deep": deep})
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    cyc: dict = {}
    cyc["self"] = cyc
    out = dumps({"cyc": cyc})
    assert out.endswith(b"\n") and out.count(b"\n") == 1
