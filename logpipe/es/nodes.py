"""Which Elasticsearch node gets the next bulk request: round robin over the live ones.

The bulk sink keeps one client per listed node (no sniffing: the nodes are the ones the user
listed) and asks a `NodePool` for a node before each request. A node that failed (connection
error, timeout, 5xx) sits out `retry_after_s`; then it gets requests again, and the next
failure benches it again. With every node benched, `pick` still returns the one benched
longest ago: the caller backs off between attempts (backpressure), so nothing is dropped and
the first node back takes the traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")

RETRY_AFTER_S = 30.0


@dataclass
class Node(Generic[C]):
    """One listed node: its masked URL (for messages and metrics) and its own client."""

    url: str
    client: C
    down_until: float = 0.0  # monotonic time before which the node gets no request; 0 = live
    failures: int = 0  # requests that failed on this node
    last_error: str = ""


class NodePool(Generic[C]):
    """Live/down bookkeeping for the nodes of one cluster; safe to use from several threads."""

    def __init__(self, nodes: list[Node[C]], retry_after_s: float = RETRY_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not nodes:
            raise ValueError("a node pool needs at least one node")
        self.nodes = nodes
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0
        # url -> True while the node answers. The same dict object for the pool's lifetime, so
        # a metrics collector can hold it and read the current state at scrape time.
        self.states: dict[str, bool] = {n.url: True for n in nodes}

    def pick(self) -> Node[C]:
        """The next live node in turn; with none live, the one benched longest ago."""
        with self._lock:
            now = self._clock()
            count = len(self.nodes)
            for step in range(count):
                node = self.nodes[(self._next + step) % count]
                if node.down_until <= now:
                    self._next = (self._next + step + 1) % count
                    return node
            return min(self.nodes, key=lambda n: n.down_until)

    def mark_down(self, node: Node[C], reason: str) -> bool:
        """Bench `node` for `retry_after_s`; True when another node is live to take its work."""
        with self._lock:
            now = self._clock()
            node.down_until = now + self.retry_after_s
            node.failures += 1
            node.last_error = reason
            self.states[node.url] = False
            return any(n.down_until <= now for n in self.nodes if n is not node)

    def mark_up(self, node: Node[C]) -> None:
        """`node` answered: it takes requests again right away."""
        if node.down_until or not self.states[node.url]:
            with self._lock:
                node.down_until = 0.0
                node.last_error = ""
                self.states[node.url] = True

    def live_count(self) -> int:
        now = self._clock()
        return sum(1 for n in self.nodes if n.down_until <= now)
