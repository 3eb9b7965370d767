"""Rotation: gzip generations plus the live file hold exactly the lines written, in order."""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path

import pytest

from logpipe.emit import files
from logpipe.emit.setup import flush_logging, setup_logging, shutdown_logging

DAY = 86400


def _size_generations(d: Path, name: str) -> list[Path]:
    gens = [p for p in d.iterdir() if re.fullmatch(re.escape(name) + r"\.\d+\.gz", p.name)]
    return sorted(gens, key=lambda p: -int(p.name.split(".")[-2]))  # oldest (highest N) first


def _lines(paths: list[Path]) -> list[bytes]:
    out: list[bytes] = []
    for p in paths:
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        out.extend(data.splitlines())
    return out


def test_size_rotation_keeps_every_line(tmp_path: Path) -> None:
    try:
        setup_logging(service="rot", log_dir=tmp_path, console="off", app_max_bytes=8192, app_backup_count=500)
        log = logging.getLogger("rot")
        for i in range(3000):
            log.info("line %d", i, extra={"i": i, "pad": "x" * (i % 50)})
    finally:
        shutdown_logging()
    gens = _size_generations(tmp_path, "app.log")
    assert len(gens) > 20
    lines = _lines([*gens, tmp_path / "app.log"])
    assert [json.loads(x)["i"] for x in lines] == list(range(3000))
    for g in gens:
        assert len(gzip.decompress(g.read_bytes())) <= 8192
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "app.log.1").exists()


def test_size_rotation_keeps_only_the_newest_generations(tmp_path: Path) -> None:
    try:
        setup_logging(service="rot", log_dir=tmp_path, console="off", app_max_bytes=4096, app_backup_count=3)
        for i in range(2000):
            logging.getLogger("rot").info("line", extra={"i": i})
    finally:
        shutdown_logging()
    gens = _size_generations(tmp_path, "app.log")
    assert [g.name for g in gens] == ["app.log.3.gz", "app.log.2.gz", "app.log.1.gz"]
    got = [json.loads(x)["i"] for x in _lines([*gens, tmp_path / "app.log"])]
    assert got == list(range(2000 - len(got), 2000))


def test_time_rotation_at_utc_midnight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_700_000_000.0]  # 2023-11-14T22:13:20Z
    monkeypatch.setattr(files, "_now", lambda: clock[0])
    expected_err: list[int] = []
    expected_acc: list[int] = []
    n = 0
    try:
        setup_logging(service="rot", log_dir=tmp_path, console="off", error_backup_count=30)
        err, acc = logging.getLogger("e"), logging.getLogger("logpipe.access")
        for _day in range(4):
            for _ in range(250):
                err.error("failure", extra={"n": n})
                acc.info("GET /", extra={"method": "GET", "path": "/", "status": 200, "n": n})
                expected_err.append(n)
                expected_acc.append(n)
                n += 1
            assert flush_logging(10)
            clock[0] += DAY
    finally:
        shutdown_logging()
    for name, expected in (("error.log", expected_err), ("access.log", expected_acc)):
        gens = sorted(tmp_path.glob(f"{name}.*.gz"))
        assert [g.name for g in gens] == [f"{name}.2023-11-14.gz", f"{name}.2023-11-15.gz",
                                          f"{name}.2023-11-16.gz"]
        lines = _lines([*gens, tmp_path / name])
        assert [json.loads(x)["n"] for x in lines] == expected
    # access records never reach app.log; error records reach both app.log and error.log
    app = [json.loads(x) for x in _lines([tmp_path / "app.log"])]
    assert len(app) == len(expected_err) and all(r["level"] == "error" for r in app)


def test_time_rotation_prunes_old_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_700_000_000.0]
    monkeypatch.setattr(files, "_now", lambda: clock[0])
    try:
        setup_logging(service="rot", log_dir=tmp_path, console="off", error_backup_count=2)
        for day in range(5):
            logging.getLogger("e").error("day %d", day)
            assert flush_logging(10)
            clock[0] += DAY
    finally:
        shutdown_logging()
    assert sorted(p.name for p in tmp_path.glob("error.log.*.gz")) == [
        "error.log.2023-11-16.gz", "error.log.2023-11-17.gz"]


def test_restart_rotates_a_file_left_from_an_earlier_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_700_000_000.0]
    monkeypatch.setattr(files, "_now", lambda: clock[0])
    old = tmp_path / "error.log"
    old.write_text('{"message":"yesterday"}\n')
    import os

    os.utime(old, (clock[0] - DAY, clock[0] - DAY))
    try:
        setup_logging(service="rot", log_dir=tmp_path, console="off")
        logging.getLogger("e").error("today")
    finally:
        shutdown_logging()
    (gen,) = tmp_path.glob("error.log.*.gz")
    assert gen.name == "error.log.2023-11-13.gz"
    assert gzip.decompress(gen.read_bytes()) == b'{"message":"yesterday"}\n'
    assert json.loads(old.read_text())["message"] == "today"


def test_default_retention_is_app_log_10_mib_times_5(tmp_path: Path) -> None:
    """README: `app.log` 10 MB × 5 by default (no size or count passed)."""
    pad = "y" * (1 << 20)
    try:
        setup_logging(service="rot", log_dir=tmp_path, console="off")
        for i in range(70):
            logging.getLogger("rot").info("big %d", i, extra={"pad": pad})
            assert flush_logging(10)
    finally:
        shutdown_logging()
    gens = _size_generations(tmp_path, "app.log")
    assert [g.name for g in gens] == [f"app.log.{n}.gz" for n in (5, 4, 3, 2, 1)]
    for g in gens:
        assert 9 << 20 < len(gzip.decompress(g.read_bytes())) <= 10 << 20


def test_default_retention_of_error_and_access_logs_is_30_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_700_000_000.0]
    monkeypatch.setattr(files, "_now", lambda: clock[0])
    try:
        setup_logging(service="rot", log_dir=tmp_path, console="off")
        for day in range(33):
            logging.getLogger("e").error("day %d", day)
            logging.getLogger("logpipe.access").info("GET /", extra={"method": "GET", "path": "/", "status": 200})
            assert flush_logging(10)
            clock[0] += DAY
    finally:
        shutdown_logging()
    for name in ("error.log", "access.log"):
        gens = sorted(p.name for p in tmp_path.glob(f"{name}.*.gz"))
        assert len(gens) == 30 and gens[0] == f"{name}.2023-11-16.gz", gens
