"""Opt-in: sidecar -> a real Fluentd running the committed fluentd/fluent.conf -> Elasticsearch.

Runs only when LOGPIPE_TEST_FLUENTD names a fluentd command (deselected otherwise, see
conftest.py). Only bind, ports, paths and the Elasticsearch address are overridden, through
the environment variables fluent.conf reads. Needs LOGPIPE_TEST_ES_URL (or the local node),
and for the 429 test a second node with a one-slot write queue: LOGPIPE_TEST_ES_429_URL, else
it is started on port 9270 with
`LOGPIPE_ES_PORT=9270 LOGPIPE_ES_SETTINGS="thread_pool.write.queue_size=1 thread_pool.write.size=1"
scripts/elasticsearch.sh start` (and left running, like the main test node).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fluentd_receiver import make_test_pki
from real_fluentd import (
    REPO,
    Fleet,
    RealFluentd,
    delete_indices,
    es,
    es_count,
    n_stats,
    n_values,
    sidecar_config,
    sidecar_env,
    tail_command,
    wait_count,
    write_lines,
)

pytestmark = pytest.mark.real_fluentd

KEY = "real-fluentd-test-key"
DAY = "2026.11.24"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def fluentd(tmp_path_factory, es_url, pki) -> Iterator[RealFluentd]:
    fd = RealFluentd(tmp_path_factory.mktemp("fluentd"), es_url, KEY, tls_cert=pki.cert_file,
                     tls_key=pki.key_file).start()
    yield fd
    fd.stop()


@pytest.fixture
def service(es_url) -> Iterator[str]:
    """A service name of its own per test, so its index logpipe-<service>-* is too."""
    name = f"fdt{uuid.uuid4().hex[:10]}"
    yield name
    delete_indices(es_url, f"logpipe-{name}-*")


def _assert_exactly_once(es_url: str, service: str, n: int, timeout_s: float = 180.0) -> None:
    pattern = f"logpipe-{service}-*"
    got = wait_count(es_url, pattern, n, timeout_s)
    assert got == n, f"{got} documents for {n} lines"
    stats = n_stats(es_url, pattern)
    assert (stats["count"], stats["min"], stats["max"], stats["sum"]) == (n, 0, n - 1, n * (n - 1) / 2)
    # the document id is the sidecar's, kept in event.id; same index as the direct road
    hit = es(es_url, "POST", f"/{pattern}/_search?size=1", {"query": {"match_all": {}}})["hits"]["hits"][0]
    assert hit["_id"] == hit["_source"]["event.id"] and "_id" not in hit["_source"]
    assert hit["_index"] == f"logpipe-{service}-{DAY}"


def _run_once(tmp_path: Path, url: str, service: str, n: int, timeout: float = 300, env: dict | None = None,
              key: str = KEY, **sink) -> subprocess.CompletedProcess[str]:
    log = tmp_path / f"{service}.log"
    write_lines(log, service, n)
    conf = sidecar_config(tmp_path / "sidecar.toml", url, shared_key=key, checkpoint=tmp_path / "cp.json", **sink)
    return subprocess.run(tail_command(log, conf), capture_output=True, text=True, timeout=timeout,
                          env=sidecar_env(**(env or {})), cwd=tmp_path)


def test_exact_counts_no_duplicates(fluentd, es_url, service, tmp_path):
    n = 20_000
    proc = _run_once(tmp_path, f"forward://127.0.0.1:{fluentd.port}", service, n)
    assert proc.returncode == 0, proc.stderr
    _assert_exactly_once(es_url, service, n)
    assert not fluentd.deadletter_files(f"logpipe.{service}.app")


def test_gzip_batches(fluentd, es_url, service, tmp_path):
    proc = _run_once(tmp_path, f"forward://127.0.0.1:{fluentd.port}", service, 5_000, compress="gzip")
    assert proc.returncode == 0, proc.stderr
    _assert_exactly_once(es_url, service, 5_000)


def test_tls_with_ca_file(fluentd, es_url, service, tmp_path, pki):
    proc = _run_once(tmp_path, f"forwards://127.0.0.1:{fluentd.tls_port}", service, 3_000, ca_file=pki.ca_file)
    assert proc.returncode == 0, proc.stderr
    _assert_exactly_once(es_url, service, 3_000)


def test_wrong_key_fails_clearly_checkpoint_unmoved(fluentd, es_url, service, tmp_path):
    t0 = time.monotonic()
    proc = _run_once(tmp_path, f"forward://127.0.0.1:{fluentd.port}", service, 100, key="not-the-key")
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 30
    assert "shared_key mismatch" in proc.stderr and f"127.0.0.1:{fluentd.port}" in proc.stderr, proc.stderr
    assert not (tmp_path / "cp.json").exists(), "nothing was delivered: nothing may be checkpointed"
    assert es_count(es_url, f"logpipe-{service}-*") == 0


def test_mapping_conflict_lands_in_dead_letter(fluentd, es_url, service, tmp_path):
    es(es_url, "PUT", f"/logpipe-{service}-{DAY}",
       {"mappings": {"properties": {"status": {"type": "short"}, "n": {"type": "long"}}}})
    log = tmp_path / "app.log"
    bad = 17
    write_lines(log, service, 50, level="error", extra={bad: {"status": "not-a-number"}})
    conf = sidecar_config(tmp_path / "sidecar.toml", f"forward://127.0.0.1:{fluentd.port}", shared_key=KEY,
                          checkpoint=tmp_path / "cp.json")
    proc = subprocess.run(tail_command(log, conf), capture_output=True, text=True, timeout=120, env=sidecar_env())
    assert proc.returncode == 0, proc.stderr
    assert wait_count(es_url, f"logpipe-{service}-*", 49) == 49
    deadline = time.monotonic() + 90
    found: list[str] = []
    while time.monotonic() < deadline and not found:
        found = [line for f in fluentd.deadletter_files(f"logpipe.{service}.error")
                 for line in f.read_text().splitlines() if f'"n":{bad},' in line]
        time.sleep(0.5)
    assert len(found) == 1, f"no dead letter for the refused record; fluentd log:\n{fluentd.log_tail()}"
    assert '"status":"not-a-number"' in found[0]
    assert es_count(es_url, f"logpipe-{service}-*") == 49


def test_kill9_mid_stream_nothing_lost_nothing_doubled(es_url, service, tmp_path, pki):
    fd = RealFluentd(tmp_path / "fluentd", es_url, KEY, tls_cert=pki.cert_file, tls_key=pki.key_file).start()
    n = 150_000
    log = tmp_path / "app.log"
    write_lines(log, service, n)
    conf = sidecar_config(tmp_path / "sidecar.toml", f"forward://127.0.0.1:{fd.port}", shared_key=KEY,
                          checkpoint=tmp_path / "cp.json", ack_timeout_s=10.0)
    with (tmp_path / "sidecar.err").open("w") as err:
        sidecar = subprocess.Popen(tail_command(log, conf), stdout=subprocess.DEVNULL, stderr=err, env=sidecar_env())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and es_count(es_url, f"logpipe-{service}-*") <= 0:
            time.sleep(0.2)
        mid_stream = sidecar.poll() is None
        before = es_count(es_url, f"logpipe-{service}-*")
        fd.kill9()
        fd.start()
        assert sidecar.wait(timeout=600) == 0, (tmp_path / "sidecar.err").read_text()[-2000:]
        _assert_exactly_once(es_url, service, n, timeout_s=300)
    finally:
        if sidecar.poll() is None:
            sidecar.kill()
        fd.stop()
    assert mid_stream and 0 < before < n, "the kill did not happen mid-stream"


SIDECARS, FLEET_LINES = 16, 5_000
FLEET_TIMEOUT_S = 420


def _assert_fleet_delivered(es_url: str, service: str, n: int, aggregators: list[RealFluentd]) -> None:
    """Every line 0..n-1 is exactly one document, in the one index of its day. `_id`s are unique
    per index, so n documents there are n unique `_id`s; and nothing more arrives once every
    aggregator's buffer is empty."""
    pattern = f"logpipe-{service}-*"
    got = wait_count(es_url, pattern, n, timeout_s=300)
    assert got >= n, f"{got} documents for {n} lines"
    for fd in aggregators:
        assert fd.wait_drained(), f"fluentd still buffering:\n{fd.log_tail()}"
    assert es_count(es_url, pattern) == n
    indices = es(es_url, "GET", f"/_cat/indices/{pattern}?format=json&h=index,docs.count")
    assert [(i["index"], int(i["docs.count"])) for i in indices] == [(f"logpipe-{service}-{DAY}", n)]
    per_line = n_values(es_url, pattern)
    assert len(per_line) == n and set(per_line) == set(range(n)), "lines missing or foreign"
    assert set(per_line.values()) == {1}, "a line indexed twice under different ids"
    for fd in aggregators:
        assert not fd.deadletter_files(f"logpipe.{service}.app")


@pytest.mark.timeout(900)
def test_fleet_of_sixteen_sidecars_each_line_once(fluentd, es_url, service, tmp_path):
    """16 sidecar processes at once, each its own file and checkpoint, into one aggregator."""
    fleet = Fleet(tmp_path, service, sidecars=SIDECARS, lines=FLEET_LINES,
                  url=f"forward://127.0.0.1:{fluentd.port}", shared_key=KEY).start()
    try:
        fleet.wait(FLEET_TIMEOUT_S)
    finally:
        fleet.kill()
    _assert_fleet_delivered(es_url, service, fleet.total, [fluentd])


@pytest.mark.timeout(1200)
def test_fleet_over_two_balanced_fluentds_one_killed_mid_stream(es_url, service, tmp_path, pki):
    """The same fleet load balanced over two aggregators (`[sink] urls`); one is killed -9 while
    the fleet ships. The sidecars finish on the other (the dead one's unacked chunks resent
    there); restarted, the killed one flushes the chunks it had acked. Nothing lost, and a
    chunk both took is one document per line (the same `_id`)."""
    a, b = (RealFluentd(tmp_path / name, es_url, KEY, tls_cert=pki.cert_file, tls_key=pki.key_file,
                        extra_env={"FLUENTD_WORKERS": "1"}) for name in ("fluentd-a", "fluentd-b"))
    fleet = Fleet(tmp_path / "fleet", service, sidecars=SIDECARS, lines=FLEET_LINES, url="",
                  urls=[f"forward://127.0.0.1:{fd.port}" for fd in (a, b)], shared_key=KEY, ack_timeout_s=10.0)
    try:
        a.start()
        b.start()
        fleet.start()
        deadline = time.monotonic() + FLEET_TIMEOUT_S
        while time.monotonic() < deadline and fleet.running() and not a.output_state()[0]:
            time.sleep(0.2)
        taken_by_a = a.output_state()[0]
        running_at_kill = fleet.running()
        a.kill9()
        fleet.wait(FLEET_TIMEOUT_S)
        a.start()  # its buffer holds chunks it acked but had not flushed yet
        _assert_fleet_delivered(es_url, service, fleet.total, [a, b])
    finally:
        fleet.kill()
        a.stop()
        b.stop()
    assert 0 < taken_by_a < fleet.total and running_at_kill > 0, \
        f"not killed mid-stream: the killed one took {taken_by_a}, {running_at_kill} sidecars running"


def test_user_auth_with_environment_credentials(es_url, service, tmp_path, pki):
    fd = RealFluentd(tmp_path / "fluentd", es_url, KEY, tls_cert=pki.cert_file, tls_key=pki.key_file,
                     extra_env={"FLUENTD_USER_AUTH": "true", "FLUENTD_USERNAME": "sidecar-7",
                                "FLUENTD_PASSWORD": "pw-7", "FLUENTD_WORKERS": "1"}).start()
    try:
        url = f"forward://127.0.0.1:{fd.port}"
        (tmp_path / "no-credentials").mkdir()
        refused = _run_once(tmp_path / "no-credentials", url, service, 10)
        ok = _run_once(tmp_path, url, service, 2_000,
                       env={"LOGPIPE_USERNAME": "sidecar-7", "LOGPIPE_PASSWORD": "pw-7"})
        assert refused.returncode != 0
        assert "username/password mismatch" in refused.stderr and "requires user authentication" in refused.stderr
        assert ok.returncode == 0, ok.stderr
        _assert_exactly_once(es_url, service, 2_000)
    finally:
        fd.stop()


def test_throttle_drops_and_counts_an_over_limit_error_burst(fluentd, es_url, service, tmp_path):
    limit, burst = 600, 700  # fluent.conf: 600 error records per workspace per minute (per worker)
    deadline = time.monotonic() + 60
    while time.time() % 60 > 40 and time.monotonic() < deadline:  # one bucket period for the burst
        time.sleep(0.5)
    log = tmp_path / "errors.log"
    write_lines(log, service, burst, level="error", workspace=f"ws-{service}")
    conf = sidecar_config(tmp_path / "sidecar.toml", f"forward://127.0.0.1:{fluentd.port}", shared_key=KEY,
                          checkpoint=tmp_path / "cp.json")
    proc = subprocess.run(tail_command(log, conf), capture_output=True, text=True, timeout=120, env=sidecar_env())
    assert proc.returncode == 0, proc.stderr
    assert wait_count(es_url, f"logpipe-{service}-*", limit) == limit
    # nothing more arrives: the rest was dropped, and Fluentd says so for that workspace
    deadline = time.monotonic() + 30
    warned = False
    while time.monotonic() < deadline and not warned:
        warned = any("rate exceeded" in line and f"ws-{service}" in line for line in fluentd.log_text().splitlines())
        time.sleep(0.5)
    assert warned, fluentd.log_tail()
    assert es_count(es_url, f"logpipe-{service}-*") == limit


@pytest.fixture(scope="module")
def es_429_url() -> str:
    url = os.environ.get("LOGPIPE_TEST_ES_429_URL", "").strip()
    if url:
        return url.rstrip("/")
    env = {**os.environ, "LOGPIPE_ES_PORT": "9270",
           "LOGPIPE_ES_SETTINGS": "thread_pool.write.queue_size=1 thread_pool.write.size=1"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "elasticsearch.sh"), "start"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def _write_rejections(url: str) -> int:
    stats = es(url, "GET", "/_nodes/stats/thread_pool?filter_path=nodes.*.thread_pool.write")
    return sum(node["thread_pool"]["write"]["rejected"] for node in stats["nodes"].values())


def test_429_rejections_are_retried_not_dead_lettered(es_429_url, tmp_path, pki):
    service = f"fdt{uuid.uuid4().hex[:10]}"
    fd = RealFluentd(tmp_path / "fluentd", es_429_url, KEY, tls_cert=pki.cert_file, tls_key=pki.key_file).start()
    rejected_before = _write_rejections(es_429_url)
    n = 60_000
    try:
        proc = _run_once(tmp_path, f"forward://127.0.0.1:{fd.port}", service, n, timeout=600)
        assert proc.returncode == 0, proc.stderr
        _assert_exactly_once(es_429_url, service, n, timeout_s=400)
        rejected = _write_rejections(es_429_url) - rejected_before
        dead = list((fd.buffer_dir / "deadletter").rglob("*.log")) if (fd.buffer_dir / "deadletter").exists() else []
    finally:
        fd.stop()
        delete_indices(es_429_url, f"logpipe-{service}-*")
    assert rejected > 0, "the write queue never overflowed: this run proved nothing about 429s"
    assert dead == [], f"records reached the dead letter: {dead}"
