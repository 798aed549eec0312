"use strict";
// Dispatch (meldkamer): pick the patient's point (map, municipality or coordinates), ask for the
// nearest places that can take the patient now, and announce the patient in two clicks (a place is
// held until arrival, cancellation or ETA plus grace). Plain JS, nothing fetched from other hosts.
(() => {
  const KEY = "capacity.key", HOLDS = "capacity.dispatch.holds";
  const UNIT_TYPES = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const NEEDS = ["seh", ...UNIT_TYPES];
  const CAPABILITIES = ["trauma_centre", "pci", "stroke_thrombectomy", "acute_obstetrics", "paediatric_seh", "burns"];
  // The reasons a facility gives, and `opening_hours`: a closure the service makes from the SEH's declared hours.
  const REASONS = ["crowding", "no_ic_bed", "staffing", "equipment", "ict_failure", "calamity", "other", "opening_hours"];
  const URGENCIES = ["A1", "A2", "B"];
  const CATEGORIES = ["trauma", "cardiac", "stroke", "respiratory", "sepsis", "obstetric", "paediatric", "psychiatric", "other"];
  const LIMIT = 5, MAX_HOLDS = 20;
  const i18n = window.capacityI18n;
  const t = (key, vars) => i18n.t(key, vars);
  const { el, apiMessage, errorText } = window.capacityCommon;
  const $ = (id) => document.getElementById(id);

  i18n.add({
    nl: {
      "dispatch.page_title": "Meldkamer — ROAZ capaciteit",
      "dispatch.title": "Meldkamer — dichtstbijzijnde plek",
      "dispatch.skip": "Naar de zoekvraag",
      "dispatch.key.label": "Meldkamersleutel",
      "dispatch.signin": "Inloggen",
      "dispatch.signout": "Uitloggen",
      "dispatch.who": "Ingelogd: {label}",
      "dispatch.signin.prompt": "Log in met een meldkamersleutel.",
      "dispatch.refused": "Sleutel geweigerd: {detail}. Log opnieuw in met een meldkamersleutel.",
      "dispatch.not_dispatch": "Deze sleutel ({role}) is geen meldkamersleutel. Log in met een meldkamersleutel.",
      "dispatch.unreachable": "Geen antwoord van de server: {detail}",
      "dispatch.point": "Plaats van de patiënt",
      "dispatch.municipality": "Gemeente",
      "dispatch.municipality.placeholder": "Typ een gemeente, bijv. Maastricht",
      "dispatch.lat": "Breedtegraad (lat)",
      "dispatch.lon": "Lengtegraad (lon)",
      "dispatch.point.hint": "Klik op de kaart, kies een gemeente of typ coördinaten en druk op Enter.",
      "dispatch.need.legend": "Wat is nodig",
      "dispatch.need": "Zorgvraag",
      "dispatch.need.seh": "SEH (neemt ambulances aan)",
      "dispatch.caps": "Vereiste voorzieningen",
      "cap.trauma_centre": "traumacentrum",
      "cap.pci": "PCI (dotteren)",
      "cap.stroke_thrombectomy": "trombectomie (beroerte)",
      "cap.acute_obstetrics": "acute verloskunde",
      "cap.paediatric_seh": "kinder-SEH",
      "cap.burns": "brandwondenzorg",
      "dispatch.ask": "Zoek dichtstbijzijnde",
      "dispatch.map.aria": "Kaart van de ROAZ-regio's: klik om de plaats van de patiënt te kiezen",
      "dispatch.legend.point": "patiënt",
      "dispatch.legend.ok": "geschikt, binnen de norm",
      "dispatch.legend.far": "geschikt, buiten de norm of verouderd",
      "dispatch.legend.no": "niet geschikt",
      "dispatch.outlines_unavailable": "Regiogrenzen niet beschikbaar ({detail}).",
      "dispatch.municipalities_unavailable": "Gemeentelijst niet beschikbaar ({detail}); typ coördinaten of klik op de kaart.",
      "dispatch.holds": "Aangemelde patiënten",
      "dispatch.answer": "Dichtstbijzijnde plekken",
      "dispatch.answer.empty": "Nog geen zoekvraag: kies een plaats.",
      "dispatch.answer.none": "Geen plekken gevonden.",
      "dispatch.asking": "Bezig met zoeken…",
      "dispatch.answered": "Antwoord van {time}.",
      "dispatch.failed": "Geen antwoord: zie de melding bij het invoerveld.",
      "dispatch.answer.for": "{need} bij {lat}, {lon}",
      "dispatch.answer.caps": "vereist: {caps}",
      "dispatch.travel_model": "Reistijdmodel: {model}",
      "dispatch.none_within_norm": "Let op: geen geschikte plek binnen {norm} minuten.",
      "dispatch.some_within_norm": "Geschikte plek binnen {norm} minuten.",
      "dispatch.minutes": "{n} min",
      "dispatch.minutes.lt1": "< 1 min",
      "dispatch.km": "{n} km",
      "dispatch.travel.title": "geschatte rijtijd van de ambulance",
      "dispatch.distance.title": "afstand hemelsbreed",
      "dispatch.within": "binnen {norm} min",
      "dispatch.beyond": "buiten {norm} min",
      "dispatch.suitable": "geschikt",
      "dispatch.unsuitable": "niet geschikt",
      "tier.1": "rang 1: geschikt, actuele cijfers",
      "tier.2": "rang 2: geschikt, cijfers verouderd",
      "tier.3": "rang 3: status onbekend (nooit gemeld), normaal open",
      "tier.4": "rang 4: meldt dat het niet kan (stop, dicht, vol) of mist een vereiste",
      "tier.5": "rang 5: niet geschikt",
      "dispatch.seh": "SEH",
      "dispatch.incoming": "{n} aangemeld",
      "dispatch.until": "tot {time}",
      "dispatch.reported": "gemeld {age}",
      "dispatch.free": "{unit}: vrij {free} van {staffed}",
      "dispatch.held": "{n} vastgehouden",
      "dispatch.no_figures": "{unit}: geen cijfers",
      "dispatch.nedocs": "NEDOCS {score} · {band}",
      "dispatch.nedocs.title": "NEDOCS-score {score} van 200 (drukte op de SEH)",
      "dispatch.waiting.triage": "triage {n} min",
      "dispatch.waiting.doctor": "arts {n} min",
      "dispatch.measured": "gemeten {age}",
      "dispatch.announce": "Aanmelden",
      "dispatch.announce.aria": "Patiënt aanmelden bij {name}",
      "dispatch.confirm.title": "Patiënt aanmelden bij {name}: {need}",
      "dispatch.urgency": "Urgentie",
      "dispatch.eta": "Aankomst over (min)",
      "dispatch.category": "Categorie (optioneel)",
      "dispatch.category.none": "— geen —",
      "cat.trauma": "trauma",
      "cat.cardiac": "cardiaal",
      "cat.stroke": "beroerte",
      "cat.respiratory": "ademhaling",
      "cat.sepsis": "sepsis",
      "cat.obstetric": "obstetrie",
      "cat.paediatric": "kind",
      "cat.psychiatric": "psychiatrie",
      "cat.other": "overig",
      "dispatch.confirm": "Bevestigen",
      "dispatch.back": "Terug",
      "dispatch.refusal": "Geweigerd, niets vastgehouden: {detail}",
      "dispatch.announced": "Patiënt aangemeld bij {name}: plek vastgehouden.",
      "dispatch.err.required": "Vul dit in, of klik op de kaart of kies een gemeente.",
      "dispatch.err.number": "Geen getal; gebruik bijvoorbeeld 50.85.",
      "dispatch.err.municipality": "Onbekende gemeente: kies er een uit de lijst.",
      "dispatch.err.eta": "Vul een aantal minuten in, 0 tot 360.",
      "hold.state.active": "plek vastgehouden",
      "hold.state.arrived": "aangekomen",
      "hold.state.cancelled": "geannuleerd",
      "hold.state.expired": "verlopen",
      "hold.state.ended": "beëindigd",
      "hold.need": "Zorgvraag",
      "hold.urgency": "Urgentie",
      "hold.eta": "Verwachte aankomst",
      "hold.expires": "Vastgehouden tot",
      "hold.free_after": "Vrij na deze aanmelding",
      "hold.free_unknown": "niet geteld",
      "hold.id": "Aanmelding",
      "hold.cancel": "Annuleren",
      "hold.arrived": "Aangekomen",
      "hold.dismiss": "Uit lijst",
      "hold.cancel.aria": "Aanmelding bij {name} annuleren",
      "hold.arrived.aria": "Patiënt is aangekomen bij {name}",
      "hold.dismiss.aria": "Aanmelding bij {name} uit de lijst halen",
      "why.no_seh": "geen SEH",
      "why.limited": "SEH beperkt open",
      "why.never": "SEH-status nooit gemeld",
      "why.busy": "SEH druk",
      "why.lacks": "mist {caps}",
      "why.beyond": "verder dan {n} minuten",
      "why.seh_stale": "SEH-status {n} min oud (verouderd)",
      "why.stop": "SEH op stop",
      "why.closed": "SEH gesloten",
      "why.stop_expired": "SEH-stop verlopen, niet bevestigd",
      "why.until": "tot {time}",
      "why.cap_stop": "{cap} op stop",
      "why.expired": "(verlopen, niet bevestigd)",
      "why.no_free": "geen vrije plaatsen {unit}",
      "why.free_unknown": "vrije plaatsen {unit} onbekend",
      "why.no_figures": "geen cijfers {unit} gemeld",
      "why.unit_stale": "cijfers {unit} {n} min oud (verouderd)",
      "dispatch.footer": "Reistijden zijn schattingen (zie het reistijdmodel bij het antwoord). Ziekenhuislocaties: TNO dashboard-acute-zorg; regio's en gemeenten: CBS Gebieden in Nederland 2022. Kaart: Leaflet, zonder kaarttegels.",
    },
    en: {
      "dispatch.page_title": "Dispatch — ROAZ capacity",
      "dispatch.title": "Dispatch — nearest place",
      "dispatch.skip": "Skip to the query",
      "dispatch.key.label": "Dispatch key",
      "dispatch.signin": "Sign in",
      "dispatch.signout": "Sign out",
      "dispatch.who": "Signed in: {label}",
      "dispatch.signin.prompt": "Sign in with a dispatch key.",
      "dispatch.refused": "Key refused: {detail}. Sign in again with a dispatch key.",
      "dispatch.not_dispatch": "This key ({role}) is not a dispatch key. Sign in with a dispatch key.",
      "dispatch.unreachable": "No answer from the server: {detail}",
      "dispatch.point": "Patient's location",
      "dispatch.municipality": "Municipality",
      "dispatch.municipality.placeholder": "Type a municipality, e.g. Maastricht",
      "dispatch.lat": "Latitude",
      "dispatch.lon": "Longitude",
      "dispatch.point.hint": "Click the map, pick a municipality or type coordinates and press Enter.",
      "dispatch.need.legend": "What is needed",
      "dispatch.need": "Need",
      "dispatch.need.seh": "SEH (takes ambulances)",
      "dispatch.caps": "Required capabilities",
      "cap.trauma_centre": "trauma centre",
      "cap.pci": "PCI",
      "cap.stroke_thrombectomy": "stroke thrombectomy",
      "cap.acute_obstetrics": "acute obstetrics",
      "cap.paediatric_seh": "paediatric SEH",
      "cap.burns": "burns care",
      "dispatch.ask": "Find nearest",
      "dispatch.map.aria": "Map of the ROAZ regions: click to choose the patient's location",
      "dispatch.legend.point": "patient",
      "dispatch.legend.ok": "suitable, within the norm",
      "dispatch.legend.far": "suitable, beyond the norm or stale",
      "dispatch.legend.no": "not suitable",
      "dispatch.outlines_unavailable": "Region outlines unavailable ({detail}).",
      "dispatch.municipalities_unavailable": "Municipality list unavailable ({detail}); type coordinates or click the map.",
      "dispatch.holds": "Announced patients",
      "dispatch.answer": "Nearest places",
      "dispatch.answer.empty": "No query yet: choose a location.",
      "dispatch.answer.none": "No places found.",
      "dispatch.asking": "Searching…",
      "dispatch.answered": "Answer of {time}.",
      "dispatch.failed": "No answer: see the message at the input.",
      "dispatch.answer.for": "{need} at {lat}, {lon}",
      "dispatch.answer.caps": "required: {caps}",
      "dispatch.travel_model": "Travel model: {model}",
      "dispatch.none_within_norm": "Warning: no suitable place within {norm} minutes.",
      "dispatch.some_within_norm": "Suitable place within {norm} minutes.",
      "dispatch.minutes": "{n} min",
      "dispatch.minutes.lt1": "< 1 min",
      "dispatch.km": "{n} km",
      "dispatch.travel.title": "estimated ambulance travel time",
      "dispatch.distance.title": "straight-line distance",
      "dispatch.within": "within {norm} min",
      "dispatch.beyond": "beyond {norm} min",
      "dispatch.suitable": "suitable",
      "dispatch.unsuitable": "not suitable",
      "tier.1": "tier 1: suitable, fresh figures",
      "tier.2": "tier 2: suitable, stale figures",
      "tier.3": "tier 3: status unknown (never reported), normally open",
      "tier.4": "tier 4: said it cannot (stop, closed, full) or lacks a requirement",
      "tier.5": "tier 5: not suitable",
      "dispatch.seh": "SEH",
      "dispatch.incoming": "{n} announced",
      "dispatch.until": "until {time}",
      "dispatch.reported": "reported {age}",
      "dispatch.free": "{unit}: {free} free of {staffed}",
      "dispatch.held": "{n} held",
      "dispatch.no_figures": "{unit}: no figures",
      "dispatch.nedocs": "NEDOCS {score} · {band}",
      "dispatch.nedocs.title": "NEDOCS score {score} of 200 (SEH crowding)",
      "dispatch.waiting.triage": "triage {n} min",
      "dispatch.waiting.doctor": "doctor {n} min",
      "dispatch.measured": "measured {age}",
      "dispatch.announce": "Announce",
      "dispatch.announce.aria": "Announce a patient to {name}",
      "dispatch.confirm.title": "Announce a patient to {name}: {need}",
      "dispatch.urgency": "Urgency",
      "dispatch.eta": "Arrives in (min)",
      "dispatch.category": "Category (optional)",
      "dispatch.category.none": "— none —",
      "cat.trauma": "trauma",
      "cat.cardiac": "cardiac",
      "cat.stroke": "stroke",
      "cat.respiratory": "respiratory",
      "cat.sepsis": "sepsis",
      "cat.obstetric": "obstetric",
      "cat.paediatric": "paediatric",
      "cat.psychiatric": "psychiatric",
      "cat.other": "other",
      "dispatch.confirm": "Confirm",
      "dispatch.back": "Back",
      "dispatch.refusal": "Refused, nothing held: {detail}",
      "dispatch.announced": "Patient announced to {name}: place held.",
      "dispatch.err.required": "Fill this in, or click the map or pick a municipality.",
      "dispatch.err.number": "Not a number; use e.g. 50.85.",
      "dispatch.err.municipality": "Unknown municipality: pick one from the list.",
      "dispatch.err.eta": "Enter a number of minutes, 0 to 360.",
      "hold.state.active": "place held",
      "hold.state.arrived": "arrived",
      "hold.state.cancelled": "cancelled",
      "hold.state.expired": "expired",
      "hold.state.ended": "ended",
      "hold.need": "Need",
      "hold.urgency": "Urgency",
      "hold.eta": "Expected arrival",
      "hold.expires": "Held until",
      "hold.free_after": "Free after this announcement",
      "hold.free_unknown": "not counted",
      "hold.id": "Announcement",
      "hold.cancel": "Cancel",
      "hold.arrived": "Arrived",
      "hold.dismiss": "Remove",
      "hold.cancel.aria": "Cancel the announcement to {name}",
      "hold.arrived.aria": "The patient arrived at {name}",
      "hold.dismiss.aria": "Remove the announcement to {name} from the list",
      "why.no_seh": "no SEH",
      "why.limited": "SEH with limited hours",
      "why.never": "SEH status never reported",
      "why.busy": "SEH busy",
      "why.lacks": "lacks {caps}",
      "why.beyond": "beyond {n} minutes",
      "why.seh_stale": "SEH status {n} min old (stale)",
      "why.stop": "SEH on stop",
      "why.closed": "SEH closed",
      "why.stop_expired": "SEH stop expired, unconfirmed",
      "why.until": "until {time}",
      "why.cap_stop": "{cap} on stop",
      "why.expired": "(expired, unconfirmed)",
      "why.no_free": "no free {unit} places",
      "why.free_unknown": "free {unit} places unknown",
      "why.no_figures": "no {unit} figures reported",
      "why.unit_stale": "{unit} figures {n} min old (stale)",
      "dispatch.footer": "Travel times are estimates (see the travel model with the answer). Hospital locations: TNO dashboard-acute-zorg; regions and municipalities: CBS Gebieden in Nederland 2022. Map: Leaflet, no map tiles.",
    },
  });

  const state = {
    key: null,
    who: null,
    banner: null,          // {key, vars} of the message shown in the banner, re-rendered on a language switch
    status: null,          // {key, vars} of the answer's status line
    point: null,           // {lat, lon}
    municipalities: null,  // capacityCommon.loadMunicipalities: find(name) -> {name, lat, lon, region_id}
    appliedMunicipality: null,
    answer: null,
    asked: null,           // the parameters of the answer shown
    inflight: null,        // the query string being asked
    seq: 0,
    confirm: null,         // {facility_id, urgency, eta, category} while a confirmation is open
    announcing: null,      // the facility an announcement is being sent to
    holds: [],
  };

  // ---- small helpers -------------------------------------------------------------------------
  const locale = () => (i18n.lang === "en" ? "en-GB" : "nl-NL");
  const number = (n, digits = 1) => Number(n).toLocaleString(locale(), { maximumFractionDigits: digits });
  const clock = (iso) => new Date(iso).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  const clockSeconds = (iso) => new Date(iso).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const coord = (v) => String(Number(Number(v).toFixed(5)));
  const needLabel = (need) => (need === "seh" ? t("dispatch.need.seh") : t(`unit.${need}`));
  const unitLabel = (unit) => t(`unit.${unit}`);
  const capLabel = (cap) => t(`cap.${cap}`);
  const bandOf = window.capacityCommon.nedocsBand;
  // A stop's reason as said: its label, or the hospital's own words (`other`, or anything not on the list).
  const reasonLabel = (words) => (REASONS.includes(words) && words !== "other" ? t(`reason.${words}`) : words);
  const sehReason = (seh) => (seh.reason === "other" && seh.reason_text ? seh.reason_text : seh.reason ? t(`reason.${seh.reason}`) : "");
  const count = (v) => (v === null || v === undefined ? t("unknown") : String(v));
  const minutes = (m) => (m < 0.5 ? t("dispatch.minutes.lt1") : t("dispatch.minutes", { n: Math.round(m) }));

  function parseNumber(text) {
    const s = text.trim().replace(",", ".");
    if (s === "") return { empty: true };
    const n = Number(s);
    return Number.isFinite(n) && /^[-+]?(\d+\.?\d*|\.\d+)$/.test(s) ? { value: n } : { invalid: true };
  }

  const api = window.capacityCommon.client(() => state.key);

  // ---- banner and status lines (kept as keys, so a language switch re-renders them) -----------
  function setBanner(key, vars = {}, kind = "error") {
    state.banner = key ? { key, vars, kind } : null;
    renderBanner();
  }
  function renderBanner() {
    const banner = $("banner");
    banner.hidden = !state.banner;
    if (!state.banner) return;
    banner.className = `banner ${state.banner.kind}`;
    banner.textContent = t(state.banner.key, state.banner.vars);
  }
  function setStatus(key, vars = {}) {
    state.status = key ? { key, vars } : null;
    $("answer-status").textContent = key ? t(key, vars) : "";
  }

  // ---- signing in ------------------------------------------------------------------------------
  function showSignIn(messageKey, vars, kind) {
    state.key = null;
    $("app").hidden = true;
    $("signout").hidden = true;
    $("who").textContent = "";
    $("signin").hidden = false;
    setBanner(messageKey, vars, kind);
    $("key").value = "";
    $("key").focus();
  }

  // A key the server does not accept (401), or one that may not do this (403): sign in again.
  function refused(result) {
    if (result.status === 401) sessionStorage.removeItem(KEY);
    showSignIn("dispatch.refused", { detail: errorText(result) });
  }

  async function signIn(key) {
    const result = await api("/api/v1/keys/me", { key });
    if (result.status === 401 || result.status === 403) return refused(result);
    if (!result.ok) return showSignIn("dispatch.unreachable", { detail: errorText(result) });
    if (!["dispatch", "admin"].includes(result.body.role)) {
      return showSignIn("dispatch.not_dispatch", { role: result.body.role });  // a valid key for other pages: kept
    }
    state.key = key;
    state.who = result.body;
    sessionStorage.setItem(KEY, key);
    $("signin").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    renderWho();
    setBanner(null);
    mapView.init();
    loadHolds();
    renderAnswer();
    refreshHolds();
  }
  const renderWho = () => { $("who").textContent = state.who ? t("dispatch.who", { label: state.who.label }) : ""; };

  // ---- the point -------------------------------------------------------------------------------
  function setPoint(lat, lon, source) {
    state.point = { lat: Number(coord(lat)), lon: Number(coord(lon)) };
    $("lat").value = coord(lat);
    $("lon").value = coord(lon);
    if (source !== "municipality") { $("municipality").value = ""; state.appliedMunicipality = null; }
    mapView.point(lat, lon, source !== "map");
  }

  function findMunicipality(name) {
    return state.municipalities ? state.municipalities.find(name) : undefined;
  }

  function pickMunicipality() {
    const input = $("municipality");
    const name = input.value.trim();
    clearErrors("municipality");
    if (!name) return false;
    const found = findMunicipality(name);
    if (!found) { showError("municipality", t("dispatch.err.municipality")); return true; }
    if (state.appliedMunicipality === found.name) return false;
    input.value = found.name;
    state.appliedMunicipality = found.name;
    setPoint(found.lat, found.lon, "municipality");
    askFromForm();
    return true;
  }

  async function offerMunicipalities() {
    state.municipalities = await window.capacityCommon.loadMunicipalities($("municipalities"));
    if (state.municipalities.error) {
      $("map-note").hidden = false;
      $("map-note").textContent = t("dispatch.municipalities_unavailable", { detail: state.municipalities.error });
    }
  }

  // ---- errors next to the inputs -----------------------------------------------------------------
  const INPUTS_FOR = { "query.lat": ["lat"], "query.lon": ["lon"], query: ["lat", "lon"], "query.need": ["need"], municipality: ["municipality"] };

  function clearErrors(only) {
    for (const slot of document.querySelectorAll("#query [data-error-for]")) {
      const loc = slot.dataset.errorFor;
      if (only && loc !== only) continue;
      slot.textContent = "";
      for (const id of INPUTS_FOR[loc] || []) $(id).removeAttribute("aria-invalid");
    }
  }

  function showError(loc, message) {
    const slot = document.querySelector(`#query [data-error-for="${CSS.escape(loc)}"]`);
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    for (const id of INPUTS_FOR[loc] || []) $(id).setAttribute("aria-invalid", "true");
  }

  // The API's 422 `detail`: each message at the closest slot for its `loc` (["query", "lat"] at the
  // latitude, ["query"] — the point as a whole — under both coordinates, anything else at the button).
  function showApiErrors(detail) {
    for (const item of detail) {
      const parts = (item.loc || []).map(String);
      let placed = false;
      while (parts.length && !placed) {
        const loc = parts.join(".");
        if (document.querySelector(`#query [data-error-for="${CSS.escape(loc)}"]`)) { showError(loc, apiMessage(item.msg)); placed = true; }
        parts.pop();
      }
      if (!placed) showError("general", apiMessage(item.msg));
    }
    const first = document.querySelector("#query [aria-invalid=true]");
    if (first) first.focus();
  }

  // ---- asking ------------------------------------------------------------------------------------
  function readForm() {
    clearErrors();
    const lat = parseNumber($("lat").value), lon = parseNumber($("lon").value);
    let ok = true;
    for (const [id, parsed] of [["lat", lat], ["lon", lon]]) {
      if (parsed.empty) { showError(`query.${id}`, t("dispatch.err.required")); ok = false; }
      if (parsed.invalid) { showError(`query.${id}`, t("dispatch.err.number")); ok = false; }
    }
    if (!ok) return null;
    const caps = [...document.querySelectorAll("#caps input:checked")].map((c) => c.value);
    return { lat: lat.value, lon: lon.value, need: $("need").value, capabilities: caps };
  }

  function askFromForm() {
    const params = readForm();
    if (!params) {
      const first = document.querySelector("#query [aria-invalid=true]");
      if (first) first.focus();
      return;
    }
    if (!state.point || state.point.lat !== params.lat || state.point.lon !== params.lon) {
      state.point = { lat: params.lat, lon: params.lon };
      mapView.point(params.lat, params.lon, true);
    }
    ask(params);
  }

  async function ask(params, { quiet = false } = {}) {
    const qs = new URLSearchParams({ lat: String(params.lat), lon: String(params.lon), need: params.need });
    for (const c of params.capabilities) qs.append("capability", c);
    qs.append("limit", String(LIMIT));
    const query = qs.toString();
    if (state.inflight === query) return;
    state.inflight = query;
    const seq = ++state.seq;
    if (!quiet) { setStatus("dispatch.asking"); $("answer").setAttribute("aria-busy", "true"); }
    const result = await api(`/api/v1/nearest?${query}`);
    if (seq !== state.seq) return;  // a later question was asked meanwhile
    state.inflight = null;
    $("answer").removeAttribute("aria-busy");
    if (result.status === 401 || result.status === 403) return refused(result);
    if (!quiet) clearErrors();
    if (!result.ok) {
      state.answer = null;
      state.asked = null;
      state.confirm = null;
      if (result.status === 422 && Array.isArray(result.body?.detail)) showApiErrors(result.body.detail);
      else showError("general", result.status ? errorText(result) : t("dispatch.unreachable", { detail: errorText(result) }));
      setStatus("dispatch.failed");
      renderAnswer();
      return;
    }
    state.answer = result.body;
    state.asked = params;
    if (!quiet) state.confirm = null;
    if (state.confirm && !state.answer.candidates.some((c) => c.facility_id === state.confirm.facility_id && c.suitable)) state.confirm = null;
    setStatus("dispatch.answered", { time: clockSeconds(result.body.generated_at) });
    renderAnswer();
    if (!quiet) mapView.fit();
  }

  // ---- the answer --------------------------------------------------------------------------------
  // The API's reasons are short English phrases; known ones are said in the page's language.
  const WHY = [
    [/^no SEH$/, () => t("why.no_seh")],
    [/^SEH with limited hours$/, () => t("why.limited")],
    [/^SEH status never reported$/, () => t("why.never")],
    [/^SEH busy$/, () => t("why.busy")],
    [/^lacks (.+)$/, (m) => t("why.lacks", { caps: m[1].split(", ").map(capLabel).join(", ") })],
    [/^beyond (\d+) minutes$/, (m) => t("why.beyond", { n: m[1] })],
    [/^SEH status (\d+) min old \(stale\)$/, (m) => t("why.seh_stale", { n: m[1] })],
    [/^(SEH on stop|SEH closed|SEH stop expired, unconfirmed)(?:: (.*?))?(?: until (\d{1,2}:\d{2}))?$/s, (m, c) => {
      const head = t({ "SEH on stop": "why.stop", "SEH closed": "why.closed" }[m[1]] || "why.stop_expired");
      // the expected end in this browser's time zone (the API writes it in the server's)
      const until = m[3] && (c.seh && c.seh.expected_until ? clock(c.seh.expected_until) : m[3]);
      // the reason's code, or the hospital's own words for `other` (said as written, even if they read like a code)
      const reason = m[2] && (c.seh && c.seh.reason === "other" ? m[2] : reasonLabel(m[2]));
      return head + (reason ? `: ${reason}` : "") + (until ? ` ${t("why.until", { time: until })}` : "");
    }],
    // "pci on stop: equipment until 14:30 (expired, unconfirmed)": a capability stop (the SEH may be open)
    [/^(\w+) on stop(?:: (.*?))?(?: until (\d{1,2}:\d{2}))?( \(expired, unconfirmed\))?$/s, (m) => {
      if (!CAPABILITIES.includes(m[1])) return null;
      return t("why.cap_stop", { cap: capLabel(m[1]) }) + (m[2] ? `: ${reasonLabel(m[2])}` : "")
        + (m[3] ? ` ${t("why.until", { time: m[3] })}` : "") + (m[4] ? ` ${t("why.expired")}` : "");
    }],
    [/^no free (\w+) places$/, (m) => t("why.no_free", { unit: unitLabel(m[1]) })],
    [/^free (\w+) places unknown$/, (m) => t("why.free_unknown", { unit: unitLabel(m[1]) })],
    [/^no (\w+) figures reported$/, (m) => t("why.no_figures", { unit: unitLabel(m[1]) })],
    [/^(\w+) figures (\d+) min old \(stale\)$/, (m) => t("why.unit_stale", { unit: unitLabel(m[1]), n: m[2] })],
  ];
  function why(text, c) {
    for (const [pattern, say] of WHY) {
      const m = text.match(pattern);
      const said = m && say(m, c);
      if (said) return said;
    }
    return text;
  }

  // green: suitable within the norm with fresh figures; amber: suitable, but beyond the norm or stale; grey: not suitable
  const tone = (c) => (!c.suitable ? "no" : c.within_norm && !c.stale ? "ok" : "far");

  function figures(c, need) {
    const box = el("div", { class: "figures" });
    if (need === "seh") {
      const seh = c.seh;
      const label = el("span", { class: "figure-label" }, `${t("dispatch.seh")}: `);
      if (!seh) {
        box.append(label, el("span", { class: "seh seh-none" }, c.kind === "hospital_no_seh" ? t("seh.no_seh") : t("seh.none")));
      } else {
        box.append(label, el("span", { class: `seh seh-${seh.status}` }, t(`seh.${seh.status}`)));
        if (seh.reason) box.append(" ", el("span", { class: "reason" }, sehReason(seh)));
        if (seh.expected_until) box.append(" ", el("span", { class: "age" }, t("dispatch.until", { time: clock(seh.expected_until) })));
        if (seh.incoming) box.append(" · ", el("span", { class: "incoming" }, t("dispatch.incoming", { n: seh.incoming })));
        box.append(" · ", el("span", { class: "age" }, t("dispatch.reported", { age: i18n.age(seh.age_s) })));
      }
    } else {
      const u = c.unit;
      if (!u) {
        box.append(el("span", { class: "free unknown" }, t("dispatch.no_figures", { unit: unitLabel(need) })));
      } else {
        box.append(el("span", { class: `free${c.free ? "" : " none"}` },
          t("dispatch.free", { unit: unitLabel(need), free: count(c.free), staffed: count(u.staffed) })));
        if (u.held) box.append(" · ", el("span", { class: "incoming" }, t("dispatch.held", { n: u.held })));
        box.append(" · ", el("span", { class: "age" }, t("dispatch.reported", { age: i18n.age(u.age_s) })));
      }
    }
    const pressure = pressureLine(c);
    return pressure ? [box, pressure] : [box];
  }

  // The SEH's crowding (NEDOCS band) and waiting times, each with its age; greyed when stale.
  function pressureLine(c) {
    const n = c.nedocs, w = c.waiting;
    if (!n && !w) return null;
    const line = el("div", { class: "pressure" });
    if (n) {
      const band = n.band || bandOf(n.score);
      line.append(el("span", { class: `nedocs band-${band}${n.stale ? " stale" : ""}`, "data-band": band, title: t("dispatch.nedocs.title", { score: n.score }) },
        t("dispatch.nedocs", { score: n.score, band: t(`band.${band}`) })));
    }
    const together = n && w && n.measured_at === w.measured_at;
    if (n && !together) line.append(" ", el("span", { class: `age${n.stale ? " stale" : ""}` }, t("dispatch.measured", { age: i18n.age(n.age_s) })));
    if (w) {
      const words = [];
      if (w.triage_min !== null && w.triage_min !== undefined) words.push(t("dispatch.waiting.triage", { n: w.triage_min }));
      if (w.doctor_min !== null && w.doctor_min !== undefined) words.push(t("dispatch.waiting.doctor", { n: w.doctor_min }));
      if (n) line.append(" · ");
      line.append(el("span", { class: `waits${w.stale ? " stale" : ""}` }, words.join(" · ")), " ",
        el("span", { class: `age${w.stale ? " stale" : ""}` }, t("dispatch.measured", { age: i18n.age(w.age_s) })));
    }
    if ((n && n.stale) || (w && w.stale)) line.append(" ", el("span", { class: "pressure-stale" }, t("stale")));
    return line;
  }

  function candidateItem(c, index, answer) {
    const norm = number(answer.norm_min, 0);
    const li = el("li", {
      class: `candidate tone-${tone(c)}${c.suitable ? "" : " unsuitable"}`,
      "data-facility": c.facility_id,
      "data-suitable": String(c.suitable),
      "data-within-norm": String(c.within_norm),
      tabindex: "-1",
    });
    const head = el("div", { class: "cand-head" },
      el("span", { class: "rank", "aria-hidden": "true" }, String(index + 1)),
      el("div", { class: "cand-name" },
        el("strong", { class: "name" }, c.name),
        c.synthetic ? el("span", { class: "demo", title: t("demo.title") }, t("demo.badge")) : null,
        el("div", { class: "place" }, `${c.city} · ${c.region_id} · ${t(`kind.${c.kind}`)}`)),
      el("div", { class: "travel" },
        el("span", { class: "minutes", title: t("dispatch.travel.title") }, minutes(c.travel_min)),
        el("span", { class: "km", title: t("dispatch.distance.title") }, t("dispatch.km", { n: number(c.distance_km) }))));
    const marks = el("div", { class: "marks" },
      el("span", { class: `norm ${c.within_norm ? "within" : "beyond"}` },
        c.within_norm ? `✓ ${t("dispatch.within", { norm })}` : `✗ ${t("dispatch.beyond", { norm })}`),
      el("span", { class: `fit ${c.suitable ? "yes" : "no"}` }, c.suitable ? t("dispatch.suitable") : t("dispatch.unsuitable")),
      c.stale ? el("span", { class: "stale-mark" }, t("stale")) : null,
      c.tier ? el("span", { class: `tier tier-${c.tier}`, "data-tier": String(c.tier) }, t(`tier.${c.tier}`)) : null);
    li.append(head, marks, ...figures(c, answer.need));
    // The first reason names the tier, shown above as a mark; the list gives the rest.
    const reasons = c.why.filter((w) => !/^tier \d: /.test(w));
    if (reasons.length) li.append(el("ul", { class: "why" }, ...reasons.map((w) => el("li", {}, why(w, c)))));
    if (c.suitable) {
      const open = state.confirm && state.confirm.facility_id === c.facility_id;
      const button = el("button", {
        type: "button",
        class: "announce",
        "data-focus": "announce",
        "aria-expanded": String(!!open),
        "aria-label": t("dispatch.announce.aria", { name: c.name }),
      }, t("dispatch.announce"));
      button.addEventListener("click", () => openConfirm(c));
      li.append(el("div", { class: "cand-actions" }, button));
      if (open) li.append(confirmForm(c, answer));
    }
    return li;
  }

  function renderAnswer() {
    // A re-render (a refreshed answer, a language switch) keeps the focus where it was.
    const active = document.activeElement;
    const item = active && active.closest ? active.closest("#candidates li[data-facility]") : null;
    const keep = item && active.dataset.focus ? { id: item.dataset.facility, focus: active.dataset.focus } : null;
    drawAnswer();
    if (keep) focusIn(keep.id, `[data-focus="${CSS.escape(keep.focus)}"]`);
  }

  function drawAnswer() {
    const answer = state.answer;
    const summary = $("summary");
    if (!answer) {
      summary.replaceChildren(el("p", { class: "hint" }, t("dispatch.answer.empty")));
      $("candidates").replaceChildren();
      mapView.candidates([]);
      return;
    }
    const norm = number(answer.norm_min, 0);
    const what = [t("dispatch.answer.for", { need: needLabel(answer.need), lat: coord(answer.lat), lon: coord(answer.lon) })];
    if (answer.capabilities.length) what.push(t("dispatch.answer.caps", { caps: answer.capabilities.map(capLabel).join(", ") }));
    summary.replaceChildren(
      answer.suitable_within_norm
        ? el("p", { class: "norm-ok", id: "norm-verdict" }, `✓ ${t("dispatch.some_within_norm", { norm })}`)
        : el("p", { class: "norm-warning", id: "norm-verdict", role: "alert" }, `⚠ ${t("dispatch.none_within_norm", { norm })}`),
      el("p", { class: "asked" }, what.join(" — ")),
      el("p", { class: "model hint" }, t("dispatch.travel_model", { model: answer.travel_model })));
    const items = answer.candidates.map((c, i) => candidateItem(c, i, answer));
    $("candidates").replaceChildren(...items);
    if (!items.length) summary.append(el("p", {}, t("dispatch.answer.none")));
    mapView.candidates(answer.candidates);
  }

  // ---- announcing: click 1 opens the confirmation, click 2 confirms ---------------------------
  function openConfirm(c) {
    if (state.confirm && state.confirm.facility_id === c.facility_id) { closeConfirm(); return; }
    state.confirm = { facility_id: c.facility_id, urgency: "A2", eta: String(Math.max(1, Math.round(c.travel_min))), category: "" };
    renderAnswer();
    focusIn(c.facility_id, "form.confirm button[type=submit]");
  }

  function closeConfirm() {
    const id = state.confirm && state.confirm.facility_id;
    state.confirm = null;
    renderAnswer();
    if (id) focusIn(id, "button.announce");
  }

  function focusIn(facilityId, selector) {
    const node = document.querySelector(`#candidates li[data-facility="${CSS.escape(facilityId)}"] ${selector}`);
    if (node) node.focus();
  }

  function confirmForm(c, answer) {
    const draft = state.confirm;
    const form = el("form", { class: "confirm", novalidate: true, "aria-label": t("dispatch.confirm.title", { name: c.name, need: needLabel(answer.need) }) });
    form.append(el("p", { class: "confirm-title" }, t("dispatch.confirm.title", { name: c.name, need: needLabel(answer.need) })));
    const urgency = el("fieldset", { class: "urgency" }, el("legend", {}, t("dispatch.urgency")));
    for (const u of URGENCIES) {
      const radio = el("input", { type: "radio", name: "urgency", value: u, checked: draft.urgency === u, "data-focus": `urgency-${u}` });
      radio.addEventListener("change", () => { draft.urgency = u; });
      urgency.append(el("label", { class: `urgency-option u-${u}` }, radio, u));
    }
    const eta = el("input", { type: "number", name: "eta", min: "0", max: "360", step: "1", inputmode: "numeric", value: draft.eta, required: true, "data-focus": "eta" });
    eta.addEventListener("input", () => { draft.eta = eta.value; });
    const etaError = el("span", { class: "error", "data-error-for": "body.eta" });
    const category = el("select", { name: "category", "data-focus": "category" }, el("option", { value: "" }, t("dispatch.category.none")),
      ...CATEGORIES.map((k) => el("option", { value: k, selected: draft.category === k }, t(`cat.${k}`))));
    category.addEventListener("change", () => { draft.category = category.value; });
    const confirm = el("button", { type: "submit", class: "primary", "data-focus": "confirm", disabled: !!state.announcing }, t("dispatch.confirm"));
    const back = el("button", { type: "button", class: "quiet back", "data-focus": "back" }, t("dispatch.back"));
    back.addEventListener("click", closeConfirm);
    const refusal = el("p", { class: "error refusal", role: "alert" });
    form.append(urgency,
      el("div", { class: "confirm-fields" },
        el("label", { class: "eta" }, t("dispatch.eta"), eta, etaError),
        el("label", { class: "category" }, t("dispatch.category"), category)),
      el("div", { class: "confirm-actions" }, confirm, back),
      refusal);
    form.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); closeConfirm(); } });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      announce(c, answer, form).catch((err) => { refusal.textContent = String(err); });
    });
    return form;
  }

  async function announce(c, answer, form) {
    if (state.announcing) return;  // one hold per confirmation, however often it is clicked
    const parts = (f) => ({ refusal: f.querySelector(".refusal"), etaError: f.querySelector('[data-error-for="body.eta"]'), eta: f.elements.eta });
    let at = parts(form);
    at.refusal.textContent = "";
    at.etaError.textContent = "";
    at.eta.removeAttribute("aria-invalid");
    const minutesAhead = parseNumber(at.eta.value);
    if (!("value" in minutesAhead) || minutesAhead.value < 0 || minutesAhead.value > 360) {
      at.etaError.textContent = t("dispatch.err.eta");
      at.eta.setAttribute("aria-invalid", "true");
      at.eta.focus();
      return;
    }
    const body = {
      facility_id: c.facility_id,
      need: answer.need,
      eta: new Date(Date.now() + minutesAhead.value * 60000).toISOString(),
      urgency: form.elements.urgency.value || "A2",
    };
    if (form.elements.category.value) body.category = form.elements.category.value;
    state.announcing = c.facility_id;
    form.querySelector("button[type=submit]").disabled = true;
    const result = await api("/api/v1/announcements", { method: "POST", json: body });
    state.announcing = null;
    // The answer may have been drawn anew meanwhile: speak in the confirmation now on the page.
    const current = document.querySelector(`#candidates li[data-facility="${CSS.escape(c.facility_id)}"] form.confirm`) || form;
    current.querySelector("button[type=submit]").disabled = false;
    at = parts(current);
    if (result.status === 401 || result.status === 403) return refused(result);
    if (result.status === 201) {
      state.holds.unshift({ ...result.body, facility_name: c.name, city: c.city });
      state.holds = state.holds.slice(0, MAX_HOLDS);
      saveHolds();
      state.confirm = null;
      renderHolds();
      drawAnswer();
      setStatus("dispatch.announced", { name: c.name });
      const hold = document.querySelector(`#holds li[data-announcement="${CSS.escape(result.body.id)}"]`);
      if (hold) hold.focus();
      if (state.asked) ask(state.asked, { quiet: true });  // the held place is no longer free
      return;
    }
    if (result.status === 422 && Array.isArray(result.body?.detail)) {
      for (const item of result.body.detail) {
        const slot = (item.loc || []).join(".") === "body.eta" ? at.etaError : at.refusal;
        slot.textContent = slot.textContent ? `${slot.textContent}; ${apiMessage(item.msg)}` : apiMessage(item.msg);
        if (slot === at.etaError) at.eta.setAttribute("aria-invalid", "true");
      }
      return;
    }
    at.refusal.textContent = result.status === 409 ? t("dispatch.refusal", { detail: errorText(result) })
      : result.status ? errorText(result) : t("dispatch.unreachable", { detail: errorText(result) });
  }

  // ---- holds: what this dispatcher announced (kept in this tab, like the key) ------------------
  function loadHolds() {
    try { state.holds = JSON.parse(sessionStorage.getItem(HOLDS) || "[]"); } catch (_) { state.holds = []; }
    renderHolds();
  }
  const saveHolds = () => sessionStorage.setItem(HOLDS, JSON.stringify(state.holds));
  const isActive = (h) => h.state === "active" && Date.parse(h.expires_at) > Date.now();
  const holdState = (h) => (h.state === "active" && !isActive(h) ? "expired" : h.state);

  // After a reload: holds that ended meanwhile (expired, or ended by the hospital) are said to have ended.
  async function refreshHolds() {
    const facilities = [...new Set(state.holds.filter(isActive).map((h) => h.facility_id))];
    for (const id of facilities) {
      const result = await api(`/api/v1/facilities/${encodeURIComponent(id)}/announcements`);
      if (!result.ok) continue;
      const active = new Set(result.body.map((a) => a.id));
      for (const h of state.holds) if (h.facility_id === id && isActive(h) && !active.has(h.id)) h.state = "ended";
    }
    saveHolds();
    renderHolds();
  }

  async function endHold(hold, how, item) {
    const error = item.querySelector(".error");
    error.textContent = "";
    for (const b of item.querySelectorAll("button")) b.disabled = true;
    const result = await api(`/api/v1/announcements/${encodeURIComponent(hold.id)}/${how}`, { method: "POST" });
    if (result.status === 401 || result.status === 403) return refused(result);
    if (result.ok) {
      hold.state = result.body.state;
    } else if (result.status === 409 || result.status === 404) {
      hold.state = "ended";
      hold.note = errorText(result);
    } else {
      for (const b of item.querySelectorAll("button")) b.disabled = false;
      error.textContent = result.status ? errorText(result) : t("dispatch.unreachable", { detail: errorText(result) });
      return;
    }
    saveHolds();
    renderHolds();
    const again = document.querySelector(`#holds li[data-announcement="${CSS.escape(hold.id)}"]`);
    if (again) again.focus();
    if (state.asked) ask(state.asked, { quiet: true });  // the place is free again
  }

  function holdItem(h) {
    const now = holdState(h);
    const li = el("li", { class: `hold state-${now}`, "data-announcement": h.id, "data-facility": h.facility_id, tabindex: "-1" });
    const need = h.need === "seh" ? t("dispatch.need.seh") : unitLabel(h.need);
    li.append(
      el("div", { class: "hold-head" },
        el("strong", { class: "hold-facility" }, h.facility_name || h.facility_id),
        el("span", { class: `hold-state state-${now}` }, t(`hold.state.${now}`))),
      el("dl", {},
        el("div", {}, el("dt", {}, t("hold.need")), el("dd", { class: "hold-need" }, need)),
        el("div", {}, el("dt", {}, t("hold.urgency")),
          el("dd", { class: "hold-urgency" }, h.urgency + (h.category ? ` · ${t(`cat.${h.category}`)}` : ""))),
        el("div", {}, el("dt", {}, t("hold.eta")), el("dd", { class: "hold-eta" }, clock(h.eta))),
        el("div", {}, el("dt", {}, t("hold.expires")), el("dd", { class: "hold-expires" }, clock(h.expires_at))),
        el("div", {}, el("dt", {}, t("hold.free_after")),
          el("dd", { class: "hold-free" }, h.free_after === null || h.free_after === undefined ? t("hold.free_unknown") : String(h.free_after))),
        el("div", {}, el("dt", {}, t("hold.id")), el("dd", { class: "hold-id" }, el("code", {}, h.id)))));
    if (h.note) li.append(el("p", { class: "hint" }, h.note));
    const actions = el("div", { class: "hold-actions" });
    const name = h.facility_name || h.facility_id;
    if (now === "active") {
      const arrived = el("button", { type: "button", class: "arrived", "aria-label": t("hold.arrived.aria", { name }) }, t("hold.arrived"));
      const cancel = el("button", { type: "button", class: "cancel", "aria-label": t("hold.cancel.aria", { name }) }, t("hold.cancel"));
      arrived.addEventListener("click", () => endHold(h, "arrived", li));
      cancel.addEventListener("click", () => endHold(h, "cancel", li));
      actions.append(arrived, cancel);
    } else {
      const dismiss = el("button", { type: "button", class: "quiet dismiss", "aria-label": t("hold.dismiss.aria", { name }) }, t("hold.dismiss"));
      dismiss.addEventListener("click", () => {
        state.holds = state.holds.filter((x) => x !== h);
        saveHolds();
        renderHolds();
      });
      actions.append(dismiss);
    }
    li.append(actions, el("p", { class: "error", role: "alert" }));
    return li;
  }

  function renderHolds() {
    $("holds-panel").hidden = state.holds.length === 0;
    $("holds").replaceChildren(...state.holds.map(holdItem));
  }

  // ---- the map: ROAZ outlines from the app only (no tiles), the point and the candidates ------
  const mapView = (() => {
    let map = null, outlines = null, pointMarker = null, layer = null;
    const OUTLINE = { color: "#5c6b7a", weight: 1, fillColor: "#f4f4ee", fillOpacity: 1 };
    const markers = new Map();

    function init() {
      if (typeof L === "undefined") { $("map-note").hidden = false; $("map-note").textContent = t("dispatch.outlines_unavailable", { detail: "Leaflet" }); return; }
      if (map) { map.invalidateSize(); return; }
      map = L.map("map", { attributionControl: false, zoomSnap: 0.25, minZoom: 6, maxZoom: 13 });
      map.setView([52.2, 5.3], 7);
      layer = L.layerGroup().addTo(map);
      map.on("click", (ev) => {
        setPoint(ev.latlng.lat, ev.latlng.lng, "map");
        askFromForm();
      });
      new ResizeObserver(() => map.invalidateSize()).observe($("map"));
      api("/api/v1/outlines.geojson", { key: "" }).then((result) => {
        if (result.ok) {
          outlines = L.geoJSON(result.body, { style: OUTLINE, interactive: false }).addTo(map);
          outlines.eachLayer((l) => l.getElement()?.setAttribute("data-region", l.feature.properties.region_id));
          outlines.bringToBack();
          map.fitBounds(outlines.getBounds(), { padding: [6, 6], animate: false });
        } else {
          $("map-note").hidden = false;
          $("map-note").textContent = t("dispatch.outlines_unavailable", { detail: errorText(result) });
        }
        $("map").dataset.ready = "true";
      });
    }

    // Tests compute where a place lies on the screen through this (read-only; nothing else uses it).
    Object.defineProperty(window, "dispatchMap", { get: () => map });

    function point(lat, lon, reveal) {
      if (!map) return;
      if (!pointMarker) {
        pointMarker = L.circleMarker([lat, lon], {
          radius: 9, weight: 3, color: "#ffffff", fillColor: "#6a1b9a", fillOpacity: 1, interactive: false,
        }).addTo(map);
        pointMarker.getElement()?.classList.add("patient-point");
      } else {
        pointMarker.setLatLng([lat, lon]);
      }
      pointMarker.bringToFront();
      if (reveal && !map.getBounds().contains([lat, lon])) map.panTo([lat, lon], { animate: false });
    }

    function candidates(list) {
      if (!map) return;
      layer.clearLayers();
      markers.clear();
      list.forEach((c, i) => {
        const icon = L.divIcon({ className: `cand-icon tone-${tone(c)}`, html: `<span>${i + 1}</span>`, iconSize: [26, 26], iconAnchor: [13, 13] });
        const m = L.marker([c.lat, c.lon], { icon, keyboard: false, riseOnHover: true, zIndexOffset: list.length - i }).addTo(layer);
        m.bindTooltip(el("div", { class: "map-tip" }, el("strong", {}, `${i + 1}. ${c.name}`), minutes(c.travel_min)));
        m.on("click", () => {
          const item = document.querySelector(`#candidates li[data-facility="${CSS.escape(c.facility_id)}"]`);
          if (item) { item.scrollIntoView({ block: "nearest" }); item.focus(); }
        });
        m.getElement()?.setAttribute("data-facility", c.facility_id);
        markers.set(c.facility_id, m);
      });
      if (pointMarker) pointMarker.bringToFront();
    }

    // The answer in view: the point and every candidate.
    function fit() {
      if (!map || !pointMarker || !markers.size) return;
      const bounds = L.latLngBounds([pointMarker.getLatLng(), ...[...markers.values()].map((m) => m.getLatLng())]);
      map.fitBounds(bounds.pad(0.15), { maxZoom: 11, animate: false });
    }

    return { init, point, candidates, fit };
  })();

  // ---- the form ----------------------------------------------------------------------------------
  function renderChoices() {
    const need = $("need");
    const chosen = need.value || "seh";
    need.replaceChildren(...NEEDS.map((n) => el("option", { value: n }, needLabel(n))));
    need.value = chosen;
    const caps = $("caps");
    const checked = new Set([...caps.querySelectorAll("input:checked")].map((c) => c.value));
    caps.replaceChildren(...CAPABILITIES.map((cap) => {
      const box = el("input", { type: "checkbox", name: "capability", value: cap, id: `cap-${cap}`, checked: checked.has(cap) });
      box.addEventListener("change", () => { if (state.point) askFromForm(); });
      return el("label", { class: "check", for: `cap-${cap}` }, box, capLabel(cap));
    }));
  }

  function wire() {
    $("signin").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const key = $("key").value.trim();
      if (key) signIn(key);
    });
    $("signout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      showSignIn("dispatch.signin.prompt", {}, "info");
    });
    $("query").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (document.activeElement === $("municipality") && pickMunicipality()) return;
      askFromForm();
    });
    const municipality = $("municipality");
    municipality.addEventListener("input", (ev) => {
      // a pick from the list (not typing): use it at once
      if ((ev.inputType === undefined || ev.inputType === "insertReplacementText") && findMunicipality(municipality.value)) pickMunicipality();
    });
    municipality.addEventListener("change", pickMunicipality);
    for (const id of ["lat", "lon"]) {
      $(id).addEventListener("input", () => { $("municipality").value = ""; state.appliedMunicipality = null; });
      $(id).addEventListener("change", () => {
        // "50.85, 5.69" pasted into one field: both coordinates (decimal points only: "51,19" is one number)
        const both = $(id).value.match(/^\s*(-?\d+\.\d+)\s*(?:[;\s]|,)\s*(-?\d+\.\d+)\s*$/);
        if (both) { $("lat").value = both[1]; $("lon").value = both[2]; }
      });
    }
    $("need").addEventListener("change", () => { if (state.point) askFromForm(); });
    i18n.onChange(() => {
      document.title = t("dispatch.page_title");
      renderChoices();
      renderBanner();
      renderWho();
      if (state.status) setStatus(state.status.key, state.status.vars);
      if (!$("app").hidden) { renderAnswer(); renderHolds(); }
    });
  }

  document.title = t("dispatch.page_title");
  renderChoices();
  wire();
  offerMunicipalities();
  const key = window.capacitySession.takeKey(KEY);
  if (key) signIn(key); else showSignIn("dispatch.signin.prompt", {}, "info");
})();
