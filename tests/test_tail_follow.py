"""Following files through rotation, truncation, deletion and late appearance."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from tail_support import CollectSink, Running, fast_config, wait_for  # noqa: E402


def append(path: Path, *lines: str, end: str = "\n") -> None:
    with open(path, "a") as fh:
        fh.write("".join(line + end for line in lines))


def expect(sink: CollectSink, lines: list[str], timeout: float = 10.0) -> None:
    ok = wait_for(lambda: sorted(sink.messages()) == sorted(lines), timeout)
    assert ok, f"expected {len(lines)} lines, got {len(sink.messages())}: {sorted(set(sink.messages()) ^ set(lines))[:10]}"


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    return d


def test_follows_appends_and_partial_lines(logdir: Path, tmp_path: Path) -> None:
    log = logdir / "app.log"
    append(log, "one", "two")
    sink = CollectSink()
    run = Running(fast_config([str(log)], tmp_path), sink)
    try:
        expect(sink, ["one", "two"])
        append(log, "thr", end="")  # a writer in the middle of a line
        append(log, "ee", "four")
        expect(sink, ["one", "two", "three", "four"])
    finally:
        assert run.stop() == 0


def test_rename_rotation_drains_old_file_and_follows_new(logdir: Path, tmp_path: Path) -> None:
    log = logdir / "app.log"
    append(log, *[f"old {i}" for i in range(100)])
    sink = CollectSink()
    run = Running(fast_config([str(log)], tmp_path), sink)
    try:
        expect(sink, [f"old {i}" for i in range(100)])
        with open(log, "a") as old_fh:  # the writer still holds the old file open
            os.rename(log, logdir / "app.log.1")
            append(log, "new 0")
            old_fh.write("late to old\n")
        append(log, "new 1")
        expect(sink, [f"old {i}" for i in range(100)] + ["late to old", "new 0", "new 1"])
        assert wait_for(lambda: len(run.front.followers) == 1, 5)  # old file closed after rotate_wait
    finally:
        run.stop()


def test_copytruncate_restarts_at_zero_without_loss(logdir: Path, tmp_path: Path) -> None:
    log = logdir / "app.log"
    append(log, *[f"gen1 line {i}" for i in range(50)])
    sink = CollectSink()
    run = Running(fast_config([str(log)], tmp_path), sink)
    try:
        expect(sink, [f"gen1 line {i}" for i in range(50)])
        shutil.copy(log, logdir / "app.log.1")
        with open(log, "r+") as fh:
            fh.truncate(0)
        append(log, "gen2 a")
        append(log, "gen2 b")
        expect(sink, [f"gen1 line {i}" for i in range(50)] + ["gen2 a", "gen2 b"])
    finally:
        run.stop()


def test_copytruncate_unread_tail_is_read_from_the_copy(logdir: Path, tmp_path: Path) -> None:
    """Lines written just before a copytruncate the reader had not reached come from app.log.1."""
    log = logdir / "app.log"
    append(log, *[f"a {i}" for i in range(20)])
    sink = CollectSink()
    sink.gate.clear()  # a slow sink: nothing acknowledged yet
    cfg = fast_config([str(logdir / "app.log*")], tmp_path, read_chunk_bytes=64)
    run = Running(cfg, sink)
    try:
        assert wait_for(lambda: run.stats.lines_read > 0, 5)
        wait_for(lambda: run.stats.inflight_batches >= cfg.pipeline.inflight_max_batches, 2)
        append(log, *[f"b {i}" for i in range(20)])
        shutil.copy(log, logdir / "app.log.1")
        with open(log, "r+") as fh:
            fh.truncate(0)
        append(log, "c 0")
        sink.gate.set()
        expect(sink, [f"a {i}" for i in range(20)] + [f"b {i}" for i in range(20)] + ["c 0"])
    finally:
        run.stop()


def test_gz_generations_are_never_read_again(logdir: Path, tmp_path: Path) -> None:
    log = logdir / "app.log"
    append(log, "x 1", "x 2")
    sink = CollectSink()
    run = Running(fast_config([str(logdir / "*")], tmp_path), sink)
    try:
        expect(sink, ["x 1", "x 2"])
        os.rename(log, logdir / "app.log.1")
        with open(logdir / "app.log.1", "rb") as src, gzip.open(logdir / "app.log.1.gz", "wb") as dst:
            dst.write(src.read())
        os.unlink(logdir / "app.log.1")
        append(log, "y 1")
        expect(sink, ["x 1", "x 2", "y 1"])
        assert sorted(sink.messages()) == ["x 1", "x 2", "y 1"]
    finally:
        run.stop()


def test_delete_while_open_reads_to_the_end(logdir: Path, tmp_path: Path) -> None:
    log = logdir / "app.log"
    append(log, "first")
    sink = CollectSink()
    run = Running(fast_config([str(log)], tmp_path), sink)
    try:
        expect(sink, ["first"])
        with open(log, "a") as fh:
            os.unlink(log)
            fh.write("written after unlink\n")
        expect(sink, ["first", "written after unlink"])
        assert wait_for(lambda: not run.front.followers, 5)
    finally:
        run.stop()


def test_files_appearing_later_and_missing_paths_are_waited_for(logdir: Path, tmp_path: Path) -> None:
    sink = CollectSink()
    later = logdir / "sub" / "late.log"
    run = Running(fast_config([str(logdir / "*.log"), str(later)], tmp_path), sink)
    try:
        append(logdir / "new.log", "appeared")
        expect(sink, ["appeared"])
        later.parent.mkdir()
        append(later, "also")
        expect(sink, ["appeared", "also"])
    finally:
        run.stop()


def test_inotify_limit_falls_back_to_polling(logdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    from watchdog.observers import Observer

    def no_watches(self, *a, **k):  # noqa: ANN001, ANN002, ANN003
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Observer, "schedule", no_watches)
    log = logdir / "app.log"
    append(log, "before")
    sink = CollectSink()
    run = Running(fast_config([str(log)], tmp_path), sink, use_events=True)
    try:
        expect(sink, ["before"])
        append(log, "after")
        expect(sink, ["before", "after"])
        assert run.front.watcher.polling
        assert "inotify limit reached" in caplog.text
    finally:
        run.stop()


def test_inotify_events_deliver_without_polling(logdir: Path, tmp_path: Path) -> None:
    log = logdir / "app.log"
    append(log, "a")
    sink = CollectSink()
    cfg = fast_config([str(log)], tmp_path, reconcile_interval_s=30.0, poll_interval_s=30.0)
    run = Running(cfg, sink, use_events=True)
    try:
        expect(sink, ["a"])
        append(log, "b")
        append(logdir / "other.log", "ignored")
        expect(sink, ["a", "b"], timeout=5)
        assert not run.front.watcher.polling
    finally:
        run.stop()


def test_busy_file_does_not_starve_others(logdir: Path, tmp_path: Path) -> None:
    big, small = logdir / "big.log", logdir / "small.log"
    append(big, *[f'{{"message": "big {i:06d} {"x" * 200}"}}' for i in range(20_000)])
    append(small, '{"message": "small one"}')
    sink = CollectSink()
    cfg = fast_config([str(big), str(small)], tmp_path, fmt="json", read_chunk_bytes=65_536, batch_max_records=500)
    run = Running(cfg, sink)
    try:
        assert wait_for(lambda: "small one" in sink.messages(), 10)
        position = sink.messages().index("small one")
        assert position < 2_000, f"small file waited behind {position} lines of the big one"
    finally:
        run.stop()


def test_binary_file_is_skipped_and_counted(logdir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (logdir / "core.log").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 10)
    append(logdir / "ok.log", "fine")
    sink = CollectSink()
    run = Running(fast_config([str(logdir / "*.log")], tmp_path), sink)
    try:
        expect(sink, ["fine"])
        assert "binary" in run.stats.skipped_files[str(logdir / "core.log")]
        assert "core.log: skipped" in caplog.text
    finally:
        run.stop()


def test_permission_denied_warns_and_is_retried(logdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from logpipe.tail import follower

    locked = {"on": True}
    real_open = follower.Follower.open.__func__  # type: ignore[attr-defined]

    def guarded(cls, path, max_line_bytes):  # noqa: ANN001
        if locked["on"] and path.endswith("secret.log"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(cls, path, max_line_bytes)

    monkeypatch.setattr(follower.Follower, "open", classmethod(guarded))
    append(logdir / "secret.log", "hidden")
    sink = CollectSink()
    run = Running(fast_config([str(logdir / "*.log")], tmp_path), sink)
    try:
        assert wait_for(lambda: str(logdir / "secret.log") in run.stats.skipped_files, 5)
        assert "permission denied; will retry" in caplog.text
        locked["on"] = False
        expect(sink, ["hidden"])
        assert str(logdir / "secret.log") not in run.stats.skipped_files
    finally:
        run.stop()


def test_inode_reuse_is_not_mistaken_for_the_old_file(logdir: Path, tmp_path: Path) -> None:
    log = logdir / "app.log"
    append(log, *[f"first file line {i}" for i in range(30)])
    cfg = fast_config([str(log)], tmp_path)
    sink = CollectSink()
    run = Running(cfg, sink)
    expect(sink, [f"first file line {i}" for i in range(30)])
    run.stop()
    os.unlink(log)  # the new file often gets the same inode number
    append(log, *[f"second file line {i}" for i in range(40)])  # often the same inode number
    sink2 = CollectSink()
    run = Running(cfg, sink2)
    try:
        expect(sink2, [f"second file line {i}" for i in range(40)])
    finally:
        run.stop()


def test_file_system_without_events_switches_to_polling(logdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from watchdog.observers import Observer

    monkeypatch.setattr(Observer, "schedule", lambda self, *a, **k: None)  # events never arrive (e.g. NFS)
    log = logdir / "app.log"
    append(log, "x0")
    sink = CollectSink()
    cfg = fast_config([str(log)], tmp_path, reconcile_interval_s=0.15)
    run = Running(cfg, sink, use_events=True)
    try:
        for i in range(1, 8):
            time.sleep(0.2)
            append(log, f"x{i}")
        expect(sink, [f"x{i}" for i in range(8)])
        assert run.front.watcher.polling
        assert "without file events" in caplog.text
    finally:
        run.stop()


def test_generation_compressed_before_it_was_read_is_caught_up_once(logdir: Path, tmp_path: Path) -> None:
    """The tailer was down while logrotate renamed and gzipped a half-read file: the unread
    rest comes from the .gz, with the ids the plain file would have given; nothing twice."""
    from logpipe.tail.checkpoint import CheckpointStore
    from logpipe.tail.fingerprint import fingerprint

    log = logdir / "app.log"
    lines = [f"line {i:03d}" for i in range(100)]
    append(log, *lines)
    data = log.read_bytes()
    cfg = fast_config([str(logdir / "app.log*")], tmp_path)
    key = fingerprint(data)
    assert key is not None
    cut = data.index(b"line 030")
    store = CheckpointStore(cfg.pipeline.checkpoint_path)
    store.set(key, cut, str(log))  # a previous run delivered the first 30 lines
    store.save()
    store.close()
    with open(log, "rb") as src, gzip.open(logdir / "app.log.1.gz", "wb") as dst:
        dst.write(src.read())
    os.unlink(log)
    append(log, "fresh 1")
    (logdir / "other.log.gz").write_bytes(gzip.compress(b"history we never tailed\n"))
    sink = CollectSink()
    run = Running(cfg, sink, once=True)
    run.thread.join(10)
    run.stop()
    assert sorted(sink.messages()) == sorted(lines[30:] + ["fresh 1"])
    by_msg = {r["message"]: r for r in sink.records}
    assert by_msg["line 030"]["_id"] == f"{key}{cut:012x}"
    sink2 = CollectSink()
    run = Running(cfg, sink2, once=True)  # a second run reads nothing again
    run.thread.join(10)
    run.stop()
    assert sink2.messages() == []


def test_copytruncate_with_a_writer_that_does_not_append_leaves_a_nul_hole(logdir: Path, tmp_path: Path) -> None:
    """A writer without O_APPEND keeps writing at its old position after the truncation:
    the file starts with a hole of NULs. The next real line is kept whole and tagged."""
    log = logdir / "app.log"
    fh = open(log, "w")  # noqa: SIM115 - the writer's long-lived handle
    try:
        fh.write("".join(f"before {i:04d} " + "x" * 100 + "\n" for i in range(200)))
        fh.flush()
        sink = CollectSink()
        cfg = fast_config([str(log)], tmp_path, max_line_bytes=4096)
        run = Running(cfg, sink)
        try:
            expect(sink, [f"before {i:04d} " + "x" * 100 for i in range(200)])
            shutil.copy(log, logdir / "app.log.1")
            os.truncate(log, 0)
            fh.write("after the hole\n")  # lands at offset ~22 KB: a sparse run of NULs before it
            fh.flush()
            expected = [f"before {i:04d} " + "x" * 100 for i in range(200)] + ["after the hole"]
            expect(sink, expected)
            rec = [r for r in sink.records if r["message"] == "after the hole"][0]
            assert "_nul_bytes" in rec.get("tags", [])
            assert rec["log_offset"] == 0
        finally:
            run.stop()
    finally:
        fh.close()
