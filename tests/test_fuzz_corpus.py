"""The fuzzers' corpora and crash inputs (tests/data/fuzz, docs/fuzzing.md) replayed through
`logpipe._core` on every CI run, with orjson and the scrubber as the judges.

The fuzz targets (core/fuzz) check the same invariants against serde_json and the embedded Python
scrubber; these tests hold them for the committed inputs without a nightly toolchain, and reach
the batch call `JsonCore.process` (index bookkeeping, tap views) that the Rust targets cannot.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from logpipe import _core
from logpipe.metrics.columns import TapColumns
from logpipe.scrub import Scrubber
from tests.core_oracle import python_tap, tap_view

DATA = Path(__file__).parent / "data" / "fuzz"
FP = "5e1f0a2b3c4d6e7f"
PATH = "/var/log/app/cur\trent.log"
SCRUBBERS = (  # byte 0 of a screen input picks one, as in core/fuzz/fuzz_targets/screen.rs
    lambda: Scrubber(),
    lambda: Scrubber(mode="pseudonym", key=b"k3y", mask_client_ip=True, extra_keys=["employee_number"],
                     allow_keys=["token"]),
)


def inputs(target: str) -> list[tuple[str, bytes]]:
    files = sorted((DATA / target).iterdir()) + sorted((DATA / "regressions").glob(f"{target}-*"))
    return [(f.name, f.read_bytes()) for f in files if f.is_file()]


def origin(sel: int) -> tuple[str, str, str, list[str], int]:
    """(host, service, fp, tags, base offset) that byte 0 of a json_path input selects."""
    host = 'h"ost\\\x01é' if sel & 8 else "web-1"
    service = "shop" if sel & 1 else ""
    tags = ["k8s", "k8s", 'a"b'] if sel & 2 else []
    base = (1 << 48) + 17 if sel & 4 else 0
    return host, service, FP, tags, base


def enriched(rec: dict, start: int, host: str, service: str, tags: list[str]) -> dict:
    out = dict(rec)
    if service and "service" not in out:
        out["service"] = service
    out.update(host=host, log_file=PATH, log_offset=start, _id=f"{FP}{start:012x}")
    if tags:
        out["tags"] = list(dict.fromkeys(tags))
    return out


def fast_eligible(rec: dict, tags: list[str]) -> bool:
    ts, level = rec.get("@timestamp"), rec.get("level")
    return (isinstance(ts, str) and len(ts) == 27 and ts.endswith("Z") and "message" in rec
            and isinstance(level, str) and level.isascii() and level.islower()
            and ("tags" not in rec or (isinstance(rec["tags"], list) and not tags)) and "_id" not in rec)


@pytest.mark.parametrize("name,raw", inputs("json_path"), ids=lambda v: v if isinstance(v, str) else "")
def test_json_path_input_renders_as_orjson_reads_it_and_hands_back_the_rest(name: str, raw: bytes) -> None:
    if not raw:
        return
    host, service, fp, tags, base = origin(raw[0])
    chunk = raw[1:]
    data = chunk[:-1] if chunk.endswith(b"\n") else chunk
    core = _core.JsonCore(host, PATH, fp, service, tags, None, True)
    out, taken, end, spans, cuts, tap = core.process(data, base)
    lines = data.split(b"\n")
    assert (taken, end) == (len(lines), len(data) + 1), "the call stopped before the end of the chunk"
    slow = [k for k, _a, _b in spans]
    records = out.split(b"\n")[:-1]
    assert len(records) + len(slow) == len(lines), "a line neither rendered nor handed back"
    assert slow == sorted(set(slow)) and len(cuts) == len(slow)
    starts, at = [], base
    for line in lines:
        starts.append(at)
        at += len(line) + 1
    assert [data[a:b] for _k, a, b in spans] == [lines[k] for k in slow], "a handed-back line's bytes"
    handed = set(slow)
    fast = [i for i in range(len(lines)) if i not in handed]
    ends, size = {}, 0  # NDJSON bytes before each line's place
    for i in range(len(lines)):
        ends[i] = size
        if i not in handed:
            size += len(records[fast.index(i)]) + 1
    assert cuts == [ends[i] for i in slow], "a handed-back line's place in the output"
    assert tap is not None
    wants = []
    for k, i in enumerate(fast):
        want = orjson.loads(lines[i])  # the core rendered it: it must be JSON
        assert fast_eligible(want, tags)
        got = orjson.loads(records[k])
        assert list(got.items()) == list(enriched(want, starts[i], host, service, tags).items())
        wants.append(want)
    assert tap_view(TapColumns.from_core(len(records), tap, [], [])) == tap_view(python_tap(wants))


def screen_inputs() -> list[tuple[str, bytes]]:
    return inputs("screen")


@pytest.mark.parametrize("sel", [0, 1])
def test_scrub_screen_asks_about_every_line_the_scrubber_flags(sel: int) -> None:
    scrubber = SCRUBBERS[sel]()
    core = _core.JsonCore("h", PATH, FP, "", [], scrubber.screen_tables(), False)
    checked = flagged = 0
    for _name, raw in screen_inputs() + inputs("json_path"):
        if not raw or raw[0] % len(SCRUBBERS) != sel:
            continue
        data = raw[1:]
        asked: list[bytes] = []

        def confirm(lines: list[bytes], asked: list[bytes] = asked) -> list[bool]:
            asked.extend(lines)
            return [False] * len(lines)

        core.process(data, 0, confirm)
        for line in data.split(b"\n"):
            if b"\r" in line or b"\x00" in line:
                continue  # the splitter hands such lines to Python: the core never screens them
            try:
                line.decode()
            except UnicodeDecodeError:
                continue
            checked += 1
            if scrubber.suspicious_bytes(line):
                flagged += 1
                assert line in asked, f"the screen passed a line the scrubber flags: {line!r}"
    assert checked > 50 and flagged > 5  # the corpus holds both kinds
