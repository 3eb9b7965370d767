// logpipe live dashboard: polls /api/v1/summary (schema logpipe.summary/1) and draws it.
// No third-party code; every value from the logs is written with textContent, never as HTML.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  let windowName = params.get("window") || "1m";
  const pollMs = Math.max(250, Number(params.get("poll_ms")) || 1000);
  const SVG = "http://www.w3.org/2000/svg";
  let last = null;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(v, digits) {
    if (v === null || v === undefined) return "–";
    if (digits === undefined) return Math.round(v).toLocaleString("en-US");
    return Number(v).toFixed(digits);
  }
  function ms(v) {
    if (v === null || v === undefined) return "–";
    return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
  }
  function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }

  function sparkline(id, points, key) {
    const svg = document.getElementById(id);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const vals = points.map((p) => (p[key] === null ? 0 : p[key]));
    if (vals.length === 0) return;
    const max = Math.max(...vals, 1e-9);
    const step = vals.length > 1 ? 300 / (vals.length - 1) : 0;
    const pts = vals.map((v, i) => (i * step).toFixed(1) + "," + (58 - (v / max) * 56).toFixed(1));
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
    const title = document.createElementNS(SVG, "title");
    title.textContent = "max " + max.toFixed(2);
    svg.appendChild(title);
  }

  function card(parent, key, value, bad) {
    const c = el("div", { class: "card" + (bad ? " bad" : ""), "data-k": key });
    c.appendChild(el("div", { class: "v" }, value));
    c.appendChild(el("div", { class: "k" }, key));
    parent.appendChild(c);
  }

  function render(s) {
    const w = windowName;
    document.getElementById("window-label").textContent = "(" + w.replace("_", " ") + ")";
    for (const b of document.querySelectorAll("#windows button")) b.classList.toggle("active", b.dataset.window === w);
    const ov = document.getElementById("overview");
    ov.replaceChildren();
    const o = s.overall[w];
    card(ov, "requests since start", num(s.overall.since_start.count));
    card(ov, "req/s", num(o.rate_per_s, 1));
    card(ov, "5xx", pct(o.error_rate), s.overall.state === "error");
    card(ov, "4xx", pct(o.client_error_rate));
    card(ov, "p95 ms", ms(o.p95_ms));
    card(ov, "p99 ms", ms(o.p99_ms));
    const pts = s.series.points;
    sparkline("spark-rps", pts, "requests_per_s");
    sparkline("spark-5xx", pts, "errors_5xx_per_s");
    sparkline("spark-p95", pts, "p95_ms");

    const alerts = document.getElementById("alerts");
    alerts.replaceChildren();
    const shown = s.alerts.filter((a) => a.state !== "ok");
    if (shown.length === 0) alerts.appendChild(el("li", { class: "alert-none" }, "no alerts firing"));
    for (const a of shown) {
      const li = el("li", { class: "alert-" + a.state, "data-alert": a.name, "data-state": a.state });
      let text = a.state.toUpperCase() + " " + a.name + " (" + a.severity + ")";
      if (a.value !== null) text += ": " + a.metric + " " + Number(a.value).toPrecision(3) + " " + a.comparison + " " + a.threshold;
      if (a.state === "firing" && a.fired_at) text += " since " + a.fired_at;
      if (a.state === "resolved" && a.resolved_at) text += " at " + a.resolved_at;
      if (a.cooldown_remaining_s > 0) text += " · cooldown " + Math.ceil(a.cooldown_remaining_s) + " s";
      li.textContent = text;
      alerts.appendChild(li);
    }

    const tbody = document.querySelector("#routes tbody");
    tbody.replaceChildren();
    for (const r of s.routes) {
      const st = r[w];
      const tr = el("tr", { class: "route state-" + r.state, "data-route": r.route, "data-method": r.method });
      const cells = [
        ["method", r.method], ["route", r.route], ["since_start_count", num(r.since_start.count)],
        ["rate_per_s", num(st.rate_per_s, 2)], ["status_4xx", num(st.status_4xx)], ["status_5xx", num(st.status_5xx)],
        ["client_error_rate", pct(st.client_error_rate)], ["error_rate", pct(st.error_rate)],
        ["p50_ms", ms(st.p50_ms)], ["p95_ms", ms(st.p95_ms)], ["p99_ms", ms(st.p99_ms)],
      ];
      for (const [k, v] of cells) tr.appendChild(el("td", { "data-k": k }, v));
      tbody.appendChild(tr);
    }

    const pages = document.querySelector("#pages tbody");
    pages.replaceChildren();
    const pw = w === "since_start" ? "since_start" : "5m"; // page events are sparse: no 1 min view
    for (const p of s.pages || []) {
      const st = p[pw];
      const tr = el("tr", { class: "page", "data-page": p.route });
      const v = (name) => (st[name] ? st[name].p75 : null);
      const cells = [["route", p.route], ["page_views", num(st.page_views)], ["js_errors", num(st.js_errors)],
                     ["js_error_rate", pct(st.js_error_rate)], ["LCP", ms(v("LCP"))], ["INP", ms(v("INP"))],
                     ["CLS", v("CLS") === null ? "–" : v("CLS").toFixed(3)]];
      for (const [k, val] of cells) tr.appendChild(el("td", { "data-k": k }, val));
      pages.appendChild(tr);
    }

    const slow = document.getElementById("slowest");
    slow.replaceChildren();
    for (const r of s.slowest) slow.appendChild(el("li", {}, r.method + " " + r.route + ": p95 " + ms(r.p95_ms) + " ms, p99 " + ms(r.p99_ms) + " ms"));

    const p = s.pipeline;
    const pipe = document.getElementById("pipeline");
    pipe.replaceChildren();
    card(pipe, "records in/s", num(p.records_in_per_s, 1));
    card(pipe, "records out/s", num(p.records_out_per_s, 1));
    card(pipe, "bytes behind", num(p.bytes_behind), p.bytes_behind > 0);
    card(pipe, "delivered", num(p.delivered));
    card(pipe, "sink", p.sink_error ? p.sink_error : "ok", !p.sink_healthy);
    card(pipe, "dead-lettered", num(p.dead_lettered), p.dead_lettered > 0);
    card(pipe, "throttled", num(p.throttled));
    card(pipe, "parse failures", num(p.parse_failures));
    const files = document.querySelector("#files tbody");
    files.replaceChildren();
    for (const f of p.files) {
      const tr = el("tr", { "data-path": f.path });
      tr.appendChild(el("td", {}, f.path));
      tr.appendChild(el("td", { "data-k": "bytes_behind" }, num(f.bytes_behind)));
      tr.appendChild(el("td", { "data-k": "lag_s" }, num(f.lag_s, 1)));
      files.appendChild(tr);
    }
    document.getElementById("status").textContent = "updated " + s.generated_at;
    document.body.dataset.generatedAt = s.generated_at;
  }

  async function poll() {
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const resp = await fetch("api/v1/summary", { headers, cache: "no-store" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      last = await resp.json();
      render(last);
    } catch (err) {
      document.getElementById("status").textContent = "cannot reach the sidecar: " + err.message;
    }
    setTimeout(poll, pollMs);
  }

  document.getElementById("windows").addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    windowName = b.dataset.window;
    if (last) render(last);
  });
  poll();
})();
