"""The report dict as rich tables for a terminal (what an on-call engineer reads first).

Everything that came from a log (paths, messages, ids) goes in as `Text`, never as markup:
a request for `/[bold]x` or `/[/]` must print as itself, not restyle or crash the report.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text as T

MAX_ROUTES_SHOWN = 25
_ERRORS = frozenset({"error", "critical", "fatal", "alert", "emergency"})


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def fmt_rate(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}/s"


def render_terminal(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    o = report["overall"]
    span = report["time_span"]
    summary = Table(title="logpipe report", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("files", T(", ".join(f["path"] for f in report["files"]) or "-"))
    summary.add_row("lines / records", f"{report['lines']:,} / {report['records']:,}"
                    + (f"  ({report['parse_failures']:,} unparsed)" if report["parse_failures"] else ""))
    if report.get("tagged"):
        summary.add_row("bad input", T(", ".join(f"{n:,} {tag}" for tag, n in report["tagged"].items())))
    summary.add_row("time span", T(f"{span['start'] or '-'} → {span['end'] or '-'}"
                                   + (f"  ({span['seconds']:,.0f} s)" if span["seconds"] else "")))
    summary.add_row("requests", f"{o['count']:,}  ({fmt_rate(o.get('rate_per_s'))})")
    summary.add_row("errors", f"5xx {o['status_5xx']:,} ({fmt_pct(o['error_rate'])}), "
                    f"4xx {o['status_4xx']:,} ({fmt_pct(o['client_error_rate'])})")
    summary.add_row("latency", " ".join(f"{k[:-3]} {fmt_ms(o[k])}" for k in
                                        ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")))
    if o.get("invalid_durations"):
        summary.add_row("invalid durations", f"{o['invalid_durations']:,} (negative or > 1 day; not in percentiles)")
    if o.get("routes_folded"):
        summary.add_row("routes folded", f"{o['routes_folded']:,} requests into {{other}} (route cap)")
    console.print(summary)

    if report["status_codes"]:
        codes = Table(title="status codes", title_justify="left")
        codes.add_column("status")
        codes.add_column("count", justify="right")
        codes.add_column("share", justify="right")
        total = sum(report["status_codes"].values()) or 1
        for code, n in report["status_codes"].items():
            style = "red" if code.startswith("5") else ("yellow" if code.startswith("4") else "")
            codes.add_row(f"[{style}]{code}[/]" if style else code, f"{n:,}", f"{n / total:.1%}")
        console.print(codes)

    if report.get("levels"):
        levels = Table(title="log levels (app/error logs)", title_justify="left")
        levels.add_column("level")
        levels.add_column("count", justify="right")
        for lvl, n in report["levels"].items():
            levels.add_row(T(str(lvl), style="red" if str(lvl).lower() in _ERRORS else ""), f"{n:,}")
        console.print(levels)

    routes = Table(title="routes (by total time)", title_justify="left")
    routes.add_column("method", no_wrap=True)
    routes.add_column("route", min_width=18, overflow="fold")
    for col in ("count", "5xx %", "p50", "p95", "p99", "max", "total"):
        routes.add_column(col, justify="right")
    if not report["routes"]:
        routes.caption = "no access records"
    for r in report["routes"][:MAX_ROUTES_SHOWN]:
        routes.add_row(T(r["method"]), T(r["route"]), f"{r['count']:,}", fmt_pct(r["error_rate"]), fmt_ms(r["p50_ms"]),
                       fmt_ms(r["p95_ms"]), fmt_ms(r["p99_ms"]), fmt_ms(r["max_ms"]), fmt_ms(r["total_ms"]))
    if len(report["routes"]) > MAX_ROUTES_SHOWN:
        routes.caption = f"{len(report['routes']) - MAX_ROUTES_SHOWN} more routes in --json / --html"
    console.print(routes)

    if report["slowest"]:
        slow = Table(title="slowest requests", title_justify="left")
        for col in ("duration", "time", "request", "status", "request_id"):
            slow.add_column(col)
        for s in report["slowest"]:
            slow.add_row(fmt_ms(s["duration_ms"]), T(str(s.get("@timestamp") or "-")),
                         T(f"{s['method']} {s.get('path') or s['route']}"), T(str(s.get("status") or "-")),
                         T(str(s.get("request_id") or "-")))
        console.print(slow)

    if report["top_errors"]:
        errs = Table(title="top errors", title_justify="left")
        errs.add_column("count", justify="right")
        errs.add_column("type")
        errs.add_column("message", overflow="fold")
        for e in report["top_errors"]:
            errs.add_row(f"{e['count']:,}", T(e["type"]), T(e["message"]))
        console.print(errs)

    if report.get("top_http_errors"):
        http = Table(title="5xx by route", title_justify="left")
        for col in ("count", "status", "method", "route"):
            http.add_column(col, justify="right" if col == "count" else "left")
        for e in report["top_http_errors"]:
            http.add_row(f"{e['count']:,}", str(e["status"]), T(e["method"]), T(e["route"]))
        console.print(http)

    points = report["series"]["points"]
    if points:
        series = Table(title=f"per {report['series']['bucket_s']} s (last 15 shown)", title_justify="left")
        for col in ("time", "requests/s", "5xx %", "p95", "error logs"):
            series.add_column(col, justify="right" if col != "time" else "left")
        for p in points[-15:]:
            series.add_row(T(p["t"]), f"{p['rate_per_s']:.2f}", fmt_pct(p["error_rate"]), fmt_ms(p["p95_ms"]),
                           f"{p.get('error_logs', 0):,}")
        console.print(series)
