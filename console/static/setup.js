// crowdwatch camera setup: draw zones, masks, ground points and height pairs on a masked,
// in-memory snapshot; check and save to the site file (the pipeline follows at once).
"use strict";

const S = { site: null, camera: null, zones: [], masks: [], selected: null, mode: "view",
            draft: [], size: null, pendingFoot: null, imageUrl: null,
            frames: [], labels: {}, frame: null, fit: null, saved: null, applied: false };

// What each mode expects next, shown beside the buttons (a first-time user reads it).
const HINTS = {
  view: "pick a step on the right",
  zone: "click the zone's corners on the picture, then Finish shape",
  mask: "click around what must never be seen (windows, screens), then Finish shape",
  ground: "click 4 points on the floor (e.g. tile corners), then type their metres in the table",
  height: "click a standing person's feet, then the top of their head",
  label: "click every head in the picture (click again to remove); then the next frame",
};
const LABELS_WANTED = 20;

const round = (v) => Math.round(v * 10) / 10;

async function addCamera() {
  const id = $("new-camera-id").value.trim();
  const url = $("new-camera-url").value.trim();
  $("result").textContent = "adding the camera…";
  const r = await fetch("/api/setup/cameras", { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ id, url }) });
  let answer;
  try { answer = await r.json(); } catch { answer = { ok: false, problems: [{ message: `HTTP ${r.status}` }] }; }
  if (!answer.ok) { show("result", answer); return; }
  $("new-camera-url").value = "";  // it may hold credentials: not kept on the page
  $("add-form").hidden = true;
  await loadSite(id);
  $("result").textContent = `Camera ${id} added to ${answer.saved} and started: take a snapshot to draw its zones.`;
}

async function loadSite(pick) {
  const r = await fetch("/api/setup/site", { credentials: "same-origin" });
  if (r.status === 401) { window.location.assign("/login"); return; }
  if (!r.ok) { $("result").textContent = `setup unavailable (${r.status})`; return; }
  S.site = await r.json();
  $("site").textContent = S.site.site;
  $("camera").replaceChildren(...S.site.cameras.map((c) => { const o = el("option", "", c.id); o.value = c.id; return o; }));
  if (!S.site.editable) $("result").textContent = "Read-only: this process was started without a site file (--config).";
  if (pick && S.site.cameras.some((c) => c.id === pick)) $("camera").value = pick;
  pickCamera(pick && S.site.cameras.some((c) => c.id === pick) ? pick : (S.site.cameras.length ? S.site.cameras[0].id : null));
}

function pickCamera(id) {
  const cam = S.site.cameras.find((c) => c.id === id);
  if (S.camera !== id) {  // another camera: its own picture, frames and labels
    S.size = null; S.frames = []; S.labels = {}; S.frame = null; S.fit = null; S.applied = false; S.saved = null;
    $("canvas-wrap").replaceChildren(el("p", "muted", "Take a snapshot to start."));
  }
  S.camera = id;
  S.zones = cam ? JSON.parse(JSON.stringify(cam.zones)) : [];
  S.masks = cam ? JSON.parse(JSON.stringify(cam.privacy_masks || [])) : [];
  S.selected = S.zones.length ? S.zones[0].id : null;
  setMode("view");
  draw();
}

async function snapshot() {
  S.frame = null;
  if (S.mode === "label") setMode("view");
  await showImage(`/api/setup/cameras/${encodeURIComponent(S.camera)}/snapshot`);
}

async function showImage(url) {
  const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) { $("result").textContent = `no picture: ${(await r.json()).error || r.status}`; return; }
  const blob = await r.blob();
  if (S.imageUrl) URL.revokeObjectURL(S.imageUrl);
  S.imageUrl = URL.createObjectURL(blob);
  const img = new Image();
  img.onload = () => {
    S.size = [img.naturalWidth, img.naturalHeight];
    img.id = "snapshot";
    img.alt = `masked snapshot of ${S.camera}`;
    const overlay = svg("svg", { id: "overlay", viewBox: `0 0 ${S.size[0]} ${S.size[1]}`, preserveAspectRatio: "xMidYMid meet" });
    overlay.addEventListener("click", onClick);
    $("canvas-wrap").replaceChildren(img, overlay);
    draw();
  };
  img.src = S.imageUrl;
}

function toImage(evt) {
  const overlay = $("overlay");
  const pt = overlay.createSVGPoint();
  pt.x = evt.clientX; pt.y = evt.clientY;
  const p = pt.matrixTransform(overlay.getScreenCTM().inverse());
  return [round(p.x), round(p.y)];
}

function zone(id) { return S.zones.find((z) => z.id === id); }

function setMode(mode) {
  S.mode = mode;
  S.draft = [];
  S.pendingFoot = null;
  $("mode").textContent = `${mode === "view" ? "" : `${mode}: `}${HINTS[mode] || ""}`;
  for (const [btn, m] of [["new-zone", "zone"], ["new-mask", "mask"], ["ground", "ground"], ["height", "height"], ["label", "label"]]) {
    if (!$(btn)) continue;
    $(btn).classList.toggle("active", S.mode === m);
  }
  draw();
}

function onClick(evt) {
  // On a vertex handle a click in view mode is the end of a drag, not a new point.
  if (S.mode === "view" && evt.target.classList && evt.target.classList.contains("vertex")) return;
  const p = toImage(evt);
  if (S.mode === "zone" || S.mode === "mask") { S.draft.push(p); draw(); return; }
  if (S.mode === "label" && S.frame) {
    const heads = S.labels[S.frame] || (S.labels[S.frame] = []);
    const near = Math.max(S.size[0], S.size[1]) / 80;
    const hit = heads.findIndex((h) => Math.hypot(h[0] - p[0], h[1] - p[1]) < near);
    if (hit >= 0) heads.splice(hit, 1); else heads.push(p);
    draw(); drawFrames();
    return;
  }
  const z = zone(S.selected);
  if (!z) return;
  if (S.mode === "ground") {
    const g = z.ground || { image: [], world_m: [] };
    if (g.image.length >= 4) { g.image = []; g.world_m = []; }
    g.image.push(p);
    g.world_m.push([0, 0]);
    z.ground = g;
    if (g.image.length === 4) setMode("view");
    changed();
  } else if (S.mode === "height") {
    if (!S.pendingFoot) { S.pendingFoot = p; draw(); return; }
    z.height_ref = [...(z.height_ref || []), [S.pendingFoot[0], S.pendingFoot[1], p[0], p[1]]];
    S.pendingFoot = null;
    changed();
  } else {
    const hit = S.zones.find((q) => q.polygon && inside(p, q.polygon));
    if (hit) { S.selected = hit.id; draw(); }
  }
}

function inside(p, poly) {
  let c = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > p[1]) !== (yj > p[1]) && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}

function finishShape() {
  if (S.draft.length < 3) { $("result").textContent = "A shape needs at least 3 points."; return; }
  if (S.mode === "zone") {
    const id = $("zone-id").value.trim();
    if (!id) { $("result").textContent = "Type the new zone's id first."; return; }
    const existing = zone(id);
    if (existing) existing.polygon = S.draft;
    else S.zones.push({ id, polygon: S.draft, ground: null, height_ref: null });
    S.selected = id;
  } else if (S.mode === "mask") {
    S.masks.push(S.draft);
  }
  setMode("view");
  changed();
}

function dragVertex(list, index, handle) {
  handle.addEventListener("pointerdown", (down) => {
    if (S.mode !== "view") return;  // placing points: the click goes to the image
    down.stopPropagation();
    handle.setPointerCapture(down.pointerId);
    let moved = false;
    const move = (e) => { moved = true; list[index] = toImage(e); draw(); };
    const up = () => {
      handle.removeEventListener("pointermove", move); handle.removeEventListener("pointerup", up);
      if (moved) changed();
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
  });
}

function draw() {
  const overlay = $("overlay");
  drawLists();
  if (!overlay) return;
  const r = S.size ? Math.max(S.size[0], S.size[1]) / 160 : 6;
  overlay.replaceChildren();
  for (const m of S.masks) overlay.appendChild(svg("polygon", { class: "shape mask", points: m.map((p) => p.join(",")).join(" ") }));
  for (const z of S.zones) {
    if (!z.polygon) continue;
    overlay.appendChild(svg("polygon", { class: `shape${z.id === S.selected ? " selected" : ""}`, points: z.polygon.map((p) => p.join(",")).join(" "), "data-zone": z.id }));
    const c = z.polygon.reduce((a, p) => [a[0] + p[0] / z.polygon.length, a[1] + p[1] / z.polygon.length], [0, 0]);
    const label = svg("text", { x: c[0], y: c[1], class: "label" });
    label.textContent = z.id;
    overlay.appendChild(label);
    if (z.id === S.selected) {
      z.polygon.forEach((p, i) => { const h = svg("circle", { cx: p[0], cy: p[1], r, class: "vertex" }); dragVertex(z.polygon, i, h); overlay.appendChild(h); });
      ((z.ground && z.ground.image) || []).forEach((p, i) => {
        overlay.appendChild(svg("circle", { cx: p[0], cy: p[1], r: r * 1.3, class: "groundpt" }));
        const t = svg("text", { x: p[0] + r * 1.5, y: p[1] - r, class: "label" }); t.textContent = `G${i + 1}`; overlay.appendChild(t);
      });
      for (const h of z.height_ref || []) overlay.appendChild(svg("line", { x1: h[0], y1: h[1], x2: h[2], y2: h[3], class: "heightline" }));
    }
  }
  if (S.mode === "label") {
    overlay.replaceChildren();
    for (const z of S.zones) if (z.polygon) overlay.appendChild(svg("polygon", { class: "outline", points: z.polygon.map((p) => p.join(",")).join(" ") }));
    for (const h of S.labels[S.frame] || []) overlay.appendChild(svg("circle", { cx: h[0], cy: h[1], r, class: "head" }));
    return;
  }
  if (S.draft.length) overlay.appendChild(svg("polyline", { class: "draft", points: S.draft.map((p) => p.join(",")).join(" ") }));
  if (S.pendingFoot) overlay.appendChild(svg("circle", { cx: S.pendingFoot[0], cy: S.pendingFoot[1], r, class: "groundpt" }));
}

function drawLists() {
  $("zones").replaceChildren(...S.zones.map((z) => {
    const li = el("li", "", `${z.id}${z.id === S.selected ? " (selected)" : ""}`);
    li.dataset.zone = z.id;
    li.addEventListener("click", () => { S.selected = z.id; draw(); });
    const del = el("button", "", "delete");
    del.addEventListener("click", (e) => { e.stopPropagation(); S.zones = S.zones.filter((q) => q !== z); changed(); });
    li.appendChild(del);
    const facts = [];
    if (z.ground) facts.push(`ground ${z.ground.image.length}/4`);
    if (z.height_ref) facts.push(`${z.height_ref.length} height pair(s)`);
    if (S.areas && S.areas[z.id] != null) facts.push(`${S.areas[z.id]} m²`);
    li.appendChild(el("div", "muted", facts.join(" · ") || "outline only"));
    return li;
  }));
  $("masks").replaceChildren(...S.masks.map((m, i) => {
    const li = el("li", "", `mask ${i + 1} (${m.length} points)`);
    const del = el("button", "", "delete");
    del.addEventListener("click", () => { S.masks.splice(i, 1); changed(); });
    li.appendChild(del);
    return li;
  }));
  const z = zone(S.selected);
  $("ground-zone").textContent = z ? z.id : "–";
  const rows = z && z.ground ? z.ground.image.map((p, i) => {
    const tr = el("tr");
    tr.appendChild(el("td", "", `G${i + 1}`));
    tr.appendChild(el("td", "", `${p[0]}, ${p[1]}`));
    for (const k of [0, 1]) {
      const td = el("td");
      const input = el("input");
      input.type = "number"; input.step = "0.1"; input.value = z.ground.world_m[i][k];
      input.dataset.point = i; input.dataset.axis = k;
      input.addEventListener("change", () => { z.ground.world_m[i][k] = parseFloat(input.value || "0"); changed(); });
      td.appendChild(input); tr.appendChild(td);
    }
    return tr;
  }) : [];
  // A check's answer redraws the lists while the engineer may be typing metres: the
  // table is rebuilt only when it shows other points, never under a focused box.
  const body = $("ground-table").querySelector("tbody");
  const points = `${z ? z.id : ""}:${z && z.ground ? JSON.stringify(z.ground.image) : ""}`;
  const metres = z && z.ground ? JSON.stringify(z.ground.world_m) : "";
  const typing = body.contains(document.activeElement);
  if (body.dataset.points !== points || (body.dataset.metres !== metres && !typing)) {
    body.replaceChildren(...rows);
    body.dataset.points = points;
    body.dataset.metres = metres;
  }
  drawSteps();
}

// The setup as a checklist: done, the next one to do, or still to come.
function drawSteps() {
  const z = zone(S.selected) || S.zones.find((q) => q.polygon);
  const labelled = Object.values(S.labels).filter((h) => h && h.length).length;
  const area = z && S.areas ? S.areas[z.id] : null;
  const steps = [
    ["snapshot", "Pick the camera (or Add camera: an id and its stream URL), Take snapshot", !!S.size],
    ["zone", "Draw a zone: New zone, type its id, click its corners, Finish shape", !!(z && z.polygon)],
    ["masks", "Privacy masks over windows or screens (optional: skip if none)", S.masks.length > 0, true],
    ["ground", "Ground: Place ground points (4 on the floor), type their metres", area !== null && area !== undefined],
    ["height", "Height: Add height pair (feet, then head) for 2 standing people", !!(z && z.height_ref && z.height_ref.length >= 2)],
    ["save", "Save to site file (the camera switches at once)", S.saved !== null && S.saved === body()],
    ["label", `Sample frames and click every head on ${LABELS_WANTED} of them (${labelled}/${LABELS_WANTED})`, labelled >= LABELS_WANTED],
    ["calibrate", "Calibrate, check the plot, then Apply calibration where offered",
     S.applied || !!(S.fit && S.fit.ok && !S.fit.applicable)],
  ];
  let next = true;
  $("steps").replaceChildren(...steps.map(([id, text, done, optional]) => {
    const li = el("li", done ? "done" : (next && !optional ? "next" : (optional ? "optional" : "")), text);
    li.dataset.step = id;
    li.dataset.done = done ? "1" : "0";
    if (!done && !optional) next = false;
    return li;
  }));
}

function body() {
  const zones = S.zones.map((z) => ({ id: z.id, polygon: z.polygon,
    ground: z.ground && z.ground.image.length === 4 ? z.ground : null, height_ref: z.height_ref && z.height_ref.length ? z.height_ref : null }));
  return JSON.stringify({ zones, privacy_masks: S.masks });
}

function show(target, result) {
  const box = $(target);
  box.replaceChildren();
  if (result.ok) {
    const areas = result.areas_m2 || {};
    S.areas = areas;
    if (target === "result") S.saved = body();
    box.appendChild(el("div", "ok", target === "result" ? `Saved to ${result.saved}; the pipeline now uses it.` :
      `OK — ${Object.entries(areas).map(([k, v]) => `${k}: ${v === null ? "no ground" : `${v} m²`}`).join(", ")}`));
  } else {
    for (const p of result.problems || []) box.appendChild(el("div", "problem", `${p.line ? `line ${p.line}: ` : ""}${p.where ? `${p.where}: ` : ""}${p.message}`));
  }
  drawLists();
}

let checkTimer = null;
function changed() {
  draw();
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, 300);
}

async function post(path) {
  const r = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: body() });
  try { return await r.json(); } catch { return { ok: false, problems: [{ message: `HTTP ${r.status}` }] }; }
}
async function check() { show("check", await post(`/api/setup/cameras/${encodeURIComponent(S.camera)}/check`)); }
async function save() { $("result").textContent = "saving…"; show("result", await post(`/api/setup/cameras/${encodeURIComponent(S.camera)}`)); }

// -- labelling and few-shot calibration -------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function sample() {
  const n = Math.max(1, Math.min(60, parseInt($("label-n").value || "20", 10)));
  const every = Math.max(0, parseFloat($("label-every").value || "5"));
  $("sample").disabled = true;
  for (let i = 0; i < n; i++) {
    $("label-status").textContent = `sampling frame ${i + 1} of ${n}…`;
    const r = await fetch(`/api/setup/cameras/${encodeURIComponent(S.camera)}/frames`, {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}" });
    const answer = await r.json();
    if (!r.ok) { $("label-status").textContent = answer.error; break; }
    S.frames.push(answer);
    drawFrames();
    if (i < n - 1) await sleep(every * 1000);
  }
  $("sample").disabled = false;
  $("label-status").textContent = `${S.frames.length} frame(s): open each and click every head (click a head again to remove it); the person detector's people are pre-filled, check them.`;
}

async function openFrame(id) {
  S.frame = id;
  // The person detector's people come pre-filled as head clicks: check and correct them.
  const f = S.frames.find((x) => x.id === id);
  if (!S.labels[id] && f && f.suggested && f.suggested.length) S.labels[id] = f.suggested.map((p) => [p[0], p[1]]);
  await showImage(`/api/setup/cameras/${encodeURIComponent(S.camera)}/frames/${id}`);
  setMode("label");
  drawFrames();
}

function drawFrames() {
  drawSteps();
  $("label-frames").replaceChildren(...S.frames.map((f, i) => {
    const heads = (S.labels[f.id] || []).length;
    const b = el("button", `${f.id === S.frame ? "current" : ""} ${S.labels[f.id] ? "done" : ""}`, `${i + 1}${S.labels[f.id] ? ` (${heads})` : ""}`);
    b.dataset.frame = f.id;
    b.addEventListener("click", () => openFrame(f.id));
    return b;
  }));
}

async function calibrate() {
  const labelled = Object.fromEntries(Object.entries(S.labels).filter(([, heads]) => heads));
  const r = await fetch(`/api/setup/cameras/${encodeURIComponent(S.camera)}/calibrate`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ labels: labelled }) });
  const fit = await r.json();
  const box = $("calibration");
  box.replaceChildren();
  if (!fit.ok) { box.appendChild(el("div", "problem", fit.error)); return; }
  S.fit = fit;
  drawSteps();
  const err = fit.cv_mae === null ? "not cross-validated (too few frames)" : `expected error ${fit.cv_mae} people (a constant: ${fit.constant_cv_mae})`;
  const edges = fit.edge_weight ? ` + ${fit.edge_weight.toFixed(3)} × new-edge length` : "";
  box.appendChild(el("div", "", `${fit.layout}: count = ${fit.slope.toFixed(3)} × raw${edges} + ${fit.offset.toFixed(2)}; ${err}`));
  if (fit.warning) box.appendChild(el("div", "problem", fit.warning));
  if (fit.note) box.appendChild(el("div", "muted", fit.note));
  box.appendChild(scatter(fit.points));
  if (fit.applicable) {
    const apply = el("button", "", "Apply calibration");
    apply.id = "apply-calibration";
    apply.addEventListener("click", applyCalibration);
    box.appendChild(apply);
  }
}

function scatter(points) {
  const W = 300, H = 220, P = 28;
  const top = Math.max(1, ...points.flatMap((p) => [p.raw, p.truth, p.counted])) * 1.1;
  const X = (v) => P + (v / top) * (W - 2 * P);
  const Y = (v) => H - P - (v / top) * (H - 2 * P);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "scatter", role: "img", "aria-label": "counted against labelled" });
  s.appendChild(svg("line", { x1: X(0), y1: Y(0), x2: X(top), y2: Y(top), class: "diag" }));
  for (const p of points) {
    s.appendChild(svg("circle", { cx: X(p.truth), cy: Y(p.raw), r: 3, class: "raw" }));
    s.appendChild(svg("circle", { cx: X(p.truth), cy: Y(p.counted), r: 3, class: "fit" }));
  }
  const label = (x, y, text, anchor) => { const t = svg("text", { x, y, class: "tick", "text-anchor": anchor }); t.textContent = text; s.appendChild(t); };
  label(W / 2, H - 6, "labelled (people)", "middle");
  label(4, 12, "counted: grey before, green after", "start");
  return s;
}

async function applyCalibration() {
  const r = await fetch(`/api/setup/cameras/${encodeURIComponent(S.camera)}/detector`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ slope: S.fit.slope, offset: S.fit.offset, edge_weight: S.fit.edge_weight || 0 }) });
  const answer = await r.json();
  if (answer.ok) S.applied = true;
  show("result", answer);
}

$("sample").addEventListener("click", sample);
$("add-camera").addEventListener("click", () => { $("add-form").hidden = !$("add-form").hidden; $("new-camera-id").focus(); });
$("add-camera-save").addEventListener("click", addCamera);
$("calibrate").addEventListener("click", calibrate);
$("camera").addEventListener("change", (e) => pickCamera(e.target.value));
$("snap").addEventListener("click", snapshot);
$("new-zone").addEventListener("click", () => setMode("zone"));
$("new-mask").addEventListener("click", () => setMode("mask"));
$("finish").addEventListener("click", finishShape);
$("ground").addEventListener("click", () => { if (zone(S.selected)) { zone(S.selected).ground = null; setMode("ground"); } });
$("height").addEventListener("click", () => setMode("height"));
$("save").addEventListener("click", save);
loadSite(null);
