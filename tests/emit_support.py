"""Shared helpers for the emit / scrub / middleware tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logpipe.emit.setup import flush_logging, setup_logging, shutdown_logging


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line must be one JSON object; returns them in order."""
    if not path.exists():
        return []
    out = []
    for raw in path.read_bytes().splitlines():
        obj = json.loads(raw)
        assert isinstance(obj, dict), raw
        out.append(obj)
    return out


@pytest.fixture(name="logdir")
def logdir_fixture(tmp_path: Path) -> Iterator[Path]:
    """setup_logging into tmp_path (console off); shut down afterwards."""
    setup_logging(service="svc", environment="test", version="9.9.9", log_dir=tmp_path, console="off",
                  level="DEBUG")
    try:
        yield tmp_path
    finally:
        shutdown_logging()


def flushed() -> None:
    assert flush_logging(10.0)
