"use strict";
// Minimal live regional board: snapshot, then deltas; reconnects and resumes from the last event id.
// Labels in Dutch or English (i18n.js); everything drawn here is drawn again when the language changes.
(() => {
  const i18n = window.capacityI18n;
  const t = i18n.t;
  i18n.add({
    nl: {
      "board.title": "ROAZ-capaciteitsbord",
      "board.region": "Regio",
      "board.filter": "Tonen",
      "board.filter.hospitals": "Ziekenhuizen",
      "board.filter.care": "Zorgplaatsen",
      "board.filter.all": "Alles",
      "board.connecting": "verbinden…",
      "board.live": "live",
      "board.signin": "Bord tonen",
      "board.signin_needed": "meld u aan met een sleutel",
      "board.signin_failed": "aanmelden mislukt",
      "board.offline": "Geen verbinding met de live-gegevens — cijfers kunnen verouderd zijn.",
      "board.reconnecting": "Opnieuw verbinden over {n} s…",
      "board.map": "Kaart van de regio",
      "board.legend": "Kleuren van de SEH-status",
      "board.legend.none": "onbekend / geen SEH",
      "board.col.facility": "Instelling",
      "board.col.seh": "SEH",
      "board.col.units": "Vrije plaatsen (vrij / bemand)",
      "board.col.units.title": "vrij = beschikbaar min de plaatsen die voor aangekondigde patiënten gereserveerd zijn",
      "board.col.last": "Laatste melding",
      "board.incoming.one": "{n} aangekondigde ambulancepatiënt",
      "board.incoming.many": "{n} aangekondigde ambulancepatiënten",
      "board.until": "tot {time}",
      "board.measured": "gemeten {age}",
      "board.held": "; {held} gereserveerd voor aangekondigde patiënten ({available} beschikbaar)",
      "board.reason": "Reden: {reason}",
      "board.outlines_unavailable": "Regiogrenzen niet beschikbaar ({error}).",
      "board.empty.hospitals": "Geen ziekenhuizen in deze regio.",
      "board.empty.care": "Geen zorgplaatsen in deze regio.",
      "board.empty.all": "Geen locaties in deze regio.",
      "board.footer": "Ziekenhuislocaties: TNO dashboard-acute-zorg (2021–2022); regio's: CBS Gebieden in Nederland 2022. "
        + "Kaart: Leaflet (BSD-2-Clause), zonder kaarttegels.",
    },
    en: {
      "board.title": "ROAZ capacity board",
      "board.region": "Region",
      "board.filter": "Show",
      "board.filter.hospitals": "Hospitals",
      "board.filter.care": "Care places",
      "board.filter.all": "All",
      "board.connecting": "connecting…",
      "board.live": "live",
      "board.signin": "Show board",
      "board.signin_needed": "sign in with a key",
      "board.signin_failed": "sign-in failed",
      "board.offline": "Disconnected from the live feed — figures may be out of date.",
      "board.reconnecting": "Reconnecting in {n} s…",
      "board.map": "Map of the region",
      "board.legend": "SEH status colours",
      "board.legend.none": "unknown / no SEH",
      "board.col.facility": "Facility",
      "board.col.seh": "SEH",
      "board.col.units": "Free places (free / staffed)",
      "board.col.units.title": "free = available minus places held for announced patients",
      "board.col.last": "Last report",
      "board.incoming.one": "{n} announced ambulance patient",
      "board.incoming.many": "{n} announced ambulance patients",
      "board.until": "until {time}",
      "board.measured": "measured {age}",
      "board.held": "; {held} held for announced patients ({available} available)",
      "board.reason": "Reason: {reason}",
      "board.outlines_unavailable": "Region outlines unavailable ({error}).",
      "board.empty.hospitals": "No hospitals in this region.",
      "board.empty.care": "No care places in this region.",
      "board.empty.all": "No facilities in this region.",
      "board.footer": "Hospital locations: TNO dashboard-acute-zorg (2021–2022); regions: CBS Gebieden in Nederland 2022. "
        + "Map: Leaflet (BSD-2-Clause), no map tiles.",
    },
  });

  const KEY = "capacity.key", REGION = "capacity.region", FILTER = "capacity.board.filter";
  const UNIT_ORDER = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const SEH_KINDS = new Set(["seh", "seh_limited", "seh_unconfirmed", "hospital"]);
  const HOSPITAL_KINDS = new Set([...SEH_KINDS, "hospital_no_seh"]);
  const CARE_KINDS = new Set(["gp_post", "care_home", "rehab_centre", "mental_health", "basic_care_centre"]);
  const FILTERS = {
    hospitals: (f) => HOSPITAL_KINDS.has(f.kind),
    care: (f) => CARE_KINDS.has(f.kind),
    all: () => true,
  };
  const $ = (id) => document.getElementById(id);
  const state = {
    facilities: new Map(), lastEventId: null, offsetMs: 0, socket: null, retry: 500, region: null,
    filter: FILTERS[localStorage.getItem(FILTER)] ? localStorage.getItem(FILTER) : "hospitals",
    conn: { ok: false, key: "board.connecting", vars: {}, text: null },
    mapError: null,
  };

  const takeKeyFromFragment = () => window.capacitySession.takeKey(KEY);

  const secondsSince = (iso) => (Date.now() + state.offsetMs - Date.parse(iso)) / 1000;
  const age = (iso) => i18n.age(secondsSince(iso));
  const isStale = (iso, f) => secondsSince(iso) > f.reporting_interval_s;
  const count = (v) => (v === null || v === undefined ? t("unknown") : String(v));
  const shown = (f) => FILTERS[state.filter](f);
  const visible = () => [...state.facilities.values()].filter(shown);
  const locale = () => (i18n.lang === "en" ? "en-GB" : "nl-NL");

  // A translation, or `fallback` when there is none (a kind or unit type this page does not know yet).
  function label(key, fallback) {
    const text = t(key);
    return text === key ? fallback : text;
  }
  const unitName = (type) => label(`unit.${type}`, type);
  const kindName = (kind) => label(`kind.${kind}`, kind);
  // What the SEH column says: the reported status, else "no report" for a hospital that may have an
  // SEH, else what the place is (a hospital without an SEH, a care home, …).
  function sehText(f) {
    if (f.seh) return label(`seh.${f.seh.status}`, f.seh.status);
    return SEH_KINDS.has(f.kind) || !f.kind ? t("seh.none") : kindName(f.kind);
  }

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

  const demoBadge = () => el("span", { class: "demo", title: t("demo.title") }, t("demo.badge"));

  function row(f) {
    const tr = el("tr", { "data-facility": f.id });
    const name = el("td", {}, f.name);
    if (f.synthetic) name.append(" ", demoBadge());
    name.append(el("div", { class: "age" }, f.city));
    tr.append(name);
    const seh = f.seh;
    const sehCell = el("td", seh && isStale(seh.measured_at, f) ? { class: "stale" } : {});
    if (seh) {
      sehCell.append(el("span", { class: `seh seh-${seh.status}` }, sehText(f)));
      if (seh.reason) sehCell.append(" ", seh.reason);
      if (seh.incoming) {
        sehCell.append(el("div", { class: "incoming" }, t(seh.incoming > 1 ? "board.incoming.many" : "board.incoming.one", { n: seh.incoming })));
      }
      if (seh.expected_until) {
        const time = new Date(seh.expected_until).toLocaleTimeString(locale());
        sehCell.append(el("div", { class: "age" }, t("board.until", { time })));
      }
      sehCell.append(el("div", { class: "age" }, age(seh.measured_at)));
    } else if (SEH_KINDS.has(f.kind) || !f.kind) {
      sehCell.append(el("span", { class: "seh seh-none" }, sehText(f)));
    } else {
      sehCell.append(el("span", { class: "kind", "data-kind": f.kind }, sehText(f)));
    }
    tr.append(sehCell);
    const units = el("td");
    for (const u of f.units) {
      const stale = isStale(u.measured_at, f);
      const held = u.held ? t("board.held", { held: u.held, available: count(u.available) }) : "";
      units.append(el("span", { class: `unit${stale ? " stale" : ""}`, title: t("board.measured", { age: age(u.measured_at) }) + held, "data-unit": u.type },
        `${unitName(u.type)} ${count(u.free === undefined ? u.available : u.free)}/${count(u.staffed)}`));
    }
    tr.append(units);
    const last = f.last_measured_at;
    const lastCell = el("td", { class: "age" }, last ? age(last) : t("age.never"));
    if (!last || isStale(last, f)) lastCell.append(" ", el("span", { class: "stale-mark" }, t("stale")));
    tr.append(lastCell);
    return tr;
  }

  function render() {
    const body = $("board").tBodies[0];
    const rows = visible().map(row);
    if (!rows.length && state.facilities.size) {
      rows.push(el("tr", { class: "empty" }, el("td", { colspan: "4" }, t(`board.empty.${state.filter}`))));
    }
    body.replaceChildren(...rows);
    $("demo-note").hidden = !visible().some((f) => f.synthetic);
  }

  function redraw(f) {
    if (!shown(f)) return;  // filtered out: its figures are kept, nothing is drawn
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
  // selected region highlighted, its facilities (those the filter shows) as circles in the table's SEH colours.
  const mapView = (() => {
    let map = null, outlines = null;
    const markers = new Map(), colours = new Map();
    const OUTLINE = { color: "#7a8a99", weight: 1, fillColor: "#f4f4ee", fillOpacity: 1 };
    const SELECTED = { color: "#0b3d66", weight: 3, fillColor: "#ffffff", fillOpacity: 1 };
    const statusOf = (f) => (f.seh ? f.seh.status : "none");

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
      const title = el("strong", {}, f.name);
      if (f.synthetic) title.append(" ", demoBadge());
      const hasSeh = !!f.seh || SEH_KINDS.has(f.kind) || !f.kind;
      const node = el("div", { class: "map-tip" }, title, hasSeh ? `SEH: ${sehText(f)}` : sehText(f));
      if (f.seh && f.seh.reason) node.append(el("div", {}, t("board.reason", { reason: f.seh.reason })));
      return node;
    }

    function styleOf(f) {
      const care = CARE_KINDS.has(f.kind);
      return { radius: care ? 6 : 8, weight: 2, color: "#1b1b1b", opacity: 0.9, fillColor: colour(statusOf(f)), fillOpacity: 0.95 };
    }

    function showError() {
      $("map-note").hidden = !state.mapError;
      $("map-note").textContent = state.mapError ? t("board.outlines_unavailable", { error: state.mapError }) : "";
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
        .catch((err) => { state.mapError = err.message; showError(); });
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
        m.bindTooltip(tip(f));
      } else {
        m.setStyle(styleOf(f));
        m.setTooltipContent(tip(f));  // an open tooltip stays open, with the new content
      }
      const path = m.getElement();
      if (path) { path.setAttribute("data-facility", f.id); path.setAttribute("data-status", statusOf(f)); }
    }

    function show(facilities) {  // exactly these facilities
      if (!map) return;
      for (const m of markers.values()) m.remove();
      markers.clear();
      for (const f of facilities) mark(f);
      if (!hasOutline(state.region)) select(state.region);
    }

    function relabel() {  // the same markers, their tooltips in the current language
      for (const f of state.facilities.values()) if (markers.has(f.id)) mark(f);
      showError();
    }

    return { init, select, mark, show, relabel };
  })();

  // The connection state: a label of this page (key and values) or the server's own words (text).
  function setConnected(ok, key, vars = {}, text = null) {
    state.conn = { ok, key, vars, text };
    renderConnection();
  }
  function renderConnection() {
    const { ok, key, vars, text } = state.conn;
    const words = text ?? t(key, vars);
    $("status").removeAttribute("data-i18n");  // drawn here from now on
    $("status").textContent = words;
    $("banner").hidden = ok;
    $("banner").textContent = ok ? "" : `${t("board.offline")} ${words}`;
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
        mapView.show(visible());
      } else if (msg.type === "event") {
        applyEvent(msg);
      } else if (msg.type === "hold") {
        applyHold(msg);
      } else if (msg.type === "announcement") {
        // The full message goes to the receiving facility, dispatch and admin instead of a `hold`.
        const a = msg.announcement;
        applyHold({ facility_id: a.facility_id, need: a.need, change: a.state === "active" ? 1 : -1 });
      } else if (msg.type === "heartbeat") {
        state.offsetMs = Date.parse(msg.server_time) - Date.now();
      }
      if (msg.id) state.lastEventId = msg.id;  // every message with an id moves the resume point
      state.retry = 500;
      if (!state.conn.ok) setConnected(true, "board.live");
    };
    socket.onclose = (ev) => {
      if (state.socket !== socket) return;
      if (ev.code === 4401 || ev.code === 4403) {
        sessionStorage.removeItem(KEY);
        setConnected(false, "board.signin_failed", {}, ev.reason || null);
        $("signin").hidden = false;
        return;
      }
      setConnected(false, "board.reconnecting", { n: Math.round(state.retry / 1000) });
      setTimeout(() => connect(region, key), state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }

  async function start(key) {
    const response = await fetch("/api/v1/regions", { headers: { Authorization: `Bearer ${key}` } });
    if (!response.ok) {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      let detail = null;
      try { detail = (await response.json()).detail; } catch (_) { /* no JSON: our own words */ }
      setConnected(false, "board.signin_failed", {}, typeof detail === "string" && detail ? detail : null);
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

  $("filter").value = state.filter;
  $("filter").addEventListener("change", () => {
    state.filter = FILTERS[$("filter").value] ? $("filter").value : "hospitals";
    localStorage.setItem(FILTER, state.filter);
    render();
    mapView.show(visible());
  });
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    $("signin").hidden = true;
    start($("key").value);
  });
  i18n.onChange(() => {
    render();
    mapView.relabel();
    renderConnection();
  });
  setInterval(() => { if (state.facilities.size) render(); }, 5000);
  const key = takeKeyFromFragment();
  if (key) start(key); else { $("signin").hidden = false; setConnected(false, "board.signin_needed"); }
})();
