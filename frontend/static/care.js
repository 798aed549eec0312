"use strict";
// The GP / basic-care page: today's free ELV, GRZ and psychiatry places, nearest first from a
// municipality, a GP post or typed coordinates (GET /api/v1/places). Polled every 30 s and on every
// filter change; everything drawn here is drawn again when the language changes.
(() => {
  const i18n = window.capacityI18n;
  const t = i18n.t;
  const { el, label, errorText, apiMessage, detail: detailText } = window.capacityCommon;
  i18n.add({
    nl: {
      "care.doc_title": "Vrije plaatsen ELV, GRZ en psychiatrie — ROAZ",
      "care.title": "Vrije plaatsen voor uw patiënt",
      "care.skip": "Naar de lijst",
      "care.signout": "Afmelden",
      "care.signin": "Plaatsen tonen",
      "care.signin_needed": "Meld u aan met uw sleutel.",
      "care.signin_failed": "Aanmelden mislukt: {reason}",
      "care.signin_rejected": "Aanmelden mislukt: deze sleutel wordt niet (meer) geaccepteerd.",
      "care.signin_unreachable": "Aanmelden mislukt: de server is niet bereikbaar. Probeer het zo opnieuw.",
      "care.signed_out": "U bent afgemeld.",
      "care.filters": "Zoeken",
      "care.what": "Wat zoekt u?",
      "care.region": "Regio",
      "care.region.all": "Al mijn regio's",
      "care.units": "Soort plaats",
      "care.unit.elv": "ELV (eerstelijnsverblijf)",
      "care.unit.grz": "GRZ (geriatrische revalidatie)",
      "care.only_free": "Alleen plaatsen met vrije bedden",
      "care.point": "Vanaf waar?",
      "care.point.hint": "Kies een gemeente of huisartsenpost, of typ coördinaten. Zonder startpunt staan de meeste vrije plaatsen bovenaan.",
      "care.municipality": "Gemeente",
      "care.municipality.placeholder": "bijv. Heerlen",
      "care.gp_post": "Huisartsenpost",
      "care.gp_post.none": "— geen —",
      "care.gp_post.empty": "geen huisartsenposten bekend",
      "care.lat": "Breedtegraad",
      "care.lon": "Lengtegraad",
      "care.search": "Lijst bijwerken",
      "care.clear_point": "Geen startpunt",
      "care.list": "Plaatsen",
      "care.caption": "Plaatsen met hun vrije bedden, reistijd en de leeftijd van het cijfer",
      "care.col.facility": "Locatie",
      "care.call.title": "Bel om uw patiënt aan te melden",
      "care.col.city": "Plaats",
      "care.col.unit": "Soort plaats",
      "care.col.free": "Vrij",
      "care.col.free.title": "vrij = beschikbaar min de plaatsen die al voor een patiënt gereserveerd zijn; ? = onbekend",
      "care.col.staffed": "Bemand",
      "care.col.travel": "Reistijd",
      "care.col.travel.title": "geschatte reistijd (ambulancemodel) en hemelsbrede afstand vanaf het startpunt",
      "care.col.age": "Gemeld",
      "care.never": "nooit gemeld",
      "care.unknown.title": "onbekend: deze locatie heeft dit nog nooit gemeld",
      "care.stale.title": "ouder dan de afgesproken meldtermijn van deze locatie",
      "care.minutes": "{n} min",
      "care.km": "{n} km",
      "care.no_point.title": "kies een startpunt voor de reistijd",
      "care.summary": "{places} vrij bij {locations}",
      "care.places.one": "{n} plaats",
      "care.places.many": "{n} plaatsen",
      "care.locations.one": "{n} locatie",
      "care.locations.many": "{n} locaties",
      "care.summary.stale": "(waarvan {n} volgens verouderde cijfers)",
      "care.summary.none": "Geen vrije plaatsen gevonden.",
      "care.summary.none.hint": "Zet ‘Alleen plaatsen met vrije bedden’ uit om ook volle en onbekende plaatsen te zien.",
      "care.summary.empty": "Geen locaties met deze soort plaats in de gekozen regio.",
      "care.summary.invalid": "Lijst niet bijgewerkt: controleer de invoer hierboven.",
      "care.summary.loading": "Lijst laden…",
      "care.order.point": "Gesorteerd op reistijd vanaf {from}; verouderde cijfers onderaan.",
      "care.order.free": "Gesorteerd op de meeste vrije plaatsen; verouderde cijfers onderaan. Kies een startpunt om op reistijd te sorteren.",
      "care.updated": "bijgewerkt {age}",
      "care.loading": "laden…",
      "care.offline": "Geen verbinding met de server — de lijst hieronder is van {age}. Nieuwe poging binnen 30 s.",
      "care.offline.empty": "Geen verbinding met de server. Nieuwe poging binnen 30 s.",
      "care.err.no_unit": "Kies ten minste één soort plaats.",
      "care.err.number": "Typ een getal, bijvoorbeeld 50,89.",
      "care.err.municipality": "Onbekende gemeente: kies er een uit de lijst.",
      "care.err.municipalities": "De lijst met gemeenten is niet beschikbaar ({reason}).",
      "care.err.posts": "Huisartsenposten niet beschikbaar ({reason}).",
      "care.err.point_api": "Ongeldig startpunt — {msg}",
      "care.err.api": "Ongeldige invoer — {msg}",
      "care.err.server": "De server weigert: {msg}",
      "care.phone_hint": "Een vrije plaats is geen toezegging: bel de locatie om uw patiënt aan te melden.",
      "care.footer": "Cijfers zoals de locaties ze melden; verouderd = ouder dan de afgesproken meldtermijn. "
        + "Reistijden zijn schattingen. Gemeenten en regio's: CBS Gebieden in Nederland 2022.",
    },
    en: {
      "care.doc_title": "Free ELV, GRZ and psychiatry places — ROAZ",
      "care.title": "Free places for your patient",
      "care.skip": "Skip to the list",
      "care.signout": "Sign out",
      "care.signin": "Show places",
      "care.signin_needed": "Sign in with your key.",
      "care.signin_failed": "Sign-in failed: {reason}",
      "care.signin_rejected": "Sign-in failed: this key is not (or no longer) accepted.",
      "care.signin_unreachable": "Sign-in failed: the server cannot be reached. Try again shortly.",
      "care.signed_out": "You are signed out.",
      "care.filters": "Search",
      "care.what": "What are you looking for?",
      "care.region": "Region",
      "care.region.all": "All my regions",
      "care.units": "Type of place",
      "care.unit.elv": "ELV (short-stay care)",
      "care.unit.grz": "GRZ (geriatric rehab)",
      "care.only_free": "Only places with free beds",
      "care.point": "From where?",
      "care.point.hint": "Pick a municipality or GP post, or type coordinates. Without a starting point the most free places come first.",
      "care.municipality": "Municipality",
      "care.municipality.placeholder": "e.g. Heerlen",
      "care.gp_post": "GP post",
      "care.gp_post.none": "— none —",
      "care.gp_post.empty": "no GP posts known",
      "care.lat": "Latitude",
      "care.lon": "Longitude",
      "care.search": "Update list",
      "care.clear_point": "No starting point",
      "care.list": "Places",
      "care.caption": "Places with their free beds, travel time and the age of the figure",
      "care.col.facility": "Facility",
      "care.call.title": "Call to refer your patient",
      "care.col.city": "City",
      "care.col.unit": "Type of place",
      "care.col.free": "Free",
      "care.col.free.title": "free = available minus places already held for a patient; ? = unknown",
      "care.col.staffed": "Staffed",
      "care.col.travel": "Travel",
      "care.col.travel.title": "estimated travel time (ambulance model) and straight-line distance from the starting point",
      "care.col.age": "Reported",
      "care.never": "never reported",
      "care.unknown.title": "unknown: this place has never reported it",
      "care.stale.title": "older than this place's agreed reporting interval",
      "care.minutes": "{n} min",
      "care.km": "{n} km",
      "care.no_point.title": "pick a starting point for the travel time",
      "care.summary": "{places} free at {locations}",
      "care.places.one": "{n} place",
      "care.places.many": "{n} places",
      "care.locations.one": "{n} location",
      "care.locations.many": "{n} locations",
      "care.summary.stale": "({n} of them from stale figures)",
      "care.summary.none": "No free places found.",
      "care.summary.none.hint": "Untick ‘Only places with free beds’ to see full and unknown places too.",
      "care.summary.empty": "No facilities with this type of place in the chosen region.",
      "care.summary.invalid": "List not updated: check the input above.",
      "care.summary.loading": "Loading the list…",
      "care.order.point": "Sorted by travel time from {from}; stale figures last.",
      "care.order.free": "Sorted by most free places; stale figures last. Pick a starting point to sort by travel time.",
      "care.updated": "updated {age}",
      "care.loading": "loading…",
      "care.offline": "No connection to the server — the list below is from {age}. Retrying within 30 s.",
      "care.offline.empty": "No connection to the server. Retrying within 30 s.",
      "care.err.no_unit": "Choose at least one type of place.",
      "care.err.number": "Type a number, for example 50.89.",
      "care.err.municipality": "Unknown municipality: pick one from the list.",
      "care.err.municipalities": "The list of municipalities is unavailable ({reason}).",
      "care.err.posts": "GP posts unavailable ({reason}).",
      "care.err.point_api": "Invalid starting point — {msg}",
      "care.err.api": "Invalid input — {msg}",
      "care.err.server": "The server refuses: {msg}",
      "care.phone_hint": "A free place is not a promise: call the place to refer your patient.",
      "care.footer": "Figures as the places report them; stale = older than the agreed reporting interval. "
        + "Travel times are estimates. Municipalities and regions: CBS Gebieden in Nederland 2022.",
    },
  });

  const KEY = "capacity.key";
  const REGION = "capacity.care.region";
  const POINT = "capacity.care.point";
  const ALL = "*";
  const REFRESH_MS = 30_000;
  const TICK_MS = 5_000;
  const POINT_SLOTS = new Set(["query", "query.lat", "query.lon"]);
  const $ = (id) => document.getElementById(id);

  const state = {
    key: null,
    regions: [],
    municipalities: null,  // capacityCommon.loadMunicipalities: {list, find(name), error}
    posts: [],
    origin: null,        // {kind: "municipality"|"post"|"coords", name?, id?, label} — where the coordinates came from
    query: null,         // the URLSearchParams last applied (re-run every 30 s)
    answer: null,        // the last PlacesAnswer
    answerOrigin: null,  // state.origin when it was asked for
    fetchedAt: null,     // Date.now() when it arrived
    seq: 0,
    loading: false,
    offline: false,
    invalid: false,
    errors: new Map(),   // slot → {key, vars}
    signinMessage: { key: "care.signin_needed", vars: {} },
    timers: [],
  };

  const locale = () => (i18n.lang === "en" ? "en-GB" : "nl-NL");
  const decimal = (n, digits) => n.toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const plural = (base, n) => t(`${base}.${n === 1 ? "one" : "many"}`, { n });
  const secondsSinceFetch = () => (state.fetchedAt ? (Date.now() - state.fetchedAt) / 1000 : 0);

  const api = window.capacityCommon.client(() => state.key);
  const findMunicipality = (name) => (state.municipalities ? state.municipalities.find(name) : undefined);

  // -- errors next to the inputs ---------------------------------------------------------------

  const SLOT_INPUTS = {
    "query.region": ["region"],
    "query.unit": ["unit-elv", "unit-grz", "unit-psychiatry"],
    "query.only_free": ["only-free"],
    municipality: ["municipality"],
    gp_post: ["gp-post"],
    "query.lat": ["lat"],
    "query.lon": ["lon"],
    query: ["lat", "lon"],
  };

  function setError(slot, key, vars = {}) {
    state.errors.set(slot, { key, vars });
  }
  function clearErrors(keep = () => false) {
    for (const slot of [...state.errors.keys()]) if (!keep(slot)) state.errors.delete(slot);
  }
  function renderErrors() {
    const invalid = new Set();
    for (const slot of document.querySelectorAll("#filters [data-error-for]")) {
      const error = state.errors.get(slot.dataset.errorFor);
      slot.textContent = error ? t(error.key, error.vars) : "";
      if (error) for (const id of SLOT_INPUTS[slot.dataset.errorFor] || []) invalid.add(id);
    }
    for (const ids of Object.values(SLOT_INPUTS)) {
      for (const id of ids) {
        if (invalid.has(id)) $(id).setAttribute("aria-invalid", "true"); else $(id).removeAttribute("aria-invalid");
      }
    }
  }

  // The API's 422 `detail`: each message at the slot for its `loc` (["query", "lat"] at the
  // latitude, ["query", "unit", 0] at the unit boxes, ["query"] — the point as a whole — under the
  // coordinates); anything else under the form.
  function showApiErrors(detail) {
    for (const item of detail) {
      const loc = Array.isArray(item.loc) ? item.loc.map(String) : [];
      let slot = "general";
      for (let n = loc.length; n > 0; n--) {
        const candidate = loc.slice(0, n).join(".");
        if (candidate in SLOT_INPUTS && (n > 1 || loc.length === 1)) { slot = candidate; break; }
      }
      const msg = apiMessage(item.msg || "invalid");
      const previous = state.errors.get(slot);
      const text = previous ? `${previous.vars.msg}; ${msg}` : msg;
      setError(slot, POINT_SLOTS.has(slot) ? "care.err.point_api" : "care.err.api", { msg: text });
    }
  }

  // -- the list ----------------------------------------------------------------------------------

  const unitName = (type) => label(`unit.${type}`, type);
  const kindName = (kind) => label(`kind.${kind}`, kind);
  const count = (v) => (v === null || v === undefined ? t("unknown") : String(v));

  function demoBadge() {
    return el("span", { class: "demo", title: t("demo.title") }, t("demo.badge"));
  }

  function row(p) {
    const tr = el("tr", { "data-facility": p.facility_id, "data-unit": p.unit, class: p.stale ? "stale" : null });
    const name = el("td", { class: "col-name" }, el("span", { class: "name" }, p.name));
    if (p.synthetic) name.append(" ", demoBadge());
    name.append(el("div", { class: "sub kind" }, kindName(p.kind)));
    if (p.phone) {
      name.append(el("div", { class: "sub phone" }, el("a", { href: `tel:${p.phone.replace(/[^+0-9]/g, "")}`, title: t("care.call.title") }, p.phone)));
    }
    tr.append(name);
    tr.append(el("td", { class: "city" }, p.city || ""));
    tr.append(el("td", { class: "unit" }, unitName(p.unit)));
    const free = p.free === null || p.free === undefined
      ? el("span", { class: "unknown", title: t("care.unknown.title") }, t("unknown"))
      : el("span", { class: p.free > 0 ? "free-some" : "free-none" }, String(p.free));
    tr.append(el("td", { class: "num free" }, free));
    tr.append(el("td", { class: "num staffed" }, count(p.staffed)));
    const travel = el("td", { class: "num travel" });
    if (p.travel_min !== null && p.travel_min !== undefined) {
      travel.append(el("span", { class: "minutes" }, t("care.minutes", { n: Math.round(p.travel_min) })));
      if (p.distance_km !== null && p.distance_km !== undefined) {
        travel.append(el("div", { class: "sub km" }, t("care.km", { n: decimal(p.distance_km, 1) })));
      }
    } else {
      travel.append(el("span", { class: "sub", title: t("care.no_point.title") }, "—"));
    }
    tr.append(travel);
    const age = el("td", { class: "age" });
    if (p.age_s === null || p.age_s === undefined) age.append(el("span", { class: "when" }, t("care.never")));
    else age.append(el("span", { class: "when", title: new Date(p.measured_at).toLocaleString(locale()) }, i18n.age(p.age_s + secondsSinceFetch())));
    if (p.stale) age.append(" ", el("span", { class: "stale-mark", title: t("care.stale.title") }, t("stale")));
    tr.append(age);
    return tr;
  }

  function summaryText() {
    if (state.invalid) return t("care.summary.invalid");
    if (!state.answer) return state.offline ? "" : t("care.summary.loading");
    const places = state.answer.places;
    const withFree = places.filter((p) => p.free > 0);
    if (!withFree.length) {
      if (!places.length && !$("only-free").checked) return t("care.summary.empty");
      return `${t("care.summary.none")} ${$("only-free").checked ? t("care.summary.none.hint") : ""}`.trim();
    }
    const total = withFree.reduce((sum, p) => sum + p.free, 0);
    const locations = new Set(withFree.map((p) => p.facility_id)).size;
    let text = t("care.summary", { places: plural("care.places", total), locations: plural("care.locations", locations) });
    const staleFree = withFree.filter((p) => p.stale).reduce((sum, p) => sum + p.free, 0);
    if (staleFree) text += ` ${t("care.summary.stale", { n: staleFree })}`;
    return text;
  }

  function originLabel() {
    const a = state.answer;
    if (!a || a.lat === null || a.lat === undefined) return null;
    if (state.answerOrigin && state.answerOrigin.label) return state.answerOrigin.label;
    return `${decimal(a.lat, 4)}, ${decimal(a.lon, 4)}`;
  }

  function renderList() {
    const body = $("places").tBodies[0];
    const places = state.answer && !state.invalid ? state.answer.places : [];
    body.replaceChildren(...places.map(row));
    $("places").hidden = !places.length;
    $("demo-note").hidden = !places.some((p) => p.synthetic);
    const summary = summaryText();
    if ($("summary").textContent !== summary) $("summary").textContent = summary;  // announced only when it changes
    const from = originLabel();
    $("order").textContent = !state.answer || state.invalid ? "" : from ? t("care.order.point", { from }) : t("care.order.free");
  }

  function renderStatus() {
    $("updated").textContent = state.fetchedAt ? t("care.updated", { age: i18n.age(secondsSinceFetch()) }) : state.loading ? t("care.loading") : "";
    $("updated").classList.toggle("late", state.offline);
    const banner = $("banner");
    banner.hidden = !state.offline;
    banner.textContent = !state.offline ? "" : state.fetchedAt ? t("care.offline", { age: i18n.age(secondsSinceFetch()) }) : t("care.offline.empty");
  }

  function renderSignin() {
    const { key, vars } = state.signinMessage;
    $("signin-message").textContent = key ? t(key, vars) : "";
  }

  function renderOptions() {
    const all = $("region").querySelector(`option[value="${ALL}"]`);
    if (all) all.textContent = t("care.region.all");
    const none = $("gp-post").querySelector('option[value=""]');
    if (none) none.textContent = state.posts.length ? t("care.gp_post.none") : t("care.gp_post.empty");
  }

  function renderAll() {
    document.title = t("care.doc_title");
    renderOptions();
    renderErrors();
    renderList();
    renderStatus();
    renderSignin();
  }

  // -- asking the API ----------------------------------------------------------------------------

  function parseCoordinate(id) {
    const raw = $(id).value.trim().replace(",", ".");
    if (raw === "") return { empty: true };
    const value = Number(raw);
    return Number.isFinite(value) && /^[-+]?(\d+\.?\d*|\.\d+)$/.test(raw) ? { value } : { bad: true };
  }

  // Read the form into a query; errors this page can see itself are shown without asking.
  function readForm() {
    const query = new URLSearchParams();
    const units = ["elv", "grz", "psychiatry"].filter((u) => $(`unit-${u}`).checked);
    if (!units.length) setError("query.unit", "care.err.no_unit");
    for (const u of units) query.append("unit", u);
    if ($("region").value && $("region").value !== ALL) query.set("region", $("region").value);
    const lat = parseCoordinate("lat"), lon = parseCoordinate("lon");
    if (lat.bad) setError("query.lat", "care.err.number");
    if (lon.bad) setError("query.lon", "care.err.number");
    // One coordinate without the other goes to the API as it is: its answer says what is missing.
    if (!lat.empty && !lat.bad) query.set("lat", String(lat.value));
    if (!lon.empty && !lon.bad) query.set("lon", String(lon.value));
    if ($("only-free").checked) query.set("only_free", "true");
    return query;
  }

  // A filter changed: check it, then ask at once.
  function apply() {
    clearErrors((slot) => slot === "municipality" || slot === "gp_post");
    const query = readForm();
    const local = [...state.errors.keys()].some((slot) => slot !== "municipality" && slot !== "gp_post");
    if (local) {
      state.query = null;
      state.invalid = true;
      state.seq++;  // an answer still on its way is for the old filters
      renderAll();
      return;
    }
    state.query = query;
    refresh();
  }

  async function refresh() {
    if (!state.key || !state.query) return;
    const seq = ++state.seq;
    const origin = state.origin;  // what the answer's point is called, as asked
    state.loading = true;
    renderStatus();
    const result = await api(`/api/v1/places?${state.query}`);
    if (seq !== state.seq) return;  // the filters changed while this was on its way
    state.loading = false;
    state.offline = !result.status;  // no answer at all: keep the last list, marked by the banner
    if (state.offline) { renderAll(); return; }
    if (result.status === 401) {
      signOut({ key: detailText(result.body) ? "care.signin_failed" : "care.signin_rejected", vars: { reason: detailText(result.body) } });
      return;
    }
    clearErrors((slot) => slot === "municipality" || slot === "gp_post");
    if (result.ok) {
      state.answer = result.body;
      state.answerOrigin = origin;
      state.fetchedAt = Date.now();
      state.invalid = false;
    } else if (result.status === 422 && result.body && Array.isArray(result.body.detail)) {
      showApiErrors(result.body.detail);
      state.invalid = true;
    } else if (result.status === 403 || result.status === 404) {
      setError("query.region", "care.err.server", { msg: errorText(result) });
      state.invalid = true;
    } else {
      state.offline = true;  // 5xx: keep the last list, marked by the banner, and try again
    }
    renderAll();
  }

  // -- the starting point --------------------------------------------------------------------------

  function saveOrigin() {
    if (!state.origin) { localStorage.removeItem(POINT); return; }
    localStorage.setItem(POINT, JSON.stringify({ ...state.origin, lat: $("lat").value, lon: $("lon").value }));
  }

  function setCoordinates(lat, lon) {
    $("lat").value = lat === "" ? "" : Number(lat).toFixed(4);
    $("lon").value = lon === "" ? "" : Number(lon).toFixed(4);
  }

  function pickMunicipality(m) {
    state.errors.delete("municipality");
    $("municipality").value = m.name;
    $("gp-post").value = "";
    setCoordinates(m.lat, m.lon);
    state.origin = { kind: "municipality", name: m.name, label: m.name };
    saveOrigin();
    apply();
  }

  function clearPoint() {
    $("municipality").value = "";
    $("gp-post").value = "";
    setCoordinates("", "");
    state.origin = null;
    state.errors.delete("municipality");
    saveOrigin();
    apply();
  }

  let typing = null;
  $("municipality").addEventListener("input", () => {
    clearTimeout(typing);
    const m = findMunicipality($("municipality").value);
    if (m && !(state.origin && state.origin.kind === "municipality" && state.origin.name === m.name)) {
      typing = setTimeout(() => pickMunicipality(m), 250);  // "Beek" is also the start of "Beekdaelen"
    }
  });
  $("municipality").addEventListener("change", () => {
    clearTimeout(typing);
    const value = $("municipality").value.trim();
    const m = findMunicipality(value);
    if (m) {
      if (!(state.origin && state.origin.kind === "municipality" && state.origin.name === m.name)) pickMunicipality(m);
      return;
    }
    if (!value) {
      state.errors.delete("municipality");
      if (state.origin && state.origin.kind === "municipality") clearPoint(); else renderErrors();
      return;
    }
    setError("municipality", state.municipalities && state.municipalities.list.length ? "care.err.municipality" : "care.err.municipalities",
      { reason: (state.municipalities && state.municipalities.error) || "" });
    renderErrors();
  });

  $("gp-post").addEventListener("change", () => {
    const post = state.posts.find((p) => p.id === $("gp-post").value);
    if (!post) {
      if (state.origin && state.origin.kind === "post") clearPoint();
      return;
    }
    $("municipality").value = "";
    state.errors.delete("municipality");
    setCoordinates(post.lat, post.lon);
    state.origin = { kind: "post", id: post.id, label: `${post.name} (${post.city})` };
    saveOrigin();
    apply();
  });

  for (const id of ["lat", "lon"]) {
    $(id).addEventListener("change", () => {
      $("municipality").value = "";
      $("gp-post").value = "";
      state.errors.delete("municipality");
      const both = $("lat").value.trim() !== "" && $("lon").value.trim() !== "";
      const neither = $("lat").value.trim() === "" && $("lon").value.trim() === "";
      state.origin = both ? { kind: "coords", label: null } : null;
      saveOrigin();
      if (both || neither) apply();  // half a point waits for the other half (or for "Update list")
    });
  }

  $("clear-point").addEventListener("click", clearPoint);
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const m = findMunicipality($("municipality").value);
    if (m && !(state.origin && state.origin.kind === "municipality" && state.origin.name === m.name)) { pickMunicipality(m); return; }
    apply();
  });
  for (const id of ["unit-elv", "unit-grz", "unit-psychiatry", "only-free"]) $(id).addEventListener("change", apply);

  $("region").addEventListener("change", () => {
    localStorage.setItem(REGION, $("region").value);
    apply();
    loadPosts();
  });

  // -- reference lists -----------------------------------------------------------------------------

  async function offerMunicipalities() {
    state.municipalities = await window.capacityCommon.loadMunicipalities($("municipalities"));
    if (state.municipalities.error) {
      setError("municipality", "care.err.municipalities", { reason: state.municipalities.error });
      renderErrors();
    }
  }

  async function loadPosts() {
    const region = $("region").value;
    const query = new URLSearchParams({ kind: "gp_post" });
    if (region && region !== ALL) query.set("region", region);
    const chosen = state.origin && state.origin.kind === "post" ? state.origin.id : $("gp-post").value;
    const result = await api(`/api/v1/facilities?${query}`);
    if (region !== $("region").value) return;  // the region changed meanwhile; that load draws the list
    state.errors.delete("gp_post");
    if (!result.ok) {
      state.posts = [];
      setError("gp_post", "care.err.posts", { reason: errorText(result) });
    } else {
      state.posts = result.body;
    }
    renderPosts(chosen);
    renderErrors();
  }

  // The GP posts as options (grouped by region when every region is shown), keeping the choice.
  function renderPosts(chosen = $("gp-post").value) {
    const select = $("gp-post");
    const options = [el("option", { value: "" })];
    if ($("region").value === ALL && state.posts.length) {
      const names = new Map(state.regions.map((r) => [r.id, r.name]));
      const groups = new Map();
      for (const p of state.posts) {
        if (!groups.has(p.region_id)) groups.set(p.region_id, el("optgroup", { label: `${p.region_id} ${names.get(p.region_id) || ""}`.trim() }));
        groups.get(p.region_id).append(postOption(p));
      }
      options.push(...groups.values());
    } else {
      options.push(...state.posts.map(postOption));
    }
    select.replaceChildren(...options);
    select.value = state.posts.some((p) => p.id === chosen) ? chosen : "";
    renderOptions();
  }
  const postOption = (p) => el("option", { value: p.id }, p.synthetic ? `${p.name} (${p.city}) — ${t("demo.badge")}` : `${p.name} (${p.city})`);

  // -- signing in and out --------------------------------------------------------------------------

  function restoreOrigin() {
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(POINT) || "null"); } catch (_) { saved = null; }
    if (!saved || typeof saved !== "object") return;
    $("lat").value = saved.lat || "";
    $("lon").value = saved.lon || "";
    if (saved.kind === "municipality") $("municipality").value = saved.name || "";
    state.origin = { kind: saved.kind, name: saved.name, id: saved.id, label: saved.label || null };
  }

  function stopTimers() {
    for (const timer of state.timers) clearInterval(timer);
    state.timers = [];
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    stopTimers();
    state.key = null;
    state.seq++;
    state.answer = null;
    state.fetchedAt = null;
    state.offline = false;
    state.signinMessage = message;
    $("app").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    renderAll();
    $("key").value = "";
    $("key").focus();
  }

  async function start(key) {
    state.key = key;
    $("signin").hidden = true;
    state.loading = true;
    renderStatus();
    const result = await api("/api/v1/regions");
    state.loading = false;
    if (!result.status) {
      signOut({ key: "care.signin_unreachable", vars: {} });
      return;
    }
    if (!result.ok) {
      const reason = detailText(result.body);
      signOut({ key: reason ? "care.signin_failed" : "care.signin_rejected", vars: { reason } });
      return;
    }
    state.regions = result.body;
    const select = $("region");
    const options = state.regions.map((r) => el("option", { value: r.id }, `${r.id} ${r.name}`));
    if (state.regions.length !== 1) options.unshift(el("option", { value: ALL }));
    select.replaceChildren(...options);
    const remembered = localStorage.getItem(REGION);
    if ([...select.options].some((o) => o.value === remembered)) select.value = remembered;
    state.signinMessage = { key: null, vars: {} };
    $("app").hidden = false;
    $("signout").hidden = false;
    restoreOrigin();
    renderAll();
    await Promise.all([offerMunicipalities(), loadPosts()]);
    apply();
    stopTimers();
    state.timers.push(setInterval(refresh, REFRESH_MS));
    state.timers.push(setInterval(() => { renderList(); renderStatus(); }, TICK_MS));
  }

  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $("key").value = "";
    start(key);
  });
  $("signout").addEventListener("click", () => signOut({ key: "care.signed_out", vars: {} }));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.fetchedAt && Date.now() - state.fetchedAt > REFRESH_MS) refresh();
  });
  i18n.onChange(() => {
    renderPosts();  // the demo label in the post names
    renderAll();
  });

  const key = window.capacitySession.takeKey(KEY);
  if (key) start(key);
  else { $("signin").hidden = false; renderAll(); }
})();
