"use strict";
// The coordinator page's "Now" and "45 minutes" sections: who is on stop (with reason, since when and
// the expected end), capability stops, stale facilities and the key's active alerts, kept live by the
// region's websocket (snapshot, then every report, stale notice and alert as it happens); and the
// coverage what-if (closing and opening SEHs) with the region's 45-minute figure.
window.capacityCoordinatorNow = (() => {
  const i18n = window.capacityI18n;
  const t = i18n.t;
  const { el, label, errorText } = window.capacityCommon;
  const clock = window.capacityCoordinatorCharts;
  const $ = (id) => document.getElementById(id);
  const ON_STOP = new Set(["stop", "closed", "stop_expired"]);
  const SEH_KINDS = new Set(["seh", "seh_limited", "seh_unconfirmed", "hospital"]);
  const HOSPITAL_KINDS = new Set([...SEH_KINDS, "hospital_no_seh"]);
  const STATUS_ORDER = { stop: 0, stop_expired: 1, closed: 2 };
  const SHOWN = 8;  // stale hospitals listed before the rest fold away

  const state = {
    api: null, key: null, region: null, socket: null, retry: 500, lastEventId: null, offsetMs: 0,
    facilities: new Map(), since: new Map(), alerts: new Map(), subscriptions: null, loaded: false,
    conn: { ok: false, key: "coord.connecting", vars: {}, text: null }, onSignOut: null, coverage: null, whatif: null,
  };

  const serverNow = () => Date.now() + state.offsetMs;
  const secondsSince = (iso) => (serverNow() - Date.parse(iso)) / 1000;
  const fmt = (n) => Number(n).toLocaleString(i18n.lang === "en" ? "en-GB" : "nl-NL");
  const reasonWords = (s) => (s.reason === "other" && s.reason_text ? s.reason_text : s.reason ? label(`reason.${s.reason}`, s.reason) : t("coord.reason.unknown"));
  const isStale = (f) => !f.last_measured_at || secondsSince(f.last_measured_at) > f.reporting_interval_s || !!f.stale_since;
  // A moment today as its time ("14:30"); on another day with the date ("8 dec 00:30").
  function when(ms) {
    const time = clock.format(ms, { hour: "2-digit", minute: "2-digit" });
    return clock.isoDate(ms) === clock.isoDate(serverNow()) ? time : `${clock.format(ms, { day: "numeric", month: "short" })} ${time}`;
  }
  function lasting(ms) {
    const min = Math.max(0, Math.round((serverNow() - ms) / 60000));
    return min < 60 ? t("coord.minutes", { n: min }) : t("coord.hours", { h: Math.floor(min / 60), m: min % 60 });
  }

  // -- the live state -------------------------------------------------------------------------
  function setConnected(ok, key, vars = {}, text = null) {
    state.conn = { ok, key, vars, text };
    renderConnection();
  }
  function renderConnection() {
    const { ok, key, vars, text } = state.conn;
    const words = text ?? t(key, vars);
    $("status").textContent = words;
    $("status").classList.toggle("live", ok);
    $("banner").hidden = ok || !state.key;
    $("banner").textContent = ok ? "" : `${t("coord.offline")} ${words}`;
  }

  // The key's alerts: the last word per subscription it still has; those firing in this region are active.
  async function loadAlerts(region) {
    const to = new Date(serverNow());
    const from = new Date(to - 30 * clock.DAY);
    const [subs, history] = await Promise.all([
      state.api("/api/v1/alerts/subscriptions"),
      state.api(`/api/v1/alerts/history?from=${from.toISOString()}&to=${to.toISOString()}`),
    ]);
    if (region !== state.region) return;
    state.subscriptions = subs.ok ? new Set(subs.body.map((s) => s.id)) : null;
    if (history.ok) {
      for (const a of [...history.body].sort((x, y) => Date.parse(x.at) - Date.parse(y.at))) {
        if (a.region_id === region) state.alerts.set(a.subscription_id, a);
      }
    }
    render();
  }

  // When each ongoing stop began, as the board keeps it (stop_since: the report that put the SEH on
  // stop, however often renewed since); a stop the snapshot knows no start of keeps what was seen live.
  function sinceFromSnapshot() {
    const seen = state.since;
    state.since = new Map();
    for (const f of state.facilities.values()) {
      if (!f.seh || !ON_STOP.has(f.seh.status)) continue;
      const at = f.seh.stop_since ? Date.parse(f.seh.stop_since) : seen.get(f.id);
      if (at !== undefined) state.since.set(f.id, at);
    }
  }

  // A report as applied; true when it moved the SEH onto or off stop (the what-if lists follow).
  function applyEvent(e) {
    const f = state.facilities.get(e.facility_id);
    if (!f) return false;
    let moved = false;
    if (e.seh) {
      const was = !!f.seh && ON_STOP.has(f.seh.status);
      moved = was !== ON_STOP.has(e.seh.status);
      f.seh = e.seh;
      if (!ON_STOP.has(e.seh.status)) state.since.delete(f.id);
      else if (!was || !state.since.has(f.id)) state.since.set(f.id, Date.parse(e.seh.stop_since || e.seh.measured_at));
    }
    if (Array.isArray(e.capability_stops)) f.capability_stops = e.capability_stops;
    for (const u of e.units || []) {
      const i = f.units.findIndex((x) => x.type === u.type);
      if (i >= 0) f.units[i] = u; else f.units.push(u);
    }
    f.last_measured_at = e.measured_at;
    f.stale_since = null;
    return moved;
  }

  function connect(region) {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const since = state.lastEventId ? `?since=${encodeURIComponent(state.lastEventId)}` : "";
    const socket = new WebSocket(`${proto}://${location.host}/ws/regions/${region}${since}`);
    state.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", key: state.key }));
    socket.onmessage = (m) => {
      if (state.socket !== socket) return;
      const msg = JSON.parse(m.data);
      if (msg.type === "snapshot") {
        state.offsetMs = Date.parse(msg.server_time) - Date.now();
        state.facilities = new Map(msg.facilities.map((f) => [f.id, f]));
        sinceFromSnapshot();
        state.lastEventId = msg.last_event_id;
        state.loaded = true;
        render();
        whatIf.list();
        coverage.load();
      } else if (msg.type === "event") {
        const moved = applyEvent(msg);
        render();
        if (moved) whatIf.list();
      } else if (msg.type === "stale") {
        const f = state.facilities.get(msg.facility_id);
        if (f) { f.stale_since = msg.since; render(); }
      } else if (msg.type === "alert") {
        const a = msg.alert;
        if (a.region_id === state.region) { state.alerts.set(a.subscription_id, a); if (state.subscriptions) state.subscriptions.add(a.subscription_id); render(); }
      } else if (msg.type === "coverage") {
        coverage.load();
      } else if (msg.type === "heartbeat") {
        state.offsetMs = Date.parse(msg.server_time) - Date.now();
      }
      if (msg.id) state.lastEventId = msg.id;
      state.retry = 500;
      if (!state.conn.ok) setConnected(true, "coord.live");
    };
    socket.onclose = (ev) => {
      if (state.socket !== socket) return;
      if (ev.code === 4401 || ev.code === 4403) {
        state.socket = null;
        if (state.onSignOut) state.onSignOut(ev.reason || null);
        return;
      }
      setConnected(false, "coord.reconnecting", { n: Math.round(state.retry / 1000) });
      setTimeout(() => { if (state.socket === socket) connect(region); }, state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }

  // -- drawing "Now" ---------------------------------------------------------------------------
  function stopRow(f) {
    const seh = f.seh;
    const at = state.since.get(f.id) ?? Date.parse(seh.measured_at);
    const sinceCell = el("td", { class: "since" }, el("time", { class: "when", datetime: new Date(at).toISOString() }, when(at)), " ",
      el("span", { class: "sub" }, lasting(at)));
    let until = "–";
    if (seh.expected_until) {
      const end = Date.parse(seh.expected_until);
      until = end <= serverNow() ? t("coord.until.passed", { time: when(end) }) : when(end);
    }
    const status = el("span", { class: `seh seh-${seh.status}` }, label(`seh.${seh.status}`, seh.status));
    const stale = isStale(f) ? [" ", el("span", { class: "stale-mark" }, t("stale"))] : [];
    return el("tr", { "data-facility": f.id, "data-status": seh.status },
      el("th", { scope: "row" }, f.name, el("span", { class: "sub" }, f.city)),
      el("td", {}, status, ...stale), el("td", { class: "reason" }, reasonWords(seh)), sinceCell, el("td", { class: "until" }, until));
  }

  function render() {
    if (!state.region) return;
    const all = [...state.facilities.values()];
    const onStop = all.filter((f) => f.seh && ON_STOP.has(f.seh.status))
      .sort((a, b) => (STATUS_ORDER[a.seh.status] - STATUS_ORDER[b.seh.status]) || a.name.localeCompare(b.name, "nl"));
    const body = $("now-stops").querySelector("tbody");
    body.replaceChildren(...onStop.map(stopRow));
    if (!onStop.length) body.append(el("tr", { class: "empty" }, el("td", { colspan: "5" }, state.loaded ? t("coord.now.none") : t("coord.loading"))));
    const stops = onStop.filter((f) => f.seh.status !== "closed").length;
    const sehs = all.filter((f) => SEH_KINDS.has(f.kind)).length;
    $("now-summary").textContent = state.loaded ? t("coord.now.summary", { stops, closed: onStop.length - stops, sehs }) : "";

    const caps = all.flatMap((f) => (f.capability_stops || []).map((c) => ({ f, c })));
    $("now-cap-stops").replaceChildren(...(caps.length ? caps.map(({ f, c }) => {
      const expired = c.expired || (c.expected_until && Date.parse(c.expected_until) <= serverNow());
      const end = c.expected_until ? t(expired ? "coord.cap.passed" : "coord.cap.until", { time: when(Date.parse(c.expected_until)) }) : "";
      return el("li", { "data-facility": f.id, "data-capability": c.capability },
        el("strong", {}, label(`cap.${c.capability}`, c.capability)), ` — ${f.name}`,
        el("span", { class: "sub" }, [reasonWords(c), end].filter(Boolean).join(" · ")));
    }) : [el("li", { class: "none" }, t("coord.none"))]));

    const stale = all.filter(isStale);
    const hospitals = stale.filter((f) => HOSPITAL_KINDS.has(f.kind)).sort((a, b) => a.name.localeCompare(b.name, "nl"));
    const item = (f) => el("li", { "data-facility": f.id }, f.name,
      el("span", { class: "sub" }, f.last_measured_at ? t("coord.stale.last", { age: i18n.age(secondsSince(f.last_measured_at)) }) : t("coord.stale.never")));
    const list = hospitals.slice(0, SHOWN).map(item);
    if (hospitals.length > SHOWN) {
      const open = !!$("now-stale").querySelector("details[open]");  // drawn again every 5 s: kept as the reader left it
      list.push(el("li", { class: "more" }, el("details", { open }, el("summary", {}, t("coord.stale.more", { n: hospitals.length - SHOWN })),
        el("ul", { class: "plain" }, ...hospitals.slice(SHOWN).map(item)))));
    }
    const others = stale.length - hospitals.length;
    if (others) list.push(el("li", { class: "sub" }, t("coord.stale.others", { n: others })));
    if (!list.length) list.push(el("li", { class: "none" }, t("coord.none")));
    $("now-stale").replaceChildren(...list);

    const active = [...state.alerts.values()]
      .filter((a) => a.state === "firing" && (!state.subscriptions || state.subscriptions.has(a.subscription_id)))
      .sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    $("now-alerts").replaceChildren(...(active.length
      ? active.map((a) => el("li", { "data-subscription": a.subscription_id }, a.message, el("span", { class: "sub" }, t("coord.alert.since", { time: when(Date.parse(a.at)) }))))
      : [el("li", { class: "none" }, state.subscriptions && !state.subscriptions.size ? t("coord.alerts.no_subscriptions") : t("coord.none"))]));
  }

  // -- 45 minutes --------------------------------------------------------------------------------
  const coverage = (() => {
    let answer = null;
    function draw() {
      const r = answer && answer.regions.find((x) => x.region_id === state.region);
      const share = (v) => `${(v * 100).toLocaleString(i18n.lang === "en" ? "en-GB" : "nl-NL", { maximumFractionDigits: 1 })}%`;
      $("coverage-now").textContent = r ? t("coord.coverage.now", { region: r.name, share: share(r.share), outside: fmt(r.outside), national: share(answer.national.share) }) : "";
    }
    async function load() {
      const region = state.region;
      const result = await state.api("/api/v1/coverage");
      if (region !== state.region) return;
      answer = result.ok ? result.body : null;
      draw();
    }
    return { load, draw, clear() { answer = null; draw(); } };
  })();

  const whatIf = (() => {
    let last = null;
    const sehs = () => [...state.facilities.values()].filter((f) => SEH_KINDS.has(f.kind)).sort((a, b) => a.name.localeCompare(b.name, "nl"));
    function boxes(container, facilities, prefix) {
      const ticked = new Set([...container.querySelectorAll("input:checked")].map((i) => i.value));
      container.replaceChildren(...facilities.map((f) => {
        const input = el("input", { type: "checkbox", id: `${prefix}-${f.id}`, value: f.id });
        input.checked = ticked.has(f.id);
        return el("label", { class: "check", for: `${prefix}-${f.id}` }, input, el("span", {}, `${f.name} (${f.city})`));
      }));
      if (!facilities.length) container.append(el("p", { class: "hint" }, t("coord.none")));
    }
    function list() {
      const all = sehs();
      boxes($("whatif-close"), all.filter((f) => !(f.seh && ON_STOP.has(f.seh.status))), "close");
      boxes($("whatif-open"), all.filter((f) => f.seh && ON_STOP.has(f.seh.status)), "open");
    }
    function result() {
      const out = $("whatif-result");
      out.classList.toggle("error", !!(last && last.error));
      if (!last) { out.textContent = ""; return; }
      if (last.busy) { out.textContent = t("coord.whatif.busy"); return; }
      if (last.error) { out.textContent = last.error === "none" ? t("coord.whatif.none") : t("coord.whatif.failed", { error: last.error }); return; }
      const c = last.change;
      const areas = c ? c.newly_outside_areas.slice(0, 5).map((a) => `${a.pc4} (${fmt(a.population)})`) : [];
      out.replaceChildren(
        el("strong", {}, t("coord.whatif.result", { outside: fmt(c ? c.newly_outside : 0), within: fmt(c ? c.newly_within : 0), region: state.region })),
        areas.length ? el("span", { class: "sub" }, t("coord.whatif.areas", { areas: areas.join(", ") })) : null,
      );
    }
    async function run(ev) {
      ev.preventDefault();
      const closed = [...$("whatif-close").querySelectorAll("input:checked")].map((i) => i.value);
      const opened = [...$("whatif-open").querySelectorAll("input:checked")].map((i) => i.value);
      if (!closed.length && !opened.length) { last = { error: "none" }; result(); return; }
      const region = state.region;
      last = { busy: true };
      result();
      const answer = await state.api("/api/v1/coverage/what-if", { method: "POST", json: { closed, opened } });
      if (region !== state.region) return;
      last = answer.ok ? { change: (answer.body.difference.regions || []).find((r) => r.region_id === region) || null } : { error: errorText(answer) };
      result();
    }
    $("whatif").addEventListener("submit", run);
    $("whatif-reset").addEventListener("click", () => {
      for (const i of $("whatif").querySelectorAll("input:checked")) i.checked = false;
      last = null;
      result();
    });
    return { list, result, clear() { last = null; result(); $("whatif-close").replaceChildren(); $("whatif-open").replaceChildren(); } };
  })();

  // -- the page's handle ------------------------------------------------------------------------
  function stop() {
    const old = state.socket;
    state.socket = null;
    if (old) old.close();
  }
  function start({ api, key, region, onSignOut }) {
    stop();
    Object.assign(state, { api, key, region, onSignOut, lastEventId: null, loaded: false, retry: 500 });
    state.facilities = new Map();
    state.since = new Map();
    state.alerts = new Map();
    state.subscriptions = null;
    coverage.clear();
    whatIf.clear();
    render();
    setConnected(false, "coord.connecting");
    connect(region);
    loadAlerts(region);
  }
  function end() {
    stop();
    state.key = null;
    state.region = null;
    setConnected(false, "coord.signin_needed");
  }
  i18n.onChange(() => { render(); coverage.draw(); whatIf.result(); renderConnection(); });
  setInterval(() => { if (state.loaded) render(); }, 5000);
  return { start, end, render, facilities: () => state.facilities };
})();
