"""`logpipe replay` into the real Elasticsearch: replaying twice leaves one document per line."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from elasticsearch import Elasticsearch
from logpipe.cli import cli
from logpipe.es.setup import load_assets, run_setup

pytestmark = pytest.mark.es


def test_replaying_an_archive_twice_leaves_one_document_per_line(es_url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # replay's checkpoint/dead-letter files stay in the temp dir
    client = Elasticsearch(es_url)
    run_setup(client, load_assets())
    svc = f"rp{uuid.uuid4().hex[:8]}"
    day = tmp_path / "archive" / "2026-11-24"
    day.mkdir(parents=True)
    lines = 0
    for seg in range(2):
        with gzip.open(day / f"{svc}-{seg:06d}.ndjson.gz", "wb") as fh:
            for i in range(600):
                rec = {"@timestamp": f"2026-11-24T10:{seg * 10 + i // 60:02d}:{i % 60:02d}.000000Z",
                       "level": "info", "service": svc, "message": f"GET /items/{i} 200",
                       "method": "GET", "route": "/items/{id}", "status": 200, "request_id": f"{svc}-{i % 7}"}
                fh.write(orjson.dumps(rec) + b"\n")
                lines += 1
    runner = CliRunner()
    try:
        for attempt in (1, 2):
            res = runner.invoke(cli, ["replay", str(tmp_path / "archive"), "--sink", es_url, "--no-progress"])
            assert res.exit_code == 0, f"replay #{attempt}: {res.output}"
            said = res.stderr.strip().splitlines()[-1]
            # the second run delivers nothing new and says why, instead of a bare "0 records"
            want = f"{lines:,} records from 2 files" if attempt == 1 else "0 records from 2 files"
            assert want in said and (attempt == 1 or f"{lines:,} already present" in said), said
            client.indices.refresh(index=f"logpipe-{svc}-*")
            assert client.count(index=f"logpipe-{svc}-*")["count"] == lines
    finally:
        client.options(ignore_status=404).indices.delete(index=f"logpipe-{svc}-*", allow_no_indices=True)
        client.close()


def test_replay_into_a_new_index_layout_from_sink_index(es_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """README: set `[sink] index` (e.g. `logpipe2-{service}-%Y.%m.%d`) and replay into it."""
    monkeypatch.chdir(tmp_path)
    svc = f"rp{uuid.uuid4().hex[:8]}"
    log = tmp_path / "app.log"
    log.write_text("".join(f'{{"@timestamp": "2026-11-2{d}T10:00:0{i}Z", "service": "{svc}", "message": "m{d}{i}"}}\n'
                           for d in (3, 4) for i in range(5)))
    conf = tmp_path / "replay.toml"
    conf.write_text('[sink]\nindex = "logpipe2-{service}-%Y.%m.%d"\n')
    client = Elasticsearch(es_url)
    try:
        res = CliRunner().invoke(cli, ["replay", str(log), "--sink", es_url, "--config", str(conf), "--no-progress"])
        assert res.exit_code == 0, res.output
        client.indices.refresh(index=f"logpipe2-{svc}-*")
        counts = {name: client.count(index=name)["count"]
                  for name in client.indices.get(index=f"logpipe2-{svc}-*")}
        assert counts == {f"logpipe2-{svc}-2026.11.23": 5, f"logpipe2-{svc}-2026.11.24": 5}
        assert not client.indices.get(index=f"logpipe-{svc}-*", allow_no_indices=True, ignore_unavailable=True)
    finally:
        for pattern in (f"logpipe2-{svc}-*", f"logpipe-{svc}-*"):
            client.options(ignore_status=404).indices.delete(index=pattern, allow_no_indices=True)
        client.close()
