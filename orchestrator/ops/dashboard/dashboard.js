// Frontdoor's live dashboard: reads /_admin/stream (Server-Sent Events) with fetch(), so
// that the admin token travels in the Authorization header (EventSource cannot set
// headers, and a token in a URL ends up in histories and proxies' logs). The token is
// kept in sessionStorage only: gone when the tab closes.
"use strict";

const TOKEN_KEY = "frontdoor.admin_token";
const HISTORY = 60; // sparkline points: one a second
const SVG = "http://www.w3.org/2000/svg";
const history = new Map(); // name -> {p50: [], p99: []}
let controller = null;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function status(text, ok) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = "status " + (ok ? "ok" : "bad");
}

function fmt(value) { return value === null || value === undefined ? "–" : String(value); }

function remember(name, latency) {
  let h = history.get(name);
  if (!h) { h = { p50: [], p99: [] }; history.set(name, h); }
  h.p50.push(latency.p50 || 0); h.p99.push(latency.p99 || 0);
  if (h.p50.length > HISTORY) { h.p50.shift(); h.p99.shift(); }
  return h;
}

function sparkline(h, width, height) {
  const svg = el("svg:svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}` });
  const top = Math.max(1, ...h.p99);
  for (const key of ["p50", "p99"]) {
    const points = h[key].map((v, i) =>
      `${(i * width / (HISTORY - 1)).toFixed(1)},${(height - 1 - v / top * (height - 2)).toFixed(1)}`);
    svg.appendChild(el("svg:polyline", { class: key, points: points.join(" ") }));
  }
  return svg;
}

function severity(errorPct, state) {
  if (state === "open") return "open";
  if (state === "half_open" || errorPct >= 50) return "bad";
  if (errorPct >= 5) return "warn";
  return "ok";
}

function health(callsPerS, sev) {
  // Hystrix's circle: its size is the traffic, its colour the health.
  const svg = el("svg:svg", { class: "health", width: 36, height: 36, viewBox: "0 0 36 36" });
  const r = Math.min(17, 5 + Math.sqrt(callsPerS) * 2);
  const colour = sev === "ok" ? "g" : sev === "warn" ? "y" : "r";
  svg.appendChild(el("svg:circle", { cx: 18, cy: 18, r: r.toFixed(1), class: colour }));
  return svg;
}

// Hedged reads and request collapsing, when the backend turns them on: one short line.
function adaptiveLine(a) {
  if (!a) return "";
  const parts = [];
  if (typeof a.hedges_sent_total === "number") {
    parts.push(`hedges ${a.hedges_sent_total} sent / ${a.hedges_won_total} won`);
  }
  if (typeof a.collapse_calls_in_total === "number") {
    parts.push(`collapsed ${a.collapse_calls_in_total} calls into ${a.collapse_calls_out_total}`);
  }
  return parts.join(" · ");
}

function backendCard(b) {
  const sev = severity(b.error_pct, b.breaker.state);
  const card = el("div", { class: "card " + sev, "data-backend": b.name });
  const title = el("div", { class: "title" });
  title.appendChild(health(b.calls_per_s, sev));
  // The statsd name its series start with: the same names as Grafana's and the alerts'.
  title.appendChild(el("span", { class: "name", title: b.statsd ? `statsd: ${b.statsd}.*` : "" },
    b.name));
  // The instance's state is its worst worker's; say so when the workers disagree.
  const total = b.workers.length;
  const agreeing = b.breaker.workers[b.breaker.state] || 0;
  const state = b.breaker.state + (b.breaker.override ? " (forced)" : "") +
    (agreeing < total ? ` ${agreeing}/${total}` : "");
  title.appendChild(el("span", { class: "breaker " + b.breaker.state }, state));
  card.appendChild(title);
  card.appendChild(el("div", { class: "err" }, `${b.error_pct}% errors`));
  const dl = el("dl");
  const rows = [
    ["calls/s", b.calls_per_s], ["timeouts", b.timeouts],
    ["rejected", b.rejections], ["short-circ.", b.short_circuits],
    ["fallbacks", b.fallbacks], ["failures", b.failures],
    ["bulkhead", `${b.bulkhead.in_use}/${b.bulkhead.capacity}` +
      (b.bulkhead.limit === null ? "" : ` (limit ${b.bulkhead.limit})`)],
    ["queued", `${b.bulkhead.queued}/${b.bulkhead.queue_capacity}`],
    ["p50 ms", fmt(b.latency_ms.p50)], ["p99 ms", fmt(b.latency_ms.p99)],
  ];
  for (const [label, value] of rows) {
    dl.appendChild(el("dt", {}, label));
    dl.appendChild(el("dd", {}, value));
  }
  card.appendChild(dl);
  const adaptive = adaptiveLine(b.adaptive);
  if (adaptive) {
    card.appendChild(el("div", { class: "adaptive", title: "since start, every worker's added up" },
      adaptive));
  }
  card.appendChild(sparkline(remember("backend:" + b.name, b.latency_ms), 240, 30));
  if (b.workers.length > 1) card.appendChild(workerTable(b.workers));
  const actions = el("div", { class: "actions" });
  for (const force of ["open", "closed", "clear"]) {
    const button = el("button", { type: "button" }, "force " + force);
    if (force === "clear") button.textContent = "clear override";
    button.addEventListener("click", () => forceBreaker(b.name, force));
    actions.appendChild(button);
  }
  card.appendChild(actions);
  return card;
}

function workerTable(workers) {
  // Each worker process's own part (gunicorn): the instance's numbers are their sum.
  const table = el("table", { class: "workers" });
  const head = el("tr");
  for (const label of ["worker", "breaker", "calls/s", "err %", "in use"]) {
    head.appendChild(el("th", {}, label));
  }
  table.appendChild(head);
  for (const w of workers) {
    const row = el("tr", { "data-pid": w.pid });
    row.appendChild(el("td", {}, w.pid));
    row.appendChild(el("td", { class: "breaker " + w.state }, w.state));
    for (const value of [w.calls_per_s, w.error_pct, w.in_use]) row.appendChild(el("td", {}, value));
    table.appendChild(row);
  }
  return table;
}

function endpointRow(e) {
  const sev = e.error_pct >= 50 ? "bad" : e.error_pct >= 5 || e.degraded_pct >= 5 ? "warn" : "ok";
  const perWorker = e.workers.map((w) => `${w.pid}: ${w.calls_per_s}/s, ${w.error_pct}% errors`);
  const row = el("tr", { class: sev,
    title: [e.statsd ? `statsd: ${e.statsd}.*` : "", ...perWorker].join("\n").trim() });
  const cells = [e.name, e.team, e.calls_per_s, e.status["2xx"], e.status["4xx"],
    e.status["5xx"], e.status["504"], e.error_pct, e.degraded_pct, e.inflight,
    fmt(e.latency_ms.p50), fmt(e.latency_ms.p99)];
  for (const value of cells) row.appendChild(el("td", {}, value));
  const spark = el("td");
  spark.appendChild(sparkline(remember("endpoint:" + e.name, e.latency_ms), 120, 18));
  row.appendChild(spark);
  return row;
}

function render(doc) {
  const cards = document.getElementById("backends");
  cards.replaceChildren(...doc.backends.map(backendCard));
  const body = document.querySelector("#endpoints tbody");
  body.replaceChildren(...doc.endpoints.map(endpointRow));
  const pids = doc.instance.workers.map((w) => w.pid);
  const missing = doc.instance.missing.length ? `; not answering: ${doc.instance.missing.join(", ")}` : "";
  const workers = document.getElementById("workers");
  workers.textContent = (pids.length === 1 ? `1 worker (pid ${pids[0]})`
    : `${pids.length} workers (pids ${pids.join(", ")})`) + missing;
  workers.className = "workers" + (missing ? " bad" : "");
  document.getElementById("frontend").textContent =
    `frontend: ${doc.frontend.inflight} in flight, ${doc.frontend.shed_total} shed`;
  const lag = Math.max(0, Date.now() - doc.server_time_ms);
  document.getElementById("clock").textContent = `${doc.generated_at} (lag ${lag} ms)`;
}

async function forceBreaker(name, force) {
  const reason = window.prompt(`Force ${name}'s breaker ${force}: reason (audit log)`, "");
  if (reason === null) return;
  const reply = await fetch(`/_admin/backends/${encodeURIComponent(name)}/breaker`, {
    method: "POST",
    headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
    body: JSON.stringify({ force, reason: reason.slice(0, 200) }),
  });
  if (!reply.ok) { status(`force ${force} on ${name}: HTTP ${reply.status}`, false); return; }
  const result = await reply.json();
  const applied = result.applied_to.filter((w) => w.applied).length;
  status(`${name}: ${force} on ${applied}/${result.applied_to.length} workers` +
    (result.missing.length ? `, not answering: ${result.missing.join(", ")}` : ""),
  result.missing.length === 0);
}

// One SSE message's "data:" lines, joined; other fields and comments are skipped.
function parseEvent(block) {
  const data = [];
  let name = "message";
  for (const line of block.split("\n")) {
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    else if (line.startsWith("event:")) name = line.slice(6).trim();
  }
  return { name, data: data.join("\n") };
}

async function stream() {
  if (controller) controller.abort();
  controller = new AbortController();
  const reply = await fetch("/_admin/stream", {
    headers: { "Authorization": "Bearer " + token(), "Accept": "text/event-stream" },
    signal: controller.signal, cache: "no-store",
  });
  if (!reply.ok) {
    status(reply.status === 401 || reply.status === 403 ? "token refused" : `HTTP ${reply.status}`,
      false);
    return false;
  }
  status("live", true);
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return true;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event.name === "snapshot" && event.data) render(JSON.parse(event.data));
    }
  }
}

async function run() {
  // Reconnect when the stream ends (its lifetime, a drain) or breaks; not on a refusal.
  for (;;) {
    let again = true;
    try { again = await stream(); } catch (err) {
      if (err.name === "AbortError") return;
      status("disconnected: " + err.message, false);
    }
    if (!again) return;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("token");
  input.value = token();
  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    run();
  });
  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
    if (controller) controller.abort();
    status("not connected", false);
  });
  if (token()) run();
});
