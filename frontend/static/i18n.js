"use strict";
// Labels in Dutch by default, English on request (remembered per browser). Each page script adds its
// own strings with capacityI18n.add({nl: {...}, en: {...}}); markup names them with data-i18n
// (text), data-i18n-title, data-i18n-placeholder and data-i18n-aria-label.
window.capacityI18n = (() => {
  const STORE = "capacity.lang";
  const strings = {
    nl: {
      "lang.switch": "English",
      "lang.switch.title": "Switch to English",
      "nav.board": "Regiobord",
      "nav.dispatch": "Meldkamer",
      "nav.report": "Capaciteit melden",
      "nav.care": "Huisarts / eerstelijn",
      "nav.coordinator": "Coördinatie",
      "nav.label": "Pagina's",
      "demo.badge": "demodata",
      "demo.title": "Gesimuleerde locatie voor de demo, geen echte zorgaanbieder",
      "key.label": "Sleutel",
      "key.hint": "Uw sleutel blijft alleen in dit browsertabblad (session storage).",
      "age.s": "{n} s geleden",
      "age.min": "{n} min geleden",
      "age.h": "{h} u {m} min geleden",
      "age.never": "nooit",
      "unknown": "?",
      "stale": "verouderd",
      "seh.open": "open",
      "seh.busy": "druk",
      "seh.stop": "stop",
      "seh.closed": "gesloten",
      "seh.stop_expired": "stop verlopen — niet bevestigd",
      "seh.none": "geen melding",
      "seh.no_seh": "geen SEH",
      "unit.seh_places": "SEH-plaatsen",
      "unit.ic_adult": "IC volwassenen",
      "unit.nicu": "NICU",
      "unit.picu": "PICU",
      "unit.medium_care": "medium care",
      "unit.ccu": "CCU",
      "unit.stroke": "stroke unit",
      "unit.ward_general": "verpleegafdeling",
      "unit.paediatrics": "kinderafdeling",
      "unit.obstetrics": "verloskunde",
      "unit.elv": "ELV",
      "unit.grz": "GRZ",
      "unit.psychiatry": "psychiatrie",
      "kind.seh": "ziekenhuis met SEH",
      "kind.seh_limited": "ziekenhuis, SEH beperkt open",
      "kind.seh_unconfirmed": "ziekenhuis",
      "kind.hospital": "ziekenhuis",
      "kind.hospital_no_seh": "ziekenhuis zonder SEH",
      "kind.gp_post": "huisartsenpost",
      "kind.care_home": "verpleeghuis",
      "kind.rehab_centre": "revalidatiecentrum",
      "kind.mental_health": "GGZ-instelling",
      "kind.basic_care_centre": "eerstelijnsverblijf / basiszorg",
      "reason.crowding": "drukte",
      "reason.no_ic_bed": "geen IC-bed",
      "reason.staffing": "personeelstekort",
      "reason.equipment": "apparatuur defect",
      "reason.ict_failure": "ICT-storing",
      "reason.calamity": "calamiteit",
      "reason.other": "anders",
      "reason.opening_hours": "buiten openingstijden",
      "band.not_busy": "niet druk",
      "band.busy": "druk",
      "band.extremely_busy": "zeer druk",
      "band.overcrowded": "overvol",
      "band.severely_overcrowded": "ernstig overvol",
      "band.dangerously_overcrowded": "gevaarlijk overvol",
    },
    en: {
      "lang.switch": "Nederlands",
      "lang.switch.title": "Schakel naar Nederlands",
      "nav.board": "Regional board",
      "nav.dispatch": "Dispatch",
      "nav.report": "Report capacity",
      "nav.care": "GP / basic care",
      "nav.coordinator": "Coordination",
      "nav.label": "Pages",
      "demo.badge": "demo data",
      "demo.title": "Simulated place for the demo, not a real care provider",
      "key.label": "Key",
      "key.hint": "Your key stays in this browser tab (session storage) only.",
      "age.s": "{n} s ago",
      "age.min": "{n} min ago",
      "age.h": "{h} h {m} min ago",
      "age.never": "never",
      "unknown": "?",
      "stale": "stale",
      "seh.open": "open",
      "seh.busy": "busy",
      "seh.stop": "stop",
      "seh.closed": "closed",
      "seh.stop_expired": "stop expired — unconfirmed",
      "seh.none": "no report",
      "seh.no_seh": "no SEH",
      "unit.seh_places": "SEH places",
      "unit.ic_adult": "ICU adult",
      "unit.nicu": "NICU",
      "unit.picu": "PICU",
      "unit.medium_care": "medium care",
      "unit.ccu": "CCU",
      "unit.stroke": "stroke unit",
      "unit.ward_general": "general ward",
      "unit.paediatrics": "paediatrics",
      "unit.obstetrics": "obstetrics",
      "unit.elv": "ELV (short stay)",
      "unit.grz": "GRZ (rehab)",
      "unit.psychiatry": "psychiatry",
      "kind.seh": "hospital with SEH",
      "kind.seh_limited": "hospital, SEH limited hours",
      "kind.seh_unconfirmed": "hospital",
      "kind.hospital": "hospital",
      "kind.hospital_no_seh": "hospital without SEH",
      "kind.gp_post": "GP post",
      "kind.care_home": "care home",
      "kind.rehab_centre": "rehabilitation centre",
      "kind.mental_health": "mental-health clinic",
      "kind.basic_care_centre": "basic-care centre",
      "reason.crowding": "crowding",
      "reason.no_ic_bed": "no ICU bed",
      "reason.staffing": "staff shortage",
      "reason.equipment": "equipment failure",
      "reason.ict_failure": "ICT failure",
      "reason.calamity": "major incident",
      "reason.other": "other",
      "reason.opening_hours": "outside opening hours",
      "band.not_busy": "not busy",
      "band.busy": "busy",
      "band.extremely_busy": "extremely busy",
      "band.overcrowded": "overcrowded",
      "band.severely_overcrowded": "severely overcrowded",
      "band.dangerously_overcrowded": "dangerously overcrowded",
    },
  };
  const listeners = [];
  let lang = localStorage.getItem(STORE) === "en" ? "en" : "nl";

  function t(key, vars = {}) {
    const text = strings[lang][key] ?? strings.nl[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
  }

  function apply(root = document) {
    document.documentElement.lang = lang;
    for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const attr of ["title", "placeholder", "aria-label"]) {
      const data = `data-i18n-${attr}`;
      for (const node of root.querySelectorAll(`[${data}]`)) node.setAttribute(attr, t(node.getAttribute(data)));
    }
  }

  function setLang(next) {
    lang = next === "en" ? "en" : "nl";
    localStorage.setItem(STORE, lang);
    apply();
    for (const listener of listeners) listener(lang);
  }

  // A figure's age in words, from seconds.
  function age(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return t("age.s", { n: s });
    if (s < 3600) return t("age.min", { n: Math.floor(s / 60) });
    return t("age.h", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  // The language button and the page links, into an element with id "site-nav" if the page has one.
  function mountNav() {
    const nav = document.getElementById("site-nav");
    if (!nav) return;
    nav.setAttribute("data-i18n-aria-label", "nav.label");
    const here = location.pathname;
    for (const [href, key] of [["/", "nav.board"], ["/dispatch", "nav.dispatch"], ["/care", "nav.care"], ["/coordinator", "nav.coordinator"], ["/report", "nav.report"]]) {
      const link = document.createElement("a");
      link.href = href;
      link.dataset.i18n = key;
      if (href === here) link.setAttribute("aria-current", "page");
      nav.append(link);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.id = "lang";
    button.className = "lang";
    button.dataset.i18n = "lang.switch";
    button.setAttribute("data-i18n-title", "lang.switch.title");
    button.addEventListener("click", () => setLang(lang === "nl" ? "en" : "nl"));
    nav.append(button);
  }

  document.addEventListener("DOMContentLoaded", () => {
    mountNav();
    apply();
  });

  return {
    add(dict) {
      for (const code of Object.keys(strings)) Object.assign(strings[code], dict[code] || {});
    },
    t,
    apply,
    age,
    setLang,
    get lang() {
      return lang;
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
})();
