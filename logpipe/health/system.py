"""Process and system figures for `/health/detailed` (psutil, from the `logpipe[health]` extra)."""

from __future__ import annotations

import os
import threading
from typing import Any

try:
    import psutil
except ImportError:  # the extra is optional; the endpoint says how to get it
    psutil = None

_proc_lock = threading.Lock()
_proc: Any = None


def _process() -> Any:
    """One Process object kept, so cpu_percent measures since the previous probe."""
    global _proc
    with _proc_lock:
        if _proc is None or _proc.pid != os.getpid():
            _proc = psutil.Process()
            _proc.cpu_percent(None)
        return _proc


def logging_queue() -> dict[str, int] | None:
    from logpipe.emit.setup import queue_stats

    return queue_stats()


def figures(disk_path: str = "/") -> dict[str, Any]:
    """CPU, memory, open files, threads, disk of `disk_path`, and the logging queue's depth and drops."""
    out: dict[str, Any] = {"logging_queue": logging_queue()}
    if psutil is None:
        out["error"] = "psutil is not installed: pip install 'logpipe[health]'"
        return out
    p = _process()
    with p.oneshot():
        mem = p.memory_info()
        proc: dict[str, Any] = {"pid": p.pid, "cpu_percent": p.cpu_percent(None), "rss_bytes": mem.rss,
                                "vms_bytes": mem.vms, "threads": p.num_threads()}
        try:
            proc["open_fds"] = p.num_fds()
        except (AttributeError, psutil.Error):
            proc["open_fds"] = None
        try:
            proc["open_files"] = len(p.open_files())
        except psutil.Error:
            proc["open_files"] = None
    vm = psutil.virtual_memory()
    system: dict[str, Any] = {"cpu_count": psutil.cpu_count(), "cpu_percent": psutil.cpu_percent(None),
                              "memory_total_bytes": vm.total, "memory_available_bytes": vm.available,
                              "memory_percent": vm.percent}
    try:
        system["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        du = psutil.disk_usage(disk_path)
        system["disk"] = {"path": disk_path, "total_bytes": du.total, "free_bytes": du.free,
                          "percent": du.percent}
    except OSError as exc:
        system["disk"] = {"path": disk_path, "error": str(exc)}
    out.update(process=proc, system=system)
    return out
