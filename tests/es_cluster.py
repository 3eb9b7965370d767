"""A private 3-node Elasticsearch cluster for the cluster tests (scripts/elasticsearch.sh --nodes 3).

It runs on its own ports (HTTP 9411-9413, transport 9511-9513) and data directory, whatever
LOGPIPE_TEST_ES_URL says, so killing one of its nodes never touches the shared node.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "elasticsearch.sh"
NODES = 3
HTTP_PORT = int(os.environ.get("LOGPIPE_TEST_CLUSTER_HTTP_PORT", "9411"))


class ClusterError(RuntimeError):
    """The script failed; the message carries the end of its stderr."""


class EsCluster:
    """Start, stop, kill -9 and restart nodes of the test cluster through the script."""

    def __init__(self, http_port: int = HTTP_PORT, nodes: int = NODES) -> None:
        self.nodes = nodes
        cache = Path(os.environ.get("LOGPIPE_CACHE", Path.home() / ".cache" / "logpipe"))
        self.env = {**os.environ,
                    "LOGPIPE_ES_CLUSTER_HTTP_PORT": str(http_port),
                    "LOGPIPE_ES_CLUSTER_TRANSPORT_PORT": str(http_port + 100),
                    "LOGPIPE_ES_CLUSTER_DIR": str(cache / "es" / f"test-cluster-{http_port}")}
        self.urls: list[str] = []

    def _script(self, *args: str, timeout: float = 300) -> str:
        try:
            proc = subprocess.run(["bash", str(SCRIPT), *args, "--nodes", str(self.nodes)], env=self.env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"elasticsearch.sh {' '.join(args)} took more than {timeout:.0f}s") from None
        if proc.returncode != 0:
            raise ClusterError(f"elasticsearch.sh {' '.join(args)} --nodes {self.nodes} failed:\n{proc.stderr[-3000:]}")
        return proc.stdout.strip()

    def start(self, fresh: bool = False) -> str:
        """Start the missing nodes and wait for green; returns `url1,url2,url3`."""
        if fresh:
            self._script("stop")
        out = self._script("start", *(["--fresh"] if fresh else []))
        self.urls = out.splitlines()[-1].split(",")
        return ",".join(self.urls)

    def start_in_background(self) -> subprocess.Popen[str]:
        """`start` without waiting: restarts the missing nodes while the test goes on."""
        return subprocess.Popen(["bash", str(SCRIPT), "start", "--nodes", str(self.nodes)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self, proc: subprocess.Popen[str], timeout: float = 300) -> None:
        """Wait for a `start_in_background` to end green."""
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ClusterError(f"elasticsearch.sh start took more than {timeout:.0f}s") from None
        if proc.returncode != 0:
            raise ClusterError(f"elasticsearch.sh start --nodes {self.nodes} failed:\n{err[-3000:]}")

    def stop(self) -> None:
        self._script("stop")

    def pids(self) -> dict[int, int]:
        """node number -> pid, for the running nodes."""
        found: dict[int, int] = {}
        for line in self._script("pid").splitlines():
            name, pid = line.split()
            found[int(name.removeprefix("node-"))] = int(pid)
        return found

    def kill(self, node: int) -> None:
        """kill -9 one node (no shutdown: its in-flight requests just break)."""
        os.kill(self.pids()[node], signal.SIGKILL)

    def status(self) -> str:
        proc = subprocess.run(["bash", str(SCRIPT), "status", "--nodes", str(self.nodes)], env=self.env,
                              capture_output=True, text=True, timeout=60)
        return proc.stdout
