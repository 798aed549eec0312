// Hospital entry: a facility key signs in; the form sends one report through the same API an
// integration uses. The API's validation messages are shown next to the field they name, in the
// API's words; the page's own words are Dutch or English (i18n.js) and follow a language change.
(() => {
  "use strict";
  const i18n = window.capacityI18n;
  const t = i18n.t;
  i18n.add({
    nl: {
      "report.doc_title": "Capaciteit melden — ROAZ-capaciteit",
      "report.title": "Capaciteit melden",
      "report.key": "Sleutel van de instelling",
      "report.signin": "Aanmelden",
      "report.needs_facility_key": "voor deze pagina is de sleutel van een zorginstelling nodig",
      "report.who": "{name} ({city}) — sleutel {label}",
      "report.status": "Status",
      "report.status.keep": "— geen wijziging —",
      "report.status.stop": "stop (nu geen ambulances)",
      "report.reason": "Reden",
      "report.until": "Verwacht einde",
      "report.now": "nu: {status}",
      "report.now.none": "nu: geen melding",
      "report.units": "Afdelingen",
      "report.units.hint": "(laat de rij van een afdeling leeg om die ongewijzigd te laten; een leeg aantal in een ingevulde rij wordt als onbekend verstuurd)",
      "report.col.unit": "Afdeling",
      "report.col.staffed": "Bemand",
      "report.col.occupied": "Bezet",
      "report.col.available": "Beschikbaar",
      "report.col.now": "Nu getoond",
      "report.count.staffed": "{unit}: bemand",
      "report.count.occupied": "{unit}: bezet",
      "report.count.available": "{unit}: beschikbaar",
      "report.not_reported": "niet gemeld",
      "report.send": "Melding versturen",
      "report.stop_needs_reason": "een stop heeft een reden nodig",
      "report.stop_needs_until": "een stop heeft een verwacht einde nodig",
      "report.saved": "Opgeslagen: gebeurtenis {id}",
      "report.saved.duplicate": "Opgeslagen: gebeurtenis {id} (was al verwerkt)",
      "report.refused": "geweigerd ({status})",
    },
    en: {
      "report.doc_title": "Report capacity — ROAZ capacity",
      "report.title": "Report capacity",
      "report.key": "Facility key",
      "report.signin": "Sign in",
      "report.needs_facility_key": "this page needs a facility key",
      "report.who": "{name} ({city}) — key {label}",
      "report.status": "Status",
      "report.status.keep": "— no change —",
      "report.status.stop": "stop (no ambulances now)",
      "report.reason": "Reason",
      "report.until": "Expected end",
      "report.now": "now: {status}",
      "report.now.none": "now: not reported",
      "report.units": "Units",
      "report.units.hint": "(leave a unit's row empty to leave it unchanged; an empty count in a filled row is sent as unknown)",
      "report.col.unit": "Unit",
      "report.col.staffed": "Staffed",
      "report.col.occupied": "Occupied",
      "report.col.available": "Available",
      "report.col.now": "Now shown",
      "report.count.staffed": "{unit}: staffed",
      "report.count.occupied": "{unit}: occupied",
      "report.count.available": "{unit}: available",
      "report.not_reported": "not reported",
      "report.send": "Send report",
      "report.stop_needs_reason": "a stop needs a reason",
      "report.stop_needs_until": "a stop needs an expected end",
      "report.saved": "Saved: event {id}",
      "report.saved.duplicate": "Saved: event {id} (already applied)",
      "report.refused": "refused ({status})",
    },
  });

  const KEY = "capacity.facility-key";
  const UNIT_TYPES = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const COUNTS = ["staffed", "occupied", "available"];
  const $ = (id) => document.getElementById(id);
  let me = null;
  let shownState = null;  // the facility as last loaded, to draw its labels again in another language
  // What the page itself says in #result and #signin-error: its own words (key, values) or the server's (text).
  const said = { result: null, signinError: null };

  const takeKeyFromFragment = () => window.capacitySession.takeKey(KEY);

  function label(key, fallback) {
    const text = t(key);
    return text === key ? fallback : text;
  }
  const unitName = (type) => label(`unit.${type}`, type);

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY)}`, ...(options.headers || {}) };
    const response = await fetch(path, { ...options, headers });
    let body = null;
    try { body = await response.json(); } catch (_) { body = { detail: response.statusText }; }
    return { response, body };
  }

  // A message in #result or #signin-error: `own` = [key, values] in the page's words, else the server's `text`.
  function say(where, own, text = "") {
    said[where] = own ? { key: own[0], vars: own[1] || {} } : { text };
    drawSaid(where);
  }
  function drawSaid(where) {
    const node = $(where === "result" ? "result" : "signin-error");
    const what = said[where];
    node.textContent = !what ? "" : what.key ? t(what.key, what.vars) : what.text;
  }

  function field(loc) { return document.querySelector(`[data-loc="${loc}"]`); }

  function clearErrors() {
    document.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; el.removeAttribute("data-i18n"); });
    document.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  }

  // `message`: the API's words (a string), or the page's own as {key} (redrawn by i18n.js on a language change).
  function showError(loc, message) {
    // The closest place the form has for this location: the field itself, else its parents.
    const own = typeof message === "object";
    const text = own ? t(message.key) : message;
    const parts = loc.slice();
    while (parts.length) {
      const key = parts.join(".");
      const slot = document.querySelector(`[data-error-for="${key}"]`);
      if (slot) {
        if (own && !slot.textContent) slot.dataset.i18n = message.key;
        else slot.removeAttribute("data-i18n");
        slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
        const input = field(key);
        if (input) input.classList.add("invalid");
        return;
      }
      parts.pop();
    }
    say("result", own ? [message.key] : null, text);
  }

  // The units this facility reports: those it offers, if it said; else every unit type.
  function unitTypes(offers) {
    if (!Array.isArray(offers) || !offers.length) return UNIT_TYPES;
    return [...UNIT_TYPES.filter((type) => offers.includes(type)), ...offers.filter((type) => !UNIT_TYPES.includes(type))];
  }

  function nowText(unit) {
    const count = (v) => (v === null || v === undefined ? t("unknown") : String(v));
    return unit ? `${count(unit.available)} / ${count(unit.staffed)}` : t("report.not_reported");
  }

  function renderUnits(facility) {
    const rows = unitTypes(facility.offers).map((type) => {
      const tr = document.createElement("tr");
      tr.dataset.unit = type;
      const th = document.createElement("th");
      th.scope = "row";
      tr.append(th);
      for (const k of COUNTS) {
        const input = document.createElement("input");
        Object.assign(input, { type: "number", min: "0", step: "1", inputMode: "numeric" });
        input.dataset.count = k;
        const td = document.createElement("td");
        td.append(input);
        tr.append(td);
      }
      const now = document.createElement("td");
      now.className = "now";
      tr.append(now);
      return tr;
    });
    $("units").replaceChildren(...rows);
    labelUnits();
  }

  // The unit rows' words, in place: typed figures and shown errors stay.
  function labelUnits() {
    const reported = new Map(((shownState && shownState.units) || []).map((u) => [u.type, u]));
    for (const tr of $("units").rows) {
      const name = unitName(tr.dataset.unit);
      tr.cells[0].textContent = name;
      for (const input of tr.querySelectorAll("input[data-count]")) {
        input.setAttribute("aria-label", t(`report.count.${input.dataset.count}`, { unit: name }));
      }
      const now = tr.querySelector(".now");
      const error = now.querySelector(".error");
      now.textContent = nowText(reported.get(tr.dataset.unit));
      if (error) now.append(error);
    }
  }

  function labelFacility() {
    if (!shownState || !me) return;
    const body = shownState;
    $("who").textContent = t("report.who", { name: body.name, city: body.city, label: me.label });
    if (body.synthetic) {
      const badge = document.createElement("span");
      badge.className = "demo";
      badge.title = t("demo.title");
      badge.textContent = t("demo.badge");
      $("who").append(" ", badge);
    }
    const seh = body.seh;
    $("seh-now").textContent = seh
      ? t("report.now", { status: `${label(`seh.${seh.status}`, seh.status)}${seh.reason ? ` (${seh.reason})` : ""}` })
      : t("report.now.none");
  }

  async function load() {
    const { response, body } = await api(`/api/v1/facilities/${encodeURIComponent(me.facility_id)}`);
    if (!response.ok) { say("result", null, body.detail); return; }
    shownState = body;
    renderUnits(body);
    labelFacility();
  }

  function collect() {
    const report = { measured_at: new Date().toISOString() };
    const status = $("seh-status").value;
    if (status) {
      report.seh = { status };
      if ($("seh-reason").value.trim()) report.seh.reason = $("seh-reason").value.trim();
      if ($("seh-until").value) report.seh.expected_until = new Date($("seh-until").value).toISOString();
    }
    const units = [];
    const rowIndex = new Map();
    document.querySelectorAll("#units tr").forEach((row) => {
      const inputs = [...row.querySelectorAll("input")];
      if (inputs.every((i) => i.value === "")) return;
      const unit = { type: row.dataset.unit };
      inputs.forEach((i) => { unit[i.dataset.count] = i.value === "" ? null : Number(i.value); });
      rowIndex.set(units.length, row);
      units.push(unit);
    });
    if (units.length) report.units = units;
    return { report, rowIndex };
  }

  function locate(loc, rowIndex) {
    // API locations look like ["body", "units", 0, "available"]: point them at the form's row.
    const index = Number(loc[2]);
    if (loc[1] === "units" && Number.isInteger(index) && rowIndex.has(index)) {
      const row = rowIndex.get(index);
      const input = loc[3] ? row.querySelector(`[data-count="${loc[3]}"]`) : null;
      return { row, input };
    }
    return null;
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    say("result", null, "");
    $("result").className = "";
    const { report, rowIndex } = collect();
    if (report.seh && report.seh.status === "stop" && (!report.seh.reason || !report.seh.expected_until)) {
      if (!report.seh.reason) showError(["body", "seh", "reason"], { key: "report.stop_needs_reason" });
      if (!report.seh.expected_until) showError(["body", "seh", "expected_until"], { key: "report.stop_needs_until" });
      return;
    }
    const { response, body } = await api(`/api/v1/facilities/${encodeURIComponent(me.facility_id)}/reports`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(report),
    });
    if (response.ok) {
      say("result", [body.duplicate ? "report.saved.duplicate" : "report.saved", { id: body.event_id }]);
      $("result").className = "ok";
      document.querySelectorAll("#units input").forEach((i) => { i.value = ""; });
      await load();
      return;
    }
    if (response.status === 422 && Array.isArray(body.detail)) {
      body.detail.forEach((error) => {
        const place = locate(error.loc, rowIndex);
        if (place) {
          const cell = place.input ? place.input.closest("td") : place.row.querySelector(".now");
          let slot = cell.querySelector(".error");
          if (!slot) { slot = document.createElement("span"); slot.className = "error"; cell.appendChild(slot); }
          slot.textContent = error.msg;
          (place.input || place.row).classList.add("invalid");
        } else {
          showError(error.loc.map(String), error.msg);
        }
      });
      return;
    }
    if (typeof body.detail === "string") say("result", null, body.detail);
    else say("result", ["report.refused", { status: response.status }]);
  }

  async function start() {
    const { response, body } = await api("/api/v1/keys/me");
    if (!response.ok || body.role !== "facility") {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      $("report").hidden = true;
      if (response.ok) say("signinError", ["report.needs_facility_key"]);
      else say("signinError", null, body.detail);
      return;
    }
    me = body;
    say("signinError", null, "");
    $("signin").hidden = true;
    $("report").hidden = false;
    await load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, $("key").value.trim());
      $("key").value = "";
      start();
    });
    $("report").addEventListener("submit", submit);
    i18n.onChange(() => {
      drawSaid("result");
      drawSaid("signinError");
      labelUnits();
      labelFacility();
    });
    if (takeKeyFromFragment()) start(); else $("signin").hidden = false;
  });
})();
