// crowdwatch live page: numbers only, pushed by server-sent events; reconnects by itself.
"use strict";

const state = { zones: new Map(), historyS: 1800, snapshot: null };

function fmt(value, metric) {
  if (value === null || value === undefined) return "–";
  return metric === "density" ? value.toFixed(2) : Math.round(value).toString();
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function sparkline(zone) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${zone.id}, last ${Math.round(state.historyS / 60)} minutes`);
  const points = zone.history || [];
  const now = state.snapshot ? state.snapshot.now : Date.now() / 1000;
  const start = now - state.historyS;
  const levels = [zone.warn, zone.critical].filter((v) => v !== null && v !== undefined);
  const top = Math.max(1e-9, ...points.map((p) => p[1]), ...levels) * 1.1;
  const y = (v) => (30 - (v / top) * 30).toFixed(2);
  for (const [value, cls] of [[zone.warn, "warning"], [zone.critical, "critical"]]) {
    if (value === null || value === undefined) continue;
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", "0"); line.setAttribute("x2", "100");
    line.setAttribute("y1", y(value)); line.setAttribute("y2", y(value));
    line.setAttribute("class", `spark-level ${cls}`);
    svg.appendChild(line);
  }
  if (points.length) {
    const poly = document.createElementNS(SVG, "polyline");
    poly.setAttribute("class", "spark");
    poly.setAttribute("points", points.map((p) =>
      `${Math.max(0, ((p[0] - start) / state.historyS) * 100).toFixed(2)},${y(p[1])}`).join(" "));
    svg.appendChild(poly);
  }
  return svg;
}

function zoneTile(zone) {
  const tile = el("article", `zone level-${zone.level}`);
  tile.dataset.zone = zone.id;
  tile.dataset.level = zone.level;
  const badge = { ok: "normal", warning: "warning", critical: "critical", nodata: "no data" };
  tile.appendChild(el("span", "badge", badge[zone.level] || zone.level));
  tile.appendChild(el("div", "name", zone.id));
  tile.appendChild(el("div", "source", zone.source === "sensors" ? "sensors" : `camera ${zone.source}`));
  const value = el("div", "value", zone.withheld ? "–" : fmt(zone.metric === "density" ? zone.density : zone.count, zone.metric));
  value.appendChild(el("span", "unit", zone.metric === "density" ? "persons/m²" : "people"));
  tile.appendChild(value);
  const facts = el("div", "facts");
  if (zone.metric === "density" && zone.count !== null) facts.appendChild(el("span", "", `${fmt(zone.count, "count")} people`));
  if (zone.warn !== null) facts.appendChild(el("span", "", `warn ${zone.warn}`));
  if (zone.critical !== null) facts.appendChild(el("span", "", `critical ${zone.critical}`));
  const exp = zone.expected || {};
  if (exp.usual !== undefined) facts.appendChild(el("span", "", `usual now ${fmt(exp.usual, zone.metric)}`));
  if (exp.forecast !== undefined) facts.appendChild(el("span", "", `forecast ${fmt(exp.forecast, zone.metric)}`));
  if (zone.withheld) facts.appendChild(el("span", "", "camera not trusted: count withheld"));
  tile.appendChild(facts);
  tile.appendChild(sparkline(zone));
  return tile;
}

function render() {
  const snap = state.snapshot;
  if (!snap) return;
  document.getElementById("site").textContent = snap.site;
  document.title = `crowdwatch · ${snap.site}`;
  document.getElementById("clock").textContent = clock(snap.now);
  const zones = document.getElementById("zones");
  const order = { critical: 0, warning: 1, ok: 2, nodata: 3 };
  const sorted = [...state.zones.values()].sort((a, b) =>
    (order[a.level] - order[b.level]) || a.id.localeCompare(b.id));
  zones.replaceChildren(...sorted.map(zoneTile));

  const alerts = document.getElementById("alerts");
  document.getElementById("alert-count").textContent = snap.alerts_here ? snap.alerts.length : "–";
  alerts.replaceChildren(...(!snap.alerts_here ? [el("li", "muted",
    "this process publishes counts; the rule workers raise the alerts (see Alertmanager)")]
    : snap.alerts.length ? snap.alerts.map((a) => {
    const li = el("li");
    li.dataset.rule = a.rule;
    li.appendChild(el("span", `sev ${a.severity}`, a.severity));
    li.appendChild(el("strong", "", `${a.rule} · ${a.zone || a.about}`));
    li.appendChild(el("div", "muted", `${a.summary} — since ${clock(a.since)} (${ago(snap.now - a.since)})`));
    return li;
  }) : [el("li", "muted", "none")]));

  document.getElementById("cameras").replaceChildren(...(snap.cameras.length ? snap.cameras.map((c) => {
    const li = el("li", "", c.id);
    li.appendChild(el("span", `state ${c.state}`, c.state.replace("_", " ")));
    if (c.reason) li.appendChild(el("div", "muted", c.reason));
    return li;
  }) : [el("li", "muted", "none configured")]));

  document.getElementById("sensors").replaceChildren(...(snap.sensors.length ? snap.sensors.map((s) => {
    const li = el("li", "", s.id);
    const status = s.silent ? "silent" : (s.last === null ? "waiting" : "up");
    li.appendChild(el("span", `state ${status}`, status));
    li.appendChild(el("div", "muted", `last reading ${ago(s.age)}`));
    return li;
  }) : [el("li", "muted", "none configured")]));

  document.getElementById("resolved").replaceChildren(...(snap.resolved.length ? snap.resolved.slice(0, 8).map((a) =>
    el("li", "", `${clock(a.ended || a.since)} ${a.rule} · ${a.zone || a.about} resolved`)) : [el("li", "", "none yet")]));
}

function takeSnapshot(snap) {
  state.historyS = snap.history_s;
  state.zones = new Map(snap.zones.map((z) => [z.id, z]));
  state.snapshot = snap;
  render();
}

function takeUpdate(update) {
  for (const z of update.zones) {
    const known = state.zones.get(z.id);
    const history = known ? known.history : [];
    if (z.point) {
      const last = history[history.length - 1];
      if (last && last[0] === z.point[0]) history[history.length - 1] = z.point;
      else history.push(z.point);
    }
    const cut = update.now - update.history_s;
    while (history.length && history[0][0] < cut) history.shift();
    state.zones.set(z.id, { ...z, history });
  }
  state.snapshot = update;
  render();
}

function setConnected(up) {
  const conn = document.getElementById("conn");
  conn.className = `conn ${up ? "up" : "down"}`;
  conn.textContent = up ? "live" : "reconnecting…";
  document.body.dataset.connected = up ? "yes" : "no";
}

function connect() {
  const source = new EventSource("/api/live/stream");
  source.addEventListener("snapshot", (e) => { setConnected(true); takeSnapshot(JSON.parse(e.data)); });
  source.addEventListener("update", (e) => { setConnected(true); takeUpdate(JSON.parse(e.data)); });
  source.onerror = () => {
    setConnected(false);
    if (source.readyState === EventSource.CLOSED) {
      // A refused stream (a session that expired) does not retry by itself: find out why.
      fetch("/api/live", { credentials: "same-origin" }).then((r) => {
        if (r.status === 401) window.location.assign("/login");
        else setTimeout(connect, 1000);
      }).catch(() => setTimeout(connect, 1000));
    }
  };
}

// Links only to the pages this console offers (tuning needs console.recordings).
function showPages() {
  fetch("/api/pages", { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : {}))
    .then((offered) => {
      for (const link of document.querySelectorAll("a[data-page]")) {
        link.hidden = !offered[link.dataset.page];
      }
    }).catch(() => {});
}

showPages();
connect();
