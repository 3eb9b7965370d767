"""Scrubbing in the tailer: in-process and in the helper process give the same records."""

from __future__ import annotations

import copy
import fcntl
import io
import json
import os

from logpipe.config import ScrubConfig
from logpipe.enrich import PIPE_BYTES, Enricher, load_scrubber, pack_texts, unpack_texts, widen_pipe
from logpipe.parse import make_parser
from logpipe.stages import FileStats, PipelineStats
from logpipe.status import StatusLine, render
from logpipe.tail.lines import LineSplitter


def lines(n: int) -> list[str]:
    out = []
    for i in range(n):
        msg = f"user {i} signed in as person{i}@example.com" if i % 7 == 0 else f"plain event {i}"
        rec = {"@timestamp": "2026-11-24T07:00:00.000000Z", "level": "info", "message": msg}
        if i % 50 == 0:  # as replayed from an archive: already enriched
            rec.update({"log_file": "old.log", "log_offset": i, "_id": f"keep-{i}"})
        out.append(json.dumps(rec))
    return out


def test_helper_process_scrubs_like_in_process() -> None:
    cfg = ScrubConfig()
    texts = lines(600)
    parse = make_parser("json")
    starts = [i * 100 for i in range(len(texts))]
    block = LineSplitter().feed("\n".join(texts).encode() + b"\n")  # the file's own bytes
    assert block.texts == texts and block.raw_base == 0
    results = []
    for parallel, raw in ((False, False), (True, False), (True, True)):
        enricher = Enricher("h", load_scrubber(cfg), cfg, parallel=parallel)
        try:
            if parallel:
                assert enricher.start_guard(texts, ("json", "UTC", "")) is None  # still starting: scrub here
                assert enricher.pool is not None and enricher.pool.wait_ready(30)
            spans: list[bytes | None] = []
            span = (lambda m, spans=spans: spans.append(block.raw_span(0, m)) or spans[-1]) if raw else None
            guard = enricher.start_guard(texts, ("json", "UTC", ""), span)
            assert (guard is not None) == parallel
            assert len(spans) == raw and (not raw or spans[0].count(b"\n") == guard.split - 1)
            records = parse(texts)
            enricher.apply(records, texts, starts, "app.log", "f" * 16, guard=guard, keep_ids=True)
            results.append(copy.deepcopy(records))
        finally:
            enricher.close()
    in_process, helper, helper_raw = results
    assert helper == in_process and helper_raw == in_process
    assert "example.com" not in json.dumps(helper)
    assert helper[0]["message"] != texts[0] and helper[1]["message"] == "plain event 1"
    assert helper[50]["_id"] == "keep-50"  # a replayed record keeps its id through scrubbing
    assert helper[49]["_id"] == "f" * 16 + f"{49 * 100:012x}"


def test_texts_travel_to_the_helper_as_one_blob_unless_they_hold_a_nul() -> None:
    texts = ["a", "", "é ü", "x" * 300]
    packed = pack_texts(texts)
    assert isinstance(packed, bytes) and [t.decode() for t in unpack_texts(packed)] == texts
    assert pack_texts(["a\x00b", "c"]) == ["a\x00b", "c"]  # kept as a list: the split would be wrong
    assert unpack_texts(["a\x00b", "c"]) == ["a\x00b", "c"]


def test_helper_pipes_hold_a_whole_batch_so_a_send_does_not_wait_for_the_helper() -> None:
    cfg = ScrubConfig()
    enricher = Enricher("h", load_scrubber(cfg), cfg, parallel=True)
    try:
        assert enricher.pool is not None and enricher.pool.wait_ready(30)
        proc = enricher.pool._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        for pipe in (proc.stdin, proc.stdout):
            assert fcntl.fcntl(pipe.fileno(), 1032) >= PIPE_BYTES  # F_GETPIPE_SZ
    finally:
        enricher.close()
    read_end, write_end = os.pipe()
    try:
        widen_pipe(write_end)
        os.set_blocking(write_end, False)
        assert os.write(write_end, b"x" * 900_000) == 900_000  # a 2000-line batch in one write
    finally:
        os.close(read_end)
        os.close(write_end)


def test_no_scrub_leaves_records_alone() -> None:
    cfg = ScrubConfig(enabled=False)
    assert load_scrubber(cfg) is None
    enricher = Enricher("h", None, cfg)
    texts = lines(10)
    records = make_parser("json")(texts)
    enricher.apply(records, texts, list(range(10)), "a.log", "0" * 16)
    assert "person0@example.com" in records[0]["message"]
    assert records[3]["_id"] == "0" * 16 + "000000000003"


def test_status_line_shows_rate_lag_and_delivery() -> None:
    stats = PipelineStats(delivered=12345)
    stats.files["a.log"] = FileStats("a.log", size=3 * 1024 * 1024, read_offset=0, acked_offset=1024 * 1024)
    stats.dropped["throttle"] = 7
    text = render(stats, 1500.0, "file:archive")
    assert "1,500 lines/s" in text and "lag 2.0 MiB" in text and "delivered 12,345" in text
    assert "dropped 7" in text
    out = io.StringIO()
    assert not StatusLine.wanted(out)
    line = StatusLine(stats, "file:archive", out=out, interval=0.01).start()
    import time

    time.sleep(0.1)
    line.stop()
    assert "delivered 12,345" in out.getvalue()
