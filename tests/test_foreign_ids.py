"""Record ids are the sidecar's (issue 13, item 11).

An `_id` in the input is kept only on records read back from our own `file:` archive
segments (what makes `replay logpipe-archive/` idempotent); any other input `_id` moves to
`_source_id` and the record gets our deterministic id. The ids of ordinary records do not
change: a fixed corpus keeps byte-identical ids.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

LOGPIPE = [sys.executable, "-m", "logpipe"]
TS = "2026-11-24T07:15:27.029167Z"


def run(args: list[str], cwd: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(LOGPIPE + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [r for r in map(json.loads, proc.stdout.splitlines()) if "event.kind" not in r]


def foreign_lines() -> list[str]:
    """Two different records with the same producer `_id` (one also claims an origin)."""
    return [
        json.dumps({"@timestamp": TS, "level": "info", "message": "first", "_id": "zzz", "log_offset": 0}),
        json.dumps({"@timestamp": TS, "level": "info", "message": "second", "_id": "zzz", "log_offset": 0}),
        json.dumps({"@timestamp": TS, "level": "info", "message": "plain"}),
    ]


def test_an_input_id_moves_to_source_id_and_the_record_gets_ours(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("\n".join(foreign_lines()) + "\n")
    first, second, plain = run(["tail", "app.log", "--sink", "-", "--once"], tmp_path)
    assert first["_source_id"] == second["_source_id"] == "zzz"
    assert first["_id"] != second["_id"] and "zzz" not in (first["_id"], second["_id"])
    assert first["_id"][:16] == second["_id"][:16] == plain["_id"][:16]  # same file fingerprint
    assert (int(first["_id"][16:], 16), first["log_offset"]) == (0, 0)
    assert int(second["_id"][16:], 16) == second["log_offset"] == len(foreign_lines()[0]) + 1
    assert "_source_id" not in plain and list(first)[-1] == "_id"  # ours last: the ES fast path


def test_two_records_sharing_a_foreign_id_are_two_documents(es_url: str, tmp_path: Path) -> None:
    index = f"logpipe-test-ids-{uuid.uuid4().hex[:12]}"
    (tmp_path / "app.log").write_text("\n".join(foreign_lines()) + "\n")
    (tmp_path / "sidecar.toml").write_text(f'[[inputs]]\npaths = ["app.log"]\n\n[sink]\nurl = "{es_url}"\n'
                                           f'index = "{index}"\n\n[metrics]\ninterval_s = 0\n')
    client = Elasticsearch(es_url)
    try:
        run(["tail", "--config", "sidecar.toml", "--once"], tmp_path)
        client.indices.refresh(index=index)
        hits = client.search(index=index, query={"term": {"_source_id": "zzz"}})["hits"]["hits"]
        assert sorted(h["_source"]["message"] for h in hits) == ["first", "second"]
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()


def test_replaying_our_own_archive_keeps_its_ids_and_another_file_does_not(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("\n".join(
        json.dumps({"@timestamp": TS, "level": "info", "message": f"event {i}"}) for i in range(50)) + "\n")
    tailed = run(["tail", "app.log", "--sink", "file:archive", "--once"], tmp_path)
    assert tailed == []  # nothing on stdout
    direct = run(["replay", "app.log", "--sink", "-"], tmp_path)
    ids = [r["_id"] for r in direct]
    for _ in range(2):  # idempotent: the archive's records keep the ids the tail gave them
        back = run(["replay", "archive", "--sink", "-"], tmp_path)
        assert [r["_id"] for r in back] == ids and not any("_source_id" in r for r in back)
    segments = sorted((tmp_path / "archive").rglob("*.ndjson.gz"))
    with open(tmp_path / "export.ndjson.gz", "wb") as fh:  # the same records, in a file we did not write
        for segment in segments:
            fh.write(segment.read_bytes())
    other = run(["replay", "export.ndjson.gz", "--sink", "-"], tmp_path)
    assert [r["_source_id"] for r in other] == ids
    assert [r["_id"] for r in other] != ids and len({r["_id"] for r in other}) == 50
    assert {r["log_file"] for r in other} == {"export.ndjson.gz"}


def test_ids_of_a_fixed_corpus_stay_byte_identical(tmp_path: Path) -> None:
    """Pinned on the code before item 11: ordinary records keep exactly the ids they had."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("".join(
        json.dumps({"@timestamp": f"2026-11-24T07:{i // 60:02d}:{i % 60:02d}.000000Z", "level": "info",
                    "message": f"event {i}", "service": "svc"}) + "\n" for i in range(300)))
    (logs / "access.log").write_text("".join(
        f'10.0.0.{i % 250} - - [24/Nov/2026:07:15:{i % 60:02d} +0000] "GET /a/{i} HTTP/1.1" 200 {i} "-" "curl/8"\n'
        for i in range(300)))
    (logs / "py.log").write_text("".join(
        f"2026-11-24 07:15:{i % 60:02d},029 - app.mod - INFO - handler:{i} - line {i}\n" for i in range(300)))
    with gzip.open(logs / "old.log.1.gz", "wt") as fh:
        fh.write("".join(json.dumps({"@timestamp": TS, "level": "warning", "message": f"old {i}"}) + "\n"
                         for i in range(100)))
    got: dict[str, list[str]] = {}
    for name in ("app.log", "access.log", "py.log", "old.log.1.gz"):
        got[name] = [r["_id"] for r in run(["replay", f"logs/{name}", "--sink", "-"], tmp_path)]
    got["tail"] = sorted(r["_id"] for r in run(["tail", "logs/*.log", "--sink", "-", "--once"], tmp_path))
    assert got["tail"] == sorted(got["app.log"] + got["access.log"] + got["py.log"])
    assert {k: v[:2] for k, v in got.items() if k != "tail"} == PINNED_HEADS
    digest = hashlib.sha256(json.dumps(got, sort_keys=True).encode()).hexdigest()
    assert digest == PINNED_DIGEST


PINNED_HEADS: dict[str, list[str]] = {
    "app.log": ["5d87a790b2771c6b000000000000", "5d87a790b2771c6b000000000067"],
    "access.log": ["08b84fa62cce2924000000000000", "08b84fa62cce2924000000000051"],
    "py.log": ["7b5ea245b205f3d3000000000000", "7b5ea245b205f3d300000000003e"],
    "old.log.1.gz": ["72585b87d5d9d8db000000000000", "72585b87d5d9d8db000000000056"],
}
PINNED_DIGEST = "6391d2e878cc687bb39f9437eadea1dd021b5e64c3ee9459e4266dde623a7f75"
