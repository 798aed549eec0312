// Hospital entry: a facility key signs in; the form sends one report through the same API an
// integration uses. The API's validation messages are shown next to the field they name.
(() => {
  "use strict";
  const KEY = "capacity.facility-key";
  const UNIT_TYPES = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
    "paediatrics", "obstetrics", "elv", "grz", "psychiatry"];
  const $ = (id) => document.getElementById(id);
  let me = null;

  const takeKeyFromFragment = () => window.capacitySession.takeKey(KEY);

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY)}`, ...(options.headers || {}) };
    const response = await fetch(path, { ...options, headers });
    let body = null;
    try { body = await response.json(); } catch (_) { body = { detail: response.statusText }; }
    return { response, body };
  }

  function field(loc) { return document.querySelector(`[data-loc="${loc}"]`); }

  function clearErrors() {
    document.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
    document.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  }

  function showError(loc, message) {
    // The closest place the form has for this location: the field itself, else its parents.
    const parts = loc.slice();
    while (parts.length) {
      const key = parts.join(".");
      const slot = document.querySelector(`[data-error-for="${key}"]`);
      if (slot) {
        slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
        const input = field(key);
        if (input) input.classList.add("invalid");
        return;
      }
      parts.pop();
    }
    $("result").textContent = message;
  }

  function renderUnits(state) {
    const shown = new Map((state.units || []).map((u) => [u.type, u]));
    const rows = UNIT_TYPES.map((type) => {
      const now = shown.get(type);
      const text = now ? `${now.available ?? "?"} / ${now.staffed ?? "?"}` : "not reported";
      return `<tr data-unit="${type}"><th scope="row">${type}</th>` +
        ["staffed", "occupied", "available"].map((k) =>
          `<td><input type="number" min="0" step="1" inputmode="numeric" aria-label="${type} ${k}" data-count="${k}"></td>`).join("") +
        `<td class="now">${text}</td></tr>`;
    });
    $("units").innerHTML = rows.join("");
  }

  async function load() {
    const { response, body } = await api(`/api/v1/facilities/${encodeURIComponent(me.facility_id)}`);
    if (!response.ok) { $("result").textContent = body.detail; return; }
    $("who").textContent = `${body.name} (${body.city}) — key ${me.label}`;
    renderUnits(body);
    const seh = body.seh;
    $("seh-now").textContent = seh ? `now: ${seh.status}${seh.reason ? ` (${seh.reason})` : ""}` : "now: not reported";
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
    $("result").textContent = "";
    $("result").className = "";
    const { report, rowIndex } = collect();
    if (report.seh && report.seh.status === "stop" && (!report.seh.reason || !report.seh.expected_until)) {
      if (!report.seh.reason) showError(["body", "seh", "reason"], "a stop needs a reason");
      if (!report.seh.expected_until) showError(["body", "seh", "expected_until"], "a stop needs an expected end");
      return;
    }
    const { response, body } = await api(`/api/v1/facilities/${encodeURIComponent(me.facility_id)}/reports`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(report),
    });
    if (response.ok) {
      $("result").textContent = `Saved: event ${body.event_id}${body.duplicate ? " (already applied)" : ""}`;
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
    $("result").textContent = typeof body.detail === "string" ? body.detail : `refused (${response.status})`;
  }

  async function start() {
    const { response, body } = await api("/api/v1/keys/me");
    if (!response.ok || body.role !== "facility") {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      $("report").hidden = true;
      $("signin-error").textContent = response.ok ? "this page needs a facility key" : body.detail;
      return;
    }
    me = body;
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
    if (takeKeyFromFragment()) start(); else $("signin").hidden = false;
  });
})();
