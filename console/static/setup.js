// crowdwatch camera setup: draw zones, masks, ground points and height pairs on a masked,
// in-memory snapshot; check and save to the site file (the pipeline follows at once).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const S = { site: null, camera: null, zones: [], masks: [], selected: null, mode: "view",
            draft: [], size: null, pendingFoot: null, imageUrl: null };

const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}
function svg(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  return n;
}
const round = (v) => Math.round(v * 10) / 10;

async function loadSite() {
  const r = await fetch("/api/setup/site", { credentials: "same-origin" });
  if (r.status === 401) { window.location.assign("/login"); return; }
  if (!r.ok) { $("result").textContent = `setup unavailable (${r.status})`; return; }
  S.site = await r.json();
  $("site").textContent = S.site.site;
  $("camera").replaceChildren(...S.site.cameras.map((c) => { const o = el("option", "", c.id); o.value = c.id; return o; }));
  if (!S.site.editable) $("result").textContent = "Read-only: this process was started without a site file (--config).";
  pickCamera(S.site.cameras.length ? S.site.cameras[0].id : null);
}

function pickCamera(id) {
  const cam = S.site.cameras.find((c) => c.id === id);
  S.camera = id;
  S.zones = cam ? JSON.parse(JSON.stringify(cam.zones)) : [];
  S.masks = cam ? JSON.parse(JSON.stringify(cam.privacy_masks || [])) : [];
  S.selected = S.zones.length ? S.zones[0].id : null;
  setMode("view");
  draw();
}

async function snapshot() {
  const r = await fetch(`/api/setup/cameras/${encodeURIComponent(S.camera)}/snapshot`, { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) { $("result").textContent = `no snapshot: ${(await r.json()).error || r.status}`; return; }
  const blob = await r.blob();
  if (S.imageUrl) URL.revokeObjectURL(S.imageUrl);
  S.imageUrl = URL.createObjectURL(blob);
  const img = new Image();
  img.onload = () => {
    S.size = [img.naturalWidth, img.naturalHeight];
    img.id = "snapshot";
    img.alt = `masked snapshot of ${S.camera}`;
    const overlay = svg("svg", { id: "overlay", viewBox: `0 0 ${S.size[0]} ${S.size[1]}`, preserveAspectRatio: "none" });
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
  $("mode").textContent = `mode: ${mode}`;
  for (const [btn, m] of [["new-zone", "zone"], ["new-mask", "mask"], ["ground", "ground"], ["height", "height"]]) {
    $(btn).classList.toggle("active", S.mode === m);
  }
  draw();
}

function onClick(evt) {
  // On a vertex handle a click in view mode is the end of a drag, not a new point.
  if (S.mode === "view" && evt.target.classList && evt.target.classList.contains("vertex")) return;
  const p = toImage(evt);
  if (S.mode === "zone" || S.mode === "mask") { S.draft.push(p); draw(); return; }
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
  $("ground-table").querySelector("tbody").replaceChildren(...rows);
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

$("camera").addEventListener("change", (e) => pickCamera(e.target.value));
$("snap").addEventListener("click", snapshot);
$("new-zone").addEventListener("click", () => setMode("zone"));
$("new-mask").addEventListener("click", () => setMode("mask"));
$("finish").addEventListener("click", finishShape);
$("ground").addEventListener("click", () => { if (zone(S.selected)) { zone(S.selected).ground = null; setMode("ground"); } });
$("height").addEventListener("click", () => setMode("height"));
$("save").addEventListener("click", save);
loadSite();
