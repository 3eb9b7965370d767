"""Helpers for the opt-in suite against a real Fluentd (tests/test_real_fluentd.py) and
bench/bench_fluentd.py: run the committed fluentd/fluent.conf with only bind, ports, paths and
the Elasticsearch address overridden (all through the environment variables the file reads),
run the sidecar, and read Elasticsearch.

LOGPIPE_TEST_FLUENTD names the fluentd command, split like a shell would, e.g.
`fluentd` or `env RUBYLIB=/opt/fluentd/lib ruby /opt/fluentd/bin/fluentd`.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "fluentd" / "fluent.conf"
ENV_VAR = "LOGPIPE_TEST_FLUENTD"


def fluentd_command() -> list[str]:
    return shlex.split(os.environ.get(ENV_VAR, ""))


def free_port(span: int = 1) -> int:
    """A loopback port with `span` free ports from it (monitor_agent uses port + worker id)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + span >= 65535:
            continue
        if all(_free(port + i) for i in range(1, span)):
            return port
    raise RuntimeError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RealFluentd:
    """One Fluentd (supervisor + workers, its own process group) on loopback ports."""

    def __init__(self, workdir: Path, es_url: str, shared_key: str, *, tls_cert: str, tls_key: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.buffer_dir = workdir / "buffer"
        self.log_path = workdir / "fluentd.log"
        host_port = es_url.split("://", 1)[-1].rstrip("/")
        es_host, _, es_port = host_port.rpartition(":")
        self.port = free_port()
        self.tls_port = free_port()
        self.monitor_port = free_port(span=4)
        self.env = {**os.environ,
                    "FLUENTD_SHARED_KEY": shared_key, "FLUENTD_BIND": "127.0.0.1",
                    "FLUENTD_PORT": str(self.port), "FLUENTD_TLS_PORT": str(self.tls_port),
                    "FLUENTD_MONITOR_PORT": str(self.monitor_port), "FLUENTD_BUFFER_DIR": str(self.buffer_dir),
                    "FLUENTD_TLS_CERT": tls_cert, "FLUENTD_TLS_KEY": tls_key,
                    "ES_HOST": es_host, "ES_PORT": es_port or "9200",
                    "ES_SCHEME": "https" if es_url.startswith("https") else "http",
                    **(extra_env or {})}
        self.workers = int(self.env.get("FLUENTD_WORKERS", "2"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self, timeout_s: float = 120.0) -> RealFluentd:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([*fluentd_command(), "-c", str(CONF)], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fluentd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.log_since_start().count("fluentd worker is now running") >= self.workers \
                    and _accepts(self.port) and _accepts(self.tls_port):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"fluentd not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def kill9(self) -> None:
        """A crash: SIGKILL to the supervisor and every worker at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_since_start(self) -> str:
        return self.log_text()[self._log_offset:]

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def deadletter_files(self, tag: str) -> list[Path]:
        return sorted((self.buffer_dir / "deadletter" / tag).glob("*.log"))

    def output_state(self) -> tuple[int, int]:
        """(records the Elasticsearch output took in, chunks still buffered), over every worker,
        from monitor_agent (worker N answers on monitor_port + N)."""
        taken = buffered = 0
        for worker in range(self.workers):
            url = f"http://127.0.0.1:{self.monitor_port + worker}/api/plugins.json"
            with urllib.request.urlopen(url, timeout=10) as resp:
                plugins = json.loads(resp.read())["plugins"]
            for plugin in plugins:
                if plugin.get("plugin_id") == "out_elasticsearch":
                    taken += int(plugin.get("emit_records", 0))
                    buffered += int(plugin.get("buffer_queue_length", 0)) + int(plugin.get("buffer_stage_length", 0))
        return taken, buffered

    def wait_drained(self, timeout_s: float = 180.0) -> bool:
        """True once the Elasticsearch output holds no chunk (everything it took is flushed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.output_state()[1] == 0:
                return True
            time.sleep(0.5)
        return False

    def pids(self) -> list[int]:
        """Supervisor and workers (for CPU accounting)."""
        import psutil

        if self.proc is None:
            return []
        parent = psutil.Process(self.proc.pid)
        return [parent.pid] + [c.pid for c in parent.children(recursive=True)]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# -- the sidecar -----------------------------------------------------------------------

def write_lines(path: Path, service: str, n: int, *, start: int = 0, level: str = "info",
                workspace: str = "ws-1", day: str = "2026-11-24", extra: dict[int, dict[str, Any]] | None = None,
                pad: int = 60) -> None:
    """JSON log lines as a service writes them; line i carries `n: i`."""
    filler = "x" * pad
    extra = extra or {}
    with path.open("a", encoding="utf-8") as fh:
        for lo in range(start, start + n, 10_000):
            fh.write("".join(
                json.dumps({"@timestamp": f"{day}T07:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1_000_000:06d}Z",
                            "level": level, "message": f"line {i} {filler}", "service": service,
                            "workspace_id": workspace, "n": i, **extra.get(i, {})}) + "\n"
                for i in range(lo, min(lo + 10_000, start + n))))


def sidecar_config(path: Path, url: str, *, shared_key: str, checkpoint: Path, **sink: Any) -> Path:
    lines = [f'url = "{url}"', f'shared_key = "{shared_key}"']
    for key, value in sink.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("[pipeline]\n"
                    f'checkpoint_path = "{checkpoint}"\n\n'
                    "[metrics]\ninterval_s = 0\n\n"
                    "[sink]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def tail_command(log: Path, conf: Path, *, once: bool = True) -> list[str]:
    return [sys.executable, "-m", "logpipe", "tail", str(log), "--config", str(conf), *(["--once"] if once else [])]


def sidecar_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", str(REPO))
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


class Fleet:
    """Sidecar processes shipping at once, each `logpipe tail --once` over its own log file
    (lines numbered `n` fleet-wide: sidecar k writes k*lines .. (k+1)*lines-1), its own config
    and its own checkpoint, in root/sidecar-NN/."""

    def __init__(self, root: Path, service: str, *, sidecars: int, lines: int, url: str, shared_key: str,
                 **sink: Any) -> None:
        self.homes = [root / f"sidecar-{k:02d}" for k in range(sidecars)]
        self.service, self.lines, self.url, self.shared_key, self.sink = service, lines, url, shared_key, sink
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def total(self) -> int:
        return len(self.homes) * self.lines

    def start(self) -> Fleet:
        confs = []
        for k, home in enumerate(self.homes):  # every file written first, so the sidecars start together
            home.mkdir(parents=True)
            write_lines(home / "app.log", self.service, self.lines, start=k * self.lines)
            confs.append(sidecar_config(home / "sidecar.toml", self.url, shared_key=self.shared_key,
                                        checkpoint=home / "checkpoint.json", **self.sink))
        for home, conf in zip(self.homes, confs, strict=True):
            with (home / "sidecar.err").open("wb") as err:
                self.procs.append(subprocess.Popen(tail_command(home / "app.log", conf), cwd=home, env=sidecar_env(),
                                                   stdout=subprocess.DEVNULL, stderr=err))
        return self

    def running(self) -> int:
        return sum(p.poll() is None for p in self.procs)

    def wait(self, timeout_s: float) -> None:
        """Every sidecar exits 0 with a checkpoint within timeout_s, else AssertionError (the
        stragglers are killed)."""
        deadline = time.monotonic() + timeout_s
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        stuck = self.running()
        self.kill()
        assert not stuck, f"{stuck} sidecars still running after {timeout_s:.0f}s"
        for home, proc in zip(self.homes, self.procs, strict=True):
            err = (home / "sidecar.err").read_text(errors="replace")[-2000:]
            assert proc.returncode == 0, f"{home.name} exited {proc.returncode}: {err}"
            assert (home / "checkpoint.json").exists(), f"{home.name} kept no checkpoint"

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


# -- Elasticsearch ----------------------------------------------------------------------

def es(url: str, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def es_count(url: str, pattern: str, query: dict[str, Any] | None = None) -> int:
    """Documents matching after a refresh; -1 while the index is not searchable yet (503:
    a new index whose shard is still starting, or a busy shared node)."""
    try:
        es(url, "POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
        out = es(url, "POST", f"/{pattern}/_count?ignore_unavailable=true&allow_no_indices=true",
                 {"query": query} if query else None)
    except urllib.error.HTTPError as exc:
        if exc.code in (429, 503):
            return -1
        raise
    return int(out["count"]) if out else 0


def wait_count(url: str, pattern: str, want: int, timeout_s: float = 180.0) -> int:
    """Poll until the count reaches `want` (or time runs out); returns the last count."""
    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        count = es_count(url, pattern)
        if count >= want:
            return count
        time.sleep(0.5)
    return count


def n_stats(url: str, pattern: str) -> dict[str, Any]:
    """count / min / max / sum of the line numbers `n` in the documents."""
    es(url, "POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
    out = es(url, "POST", f"/{pattern}/_search?size=0", {"aggs": {"n": {"stats": {"field": "n"}}}})
    return out["aggregations"]["n"]


def n_values(url: str, pattern: str, page: int = 10_000) -> dict[int, int]:
    """Every line number `n` in the documents -> how many documents carry it (exact: a
    composite aggregation paged through, not an approximate cardinality)."""
    counts: dict[int, int] = {}
    after: dict[str, Any] | None = None
    while True:
        comp: dict[str, Any] = {"size": page, "sources": [{"n": {"terms": {"field": "n"}}}]}
        if after:
            comp["after"] = after
        out = es(url, "POST", f"/{pattern}/_search?size=0", {"aggs": {"ns": {"composite": comp}}})["aggregations"]["ns"]
        counts.update((int(b["key"]["n"]), b["doc_count"]) for b in out["buckets"])
        after = out.get("after_key")
        if not out["buckets"] or not after:
            return counts


def delete_indices(url: str, pattern: str) -> None:
    es(url, "DELETE", f"/{pattern}?ignore_unavailable=true&allow_no_indices=true")
