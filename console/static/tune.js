// crowdwatch tuning: sweep one rule parameter over a recording, see the trade-off, apply.
"use strict";

const T = { options: null, report: null, rule: null, param: null };

function option(value, label) { const o = el("option", "", label); o.value = value; return o; }

async function load() {
  const r = await fetch("/api/tune/options", { credentials: "same-origin" });
  if (r.status === 401) { window.location.assign("/login"); return; }
  if (!r.ok) { $("result").textContent = `tuning unavailable (${r.status})`; return; }
  T.options = await r.json();
  $("recording").replaceChildren(...T.options.recordings.map((n) => option(n, n)));
  $("rule").replaceChildren(...T.options.rules.map((rule) => option(rule.index, `#${rule.index} ${rule.kind} · ${rule.zone}`)));
  pickRule();
}

function pickRule() {
  const rule = T.options.rules.find((r) => String(r.index) === $("rule").value);
  T.rule = rule;
  $("param").replaceChildren(...(rule ? Object.entries(rule.params).map(([k, v]) => option(k, `${k} (now ${v})`)) : []));
}

async function run() {
  const body = { recording: $("recording").value, rule: Number($("rule").value), param: $("param").value,
                 sweep: $("sweep").value.trim(), level: $("level").value.trim(), min_peak: $("min-peak").value.trim() };
  T.param = body.param;
  const r = await fetch("/api/tune/run", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await r.json();
  if (!r.ok) { $("progress").textContent = answer.error; return; }
  poll(answer.job);
}

async function poll(job) {
  const r = await fetch(`/api/tune/jobs/${job}`, { credentials: "same-origin" });
  const state = await r.json();
  if (state.state === "running") {
    $("progress").textContent = state.total ? `replaying ${state.done}/${state.total}` : "replaying…";
    setTimeout(() => poll(job), 500);
    return;
  }
  if (state.state === "failed") { $("progress").textContent = `failed: ${state.error}`; return; }
  $("progress").textContent = `done: ${state.report.peaks} peaks, ${state.report.zone_days} zone-days`;
  T.report = state.report;
  chart(); table();
}

function chart() {
  const rows = T.report.results;
  const W = 640, H = 280, L = 50, R = 50, B = 36, Tp = 32;
  const xs = rows.map((r) => r.value);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const fmax = Math.max(1e-9, ...rows.map((r) => r.false_per_day));
  const X = (v) => L + (x1 === x0 ? 0.5 : (v - x0) / (x1 - x0)) * (W - L - R);
  const Yf = (v) => Tp + (1 - v / fmax) * (H - Tp - B);
  const Yc = (v) => Tp + (1 - v) * (H - Tp - B);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "tune-chart", role: "img", "aria-label": "false alerts and peaks caught against the value" });
  s.appendChild(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  for (const v of xs) s.appendChild(svg("text", { x: X(v), y: H - B + 16, class: "tick", "text-anchor": "middle" }, String(v)));
  s.appendChild(svg("text", { x: 6, y: 16, class: "tick false" }, `false/day (max ${fmax.toFixed(3)})`));
  s.appendChild(svg("text", { x: W - 6, y: 16, class: "tick caught", "text-anchor": "end" }, "peaks caught"));
  s.appendChild(svg("polyline", { points: rows.map((r) => `${X(r.value)},${Yf(r.false_per_day)}`).join(" "), class: "line false" }));
  s.appendChild(svg("polyline", { points: rows.map((r) => `${X(r.value)},${Yc(r.caught_ratio)}`).join(" "), class: "line caught" }));
  for (const r of rows) {
    s.appendChild(svg("circle", { cx: X(r.value), cy: Yf(r.false_per_day), r: 4, class: "dot false" }));
    s.appendChild(svg("circle", { cx: X(r.value), cy: Yc(r.caught_ratio), r: 4, class: "dot caught" }));
  }
  s.appendChild(svg("text", { x: W / 2, y: H - 4, class: "tick", "text-anchor": "middle" }, T.param));
  $("chart").replaceChildren(s);
}

function table() {
  $("results").querySelector("tbody").replaceChildren(...T.report.results.map((r) => {
    const tr = el("tr");
    tr.dataset.value = r.value;
    for (const cell of [r.value, r.alerts_per_day, r.false_per_day, `${r.caught}/${r.peaks}`,
                        r.median_lead_s === null ? "–" : `${Math.round(r.median_lead_s / 60)} min`]) tr.appendChild(el("td", "", String(cell)));
    const td = el("td");
    const apply = el("button", "apply", "Apply");
    apply.addEventListener("click", () => choose(r.value));
    td.appendChild(apply);
    tr.appendChild(td);
    return tr;
  }));
}

async function choose(value) {
  $("result").textContent = "applying…";
  const r = await fetch("/api/tune/apply", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify({ rule: T.rule.index, param: T.param, value }) });
  const answer = await r.json();
  const box = $("result");
  box.replaceChildren();
  if (answer.ok) box.appendChild(el("div", "ok", `${T.param} = ${value} saved to ${answer.saved}; the pipeline now uses it.`));
  else for (const p of answer.problems || [{ message: answer.error }]) box.appendChild(el("div", "problem", `${p.line ? `line ${p.line}: ` : ""}${p.where ? `${p.where}: ` : ""}${p.message}`));
}

$("rule").addEventListener("change", pickRule);
$("run").addEventListener("click", run);
load();
