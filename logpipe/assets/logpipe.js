// logpipe browser events: page views, Web Vitals, JavaScript errors and custom events, batched
// to the service's beacon endpoint. One tag enables it:
//   <script src="/_logpipe/logpipe.js" data-endpoint="/_logpipe/events" data-request-id="…" defer></script>
// No third-party code; the Web Vitals are measured here with PerformanceObserver.
"use strict";
(function () {
  if (window.logpipe && window.logpipe.installed) return;
  var me = document.currentScript;
  var endpoint = (me && me.getAttribute("data-endpoint")) || "/_logpipe/events";
  var rid = (me && me.getAttribute("data-request-id")) || null;
  var MAX_BATCH = 40, MAX_QUEUE = 200, SEND_AFTER_MS = 5000;
  var queue = [], timer = null, finalSent = false;

  function here() { return location.origin + location.pathname; } // never the query string
  function cut(s, n) { s = s == null ? "" : String(s); return s.length > n ? s.slice(0, n) : s; }

  function push(ev) {
    ev.url = here();
    if (queue.length >= MAX_QUEUE) queue.shift();
    queue.push(ev);
    if (!timer) timer = setTimeout(function () { send(false); }, SEND_AFTER_MS);
  }

  function send(useBeacon) {
    if (timer) { clearTimeout(timer); timer = null; }
    var sent = [];
    while (queue.length) {
      var body = JSON.stringify({ rid: rid, events: queue.splice(0, MAX_BATCH) });
      var blob = new Blob([body], { type: "text/plain" });
      if (useBeacon && navigator.sendBeacon && navigator.sendBeacon(endpoint, blob)) continue;
      sent.push(fetch(endpoint, { method: "POST", body: body, keepalive: true, credentials: "same-origin",
                                  headers: { "Content-Type": "text/plain" } }).catch(function () {}));
    }
    return Promise.all(sent);
  }

  // -- Web Vitals --------------------------------------------------------------------------------
  function vital(name, value) { if (value != null && isFinite(value)) push({ type: "vital", name: name, value: value }); }
  function observe(type, cb, opts) {
    try {
      var po = new PerformanceObserver(function (list) { list.getEntries().forEach(cb); });
      po.observe(Object.assign({ type: type, buffered: true }, opts || {}));
      return po;
    } catch (e) { return null; }
  }
  var lcp = null, lcpDone = false, cls = 0, session = 0, sessionStart = 0, sessionLast = 0;
  var interactions = {}, firstInput = null;
  observe("paint", function (e) { if (e.name === "first-contentful-paint") vital("FCP", e.startTime); });
  function onLcp(e) { if (!lcpDone) lcp = e.startTime; }
  var lcpObserver = observe("largest-contentful-paint", onLcp);
  observe("layout-shift", function (e) {
    if (e.hadRecentInput) return;
    if (session && (e.startTime - sessionLast > 1000 || e.startTime - sessionStart > 5000)) session = 0;
    if (!session) sessionStart = e.startTime;
    session += e.value; sessionLast = e.startTime;
    if (session > cls) cls = session;
  });
  function onEvent(e) {
    if (!e.interactionId) return;
    interactions[e.interactionId] = Math.max(interactions[e.interactionId] || 0, e.duration);
  }
  var eventObserver = observe("event", onEvent, { durationThreshold: 16 });
  function onFirstInput(e) { firstInput = e.duration; }
  var firstInputObserver = observe("first-input", onFirstInput);
  function finishLcp() {
    // observer callbacks are delivered late; take entries still queued before deciding
    if (lcpObserver) lcpObserver.takeRecords().forEach(onLcp);
    if (!lcpDone && lcp != null) { lcpDone = true; vital("LCP", lcp); }
  }
  ["keydown", "pointerdown"].forEach(function (t) { addEventListener(t, finishLcp, { once: true, capture: true }); });
  function inp() {
    if (eventObserver) eventObserver.takeRecords().forEach(onEvent);
    if (firstInputObserver) firstInputObserver.takeRecords().forEach(onFirstInput);
    var d = Object.keys(interactions).map(function (k) { return interactions[k]; }).sort(function (a, b) { return b - a; });
    if (!d.length) return firstInput;
    return d[Math.min(d.length - 1, Math.floor(d.length / 50))]; // ~p98: skip one outlier per 50
  }
  function finalVitals() {
    if (finalSent) return;
    finalSent = true;
    finishLcp();
    vital("CLS", cls);
    var i = inp();
    if (i != null) vital("INP", i);
  }
  addEventListener("load", function () {
    var nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
    if (nav) vital("TTFB", nav.responseStart);
  });

  // -- errors ------------------------------------------------------------------------------------
  addEventListener("error", function (e) {
    if (!e.message) return; // resource load errors carry no message
    push({ type: "error", message: cut(e.message, 1000), error_type: e.error && e.error.name ? cut(e.error.name, 100) : "Error",
           stack: cut(e.error && e.error.stack, 6000), source: e.filename || undefined, line: e.lineno, col: e.colno });
  });
  addEventListener("unhandledrejection", function (e) {
    var r = e.reason || {};
    push({ type: "error", message: cut(r.message || String(e.reason), 1000), error_type: cut(r.name || "UnhandledRejection", 100),
           stack: cut(r.stack, 6000) });
  });

  // -- page lifecycle --------------------------------------------------------------------------------
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { finalVitals(); send(true); }
  });
  addEventListener("pagehide", function () { finalVitals(); send(true); });

  push({ type: "pageview", referrer: document.referrer ? cut(document.referrer, 2000) : undefined });

  window.logpipe = {
    installed: true,
    requestId: rid,
    track: function (name, props) { push({ type: "custom", name: cut(name, 64), props: props || {} }); },
    // Report the page's final vitals (as when it is hidden) and send everything. Waits for the
    // next frame first: the browser reports the last interaction's timing after it painted.
    flush: function () {
      return new Promise(function (done) {
        requestAnimationFrame(function () { setTimeout(done, 50); });
        setTimeout(done, 1000); // a hidden page gets no frames
      }).then(function () { finalVitals(); return send(false); });
    },
  };
})();
