"""The report dict as one self-contained HTML page: inline CSS and SVG charts, no scripts,
no network fetches (it must open on an air-gapped laptop and inside a ticket attachment).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from logpipe.metrics.render_terminal import fmt_ms, fmt_pct, fmt_rate

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.muted{color:#667085} .cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e4e7ec;border-radius:8px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:20px} table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #eef0f3;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:16px}
.chart{background:#fff;border:1px solid #e4e7ec;border-radius:8px;padding:8px}
.chart h3{font-size:13px;margin:0 0 4px;color:#344054} .err{color:#b42318} code{font-size:12px}
"""

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 420, 180, 52, 26, 8, 10


def _num(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:.3g}k"
    return f"{v:.3g}"


def _epoch(t: str) -> float:
    try:
        return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def line_chart(title: str, xs: list[str], ys: list[float | None], color: str, unit: str = "",
               step_s: float = 60.0) -> str:
    """An SVG polyline on a time axis with y ticks; missing values and gaps longer than a
    bucket break the line (no interpolation across hours without data)."""
    vals = [y for y in ys if y is not None]
    top = max(vals) if vals else 1.0
    top = top * 1.1 if top > 0 else 1.0
    ts = [_epoch(t) for t in xs]
    t0, t1 = (ts[0], ts[-1]) if ts else (0.0, 1.0)
    span = (t1 - t0) or 1.0
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(t: float) -> float:
        return PAD_L + (iw * (t - t0) / span if t1 > t0 else iw / 2)

    def y(v: float) -> float:
        return PAD_T + ih - ih * v / top

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" '
             f'aria-label="{escape(title)}">']
    for k in range(5):
        v = top * k / 4
        yy = y(v)
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eef0f3"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{yy + 4:.1f}" font-size="10" text-anchor="end" '
                     f'fill="#667085">{escape(_num(v))}{escape(unit)}</text>')
    segs: list[list[str]] = [[]]
    prev: float | None = None
    for t, v in zip(ts, ys, strict=True):
        if v is None or (prev is not None and t - prev > 1.5 * step_s):
            segs.append([])
        if v is not None:
            segs[-1].append(f"{x(t):.1f},{y(v):.1f}")
        prev = t
    for seg in segs:
        if len(seg) == 1:
            cx, cy = seg[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        elif seg:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{" ".join(seg)}"/>')
    if xs:
        multi_day = xs[0][:10] != xs[-1][:10]
        for i in sorted({0, len(xs) - 1}):
            anchor = "start" if i == 0 else "end"
            label = xs[i][5:16].replace("T", " ") if multi_day else xs[i][11:16]
            parts.append(f'<text x="{x(ts[i]):.1f}" y="{H - 8}" font-size="10" text-anchor="{anchor}" '
                         f'fill="#667085">{escape(label)}</text>')
    else:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#667085">no data</text>')
    parts.append("</svg>")
    return f'<div class="chart"><h3>{escape(title)}</h3>{"".join(parts)}</div>'


def bar_chart(title: str, labels: list[str], values: list[float], colors: list[str]) -> str:
    """Horizontal bars, one per label, with the value at the end of each bar."""
    row = 20
    h = max(40, PAD_T * 2 + row * len(labels))
    label_w = 150
    iw = W - label_w - 60
    top = max(values) if values else 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="100%" role="img" '
             f'aria-label="{escape(title)}">']
    for i, (lab, v, c) in enumerate(zip(labels, values, colors, strict=True)):
        yy = PAD_T + i * row
        bw = iw * v / top if top else 0
        short = lab if len(lab) <= 24 else lab[:23] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{yy + 14}" font-size="11" text-anchor="end" fill="#344054">'
                     f'<title>{escape(lab)}</title>{escape(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{yy + 3}" width="{bw:.1f}" height="{row - 6}" fill="{c}" rx="2"/>')
        parts.append(f'<text x="{label_w + bw + 4:.1f}" y="{yy + 14}" font-size="10" fill="#667085">'
                     f'{escape(_num(v))}</text>')
    if not labels:
        parts.append(f'<text x="{W / 2}" y="24" text-anchor="middle" fill="#667085">no data</text>')
    parts.append("</svg>")
    return f'<div class="chart"><h3>{escape(title)}</h3>{"".join(parts)}</div>'


def _status_color(code: str) -> str:
    return {"5": "#d92d20", "4": "#f79009", "3": "#7a5af8", "2": "#12b76a"}.get(code[:1], "#98a2b3")


def _table(headers: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any]) -> str:
    o = report["overall"]
    span = report["time_span"]
    pts = report["series"]["points"]
    xs = [p["t"] for p in pts]
    step = float(report["series"]["bucket_s"])
    cards = [
        ("requests", f"{o['count']:,}"), ("rate", fmt_rate(o.get("rate_per_s"))),
        ("5xx rate", fmt_pct(o["error_rate"])), ("4xx rate", fmt_pct(o["client_error_rate"])),
        ("p50", fmt_ms(o["p50_ms"])), ("p95", fmt_ms(o["p95_ms"])), ("p99", fmt_ms(o["p99_ms"])),
        ("max", fmt_ms(o["max_ms"])),
    ]
    codes = list(report["status_codes"].items())
    top_routes = report["routes"][:15]
    charts = "".join([
        line_chart(f"requests/s (per {report['series']['bucket_s']} s)", xs, [p["rate_per_s"] for p in pts],
                   "#2e90fa", step_s=step),
        line_chart("5xx error rate (%)", xs,
                   [None if p["error_rate"] is None else p["error_rate"] * 100 for p in pts], "#d92d20", "%",
                   step_s=step),
        line_chart("p95 latency (ms)", xs, [p["p95_ms"] for p in pts], "#7a5af8", step_s=step),
        line_chart("error-level log records", xs, [float(p.get("error_logs", 0)) for p in pts], "#b42318",
                   step_s=step),
        bar_chart("status codes", [c for c, _ in codes], [float(n) for _, n in codes],
                  [_status_color(c) for c, _ in codes]),
        bar_chart("total time by route (s)", [f"{r['method']} {r['route']}" for r in top_routes],
                  [(r["total_ms"] or 0.0) / 1000 for r in top_routes], ["#2e90fa"] * len(top_routes)),
    ])
    routes = _table(
        ["method", "route", "count", "rate", "5xx %", "4xx", "5xx", "p50", "p90", "p95", "p99", "max", "total"],
        [[r["method"], r["route"], f"{r['count']:,}", fmt_rate(r.get("rate_per_s")), fmt_pct(r["error_rate"]),
          f"{r['status_4xx']:,}", f"{r['status_5xx']:,}", fmt_ms(r["p50_ms"]), fmt_ms(r["p90_ms"]),
          fmt_ms(r["p95_ms"]), fmt_ms(r["p99_ms"]), fmt_ms(r["max_ms"]), fmt_ms(r["total_ms"])]
         for r in report["routes"]],
        set(range(2, 13)),
    )
    slow = _table(["duration", "time", "method", "path", "status", "request_id"],
                  [[fmt_ms(s["duration_ms"]), str(s.get("@timestamp") or "-"), s["method"],
                    str(s.get("path") or s["route"]), str(s.get("status") or "-"), str(s.get("request_id") or "-")]
                   for s in report["slowest"]], {0})
    errors = _table(["count", "type", "message"],
                    [[f"{e['count']:,}", e["type"], e["message"]] for e in report["top_errors"]], {0})
    http = _table(["count", "status", "method", "route"],
                  [[f"{e['count']:,}", str(e["status"]), e["method"], e["route"]]
                   for e in report.get("top_http_errors", [])], {0})
    levels = _table(["level", "count"], [[str(k), f"{v:,}"] for k, v in report.get("levels", {}).items()], {1})
    files = ", ".join(f["path"] for f in report["files"])
    invalid = (f'<p class="err">{o["invalid_durations"]:,} requests had negative or absurd (&gt; 1 day) '
               f"durations; they are counted but not in the percentiles.</p>") if o.get("invalid_durations") else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>logpipe report</title><style>{_CSS}</style></head>
<body>
<h1>logpipe report</h1>
<div class="muted">{escape(files)} · {report['lines']:,} lines · {escape(str(span['start'] or '-'))} →
{escape(str(span['end'] or '-'))} · generated {escape(report['generated_at'])}</div>
<div class="cards">{''.join(f'<div class="card"><span class="muted">{escape(k)}</span><b>{escape(v)}</b></div>'
                             for k, v in cards)}</div>
{invalid}
<h2>Over time</h2><div class="charts">{charts}</div>
<h2>Routes (by total time)</h2>{routes}
<h2>Slowest requests</h2>{slow}
<h2>Log levels (app/error logs)</h2>{levels if report.get('levels') else '<p class="muted">none</p>'}
<h2>Top errors</h2>{errors if report['top_errors'] else '<p class="muted">none</p>'}
<h2>5xx by route</h2>{http if report.get('top_http_errors') else '<p class="muted">none</p>'}
</body></html>
"""
