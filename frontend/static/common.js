"use strict";
// What every page script needs, written once: building elements, labels with a fallback, calling the
// API and saying what went wrong in its words, the municipalities, and NEDOCS bands. A plain script
// (like i18n.js and session.js), loaded after i18n.js and /api/v1/nedocs-bands.js, before the page's own.
window.capacityCommon = (() => {
  const i18n = window.capacityI18n;

  // An element with attributes and children; a null, undefined or false attribute or child is left
  // out (so `cond ? x : null` reads as "x when cond"), a true attribute is present without a value.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
    return node;
  }

  // A translation, or `fallback` when there is none (a kind or unit type this page does not know yet).
  function label(key, fallback) {
    const text = i18n.t(key);
    return text === key ? fallback : text;
  }

  // One call to the API: {status, ok, body, error}. It never throws: a failed connection is status 0
  // with the browser's words in `error`; a body that is not JSON is null (the status says enough).
  // `key` (a sign-in key, or "" / null for none) sends it as a bearer token; `json` is sent as the body.
  async function api(path, { key = null, method = "GET", json, headers = {} } = {}) {
    const sent = { ...headers };
    if (key) sent.Authorization = `Bearer ${key}`;
    if (json !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers: sent, body: json === undefined ? undefined : JSON.stringify(json) });
    } catch (err) {
      return { status: 0, ok: false, body: null, error: err.message };
    }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    return { status: response.status, ok: response.ok, body, error: null };
  }

  // The API for a page signed in with a key: `key()` is asked at each call; an option `key` ("" for none) wins.
  const client = (key) => (path, options = {}) => api(path, { ...options, key: options.key ?? key() });

  // A validation message as people read it (pydantic prefixes a validator's own words).
  const apiMessage = (msg) => String(msg).replace(/^Value error, /, "");
  // The API's own words for a refusal (`detail` as a string), or null.
  const detail = (body) => (body && typeof body.detail === "string" && body.detail ? body.detail : null);
  // What went wrong with an answer, in the API's words when it gave some: its detail, a 422's
  // messages, else the HTTP status, or for no answer at all the browser's words.
  function errorText(result) {
    const body = result.body;
    if (detail(body)) return body.detail;
    if (body && Array.isArray(body.detail) && body.detail.length) return body.detail.map((d) => apiMessage(d.msg)).join("; ");
    return result.status ? `HTTP ${result.status}` : result.error || "?";
  }

  // The municipalities (CBS 2022, public reference data) for a point picker: sorted by name, offered
  // in `datalist`, found by name in any case. {find, list, error}: `error` says why there are none.
  async function loadMunicipalities(datalist) {
    const result = await api("/api/v1/municipalities");
    const list = result.ok && Array.isArray(result.body) ? [...result.body].sort((a, b) => a.name.localeCompare(b.name, "nl")) : [];
    const byName = new Map(list.map((m) => [m.name.toLocaleLowerCase("nl"), m]));
    if (datalist) datalist.replaceChildren(...list.map((m) => el("option", { value: m.name }, m.region_id)));
    return {
      list,
      error: result.ok ? null : errorText(result),
      find: (name) => byName.get(String(name).trim().toLocaleLowerCase("nl")),
    };
  }

  // NEDOCS bands (upper bounds inclusive) as the app serves them from capacity/domain.py NEDOCS_BANDS:
  // events carry the score only, and a score being typed has no band yet.
  const NEDOCS_BANDS = window.capacityNedocsBands;
  const nedocsBand = (score) => (NEDOCS_BANDS.find(([upper]) => score <= upper) || NEDOCS_BANDS[NEDOCS_BANDS.length - 1])[1];

  return { el, label, api, client, apiMessage, detail, errorText, loadMunicipalities, nedocsBand };
})();
