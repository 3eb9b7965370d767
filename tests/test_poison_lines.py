"""Poison lines never stop delivery (issue 13, items 1-3), through `logpipe tail --once`.

Each corpus is 1,000 good lines, the poison, 1,000 good lines. For every sink (stdout, the
`file:` archive, Elasticsearch, Fluentd forward) all 2,000 good lines arrive, the poison line
arrives in its safe form (logpipe.safeform: tagged `_encode_failure`), it is counted, and the
run exits 0. Before the fix, deep JSON and big integers stopped every serialising sink
(exit 1, nothing delivered, the same on every restart).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fluentd_receiver import FluentdReceiver

from elasticsearch import Elasticsearch

LOGPIPE = [sys.executable, "-m", "logpipe"]
TS = "2026-11-24T07:15:27.029167Z"
BIG = "123456789012345678901234"  # 24 digits: beyond 64 bits


def _nest(depth: int, as_dict: bool) -> str:
    return ('{"k":' * depth + "1" + "}" * depth) if as_dict else ("[" * depth + "1" + "]" * depth)


def _json_good(i: int) -> str:
    return json.dumps({"@timestamp": TS, "level": "info", "message": f"good {i}", "service": "svc"})


def _nginx(i: int, nbytes: str = "512") -> str:
    return f'127.0.0.1 - - [24/Nov/2026:07:15:27 +0000] "GET /a/{i} HTTP/1.1" 200 {nbytes} "-" "curl/8"'


def _python(i: int, lineno: str = "42") -> str:
    return f"2026-11-24 07:15:27,029 - app.module - INFO - handler:{lineno} - good {i}"


# name -> (good line maker, poison lines, check of the poison records, message of good line i)
CORPORA: dict[str, tuple[Callable[[int], str], list[str], Callable[[list[dict[str, Any]]], None]]] = {}


def _check_deep(recs: list[dict[str, Any]]) -> None:
    assert len(recs) == 2
    for rec in recs:
        assert "a" not in rec and rec["tags"] == ["_encode_failure"]
        assert rec["message"].startswith('{"@timestamp":') and '"a":' in rec["message"]  # the original, as text
        assert rec["level"] == "info" and rec["_id"]


def _check_nginx(recs: list[dict[str, Any]]) -> None:
    (rec,) = recs
    assert rec["_overflow.bytes"] == BIG and "bytes" not in rec and rec["tags"] == ["_encode_failure"]
    assert rec["message"] == _nginx(5, BIG) and rec["status"] == 200


def _check_lineno(recs: list[dict[str, Any]]) -> None:
    (rec,) = recs
    assert rec["_overflow.lineno"] == BIG + "0" and "lineno" not in rec and rec["tags"] == ["_encode_failure"]
    assert rec["message"] == "poison"


def _check_level(recs: list[dict[str, Any]]) -> None:
    (rec,) = recs
    assert rec["level"] == "2.5" and rec["tags"] == ["_encode_failure"] and rec["message"] == "level poison"


CORPORA = {
    "deep_json": (_json_good, [
        json.dumps({"@timestamp": TS, "level": "info", "message": "deep lists", "service": "svc"})[:-1]
        + ', "a": ' + _nest(300, False) + "}",
        json.dumps({"@timestamp": TS, "level": "info", "message": "deep objects", "service": "svc"})[:-1]
        + ', "a": ' + _nest(1_000, True) + "}",
    ], _check_deep),
    "nginx_bytes": (_nginx, [_nginx(5, BIG)], _check_nginx),
    "python_lineno": (_python, [_python(0, BIG + "0").replace("good 0", "poison")], _check_lineno),
    "level_float": (_json_good, [json.dumps({"@timestamp": TS, "level": 2.5, "message": "level poison"})],
                    _check_level),
}


def write_corpus(path: Path, name: str) -> list[str]:
    """The file, and the messages of its good lines (for nginx: the line itself)."""
    good, poison, _ = CORPORA[name]
    lines = [good(i) for i in range(1_000)] + poison + [good(i) for i in range(1_000, 2_000)]
    path.write_text("\n".join(lines) + "\n")
    if good is _nginx:
        return [good(i) for i in range(2_000)]
    return [f"good {i}" for i in range(2_000)]


def tail_once(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(LOGPIPE + ["tail", *args, "--once"], cwd=cwd, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "failed" not in proc.stderr, proc.stderr[-2000:]
    return proc


def split(records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages of untagged log records, tagged records, metric records)."""
    logs = [r for r in records if "event.kind" not in r]
    good = [r["message"] for r in logs if not r.get("tags")]
    return good, [r for r in logs if r.get("tags")], [r for r in records if "event.kind" in r]


def assert_delivered(name: str, records: list[dict[str, Any]], expected: list[str]) -> list[dict[str, Any]]:
    good, tagged, metrics = split(records)
    assert sorted(good) == sorted(expected)  # all 2,000 good lines, once each
    CORPORA[name][2](tagged)
    return metrics


@pytest.mark.parametrize("name", list(CORPORA))
def test_stdout(tmp_path: Path, name: str) -> None:
    expected = write_corpus(tmp_path / "app.log", name)
    proc = tail_once(["app.log", "--sink", "-"], tmp_path)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    metrics = assert_delivered(name, records, expected)
    poison = len(CORPORA[name][1])
    assert f"{poison} in the safe form (tagged _encode_failure)" in proc.stderr  # counted
    assert metrics  # the run's metric records went out too
    if name == "level_float":
        overall = next(m for m in metrics if m.get("route") == "*")
        assert overall["levels"] == {"info": 2_000, "2.5": 1}


@pytest.mark.parametrize("name", list(CORPORA))
def test_archive(tmp_path: Path, name: str) -> None:
    expected = write_corpus(tmp_path / "app.log", name)
    tail_once(["app.log", "--sink", "file:archive"], tmp_path)
    records = [json.loads(line) for seg in sorted((tmp_path / "archive").rglob("*.ndjson.gz"))
               for line in gzip.decompress(seg.read_bytes()).splitlines()]
    assert_delivered(name, records, expected)


@pytest.mark.parametrize("name", list(CORPORA))
def test_forward(tmp_path: Path, name: str) -> None:
    expected = write_corpus(tmp_path / "app.log", name)
    with FluentdReceiver() as rx:
        tail_once(["app.log", "--sink", f"forward://127.0.0.1:{rx.port}"], tmp_path)
        records = rx.records()
    assert_delivered(name, records, expected)


@pytest.mark.parametrize("name", list(CORPORA))
def test_elasticsearch(es_url: str, tmp_path: Path, name: str) -> None:
    index = f"logpipe-test-poison-{uuid.uuid4().hex[:12]}"
    expected = write_corpus(tmp_path / "app.log", name)
    (tmp_path / "sidecar.toml").write_text(
        f'[[inputs]]\npaths = ["app.log"]\n\n[sink]\nurl = "{es_url}"\nindex = "{index}"\n\n'
        "[metrics]\ninterval_s = 0\n")  # metric records would go to the shared logpipe-metrics-*
    client = Elasticsearch(es_url)
    try:
        tail_once(["--config", "sidecar.toml"], tmp_path)
        client.indices.refresh(index=index)
        hits = client.search(index=index, size=3_000, query={"match_all": {}})["hits"]["hits"]
        assert_delivered(name, [h["_source"] | {"_id": h["_id"]} for h in hits], expected)
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()


def test_a_float_level_does_not_stop_delivery_at_the_first_metrics_interval(tmp_path: Path) -> None:
    """Follow mode: before the fix the metric record counting level 2.5 killed the delivery
    thread at the first interval; the process kept running and delivered nothing more."""
    import signal
    import threading
    import time

    expected = write_corpus(tmp_path / "app.log", "level_float")
    (tmp_path / "sidecar.toml").write_text('[[inputs]]\npaths = ["app.log"]\n\n[sink]\nurl = "-"\n\n'
                                           "[metrics]\ninterval_s = 1\n")
    proc = subprocess.Popen(LOGPIPE + ["tail", "--config", "sidecar.toml"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: out.extend(json.loads(line) for line in proc.stdout), daemon=True)
    reader.start()

    def wait_for(cond: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not cond():
            assert proc.poll() is None and time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    try:
        wait_for(lambda: any(r.get("event.kind") == "metric" for r in list(out)), "the first metric record")
        with open(tmp_path / "app.log", "a") as fh:  # written after the first interval
            fh.write("\n".join(_json_good(i) for i in range(2_000, 2_500)) + "\n")
        wait_for(lambda: sum(1 for r in list(out) if "event.kind" not in r) >= 2_501, "the lines written later")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        reader.join(10)
    assert code == 0
    assert_delivered("level_float", out, expected + [f"good {i}" for i in range(2_000, 2_500)])
