"use strict";
// The regional coordinator's page (/coordinator): pick a region and a period; "Now" is live
// (coordinator-now.js); the period's stops come from /stops/report (table, stacked bar per day, the
// region's mean minutes per day beside LNAZ's published figures, CSV), capacity from /capacity/series
// (a line per unit type) and pressure from /pressure/series (NEDOCS and waiting times per SEH), at a
// step that keeps every series to a few hundred points whatever the period (charts.stepFor).
// Coordinator, dispatch and admin keys; signed in like the other pages.
(() => {
  const i18n = window.capacityI18n;
  const t = i18n.t;
  const { el, label, errorText, detail } = window.capacityCommon;
  const charts = window.capacityCoordinatorCharts;
  const now = window.capacityCoordinatorNow;
  const $ = (id) => document.getElementById(id);

  const KEY = "capacity.key";
  const REGION = "capacity.region";  // shared with the board, so its link opens the same region
  const PERIOD = "capacity.coordinator.period";
  const ROLES = new Set(["coordinator", "dispatch", "admin"]);
  const UNITS = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const PERIODS = new Set(["today", "week", "quarter", "previous", "custom"]);
  const REFRESH_MS = 5 * 60_000;
  const MAX_DAYS = 366;

  const state = {
    key: null, region: null, period: null, seq: 0, report: null, capacity: null, pressure: null,
    hiddenUnits: new Set(), colours: new Map(), signinMessage: { key: "coord.signin_needed", vars: {} }, timer: null,
  };
  const api = window.capacityCommon.client(() => state.key);
  const locale = () => (i18n.lang === "en" ? "en-GB" : "nl-NL");
  const decimal = (n, digits = 1) => Number(n).toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const whole = (n) => Math.round(n).toLocaleString(locale());
  const colourOf = (id) => {
    if (!state.colours.has(id)) state.colours.set(id, state.colours.size);
    return state.colours.get(id);
  };

  // -- the period --------------------------------------------------------------------------------
  // {kind, from, to (ms, [from, to)), quarter ("2026Q4" or null), step}: local days of Europe/Amsterdam.
  function period(kind) {
    const today = charts.local(Date.now());
    const day = (offset) => charts.midnight(today.y, today.m, today.d + offset);
    let from, to, quarter = null;
    if (kind === "today") [from, to] = [day(0), day(1)];
    else if (kind === "week") [from, to] = [day(-6), day(1)];
    else if (kind === "quarter" || kind === "previous") {
      let q = Math.floor((today.m - 1) / 3) - (kind === "previous" ? 1 : 0), y = today.y;
      if (q < 0) { q = 3; y -= 1; }
      from = charts.midnight(y, q * 3 + 1, 1);
      to = charts.midnight(y, q * 3 + 4, 1);
      quarter = { y, q: q + 1, text: `${y}Q${q + 1}` };
    } else {
      from = charts.dateValue($("from").value);
      const last = charts.dateValue($("to").value);
      if (from === null || last === null || last < from) return { error: "coord.err.dates" };
      const end = charts.local(last);
      to = charts.midnight(end.y, end.m, end.d + 1);
      if (to - from > MAX_DAYS * charts.DAY) return { error: "coord.err.long" };
    }
    return { kind, from, to, quarter, step: charts.stepFor(to - from) };
  }
  const iso = (ms) => new Date(ms).toISOString();
  const range = (p) => `from=${encodeURIComponent(iso(p.from))}&to=${encodeURIComponent(iso(p.to))}`;
  const reportQuery = (p) => (p.quarter ? `quarter=${p.quarter.text}` : range(p));
  function shownText(p) {
    const date = (ms) => charts.format(ms, { day: "numeric", month: "short", year: "numeric" });
    const span = t("coord.shown", { from: date(p.from), to: date(p.to - charts.DAY) });
    const region = $("region").selectedOptions[0];  // named here too: on paper the picker is not printed
    const when = p.quarter ? `${t("coord.quarter", { q: p.quarter.q, y: p.quarter.y })}: ${span}` : span;
    return region ? `${region.textContent} · ${when}` : when;
  }

  // -- loading ---------------------------------------------------------------------------------
  async function load() {
    if (!state.key || !state.region) return;
    const kind = $("period").value;
    $("custom").hidden = kind !== "custom";
    const p = period(kind);
    $("custom-error").textContent = p.error ? t(p.error) : "";
    for (const id of ["from", "to"]) $(id).toggleAttribute("aria-invalid", !!p.error);
    if (p.error) return;
    state.period = p;
    if (kind !== "custom") { $("from").value = charts.isoDate(p.from); $("to").value = charts.isoDate(p.to - charts.DAY); }
    localStorage.setItem(PERIOD, kind);
    $("period-shown").textContent = shownText(p);
    const seq = ++state.seq;
    const region = state.region;
    const base = `/api/v1/regions/${encodeURIComponent(region)}`;
    $("stops-status").textContent = t("coord.loading");
    $("capacity-status").textContent = t("coord.loading");
    const [report, pressure, ...series] = await Promise.all([
      api(`${base}/stops/report?${reportQuery(p)}`),
      api(`${base}/pressure/series?${range(p)}&step=${p.step}`),
      ...UNITS.map((unit) => api(`${base}/capacity/series?unit=${unit}&${range(p)}&step=${p.step}`)),
    ]);
    if (seq !== state.seq) return;  // a newer choice is on its way
    state.report = report;
    state.pressure = pressure;
    state.capacity = series.map((answer, i) => ({ unit: UNITS[i], answer }));
    drawStops();
    drawCapacity();
    drawPressure();
    clearTimeout(state.timer);
    if (p.to > Date.now()) state.timer = setTimeout(load, REFRESH_MS);  // the period is still going
  }

  // -- stops in the period -----------------------------------------------------------------------
  const reasonName = (r) => (r === "unknown" ? t("coord.reason.unknown") : label(`reason.${r}`, r));
  const reasonsText = (reasons) => Object.entries(reasons || {}).filter(([, m]) => m > 0).sort((a, b) => b[1] - a[1])
    .map(([r, m]) => `${reasonName(r)} ${whole(m)}`).join(" · ");

  function drawStops() {
    const answer = state.report;
    const status = $("stops-status");
    status.classList.toggle("error", !answer.ok);
    const body = $("stops-table").querySelector("tbody");
    const foot = $("stops-table").querySelector("tfoot");
    if (!answer.ok) {
      status.textContent = t("coord.stops.failed", { error: errorText(answer) });
      body.replaceChildren();
      foot.replaceChildren();
      $("compare").replaceChildren();
      charts.stopBars($("stops-chart"), { days: [], rows: [], xRange: [state.period.from, state.period.to] });
      return;
    }
    const r = answer.body;
    const region = r.region;
    const until = Date.parse(r.counted_until);
    status.textContent = t("coord.stops.status", {
      sehs: region.sehs, stops: whole(region.stops), minutes: whole(region.minutes), days: decimal(r.days),
      until: charts.format(until, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }),
    });
    drawCompare(r);
    const facilities = [...r.facilities].sort((a, b) => b.minutes - a.minutes || a.name.localeCompare(b.name, "nl"));
    for (const f of [...r.facilities].sort((a, b) => a.facility_id.localeCompare(b.facility_id))) colourOf(f.facility_id);
    // Each figure carries its short name and unit (data-label, data-unit): on a phone the header row is
    // hidden and a row reads "1 stop  120 min  17,1 min/dag  langste 120 min", the reasons below.
    const num = (v, name, digits = 0) => el("td", {
      class: `num ${name}${v ? "" : " zero"}`, "data-label": t(`coord.short.${name}`),
      "data-unit": t(name === "stops" && v === 1 ? "coord.short.stop.unit" : `coord.short.${name}.unit`),
    }, digits ? decimal(v, digits) : whole(v));
    const figures = (x) => [num(x.stops, "stops"), num(x.minutes, "minutes"), num(x.minutes_per_day, "per_day", 1), num(x.longest_min, "longest"),
      num(x.closed_by_hours_min, "hours"), el("td", { class: "reasons" }, reasonsText(x.reasons))];
    body.replaceChildren(...facilities.map((f) => el("tr", { "data-facility": f.facility_id },
      el("th", { scope: "row" }, el("span", { class: "swatch", "data-colour": colourOf(f.facility_id) }), f.name,
        f.ongoing ? el("span", { class: "ongoing" }, t("coord.ongoing")) : null),
      ...figures(f))));
    foot.replaceChildren(el("tr", {}, el("th", { scope: "row" }, t("coord.region_row", { n: region.sehs })), ...figures(region)));
    paintSwatches();

    const days = r.per_day.map((d) => charts.dateValue(d.date));
    const rows = facilities.filter((f) => r.per_day.some((d) => (d.minutes[f.facility_id] || 0) > 0))
      .sort((a, b) => colourOf(a.facility_id) - colourOf(b.facility_id))
      .map((f) => ({ id: f.facility_id, name: f.name, colour: colourOf(f.facility_id), minutes: r.per_day.map((d) => d.minutes[f.facility_id] || 0) }));
    charts.stopBars($("stops-chart"), { days, rows, xRange: [state.period.from - charts.DAY / 2, state.period.to - charts.DAY / 2] });
  }

  // The region's mean minutes per SEH per day in the period beside LNAZ's published figures (the
  // region's own where LNAZ published one, and the national one), as bars. The source line is the
  // page's own words in either language, linked (never fetched) to where the figures were read.
  const monthOf = (period) => {
    const [y, m] = period.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, 15)).toLocaleString(locale(), { month: "short", year: "numeric", timeZone: "UTC" });
  };
  const figure = (n) => (Number.isInteger(n) ? whole(n) : decimal(n));
  function drawCompare(r) {
    const mine = r.region.minutes_per_day;
    const published = r.published;
    const national = r.national;
    const top = Math.max(mine, national.minutes_per_day, published ? published.minutes_per_day : 0, 1) * 1.1;
    const bar = (cls, name, value) => {
      const fill = el("span", { class: `fill ${cls}` });
      fill.style.width = `${Math.max(0.5, (value / top) * 100)}%`;  // CSSOM: allowed under style-src 'self'
      return el("div", { class: "bar-row", "data-bar": cls }, el("span", { class: "bar-name" }, name), el("span", { class: "bar" }, fill),
        el("span", { class: "bar-value" }, t("coord.compare.value", { n: cls === "region" ? decimal(value) : figure(value) })));
    };
    const said = [t("coord.compare.label.region", { region: r.region_id, n: decimal(mine) })];
    const bars = [bar("region", t("coord.compare.region", { region: r.region_id }), mine)];
    if (published) {
      const vars = { name: published.name, period: monthOf(published.period), n: figure(published.minutes_per_day) };
      bars.push(bar("published", t("coord.compare.published", vars), published.minutes_per_day));
      said.push(t("coord.compare.label.published", vars));
    }
    const nationalVars = { period: monthOf(national.period), n: figure(national.minutes_per_day) };
    bars.push(bar("national", t("coord.compare.national", nationalVars), national.minutes_per_day));
    said.push(t("coord.compare.label.national", nationalVars));
    const url = published ? published.url : national.url;
    $("compare").replaceChildren(
      el("p", { class: "compare-title" }, t("coord.compare")),
      el("div", { class: "bars", role: "img", "aria-label": said.join(" ") }, ...bars),
      el("p", { class: "hint source" }, el("a", { href: url, rel: "external noopener noreferrer" }, t("coord.compare.source"))),
    );
  }

  // Swatches take their SEH's chart colour (set through the CSSOM, not a style attribute).
  function paintSwatches() {
    for (const s of document.querySelectorAll(".swatch[data-colour]")) {
      const i = +s.dataset.colour;
      s.style.background = charts.colour(i);
      s.classList.toggle("dashed", i >= 12);
    }
  }

  // The report as CSV, fetched with the key (it is not a cookie) and saved from a Blob.
  async function downloadCsv() {
    const p = state.period;
    if (!p || !state.key) return;
    const region = state.region;
    const status = $("stops-status");
    let response;
    try {
      response = await fetch(`/api/v1/regions/${encodeURIComponent(region)}/stops/report?${reportQuery(p)}&format=csv`, { headers: { Authorization: `Bearer ${state.key}` } });
    } catch (err) {
      status.textContent = t("coord.csv.failed", { error: err.message });
      return;
    }
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { /* not JSON */ }
      status.textContent = t("coord.csv.failed", { error: errorText({ status: response.status, body }) });
      return;
    }
    const blob = await response.blob();
    const given = /filename="?([^";]+)"?/.exec(response.headers.get("content-disposition") || "");
    const name = given ? given[1] : `stops-${region}-${p.quarter ? p.quarter.text : `${charts.isoDate(p.from)}-${charts.isoDate(p.to - charts.DAY)}`}.csv`;
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  // -- capacity and pressure over time ---------------------------------------------------------
  // Every bucket of the period (the API's: from `from` floored to the hour, one per step) with those
  // the answers name, as one time axis (ms): a bucket an SEH did not report in is a gap, not a joined line.
  const STEP_HOURS = { "1h": 1, "3h": 3, "6h": 6, "12h": 12, "1d": 24 };
  function axis(pointLists) {
    const p = state.period, step = STEP_HOURS[p.step] * charts.HOUR, all = new Set();
    for (let at = Math.floor(p.from / charts.HOUR) * charts.HOUR; at < p.to; at += step) all.add(at);
    for (const points of pointLists) for (const point of points) all.add(Date.parse(point.at));
    return [...all].sort((a, b) => a - b);
  }
  const valuesOn = (at, points, name) => {
    const byTime = new Map(points.map((p) => [Date.parse(p.at), p[name]]));
    return at.map((ms) => { const v = byTime.get(ms); return v === undefined ? null : v; });
  };
  const xRange = () => [state.period.from, state.period.to];

  function drawCapacity() {
    const failed = state.capacity.find((s) => !s.answer.ok);
    const status = $("capacity-status");
    status.classList.toggle("error", !!failed);
    const reported = state.capacity.filter((s) => s.answer.ok && s.answer.body.facilities.length);
    status.textContent = failed ? t("coord.capacity.failed", { error: errorText(failed.answer) })
      : t("coord.capacity.status", { step: t(`coord.step.${state.period.step}`), units: reported.length });
    for (const per of document.querySelectorAll("#capacity h3 .per")) per.textContent = `· ${t("coord.chart.per", { step: t(`coord.step.${state.period.step}`) })}`;
    const at = axis(reported.map((s) => s.answer.body.points));
    const lines = reported.map((s) => ({
      key: s.unit, label: label(`unit.${s.unit}`, s.unit), values: valuesOn(at, s.answer.body.points, "free"),
      colour: charts.colour(UNITS.indexOf(s.unit)), dash: UNITS.indexOf(s.unit) >= 12 ? [6, 3] : undefined,
    }));
    const chart = charts.lines("capacity", $("free-chart"), { at, lines, yLabel: t("coord.chart.free"), xRange: xRange(), hidden: state.hiddenUnits });
    const picker = $("unit-picker");
    picker.hidden = !lines.length;
    picker.replaceChildren(el("legend", {}, t("coord.capacity.units")), ...lines.map((line, i) => {
      const input = el("input", { type: "checkbox", id: `unit-${line.key}`, value: line.key });
      input.checked = !state.hiddenUnits.has(line.key);
      input.addEventListener("change", () => {
        if (input.checked) state.hiddenUnits.delete(line.key); else state.hiddenUnits.add(line.key);
        chart.setSeries(i + 1, { show: input.checked });
      });
      const swatch = el("span", { class: "swatch", "data-colour": UNITS.indexOf(line.key) });
      return el("label", { class: "check", for: `unit-${line.key}` }, input, swatch, el("span", {}, line.label));
    }));
    paintSwatches();
  }

  function drawPressure() {
    const answer = state.pressure;
    const facilities = answer.ok ? answer.body.facilities : [];
    const at = axis(facilities.map((f) => f.points));
    const linesOf = (name) => facilities
      .map((f) => ({ key: f.facility_id, label: f.name, values: valuesOn(at, f.points, name), colour: charts.colour(colourOf(f.facility_id)), dash: colourOf(f.facility_id) >= 12 ? [6, 3] : undefined }))
      .filter((line) => line.values.some((v) => v !== null));
    const empty = answer.ok ? null : t("coord.capacity.failed", { error: errorText(answer) });
    charts.lines("nedocs", $("nedocs-chart"), { at, lines: linesOf("nedocs"), yLabel: t("coord.chart.nedocs"), xRange: xRange(), yMax: 100, emptyText: empty });
    charts.lines("waiting", $("waiting-chart"), { at, lines: linesOf($("waiting-measure").value), yLabel: t("coord.chart.minutes"), xRange: xRange(), yMax: 30, emptyText: empty });
  }

  // -- signing in and out ----------------------------------------------------------------------
  function showSignin() {
    const { key, vars } = state.signinMessage;
    $("signin-message").textContent = key ? t(key, vars) : "";
  }
  function signOut(message) {
    sessionStorage.removeItem(KEY);
    state.key = null;
    state.seq += 1;
    clearTimeout(state.timer);
    now.end();
    state.signinMessage = message;
    $("app").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    showSignin();
    $("key").value = "";
    $("key").focus();
  }
  const refused = (result) => {
    if (result.status === 0) return { key: "coord.signin_unreachable", vars: {} };
    const reason = detail(result.body);
    return { key: reason ? "coord.signin_failed" : "coord.signin_rejected", vars: { reason } };
  };

  function watchRegion() {
    now.start({ api, key: state.key, region: state.region, onSignOut: (reason) => signOut(reason ? { key: "coord.signin_failed", vars: { reason } } : { key: "coord.signin_rejected", vars: {} }) });
  }

  async function start(key) {
    state.key = key;
    $("signin").hidden = true;
    const me = await api("/api/v1/keys/me");
    if (!me.ok) { signOut(refused(me)); return; }
    if (!ROLES.has(me.body.role)) { signOut({ key: "coord.signin_role", vars: { role: me.body.role } }); return; }
    const regions = await api("/api/v1/regions");
    if (!regions.ok) { signOut(refused(regions)); return; }
    const select = $("region");
    select.replaceChildren(...regions.body.map((r) => el("option", { value: r.id }, `${r.id} ${r.name}`)));
    // A link may name the region and period (?region=ROAZ11&period=week, or its own dates:
    // &from=2026-10-01&to=2026-10-31); else the last ones chosen here.
    const asked = new URLSearchParams(location.search);
    const wanted = [asked.get("region"), localStorage.getItem(REGION)].find((id) => regions.body.some((r) => r.id === id));
    if (wanted) select.value = wanted;
    state.region = select.value;
    const [from, to] = [asked.get("from"), asked.get("to")];
    if (charts.dateValue(from) !== null && charts.dateValue(to) !== null) {
      $("period").value = "custom";
      $("from").value = from;
      $("to").value = to;
    } else {
      const kept = [asked.get("period"), localStorage.getItem(PERIOD)].find((p) => PERIODS.has(p) && p !== "custom");
      $("period").value = kept || "quarter";
    }
    state.signinMessage = { key: null, vars: {} };
    $("app").hidden = false;
    $("signout").hidden = false;
    watchRegion();
    await load();
  }

  $("region").addEventListener("change", () => {
    state.region = $("region").value;
    localStorage.setItem(REGION, state.region);
    state.colours = new Map();
    watchRegion();
    load();
  });
  $("period").addEventListener("change", () => {
    if ($("period").value === "custom") {
      $("custom").hidden = false;
      $("custom-error").textContent = "";
      return;  // the dates first, then Show
    }
    load();
  });
  $("controls").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  $("csv").addEventListener("click", downloadCsv);
  $("waiting-measure").addEventListener("change", () => { if (state.pressure) drawPressure(); });
  $("board-link").addEventListener("click", () => { if (state.region) localStorage.setItem(REGION, state.region); });
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $("key").value = "";
    start(key);
  });
  $("signout").addEventListener("click", () => signOut({ key: "coord.signed_out", vars: {} }));
  i18n.onChange(() => {
    showSignin();
    if (!state.period) return;
    $("period-shown").textContent = shownText(state.period);
    if (state.report) { drawStops(); drawCapacity(); drawPressure(); }
  });

  const key = window.capacitySession.takeKey(KEY);
  if (key) start(key);
  else { $("signin").hidden = false; showSignin(); }
})();
