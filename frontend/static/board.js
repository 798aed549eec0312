"use strict";
// Minimal live regional board: snapshot, then deltas; reconnects and resumes from the last event id.
(() => {
  const KEY = "capacity.key", REGION = "capacity.region";
  const UNIT_ORDER = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const $ = (id) => document.getElementById(id);
  const state = { facilities: new Map(), lastEventId: null, offsetMs: 0, socket: null, retry: 500 };

  function takeKeyFromFragment() {
    const match = location.hash.match(/key=([^&]+)/);
    if (match) {
      sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(KEY);
  }

  function age(iso) {
    const seconds = Math.max(0, Math.round((Date.now() + state.offsetMs - Date.parse(iso)) / 1000));
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min ago`;
  }
  const isStale = (iso, f) => (Date.now() + state.offsetMs - Date.parse(iso)) / 1000 > f.reporting_interval_s;
  const count = (v) => (v === null || v === undefined ? "?" : String(v));

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
      if (seh.expected_until) sehCell.append(el("div", { class: "age" }, `until ${new Date(seh.expected_until).toLocaleTimeString()}`));
      sehCell.append(el("div", { class: "age" }, age(seh.measured_at)));
    } else {
      sehCell.append(el("span", { class: "seh seh-none" }, f.kind === "hospital_no_seh" ? "no SEH" : "no report"));
    }
    tr.append(sehCell);
    const units = el("td");
    for (const u of f.units) {
      const stale = isStale(u.measured_at, f);
      units.append(el("span", { class: `unit${stale ? " stale" : ""}`, title: `measured ${age(u.measured_at)}`, "data-unit": u.type },
        `${u.type} ${count(u.available)}/${count(u.staffed)}`));
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
    const old = document.querySelector(`tr[data-facility="${CSS.escape(f.id)}"]`);
    const fresh = row(f);
    fresh.classList.add("changed");
    if (old) old.replaceWith(fresh);
  }

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
      const msg = JSON.parse(m.data);
      if (msg.type === "snapshot") {
        state.offsetMs = Date.parse(msg.server_time) - Date.now();
        state.facilities = new Map(msg.facilities.map((f) => [f.id, f]));
        state.lastEventId = msg.last_event_id;
        render();
      } else if (msg.type === "event") {
        applyEvent(msg);
        state.lastEventId = msg.id;
      } else if (msg.type === "heartbeat") {
        state.offsetMs = Date.parse(msg.server_time) - Date.now();
      }
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
    select.onchange = () => {
      localStorage.setItem(REGION, select.value);
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
