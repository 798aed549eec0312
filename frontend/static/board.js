"use strict";
// Minimal live regional board: snapshot, then deltas; reconnects and resumes from the last event id.
(() => {
  const KEY = "capacity.key", REGION = "capacity.region";
  const UNIT_ORDER = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const $ = (id) => document.getElementById(id);
  const state = { facilities: new Map(), lastEventId: null, offsetMs: 0, socket: null, retry: 500, region: null };

  const takeKeyFromFragment = () => window.capacitySession.takeKey(KEY);

  function age(iso) {
    const seconds = Math.max(0, Math.round((Date.now() + state.offsetMs - Date.parse(iso)) / 1000));
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ago`;
  }
  const isStale = (iso, f) => (Date.now() + state.offsetMs - Date.parse(iso)) / 1000 > f.reporting_interval_s;
  const count = (v) => (v === null || v === undefined ? "?" : String(v));

  // Places held by announced patients, per need ("seh" counts against seh_places too). The board API
  // gives each unit `held` and `free`; events carry only the reported figures, `hold` messages ±1.
  function takeHolds(f) {
    f.holds = { seh: (f.seh && f.seh.incoming) || 0 };
    for (const u of f.units) f.holds[u.type] = Math.max(0, (u.held || 0) - (u.type === "seh_places" ? f.holds.seh : 0));
  }
  function applyHolds(f) {
    if (f.seh) f.seh.incoming = f.holds.seh || 0;
    for (const u of f.units) {
      u.held = (f.holds[u.type] || 0) + (u.type === "seh_places" ? f.holds.seh || 0 : 0);
      u.free = u.available === null || u.available === undefined ? null : Math.max(0, u.available - u.held);
    }
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  function row(f) {
    const tr = el("tr", { "data-facility": f.id });
    tr.append(el("td", {}, f.name, el("div", { class: "age" }, f.city)));
    const seh = f.seh;
    const sehCell = el("td", seh && isStale(seh.measured_at, f) ? { class: "stale" } : {});
    if (seh) {
      sehCell.append(el("span", { class: `seh seh-${seh.status}` }, seh.status === "stop_expired" ? "stop expired — unconfirmed" : seh.status));
      if (seh.reason) sehCell.append(" ", seh.reason);
      if (seh.incoming) sehCell.append(el("div", { class: "incoming" }, `${seh.incoming} announced ambulance patient${seh.incoming > 1 ? "s" : ""}`));
      if (seh.expected_until) sehCell.append(el("div", { class: "age" }, `until ${new Date(seh.expected_until).toLocaleTimeString()}`));
      sehCell.append(el("div", { class: "age" }, age(seh.measured_at)));
    } else {
      sehCell.append(el("span", { class: "seh seh-none" }, f.kind === "hospital_no_seh" ? "no SEH" : "no report"));
    }
    tr.append(sehCell);
    const units = el("td");
    for (const u of f.units) {
      const stale = isStale(u.measured_at, f);
      const held = u.held ? `; ${u.held} held for announced patients (${count(u.available)} available)` : "";
      units.append(el("span", { class: `unit${stale ? " stale" : ""}`, title: `measured ${age(u.measured_at)}${held}`, "data-unit": u.type },
        `${u.type} ${count(u.free === undefined ? u.available : u.free)}/${count(u.staffed)}`));
    }
    tr.append(units);
    const last = f.last_measured_at;
    const lastCell = el("td", { class: "age" }, last ? age(last) : "never");
    if (!last || isStale(last, f)) lastCell.append(" ", el("span", { class: "stale-mark" }, "stale"));
    tr.append(lastCell);
    return tr;
  }

  function render() {
    const body = $("board").tBodies[0];
    body.replaceChildren(...[...state.facilities.values()].map(row));
  }

  function redraw(f) {
    const old = document.querySelector(`tr[data-facility="${CSS.escape(f.id)}"]`);
    const fresh = row(f);
    fresh.classList.add("changed");
    if (old) old.replaceWith(fresh);
    mapView.mark(f);
  }

  function applyEvent(e) {
    const f = state.facilities.get(e.facility_id);
    if (!f) return;
    if (e.seh) f.seh = e.seh;
    for (const u of e.units) {
      const i = f.units.findIndex((x) => x.type === u.type);
      if (i >= 0) f.units[i] = u; else f.units.push(u);
    }
    f.units.sort((a, b) => UNIT_ORDER.indexOf(a.type) - UNIT_ORDER.indexOf(b.type));
    f.last_measured_at = e.measured_at;
    applyHolds(f);
    redraw(f);
  }

  function applyHold(h) {
    const f = state.facilities.get(h.facility_id);
    if (!f) return;
    f.holds[h.need] = Math.max(0, (f.holds[h.need] || 0) + h.change);
    applyHolds(f);
    redraw(f);
  }

  // The map: ROAZ outlines from the app (no tile server, nothing fetched from elsewhere), the
  // selected region highlighted, its facilities as circles in the table's SEH colours.
  const mapView = (() => {
    let map = null, outlines = null;
    const markers = new Map(), colours = new Map();
    const OUTLINE = { color: "#7a8a99", weight: 1, fillColor: "#f4f4ee", fillOpacity: 1 };
    const SELECTED = { color: "#0b3d66", weight: 3, fillColor: "#ffffff", fillOpacity: 1 };
    const statusOf = (f) => (f.seh ? f.seh.status : "none");
    const label = (f) => (f.seh ? (f.seh.status === "stop_expired" ? "stop expired — unconfirmed" : f.seh.status)
      : f.kind === "hospital_no_seh" ? "no SEH" : "no report");

    function colour(status) {  // read from board.css, so the map and the table cannot disagree
      if (!colours.has(status)) {
        const probe = el("span", { class: `seh seh-${status}`, hidden: "" });
        document.body.append(probe);
        colours.set(status, getComputedStyle(probe).backgroundColor);
        probe.remove();
      }
      return colours.get(status);
    }

    function tip(f) {
      const node = el("div", { class: "map-tip" }, el("strong", {}, f.name), `SEH: ${label(f)}`);
      if (f.seh && f.seh.reason) node.append(el("div", {}, `Reason: ${f.seh.reason}`));
      return node;
    }

    function styleOf(f) {
      return { radius: 8, weight: 2, color: "#1b1b1b", opacity: 0.9, fillColor: colour(statusOf(f)), fillOpacity: 0.95 };
    }

    function init() {
      if (map || typeof L === "undefined") return;
      map = L.map("map", { attributionControl: false, zoomSnap: 0.25, minZoom: 6, maxZoom: 13 });
      map.setView([52.2, 5.3], 7);
      fetch("/api/v1/outlines.geojson")
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`outlines: HTTP ${r.status}`))))
        .then((geojson) => {
          outlines = L.geoJSON(geojson, { style: OUTLINE, interactive: false }).addTo(map);
          outlines.eachLayer((layer) => layer.getElement()?.setAttribute("data-region", layer.feature.properties.region_id));
          select(state.region);
        })
        .catch((err) => { $("map-note").hidden = false; $("map-note").textContent = `Region outlines unavailable (${err.message}).`; });
    }

    // An outline per region id; a region without one of its own (ROAZ02 lies inside the ROAZ05
    // outline, as in the source) is fitted to its facilities instead.
    const hasOutline = (region) => !!outlines && outlines.getLayers().some((l) => l.feature.properties.region_id === region);

    function select(region) {
      if (!map) return;
      let bounds = null;
      if (outlines) {
        outlines.eachLayer((layer) => {
          const chosen = layer.feature.properties.region_id === region;
          layer.setStyle(chosen ? SELECTED : OUTLINE);
          layer.getElement()?.classList.toggle("selected", chosen);
          if (chosen) { layer.bringToFront(); bounds = layer.getBounds(); }
        });
      }
      if (!bounds && markers.size) bounds = L.latLngBounds([...markers.values()].map((m) => m.getLatLng())).pad(0.2);
      if (bounds) map.fitBounds(bounds, { padding: [10, 10], animate: false });
      for (const m of markers.values()) m.bringToFront();
    }

    function mark(f) {
      if (!map) return;
      let m = markers.get(f.id);
      if (!m) {
        m = L.circleMarker([f.lat, f.lon], styleOf(f)).addTo(map);
        markers.set(f.id, m);
      } else {
        m.setStyle(styleOf(f));
      }
      m.bindTooltip(tip(f));
      const path = m.getElement();
      if (path) { path.setAttribute("data-facility", f.id); path.setAttribute("data-status", statusOf(f)); }
    }

    function show(facilities) {  // a snapshot: exactly these facilities
      if (!map) return;
      for (const m of markers.values()) m.remove();
      markers.clear();
      for (const f of facilities) mark(f);
      if (!hasOutline(state.region)) select(state.region);
    }

    return { init, select, mark, show };
  })();

  function setConnected(ok, text) {
    $("status").textContent = text;
    $("banner").hidden = ok;
    if (!ok) $("banner").textContent = `Disconnected from the live feed — figures may be out of date. ${text}`;
  }

  function connect(region, key) {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const since = state.lastEventId ? `?since=${encodeURIComponent(state.lastEventId)}` : "";
    const socket = new WebSocket(`${proto}://${location.host}/ws/regions/${region}${since}`);
    state.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", key }));
    socket.onmessage = (m) => {
      if (state.socket !== socket) return;  // a region left behind
      const msg = JSON.parse(m.data);
      if (msg.type === "snapshot") {
        state.offsetMs = Date.parse(msg.server_time) - Date.now();
        state.facilities = new Map(msg.facilities.map((f) => [f.id, f]));
        for (const f of state.facilities.values()) { takeHolds(f); applyHolds(f); }
        state.lastEventId = msg.last_event_id;
        render();
        mapView.show(state.facilities.values());
      } else if (msg.type === "event") {
        applyEvent(msg);
      } else if (msg.type === "hold") {
        applyHold(msg);
      } else if (msg.type === "heartbeat") {
        state.offsetMs = Date.parse(msg.server_time) - Date.now();
      }  // "announcement" (only to the receiving facility, dispatch and admin): nothing to draw here yet
      if (msg.id) state.lastEventId = msg.id;  // every message with an id moves the resume point
      state.retry = 500;
      setConnected(true, "live");
    };
    socket.onclose = (ev) => {
      if (state.socket !== socket) return;
      if (ev.code === 4401 || ev.code === 4403) {
        sessionStorage.removeItem(KEY);
        setConnected(false, ev.reason);
        $("signin").hidden = false;
        return;
      }
      setConnected(false, `Reconnecting in ${Math.round(state.retry / 1000)} s…`);
      setTimeout(() => connect(region, key), state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }

  async function start(key) {
    const response = await fetch("/api/v1/regions", { headers: { Authorization: `Bearer ${key}` } });
    if (!response.ok) {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      setConnected(false, (await response.json()).detail || "sign-in failed");
      return;
    }
    const regions = await response.json();
    const select = $("region");
    select.replaceChildren(...regions.map((r) => el("option", { value: r.id }, `${r.id} ${r.name}`)));
    const remembered = localStorage.getItem(REGION);
    if (regions.some((r) => r.id === remembered)) select.value = remembered;
    state.region = select.value;
    mapView.init();
    mapView.select(state.region);
    select.onchange = () => {
      localStorage.setItem(REGION, select.value);
      state.region = select.value;
      mapView.show([]);
      mapView.select(state.region);
      state.lastEventId = null;
      const old = state.socket;
      state.socket = null;
      if (old) old.close();
      connect(select.value, key);
    };
    connect(select.value, key);
  }

  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    $("signin").hidden = true;
    start($("key").value);
  });
  setInterval(() => { if (state.facilities.size) render(); }, 5000);
  const key = takeKeyFromFragment();
  if (key) start(key); else { $("signin").hidden = false; setConnected(false, "sign in with a key"); }
})();
