"use strict";
// Minimal live regional board: snapshot, then deltas; reconnects and resumes from the last event id.
// Labels in Dutch or English (i18n.js); everything drawn here is drawn again when the language changes.
(() => {
  const i18n = window.capacityI18n;
  const t = i18n.t;
  const { el, label, errorText, detail } = window.capacityCommon;
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
      "board.cap_stop": "{cap} stop tot {time}",
      "board.cap_stop.open": "{cap} stop",
      "board.cap_stop.expired": "{cap} stop tot {time} — niet bevestigd",
      "board.cap_stop.title": "{cap} op stop: {reason}; gemeld {age}",
      "board.cap_stop.title.expired": "{cap} op stop: {reason}; het verwachte einde is voorbij zonder nieuwe melding (gemeld {age})",
      "board.nedocs": "NEDOCS {score} · {band}",
      "board.nedocs.title": "NEDOCS-score {score} van 200: {band}; gemeten {age}",
      "board.waiting.triage": "triage {n} min",
      "board.waiting.doctor": "arts {n} min",
      "board.waiting.title": "Wachttijden op de SEH, gemeten {age}",
      "board.trend.nedocs": "NEDOCS, laatste 6 uur: {from} → {to}",
      "board.trend.doctor": "Wachttijd tot arts, laatste 6 uur: {from} → {to} min",
      "board.trend.triage": "Wachttijd tot triage, laatste 6 uur: {from} → {to} min",
      "cap.trauma_centre": "Trauma",
      "cap.pci": "PCI",
      "cap.stroke_thrombectomy": "Trombectomie",
      "cap.acute_obstetrics": "Acute verloskunde",
      "cap.paediatric_seh": "Kinder-SEH",
      "cap.burns": "Brandwonden",
      "board.outlines_unavailable": "Regiogrenzen niet beschikbaar ({error}).",
      "board.empty.hospitals": "Geen ziekenhuizen in deze regio.",
      "board.empty.care": "Geen zorgplaatsen in deze regio.",
      "board.empty.all": "Geen locaties in deze regio.",
      "coverage.toggle": "Buiten 45 minuten tonen",
      "coverage.summary": "{region}: {share} binnen 45 min — {outside} inwoners daarbuiten (landelijk {national})",
      "coverage.tip": "{pc4}: {people} inwoners, {minutes}",
      "coverage.minutes": "op de SEH na {n} min",
      "coverage.response": "ambulance ter plaatse na {n} min",
      "coverage.no_road": "geen weg (eiland)",
      "coverage.legend": "Kaartlaag 45-minutennorm",
      "coverage.legend.outside": "buiten 45 minuten",
      "coverage.legend.station": "ambulancepost 24/7 (telt mee)",
      "coverage.legend.station_other": "andere ambulancepost (telt niet mee)",
      "station.title": "Ambulancepost {name}",
      "station.availability": "Bemand: {hours}",
      "station.availability.always": "24 uur per dag",
      "station.availability.dam": "24 uur per dag, post voor dynamisch ambulancemanagement (DAM/VWS)",
      "station.availability.day": "overdag en 's avonds",
      "station.availability.night": "'s nachts",
      "station.availability.callout": "opkomstpost (bemanning op afroep)",
      "station.counted": "Telt mee voor de 45-minutennorm: ja",
      "station.not_counted": "Telt mee voor de 45-minutennorm: nee",
      "whatif.title": "Wat als…",
      "whatif.legend": "SEH's die dicht gaan",
      "whatif.run": "Bereken",
      "whatif.reset": "Wissen",
      "whatif.none": "Kies eerst een of meer SEH's.",
      "whatif.busy": "berekenen…",
      "whatif.result": "Als {names} dicht gaan: {n} inwoners van {region} buiten 45 minuten",
      "whatif.result.one": "Als {names} dicht gaat: {n} inwoners van {region} buiten 45 minuten",
      "whatif.failed": "Berekening mislukt ({error}).",
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
      "board.cap_stop": "{cap} stop until {time}",
      "board.cap_stop.open": "{cap} stop",
      "board.cap_stop.expired": "{cap} stop until {time} — unconfirmed",
      "board.cap_stop.title": "{cap} on stop: {reason}; reported {age}",
      "board.cap_stop.title.expired": "{cap} on stop: {reason}; its expected end passed without a new report (reported {age})",
      "board.nedocs": "NEDOCS {score} · {band}",
      "board.nedocs.title": "NEDOCS score {score} of 200: {band}; measured {age}",
      "board.waiting.triage": "triage {n} min",
      "board.waiting.doctor": "doctor {n} min",
      "board.waiting.title": "SEH waiting times, measured {age}",
      "board.trend.nedocs": "NEDOCS, last 6 hours: {from} → {to}",
      "board.trend.doctor": "Wait for a doctor, last 6 hours: {from} → {to} min",
      "board.trend.triage": "Wait for triage, last 6 hours: {from} → {to} min",
      "cap.trauma_centre": "Trauma",
      "cap.pci": "PCI",
      "cap.stroke_thrombectomy": "Thrombectomy",
      "cap.acute_obstetrics": "Acute obstetrics",
      "cap.paediatric_seh": "Paediatric SEH",
      "cap.burns": "Burns",
      "board.outlines_unavailable": "Region outlines unavailable ({error}).",
      "board.empty.hospitals": "No hospitals in this region.",
      "board.empty.care": "No care places in this region.",
      "board.empty.all": "No facilities in this region.",
      "coverage.toggle": "Show outside 45 minutes",
      "coverage.summary": "{region}: {share} within 45 min — {outside} inhabitants outside (national {national})",
      "coverage.tip": "{pc4}: {people} inhabitants, {minutes}",
      "coverage.minutes": "at the SEH after {n} min",
      "coverage.response": "ambulance on scene after {n} min",
      "coverage.no_road": "no road (island)",
      "coverage.legend": "45-minute norm layer",
      "coverage.legend.outside": "outside 45 minutes",
      "coverage.legend.station": "ambulance station 24/7 (counted)",
      "coverage.legend.station_other": "other ambulance station (not counted)",
      "station.title": "Ambulance station {name}",
      "station.availability": "Staffed: {hours}",
      "station.availability.always": "24 hours a day",
      "station.availability.dam": "24 hours a day, dynamic ambulance management post (DAM/VWS)",
      "station.availability.day": "day and evening",
      "station.availability.night": "at night",
      "station.availability.callout": "call-out post (crew on call)",
      "station.counted": "Counted for the 45-minute norm: yes",
      "station.not_counted": "Counted for the 45-minute norm: no",
      "whatif.title": "What if…",
      "whatif.legend": "SEHs that close",
      "whatif.run": "Calculate",
      "whatif.reset": "Clear",
      "whatif.none": "Choose one or more SEHs first.",
      "whatif.busy": "calculating…",
      "whatif.result": "If {names} close: {n} inhabitants of {region} outside 45 minutes",
      "whatif.result.one": "If {names} closes: {n} inhabitants of {region} outside 45 minutes",
      "whatif.failed": "Calculation failed ({error}).",
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
    facilities: new Map(), lastEventId: null, offsetMs: 0, socket: null, retry: 500, region: null, key: null,
    filter: FILTERS[localStorage.getItem(FILTER)] ? localStorage.getItem(FILTER) : "hospitals",
    conn: { ok: false, key: "board.connecting", vars: {}, text: null },
    mapError: null,
  };

  const takeKeyFromFragment = () => window.capacitySession.takeKey(KEY);
  const api = window.capacityCommon.client(() => state.key);

  const serverNow = () => Date.now() + state.offsetMs;
  const secondsSince = (iso) => (serverNow() - Date.parse(iso)) / 1000;
  const age = (iso) => i18n.age(secondsSince(iso));
  const isStale = (iso, f) => secondsSince(iso) > f.reporting_interval_s;
  const count = (v) => (v === null || v === undefined ? t("unknown") : String(v));
  const shown = (f) => FILTERS[state.filter](f);
  const visible = () => [...state.facilities.values()].filter(shown);
  const locale = () => (i18n.lang === "en" ? "en-GB" : "nl-NL");

  const unitName = (type) => label(`unit.${type}`, type);
  const kindName = (kind) => label(`kind.${kind}`, kind);
  const capName = (cap) => label(`cap.${cap}`, cap);
  const bandOf = window.capacityCommon.nedocsBand;
  const bandName = (band) => label(`band.${band}`, band);
  // Why a stop: the reason's label, or the hospital's own words for `other`.
  const reasonWords = (stop) => (stop.reason === "other" && stop.reason_text ? stop.reason_text : stop.reason ? label(`reason.${stop.reason}`, stop.reason) : "");
  // An expected end: the time of day when it is near (now or the coming hours), with the date when it is not.
  function clock(iso) {
    const d = new Date(iso);
    const time = d.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
    if (Math.abs(d - serverNow()) < 20 * 3600 * 1000) return time;
    return `${d.toLocaleDateString(locale(), { day: "numeric", month: "short" })} ${time}`;
  }
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

  const demoBadge = () => el("span", { class: "demo", title: t("demo.title") }, t("demo.badge"));

  // Trends: the last 6 hours of NEDOCS or waiting times, as a small line drawn here (no library).
  // Fetched only for rows on screen (IntersectionObserver), a few at a time, each at most every
  // TREND_TTL; live events add their points in between, so a board of 100+ rows stays light.
  const trends = (() => {
    const TREND_TTL = 3 * 60 * 1000, WINDOW = 6 * 3600 * 1000, MIN_SPAN = 30 * 60 * 1000, PARALLEL = 3, W = 64, H = 16;
    const NS = "http://www.w3.org/2000/svg";
    const cache = new Map();  // facility id -> {points, live, fetchedAt, loading}
    const queue = [];
    let running = 0;
    const observer = typeof IntersectionObserver === "undefined" ? null : new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) want(entry.target.dataset.trend);
    }, { rootMargin: "200px 0px" });

    function want(id) {
      const entry = cache.get(id);
      if (entry && (entry.loading || Date.now() - entry.fetchedAt < TREND_TTL)) return;
      if (!queue.includes(id)) queue.push(id);
      pump();
    }
    function pump() {
      while (running < PARALLEL && queue.length) {
        const id = queue.shift();
        running += 1;
        load(id).finally(() => { running -= 1; pump(); });
      }
    }
    async function load(id) {
      const entry = cache.get(id) || { points: null, live: [], fetchedAt: 0 };
      entry.loading = true;
      cache.set(id, entry);
      const result = await api(`/api/v1/facilities/${encodeURIComponent(id)}/pressure?hours=6`);
      if (result.ok) entry.points = result.body.points || [];  // else no trend this time; the figures are unaffected
      entry.fetchedAt = Date.now();
      entry.loading = false;
      draw(id);
    }

    // The points of one series in the window, oldest first: fetched ones and those that came live since.
    function series(id, name) {
      const entry = cache.get(id);
      if (!entry || !entry.points) return [];
      const start = serverNow() - WINDOW;
      const byTime = new Map();
      for (const p of [...entry.points, ...entry.live]) {
        const at = Date.parse(p.measured_at);
        if (at >= start && p[name] !== null && p[name] !== undefined) byTime.set(at, p[name]);
      }
      return [...byTime.entries()].sort((a, b) => a[0] - b[0]);
    }

    // A step line (a figure holds until the next report) from the first point in the window to now:
    // the time axis spans what there is (at least MIN_SPAN), so a recent change is not squeezed flat.
    function svg(id, name) {
      const points = series(id, name);
      if (!points.length) return null;
      const end = Math.max(serverNow(), points[points.length - 1][0]);
      const start = Math.max(end - WINDOW, Math.min(points[0][0], end - MIN_SPAN));
      const max = name === "nedocs" ? 200 : Math.max(60, ...points.map((p) => p[1]));
      const x = (at) => (2 + ((Math.min(end, Math.max(start, at)) - start) / (end - start)) * (W - 4)).toFixed(1);
      const y = (v) => (H - 2 - (Math.min(v, max) / max) * (H - 4)).toFixed(1);
      const node = document.createElementNS(NS, "svg");
      for (const [k, v] of Object.entries({ class: "spark", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "data-points": points.length })) {
        node.setAttribute(k, v);
      }
      const words = t(`board.trend.${name === "nedocs" ? "nedocs" : name === "doctor_min" ? "doctor" : "triage"}`,
        { from: points[0][1], to: points[points.length - 1][1] });
      node.setAttribute("aria-label", words);
      const title = document.createElementNS(NS, "title");
      title.textContent = words;
      const base = document.createElementNS(NS, "line");
      for (const [k, v] of Object.entries({ class: "base", x1: 2, x2: W - 2, y1: H - 2, y2: H - 2 })) base.setAttribute(k, v);
      const line = document.createElementNS(NS, "polyline");
      const steps = points.flatMap(([at, v], i) => (i ? [`${x(at)},${y(points[i - 1][1])}`, `${x(at)},${y(v)}`] : [`${x(at)},${y(v)}`]));
      const lastValue = points[points.length - 1][1];
      steps.push(`${x(end)},${y(lastValue)}`);
      line.setAttribute("points", steps.join(" "));
      const dot = document.createElementNS(NS, "circle");
      for (const [k, v] of Object.entries({ cx: x(end), cy: y(lastValue), r: 2.2 })) dot.setAttribute(k, v);
      dot.setAttribute("class", name === "nedocs" ? `dot band-${bandOf(lastValue)}` : "dot");
      node.append(title, base, line, dot);
      return node;
    }

    // The place for a trend in a row: empty (its size kept) until the points are there.
    function node(id, name) {
      const span = el("span", { class: "trend", "data-trend": id, "data-series": name });
      const drawn = svg(id, name);
      if (drawn) span.append(drawn);
      return span;
    }
    function draw(id) {
      for (const span of document.querySelectorAll(`#board .trend[data-trend="${CSS.escape(id)}"]`)) {
        const drawn = svg(id, span.dataset.series);
        span.replaceChildren(...(drawn ? [drawn] : []));
      }
    }

    function add(id, point) {
      const entry = cache.get(id);
      if (!entry) return;  // not fetched yet: the fetch will bring it
      entry.live.push(point);
      const start = serverNow() - WINDOW;
      entry.live = entry.live.filter((p) => Date.parse(p.measured_at) >= start);
    }
    function watch(root, fresh = true) {
      if (!observer) return;
      if (fresh) observer.disconnect();
      for (const span of root.querySelectorAll(".trend")) observer.observe(span);
    }
    function unwatch(root) {
      if (observer) for (const span of root.querySelectorAll(".trend")) observer.unobserve(span);
    }
    function forget() { queue.length = 0; }
    return { node, add, watch, unwatch, forget };
  })();

  // A capability on stop while the SEH may stay open: "PCI stop tot 14:30"; past its expected end
  // without a new report it still counts (dispatch honours it), marked unconfirmed.
  function capStop(stop) {
    const cap = capName(stop.capability);
    const expired = !!stop.expired || (!!stop.expected_until && Date.parse(stop.expected_until) <= serverNow());
    const time = stop.expected_until ? clock(stop.expected_until) : "";
    const text = !time ? t("board.cap_stop.open", { cap }) : t(expired ? "board.cap_stop.expired" : "board.cap_stop", { cap, time });
    const title = t(expired ? "board.cap_stop.title.expired" : "board.cap_stop.title", { cap, reason: reasonWords(stop) || t("unknown"), age: age(stop.measured_at) });
    return el("span", { class: `cap-stop${expired ? " expired" : ""}`, "data-capability": stop.capability, title }, text);
  }

  // The SEH's pressure: NEDOCS as a badge in its band's colour, the waiting times, each with its age and
  // a trend of the last hours; greyed when stale, like every other figure.
  function pressure(f) {
    const lines = [];
    const n = f.nedocs;
    if (n) {
      const band = bandOf(n.score), stale = isStale(n.measured_at, f);
      const line = el("div", { class: `pressure nedocs-line${stale ? " stale" : ""}` });
      line.append(el("span", {
        class: `nedocs band-${band}${stale ? " stale" : ""}`, "data-band": band,
        title: t("board.nedocs.title", { score: n.score, band: bandName(band), age: age(n.measured_at) }),
      }, t("board.nedocs", { score: n.score, band: bandName(band) })), " ", trends.node(f.id, "nedocs"));
      lines.push(line);
    }
    const w = f.waiting;
    // measured together (one report): one age, after the waiting times; else each its own
    const known = (v) => v !== null && v !== undefined;
    const waits = !!w && (known(w.triage_min) || known(w.doctor_min));
    const together = n && waits && Date.parse(n.measured_at) === Date.parse(w.measured_at);
    if (n && !together) lines[0].append(" ", el("span", { class: "age" }, age(n.measured_at)));
    if (waits) {
      const stale = isStale(w.measured_at, f);
      const words = [];
      if (known(w.triage_min)) words.push(t("board.waiting.triage", { n: w.triage_min }));
      if (known(w.doctor_min)) words.push(t("board.waiting.doctor", { n: w.doctor_min }));
      const line = el("div", { class: `pressure waiting${stale ? " stale" : ""}`, title: t("board.waiting.title", { age: age(w.measured_at) }) },
        el("span", { class: "waits" }, words.join(" · ")));
      if (!n) line.append(" ", trends.node(f.id, known(w.doctor_min) ? "doctor_min" : "triage_min"));
      line.append(" ", el("span", { class: "age" }, age(w.measured_at)));
      lines.push(line);
    }
    return lines;
  }

  function row(f) {
    const tr = el("tr", { "data-facility": f.id });
    const name = el("td", {}, f.name);
    if (f.synthetic) name.append(" ", demoBadge());
    name.append(el("div", { class: "age" }, f.city));
    tr.append(name);
    const seh = f.seh;
    const sehCell = el("td", seh && isStale(seh.measured_at, f) ? { class: "stale" } : {});
    if (seh) {
      const head = el("div", { class: "seh-head" }, el("span", { class: `seh seh-${seh.status}` }, sehText(f)));
      const why = reasonWords(seh);
      if (why) head.append(" ", el("span", { class: "reason" }, why));
      if (seh.expected_until) head.append(" ", el("span", { class: "until" }, t("board.until", { time: clock(seh.expected_until) })));
      sehCell.append(head, el("div", { class: "age" }, age(seh.measured_at)));
      if (seh.incoming) {
        sehCell.append(el("div", { class: "incoming" }, t(seh.incoming > 1 ? "board.incoming.many" : "board.incoming.one", { n: seh.incoming })));
      }
    } else if (SEH_KINDS.has(f.kind) || !f.kind) {
      sehCell.append(el("span", { class: "seh seh-none" }, sehText(f)));
    } else {
      sehCell.append(el("span", { class: "kind", "data-kind": f.kind }, sehText(f)));
    }
    if (f.capability_stops && f.capability_stops.length) sehCell.append(el("div", { class: "cap-stops" }, ...f.capability_stops.map((c) => capStop(c))));
    sehCell.append(...pressure(f));
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
    trends.watch(body);
    $("demo-note").hidden = !visible().some((f) => f.synthetic);
  }

  function redraw(f) {
    if (!shown(f)) return;  // filtered out: its figures are kept, nothing is drawn
    const old = document.querySelector(`tr[data-facility="${CSS.escape(f.id)}"]`);
    const fresh = row(f);
    fresh.classList.add("changed");
    if (old) { trends.unwatch(old); old.replaceWith(fresh); trends.watch(fresh, false); }
    mapView.mark(f);
  }

  function applyEvent(e) {
    const f = state.facilities.get(e.facility_id);
    if (!f) return;
    if (e.seh) f.seh = e.seh;
    // the optional parts, when the report carried them (a list of capability stops replaces the list)
    if (Array.isArray(e.capability_stops)) f.capability_stops = e.capability_stops;
    if (e.waiting) f.waiting = e.waiting;
    if (e.nedocs) f.nedocs = { ...e.nedocs, band: bandOf(e.nedocs.score) };
    if (e.waiting || e.nedocs) {
      trends.add(f.id, {
        measured_at: e.measured_at,
        nedocs: e.nedocs ? e.nedocs.score : null,
        triage_min: e.waiting ? e.waiting.triage_min : null,
        doctor_min: e.waiting ? e.waiting.doctor_min : null,
      });
    }
    for (const u of e.units || []) {
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
  // Layers bottom to top, each in a pane of its own (z-index in board.css): outlines (Leaflet's overlay
  // pane), ambulance stations, coverage areas, facilities; so a station never hides an area or a
  // facility from the pointer, wherever they coincide.
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
      if (f.seh && f.seh.reason) node.append(el("div", {}, t("board.reason", { reason: reasonWords(f.seh) })));
      if (f.capability_stops && f.capability_stops.length) node.append(el("div", { class: "cap-stops" }, ...f.capability_stops.map((c) => capStop(c))));
      if (f.nedocs) node.append(el("div", {}, t("board.nedocs", { score: f.nedocs.score, band: bandName(bandOf(f.nedocs.score)) })));
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
      for (const pane of ["stations", "areas", "facilities"]) map.createPane(pane);
      map.setView([52.2, 5.3], 7);
      api("/api/v1/outlines.geojson", { key: "" }).then((result) => {
        if (!result.ok) { state.mapError = `outlines: ${errorText(result)}`; showError(); return; }
        outlines = L.geoJSON(result.body, { style: OUTLINE, interactive: false }).addTo(map);
        outlines.eachLayer((layer) => layer.getElement()?.setAttribute("data-region", layer.feature.properties.region_id));
        select(state.region);
      });
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
    }

    function mark(f) {
      if (!map) return;
      let m = markers.get(f.id);
      if (!m) {
        m = L.circleMarker([f.lat, f.lon], { ...styleOf(f), pane: "facilities" }).addTo(map);
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

    // Coverage: PC4 areas as small circles under the facility markers, radius by population.
    const areaLayers = { outside: null, newly: null };
    const AREA_STYLE = {
      outside: { color: "#7f0000", fillColor: "#b71c1c", weight: 1, opacity: 0.9, fillOpacity: 0.55 },
      newly: { color: "#a84300", fillColor: "#fb8c00", weight: 1.5, opacity: 0.95, fillOpacity: 0.7 },
    };
    function areas(kind, list, tipOf) {  // draw exactly these areas of this kind (null or []: none)
      if (!map) return;
      if (areaLayers[kind]) { areaLayers[kind].remove(); areaLayers[kind] = null; }
      if (!list || !list.length) return;
      const group = L.layerGroup().addTo(map);
      for (const a of list) {
        const radius = Math.max(3, Math.min(14, Math.sqrt(a.population || 0) / 12));
        const m = L.circleMarker([a.lat, a.lon], { radius, ...AREA_STYLE[kind], pane: "areas" }).addTo(group);
        m.bindTooltip(() => tipOf(a));
        const path = m.getElement();
        if (path) { path.setAttribute("data-coverage", kind); path.setAttribute("data-pc4", a.pc4); }
      }
      areaLayers[kind] = group;
      if (areaLayers.newly && kind === "outside") areaLayers.newly.eachLayer((l) => l.bringToFront());
    }

    // Ambulance stations (coverage layer): small squares, filled for those the norm counts (24/7),
    // hollow for the others; under the areas and facilities. Drawn again only for another list.
    let stationGroup = null, stationList = null;
    const STATION_SIZE = 7;
    function stations(list) {  // draw exactly these stations (null or []: none)
      if (!map || list === stationList) return;
      if (stationGroup) { stationGroup.remove(); stationGroup = null; }
      stationList = list;
      if (!list || !list.length) return;
      const group = L.layerGroup().addTo(map);
      for (const s of list) {
        const icon = L.divIcon({ className: `station ${s.counted ? "counted" : "other"}`, iconSize: [STATION_SIZE, STATION_SIZE], html: "" });
        const m = L.marker([s.lat, s.lon], { icon, pane: "stations", keyboard: false, zIndexOffset: s.counted ? 1000 : 0 }).addTo(group);
        m.bindTooltip(() => stationTip(s), { direction: "top", offset: [0, -STATION_SIZE / 2] });
        const node = m.getElement();
        if (node) { node.setAttribute("data-station", s.id); node.setAttribute("data-counted", String(!!s.counted)); }
      }
      stationGroup = group;
    }

    return { init, select, mark, show, relabel, areas, stations };
  })();

  const fmt = (n, opts = {}) => new Intl.NumberFormat(locale(), opts).format(n);
  const pct = (share) => fmt(share, { style: "percent", maximumFractionDigits: 2 });
  const given = (v) => v !== null && v !== undefined;
  // An area outside the norm: its people, when the ambulance is there, and when the patient is at the SEH.
  const areaTip = (a) => t("coverage.tip", {
    pc4: a.pc4, people: fmt(a.population),
    minutes: [...(given(a.response_min) ? [t("coverage.response", { n: Math.round(a.response_min) })] : []),
      given(a.minutes) ? t("coverage.minutes", { n: Math.round(a.minutes) }) : t("coverage.no_road")].join(", "),
  });
  // RIVM's availability, in words; a value this page does not know yet as RIVM wrote it.
  const AVAILABILITY = { "24 uur": "always", "24 uur DAM/VWS": "dam", "Dag/avond": "day", "Nacht": "night", "Opkomst": "callout" };
  const availabilityName = (text) => (AVAILABILITY[text] ? t(`station.availability.${AVAILABILITY[text]}`) : text);
  function stationTip(s) {  // a node, not markup: names come from a file a deployment may replace
    const place = s.city && !s.name.includes(s.city) ? `${s.name}, ${s.city}` : s.name;
    return el("div", { class: "map-tip" }, el("strong", {}, t("station.title", { name: place })),
      el("div", {}, t("station.availability", { hours: availabilityName(s.availability) })),
      el("div", {}, t(s.counted ? "station.counted" : "station.not_counted")));
  }

  // The 45-minute norm for the chosen region (GET /api/v1/coverage); a key that may not read it sees nothing.
  const COVERAGE_SHOWN = "capacity.board.coverage";
  const coverage = (() => {
    let answer = null, asked = 0, stations = null, stationsAsked = false;
    const on = () => localStorage.getItem(COVERAGE_SHOWN) !== "off";
    const regionOf = () => (answer ? answer.regions.find((r) => r.region_id === state.region) : null);
    function draw() {
      const r = regionOf(), shown = !!r && on();
      $("coverage").hidden = !r;
      $("coverage-toggle").checked = on();
      $("coverage-legend").hidden = !shown;
      $("coverage-legend").classList.toggle("no-stations", !stations);
      mapView.areas("outside", shown ? r.outside_areas : null, areaTip);
      if (shown && !stations) loadStations();
      mapView.stations(shown ? stations : null);
      $("coverage-summary").textContent = r ? t("coverage.summary", {
        region: r.region_id, share: pct(r.share), outside: fmt(r.outside), national: pct(answer.national.share),
      }) : "";
    }
    async function load() {
      const ticket = ++asked, region = state.region;
      const result = await api("/api/v1/coverage");
      if (ticket !== asked || region !== state.region) return;
      answer = result.ok ? result.body : null;  // 401/403 (or any failure): the layer stays hidden
      draw();
    }
    // The ambulance stations are reference data: asked once per page load, when the layer is first
    // shown; a refusal (401/403) or a failure leaves them off the map, asked again when the layer is next drawn.
    async function loadStations() {
      if (stationsAsked) return;
      stationsAsked = true;
      const result = await api("/api/v1/coverage/stations");
      const list = result.ok ? result.body : null;  // a refusal or a failure: none this time
      if (Array.isArray(list)) { stations = list; draw(); } else stationsAsked = false;
    }
    $("coverage-toggle").addEventListener("change", () => {
      localStorage.setItem(COVERAGE_SHOWN, $("coverage-toggle").checked ? "on" : "off");
      draw();
    });
    return { load, draw, clear: () => { answer = null; draw(); } };
  })();

  // What if some SEHs of the region closed: coordinator, dispatch and admin keys only; the live state is not touched.
  const PLANNERS = new Set(["coordinator", "dispatch", "admin"]);
  const whatIf = (() => {
    let allowed = false, last = null;
    const sehs = () => [...state.facilities.values()].filter((f) => SEH_KINDS.has(f.kind)).sort((a, b) => a.name.localeCompare(b.name));
    function list() {
      const box = $("whatif-sehs");
      const ticked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
      box.replaceChildren(...sehs().map((f) => {
        const id = `whatif-${f.id}`;
        const input = el("input", { type: "checkbox", id, value: f.id });
        input.checked = ticked.has(f.id);
        return el("label", { for: id }, input, ` ${f.name} (${f.city})`);
      }));
    }
    function result() {
      const out = $("whatif-result");
      out.classList.toggle("error", !!(last && last.error));
      if (!last) { out.textContent = ""; return; }
      if (last.busy) { out.textContent = t("whatif.busy"); return; }
      if (last.error) { out.textContent = last.error === "none" ? t("whatif.none") : t("whatif.failed", { error: last.error }); return; }
      out.textContent = t(last.names.length > 1 ? "whatif.result" : "whatif.result.one", {
        names: last.names.join(", "), n: fmt(last.change ? last.change.newly_outside : 0), region: last.region,
      });
    }
    function reset() {
      last = null;
      result();
      mapView.areas("newly", null);
    }
    async function run() {
      const closed = [...$("whatif-sehs").querySelectorAll("input:checked")].map((i) => i.value);
      mapView.areas("newly", null);
      if (!closed.length) { last = { error: "none" }; result(); return; }
      const region = state.region;
      last = { busy: true };
      result();
      const answer = await api("/api/v1/coverage/what-if", { method: "POST", json: { closed, opened: [] } });
      if (!answer.ok) {
        last = { error: errorText(answer) };
      } else {
        if (region !== state.region) return;
        const change = (answer.body.difference.regions || []).find((r) => r.region_id === region) || null;
        last = { names: closed.map((id) => (state.facilities.get(id) || { name: id }).name), change, region };
        mapView.areas("newly", change ? change.newly_outside_areas : null, areaTip);
      }
      result();
    }
    async function ask() {  // the key's role decides whether the panel is there at all
      const me = await api("/api/v1/keys/me");
      allowed = me.ok && PLANNERS.has(me.body.role);
      $("whatif").hidden = !allowed;
      if (allowed) list();
    }
    $("whatif-run").addEventListener("click", run);
    $("whatif-reset").addEventListener("click", () => {
      for (const i of $("whatif-sehs").querySelectorAll("input:checked")) i.checked = false;
      reset();
    });
    $("whatif").addEventListener("toggle", () => { if (!$("whatif").open) reset(); });
    return {
      ask, result,
      region() { reset(); $("whatif-sehs").replaceChildren(); },
      facilities() { if (allowed) list(); },
    };
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
        whatIf.facilities();
        coverage.load();
      } else if (msg.type === "coverage") {
        if (!msg.region_id || msg.region_id === state.region) coverage.load();
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
    state.key = key;
    const answer = await api("/api/v1/regions");
    if (!answer.ok) {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      setConnected(false, "board.signin_failed", {}, detail(answer.body));  // else our own words
      return;
    }
    const regions = answer.body;
    const select = $("region");
    select.replaceChildren(...regions.map((r) => el("option", { value: r.id }, `${r.id} ${r.name}`)));
    const remembered = localStorage.getItem(REGION);
    if (regions.some((r) => r.id === remembered)) select.value = remembered;
    state.region = select.value;
    mapView.init();
    mapView.select(state.region);
    whatIf.ask();
    select.onchange = () => {
      localStorage.setItem(REGION, select.value);
      state.region = select.value;
      trends.forget();
      mapView.show([]);
      coverage.clear();
      whatIf.region();
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
    coverage.draw();
    whatIf.result();
    renderConnection();
  });
  setInterval(() => { if (state.facilities.size) render(); }, 5000);
  const key = takeKeyFromFragment();
  if (key) start(key); else { $("signin").hidden = false; setConnected(false, "board.signin_needed"); }
})();
