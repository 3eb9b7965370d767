"""Scrubbing in the tailer: the lines the scrubber flags are scrubbed, ids stay ours."""

from __future__ import annotations

import io
import json

from logpipe.config import ScrubConfig
from logpipe.enrich import Enricher, load_scrubber
from logpipe.parse import make_parser
from logpipe.stages import FileStats, PipelineStats
from logpipe.status import StatusLine, render


def lines(n: int) -> list[str]:
    out = []
    for i in range(n):
        msg = f"user {i} signed in as person{i}@example.com" if i % 7 == 0 else f"plain event {i}"
        rec = {"@timestamp": "2026-11-24T07:00:00.000000Z", "level": "info", "message": msg}
        if i % 50 == 0:  # as replayed from an archive: already enriched
            rec.update({"log_file": "old.log", "log_offset": i, "_id": f"keep-{i}"})
        out.append(json.dumps(rec))
    return out


def test_suspicious_lines_are_scrubbed_and_ids_stay_ours() -> None:
    texts = lines(600)
    starts = [i * 100 for i in range(len(texts))]
    records = make_parser("json")(texts)
    Enricher("h", load_scrubber(ScrubConfig())).apply(records, texts, starts, "app.log", "f" * 16, keep_ids=True)
    assert "example.com" not in json.dumps(records)
    assert records[0]["message"] != json.loads(texts[0])["message"]
    assert records[1]["message"] == "plain event 1"  # a clean line is left as it was
    assert records[50]["_id"] == "keep-50"  # a replayed record keeps its id through scrubbing
    assert records[49]["_id"] == "f" * 16 + f"{49 * 100:012x}"
    assert records[49]["host"] == "h" and records[49]["log_offset"] == 4900


def test_a_custom_pattern_anchored_to_the_line_is_scrubbed_in_a_batch() -> None:
    """A user pattern can match a whole line only: every line is checked on its own."""
    cfg = ScrubConfig(extra_patterns=[r"^EMP-\d{6}$"])
    texts = [json.dumps({"message": f"plain event {i}"}) for i in range(300)]
    texts[150] = '{"EMP-123456": null}'
    records = make_parser("json")(texts)
    Enricher("h", load_scrubber(cfg)).apply(records, texts, list(range(300)), "a.log", "0" * 16)
    assert "EMP-123456" not in json.dumps(records)
    assert records[149]["message"] == "plain event 149"


def test_no_scrub_leaves_records_alone() -> None:
    cfg = ScrubConfig(enabled=False)
    assert load_scrubber(cfg) is None
    enricher = Enricher("h", None)
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
