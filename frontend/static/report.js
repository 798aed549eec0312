// Hospital entry: a facility key signs in; the form sends one report through the same API an
// integration uses. The API's validation messages are shown next to the field they name, in the
// API's words; the page's own words are Dutch or English (i18n.js) and follow a language change.
(() => {
  "use strict";
  const i18n = window.capacityI18n;
  const t = i18n.t;
  const { label, detail, errorText } = window.capacityCommon;
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
      "report.reason.choose": "— kies een reden —",
      "report.reason_text": "Toelichting",
      "report.reason_text.hint": "verplicht bij „anders”, hooguit 200 tekens",
      "report.until": "Verwacht einde",
      "report.now": "nu: {status}",
      "report.now.none": "nu: geen melding",
      "report.now.until": "tot {time}",
      "report.now.value": "nu: {value} ({age})",
      "report.now.minutes": "{n} min",
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
      "report.caps": "Voorzieningen op stop",
      "report.caps.hint": "(de SEH blijft open; de meldkamer stuurt geen patiënten voor een voorziening op stop)",
      "report.caps.col.capability": "Voorziening",
      "report.caps.col.on_stop": "Op stop",
      "report.caps.on_stop": "{cap}: op stop",
      "report.caps.reason": "{cap}: reden",
      "report.caps.reason_text": "{cap}: toelichting",
      "report.caps.until": "{cap}: verwacht einde",
      "report.caps.unchanged": "Ongewijzigd: de stops hieronder zijn wat nu getoond wordt en worden niet meegestuurd.",
      "report.caps.changed": "Gewijzigd: de aangevinkte stops vervangen met deze melding de hele lijst (niets aangevinkt = geen stops meer).",
      "report.caps.reset": "Wijzigingen ongedaan maken",
      "report.caps.none": "niet op stop",
      "report.caps.now": "op stop: {reason}, tot {time}",
      "report.caps.now.expired": "verlopen — niet bevestigd ({reason}, tot {time})",
      "report.pressure": "Drukte op de SEH",
      "report.pressure.hint": "(optioneel; leeg laten = ongewijzigd. Vult u één wachttijd in, dan geldt de andere als onbekend)",
      "report.triage": "Wachttijd tot triage (min)",
      "report.doctor": "Wachttijd tot arts (min)",
      "report.nedocs": "NEDOCS-score (0–200)",
      "report.send": "Melding versturen",
      "report.stop_needs_reason": "een stop heeft een reden nodig",
      "report.stop_needs_until": "een stop heeft een verwacht einde nodig",
      "report.closed_needs_reason": "een sluiting heeft een reden nodig",
      "report.closed_needs_until": "een sluiting heeft een verwacht einde nodig",
      "report.other_needs_text": "bij „anders” is een toelichting nodig",
      "report.until_past": "het verwachte einde moet later zijn dan nu",
      "report.saved": "Opgeslagen: gebeurtenis {id}",
      "report.saved.duplicate": "Opgeslagen: gebeurtenis {id} (was al verwerkt)",
      "report.refused": "geweigerd ({status})",
      "cap.trauma_centre": "traumacentrum",
      "cap.pci": "PCI (dotteren)",
      "cap.stroke_thrombectomy": "trombectomie (beroerte)",
      "cap.acute_obstetrics": "acute verloskunde",
      "cap.paediatric_seh": "kinder-SEH",
      "cap.burns": "brandwondenzorg",
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
      "report.reason.choose": "— choose a reason —",
      "report.reason_text": "Details",
      "report.reason_text.hint": "required with “other”, at most 200 characters",
      "report.until": "Expected end",
      "report.now": "now: {status}",
      "report.now.none": "now: not reported",
      "report.now.until": "until {time}",
      "report.now.value": "now: {value} ({age})",
      "report.now.minutes": "{n} min",
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
      "report.caps": "Capabilities on stop",
      "report.caps.hint": "(the SEH stays open; dispatch sends no patients needing a capability on stop)",
      "report.caps.col.capability": "Capability",
      "report.caps.col.on_stop": "On stop",
      "report.caps.on_stop": "{cap}: on stop",
      "report.caps.reason": "{cap}: reason",
      "report.caps.reason_text": "{cap}: details",
      "report.caps.until": "{cap}: expected end",
      "report.caps.unchanged": "Unchanged: the stops below are what is shown now and are not sent.",
      "report.caps.changed": "Changed: with this report the ticked stops replace the whole list (nothing ticked = no stops any more).",
      "report.caps.reset": "Undo changes",
      "report.caps.none": "not on stop",
      "report.caps.now": "on stop: {reason}, until {time}",
      "report.caps.now.expired": "expired — unconfirmed ({reason}, until {time})",
      "report.pressure": "SEH pressure",
      "report.pressure.hint": "(optional; leave empty = unchanged. If you fill in one waiting time, the other counts as unknown)",
      "report.triage": "Wait for triage (min)",
      "report.doctor": "Wait for a doctor (min)",
      "report.nedocs": "NEDOCS score (0–200)",
      "report.send": "Send report",
      "report.stop_needs_reason": "a stop needs a reason",
      "report.stop_needs_until": "a stop needs an expected end",
      "report.closed_needs_reason": "a closure needs a reason",
      "report.closed_needs_until": "a closure needs an expected end",
      "report.other_needs_text": "“other” needs a few words of details",
      "report.until_past": "the expected end must lie after now",
      "report.saved": "Saved: event {id}",
      "report.saved.duplicate": "Saved: event {id} (already applied)",
      "report.refused": "refused ({status})",
      "cap.trauma_centre": "trauma centre",
      "cap.pci": "PCI",
      "cap.stroke_thrombectomy": "stroke thrombectomy",
      "cap.acute_obstetrics": "acute obstetrics",
      "cap.paediatric_seh": "paediatric SEH",
      "cap.burns": "burns care",
    },
  });

  const KEY = "capacity.facility-key";
  const UNIT_TYPES = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const COUNTS = ["staffed", "occupied", "available"];
  const REASONS = ["crowding", "no_ic_bed", "staffing", "equipment", "ict_failure", "calamity", "other"];
  const CAPABILITIES = ["trauma_centre", "pci", "stroke_thrombectomy", "acute_obstetrics", "paediatric_seh", "burns"];
  const STOPS = new Set(["stop", "closed"]);
  const $ = (id) => document.getElementById(id);
  let me = null;
  let shownState = null;  // the facility as last loaded, to draw its labels again in another language
  let capsTouched = false;  // whether the capability stops were changed since they were last loaded (then the list is sent)
  // What the page itself says in #result and #signin-error: its own words (key, values) or the server's (text).
  const said = { result: null, signinError: null };

  const takeKeyFromFragment = () => window.capacitySession.takeKey(KEY);

  const unitName = (type) => label(`unit.${type}`, type);
  const capName = (cap) => label(`cap.${cap}`, cap);
  const reasonName = (reason) => label(`reason.${reason}`, reason);
  const bandOf = window.capacityCommon.nedocsBand;
  const locale = () => (i18n.lang === "en" ? "en-GB" : "nl-NL");
  const pad = (n) => String(n).padStart(2, "0");
  // A stop's end: the time of day when it is near, with the date when it is not.
  function when(iso) {
    const d = new Date(iso);
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (Math.abs(d - Date.now()) < 20 * 3600 * 1000) return time;
    return `${d.toLocaleDateString(locale(), { day: "numeric", month: "short", year: "numeric" })} ${time}`;
  }
  // An ISO time as a datetime-local input's value (this browser's time zone), and back.
  function localInput(iso) {
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  const ageOf = (view) => i18n.age(view.age_s);
  // The reason as people read it: its label, or the hospital's own words for `other`.
  const reasonWords = (stop) => (stop.reason === "other" && stop.reason_text ? stop.reason_text : stop.reason ? reasonName(stop.reason) : "");

  const api = window.capacityCommon.client(() => sessionStorage.getItem(KEY));

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

  // ---- reasons: the fixed list, as a select (SEH and each capability row) ----------------------
  function fillReasons(select) {
    const chosen = select.value;
    const options = [["", "report.reason.choose"], ...REASONS.map((r) => [r, `reason.${r}`])].map(([value, key]) => {
      const option = document.createElement("option");
      option.value = value;
      option.dataset.i18n = key;
      option.textContent = t(key);
      return option;
    });
    select.replaceChildren(...options);
    select.value = chosen;
  }

  // The SEH's reason, text and expected end belong to a stop or closure only; the text to `other` only.
  function showSehFields() {
    const stopping = STOPS.has($("seh-status").value);
    document.querySelectorAll("[data-for-stop]").forEach((row) => { row.hidden = !stopping; });
    document.querySelector("[data-for-other]").hidden = !stopping || $("seh-reason").value !== "other";
  }

  // Choosing stop or closed while one is shown: its reason and a future end are filled in, to confirm or change.
  function prefillSeh() {
    const seh = shownState && shownState.seh;
    if (!STOPS.has($("seh-status").value) || !seh || !seh.reason || $("seh-reason").value) return;
    $("seh-reason").value = seh.reason;
    if (!$("seh-reason-text").value && seh.reason_text) $("seh-reason-text").value = seh.reason_text;
    if (!$("seh-until").value && seh.expected_until && Date.parse(seh.expected_until) > Date.now()) {
      $("seh-until").value = localInput(seh.expected_until);
    }
  }

  // ---- capability stops: a row per capability, filled with what is on stop now -----------------
  function capCell(...children) {
    const td = document.createElement("td");
    td.append(...children);
    return td;
  }
  function errorSlot(loc) {
    const slot = document.createElement("span");
    slot.className = "error";
    slot.dataset.errorFor = loc;
    return slot;
  }

  function renderCaps() {
    const stops = new Map(((shownState && shownState.capability_stops) || []).map((s) => [s.capability, s]));
    const known = [...CAPABILITIES, ...[...stops.keys()].filter((c) => !CAPABILITIES.includes(c))];
    const rows = known.map((cap) => {
      const stop = stops.get(cap);
      const at = `caps.${cap}`;
      const tr = document.createElement("tr");
      tr.dataset.capability = cap;
      const th = document.createElement("th");
      th.scope = "row";
      const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: !!stop });
      box.dataset.field = "on_stop";
      const reason = document.createElement("select");
      reason.className = "reason";
      reason.dataset.field = "reason";
      reason.dataset.loc = `${at}.reason`;
      fillReasons(reason);
      reason.value = (stop && stop.reason) || "";
      const text = Object.assign(document.createElement("input"), { maxLength: 200, value: (stop && stop.reason_text) || "" });
      text.dataset.field = "reason_text";
      text.dataset.loc = `${at}.reason_text`;
      text.className = "reason-text";
      const until = Object.assign(document.createElement("input"), { type: "datetime-local" });
      until.dataset.field = "expected_until";
      until.dataset.loc = `${at}.expected_until`;
      if (stop && stop.expected_until) until.value = localInput(stop.expected_until);
      const now = capCell(document.createElement("span"), errorSlot(at));
      now.className = "now";
      now.firstChild.className = "now-text";
      tr.append(th, capCell(box), capCell(reason, text, errorSlot(`${at}.reason`), errorSlot(`${at}.reason_text`)),
        capCell(until, errorSlot(`${at}.expected_until`)), now);
      return tr;
    });
    $("caps").replaceChildren(...rows);
    capsTouched = false;
    labelCaps();
  }

  // The capability rows' words and which of their fields apply, in place: what was typed stays.
  function labelCaps() {
    const stops = new Map(((shownState && shownState.capability_stops) || []).map((s) => [s.capability, s]));
    for (const tr of $("caps").rows) {
      const cap = tr.dataset.capability;
      const name = capName(cap);
      tr.cells[0].textContent = name;
      const [box, reason, text, until] = ["on_stop", "reason", "reason_text", "expected_until"].map((f) => tr.querySelector(`[data-field="${f}"]`));
      box.setAttribute("aria-label", t("report.caps.on_stop", { cap: name }));
      reason.setAttribute("aria-label", t("report.caps.reason", { cap: name }));
      text.setAttribute("aria-label", t("report.caps.reason_text", { cap: name }));
      until.setAttribute("aria-label", t("report.caps.until", { cap: name }));
      for (const option of reason.options) option.textContent = t(option.dataset.i18n);
      reason.disabled = text.disabled = until.disabled = !box.checked;
      text.hidden = reason.value !== "other";
      tr.classList.toggle("on-stop", box.checked);
      const stop = stops.get(cap);
      const time = stop && stop.expected_until ? when(stop.expected_until) : "?";
      tr.querySelector(".now-text").textContent = !stop ? t("report.caps.none")
        : t(stop.expired ? "report.caps.now.expired" : "report.caps.now", { reason: reasonWords(stop) || "?", time });
      tr.querySelector(".now").classList.toggle("expired", !!(stop && stop.expired));
    }
    $("caps-change").textContent = t(capsTouched ? "report.caps.changed" : "report.caps.unchanged");
    $("caps-change").classList.toggle("changed", capsTouched);
    $("caps-reset").hidden = !capsTouched;
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
    let status = seh ? label(`seh.${seh.status}`, seh.status) : "";
    if (seh) {
      const about = [reasonWords(seh), seh.expected_until ? t("report.now.until", { time: when(seh.expected_until) }) : ""].filter(Boolean);
      if (about.length) status += ` (${about.join(", ")})`;
    }
    $("seh-now").textContent = seh ? t("report.now", { status }) : t("report.now.none");
    const waiting = body.waiting;
    const minutes = (n) => (n === null || n === undefined ? t("unknown") : t("report.now.minutes", { n }));
    const value = (view, text) => (view ? t("report.now.value", { value: text, age: ageOf(view) }) : t("report.now.none"));
    $("triage-now").textContent = value(waiting, waiting && minutes(waiting.triage_min));
    $("doctor-now").textContent = value(waiting, waiting && minutes(waiting.doctor_min));
    const nedocs = body.nedocs;
    $("nedocs-now").textContent = value(nedocs, nedocs && `${nedocs.score} · ${t(`band.${nedocs.band || bandOf(nedocs.score)}`)}`);
    for (const id of ["triage-now", "doctor-now", "nedocs-now"]) {
      const view = id === "nedocs-now" ? nedocs : waiting;
      $(id).classList.toggle("stale", !!(view && view.stale));
    }
    showBand();
  }

  // The band of the score being typed, as the board will show it.
  function showBand() {
    const raw = $("nedocs").value;
    const score = Number(raw);
    const band = raw !== "" && Number.isInteger(score) && score >= 0 && score <= 200 ? bandOf(score) : null;
    $("nedocs-band").textContent = band ? t(`band.${band}`) : "";
    $("nedocs-band").className = band ? `band band-${band}` : "band";
  }

  async function load() {
    const result = await api(`/api/v1/facilities/${encodeURIComponent(me.facility_id)}`);
    if (!result.ok) { say("result", null, errorText(result)); return; }
    const body = result.body;
    shownState = body;
    renderUnits(body);
    renderCaps();
    labelFacility();
    showSehFields();
  }

  const isoOf = (input) => (input.value ? new Date(input.value).toISOString() : null);

  // A stop's reason, text and end as the API takes them; `what` (stop, closed or cap) names the page's own hints.
  function stopParts(reason, text, until, loc, what) {
    const hints = [];
    const part = { reason: reason.value || undefined };
    if (reason.value === "other") part.reason_text = text.value.trim() || undefined;
    part.expected_until = isoOf(until) || undefined;
    const needs = what === "closed" ? "closed" : "stop";
    if (!part.reason) hints.push([[...loc, "reason"], `report.${needs}_needs_reason`]);
    else if (part.reason === "other" && !part.reason_text) hints.push([[...loc, "reason_text"], "report.other_needs_text"]);
    if (!part.expected_until) hints.push([[...loc, "expected_until"], `report.${needs}_needs_until`]);
    else if (Date.parse(part.expected_until) <= Date.now()) hints.push([[...loc, "expected_until"], "report.until_past"]);
    return { part, hints };
  }

  function collect() {
    const report = { measured_at: new Date().toISOString() };
    const hints = [];
    const status = $("seh-status").value;
    if (status) {
      report.seh = { status };
      if (STOPS.has(status)) {
        const stop = stopParts($("seh-reason"), $("seh-reason-text"), $("seh-until"), ["body", "seh"], status);
        Object.assign(report.seh, stop.part);
        hints.push(...stop.hints);
      }
    }
    const capIndex = [];  // the capability of each sent stop, to place the API's messages at its row
    if (capsTouched) {
      report.capability_stops = [];
      for (const tr of $("caps").rows) {
        const get = (f) => tr.querySelector(`[data-field="${f}"]`);
        if (!get("on_stop").checked) continue;
        const cap = tr.dataset.capability;
        const stop = stopParts(get("reason"), get("reason_text"), get("expected_until"), ["caps", cap], "stop");
        report.capability_stops.push({ capability: cap, ...stop.part });
        capIndex.push(cap);
        hints.push(...stop.hints);
      }
    }
    const minutes = (id) => ($(id).value === "" ? null : Number($(id).value));
    const triage = minutes("waiting-triage"), doctor = minutes("waiting-doctor");
    if (triage !== null || doctor !== null) report.waiting = { triage_min: triage, doctor_min: doctor };
    if ($("nedocs").value !== "") report.nedocs = Number($("nedocs").value);
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
    return { report, rowIndex, capIndex, hints };
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

  // Where the form shows an API message: ["body", "capability_stops", 0, "reason"] at that capability's
  // row; a report-level message about one stop's end (loc ["body"]) at that end.
  function placeOf(loc, msg, capIndex) {
    const index = Number(loc[2]);
    if (loc[1] === "capability_stops" && loc.length > 2 && Number.isInteger(index) && capIndex[index]) {
      return ["caps", capIndex[index], ...loc.slice(3)];
    }
    if (loc.length === 1 && loc[0] === "body") {
      if (/\bseh\.expected_until\b/.test(msg)) return ["body", "seh", "expected_until"];
      const cap = msg.match(/\bthe (\w+) stop's expected_until\b/);
      if (cap && capIndex.includes(cap[1])) return ["caps", cap[1], "expected_until"];
    }
    return loc;
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    say("result", null, "");
    $("result").className = "";
    const { report, rowIndex, capIndex, hints } = collect();
    if (hints.length) {
      hints.forEach(([loc, key]) => showError(loc, { key }));
      return;
    }
    const result = await api(`/api/v1/facilities/${encodeURIComponent(me.facility_id)}/reports`, { method: "POST", json: report });
    const body = result.body;
    if (result.ok) {
      say("result", [body.duplicate ? "report.saved.duplicate" : "report.saved", { id: body.event_id }]);
      $("result").className = "ok";
      document.querySelectorAll("#units input, #pressure-fields input").forEach((i) => { i.value = ""; });
      await load();
      return;
    }
    if (result.status === 422 && Array.isArray(body?.detail)) {
      body.detail.forEach((error) => {
        const loc = error.loc.map(String);
        const place = locate(loc, rowIndex);
        if (place) {
          const cell = place.input ? place.input.closest("td") : place.row.querySelector(".now");
          let slot = cell.querySelector(".error");
          if (!slot) { slot = document.createElement("span"); slot.className = "error"; cell.appendChild(slot); }
          slot.textContent = error.msg;
          (place.input || place.row).classList.add("invalid");
        } else {
          showError(placeOf(loc, error.msg, capIndex), error.msg);
        }
      });
      return;
    }
    if (detail(body) || !result.status) say("result", null, errorText(result));  // the API's words, or the browser's
    else say("result", ["report.refused", { status: result.status }]);
  }

  async function start() {
    const result = await api("/api/v1/keys/me");
    if (!result.ok || result.body.role !== "facility") {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      $("report").hidden = true;
      if (result.ok) say("signinError", ["report.needs_facility_key"]);
      else say("signinError", null, errorText(result));
      return;
    }
    me = result.body;
    say("signinError", null, "");
    $("signin").hidden = true;
    $("report").hidden = false;
    await load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    fillReasons($("seh-reason"));
    $("signin").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, $("key").value.trim());
      $("key").value = "";
      start();
    });
    $("report").addEventListener("submit", submit);
    $("seh-status").addEventListener("change", () => { prefillSeh(); showSehFields(); });
    $("seh-reason").addEventListener("change", showSehFields);
    $("nedocs").addEventListener("input", showBand);
    const touched = () => { capsTouched = true; labelCaps(); };
    $("caps").addEventListener("change", touched);
    $("caps").addEventListener("input", touched);
    $("caps-reset").addEventListener("click", () => {
      renderCaps();
      document.querySelectorAll('#caps [data-error-for], [data-error-for="body.capability_stops"]').forEach((s) => { s.textContent = ""; });
    });
    i18n.onChange(() => {
      drawSaid("result");
      drawSaid("signinError");
      labelUnits();
      labelCaps();
      labelFacility();
    });
    if (takeKeyFromFragment()) start(); else $("signin").hidden = false;
  });
})();
