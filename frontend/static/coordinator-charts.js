"use strict";
// The coordinator page's charts and clock, on uPlot (vendor/uplot, MIT): a stacked bar of stop
// minutes per local day and SEH, and lines over time (free places per unit type, NEDOCS and waiting
// times per SEH). Times are Europe/Amsterdam whatever the browser's zone, as the API counts days.
// A null value is drawn as a gap, never as zero. window.coordinatorCharts holds the drawn charts
// (name → uPlot) so tests and curious people can read what is on screen.
window.capacityCoordinatorCharts = (() => {
  const i18n = window.capacityI18n;
  const t = i18n.t;
  const TZ = "Europe/Amsterdam";
  const HOUR = 3600_000;
  const DAY = 24 * HOUR;
  // Okabe–Ito and Tableau hues, told apart with colour-blindness too; repeated with a dash beyond 12.
  const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#6a3d9a", "#8c6d31",
    "#1b9e77", "#b22222", "#4d4d4d", "#f0c000"];
  const charts = {};
  window.coordinatorCharts = charts;

  // -- Europe/Amsterdam time -------------------------------------------------------------------
  const partsFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  // {y, m (1–12), d, h, mi} of a moment on the wall clocks of Amsterdam.
  function local(ms) {
    const p = Object.fromEntries(partsFormat.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
    return { y: +p.year, m: +p.month, d: +p.day, h: +p.hour, mi: +p.minute, s: +p.second };
  }
  const offset = (ms) => {
    const p = local(ms);
    return Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi, p.s) - Math.floor(ms / 1000) * 1000;
  };
  // Local midnight of y-m-d (month 1-based; a day or month past the end rolls over) as epoch ms.
  function midnight(y, m, d) {
    const wall = Date.UTC(y, m - 1, d);
    return wall - offset(wall - offset(wall));
  }
  // "2026-10-01" → its local midnight; null for anything else.
  function dateValue(text) {
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
    return match ? midnight(+match[1], +match[2], +match[3]) : null;
  }
  const isoDate = (ms) => {
    const p = local(ms);
    return `${p.y}-${String(p.m).padStart(2, "0")}-${String(p.d).padStart(2, "0")}`;
  };
  const locale = () => (i18n.lang === "en" ? "en-GB" : "nl-NL");
  const format = (ms, options) => new Date(ms).toLocaleString(locale(), { timeZone: TZ, ...options });

  // The step that keeps a range to at most ~400 points per series (the API's steps): a 90-day
  // series at 1h would be 2,160 points per line and a pressure answer of tens of thousands.
  function stepFor(spanMs) {
    const days = spanMs / DAY;
    if (days <= 14) return "1h";
    if (days <= 45) return "3h";
    if (days <= 100) return "6h";
    if (days <= 200) return "12h";
    return "1d";
  }

  // -- drawing -------------------------------------------------------------------------------
  const colour = (i) => PALETTE[i % PALETTE.length];
  const dash = (i) => (i >= PALETTE.length ? [6, 3] : undefined);

  // uPlot's date names in the page's language (its own are English only).
  function names() {
    const month = (style) => [...Array(12).keys()].map((m) => new Date(Date.UTC(2026, m, 15)).toLocaleString(locale(), { month: style, timeZone: "UTC" }));
    const day = (style) => [...Array(7).keys()].map((d) => new Date(Date.UTC(2026, 2, 1 + d)).toLocaleString(locale(), { weekday: style, timeZone: "UTC" }));
    return { MMMM: month("long"), MMM: month("short"), WWWW: day("long"), WWW: day("short") };
  }

  const sizeOf = (box) => {
    const width = Math.max(260, Math.floor(box.clientWidth || box.parentElement.clientWidth || 600));
    return { width, height: width < 500 ? 210 : 260 };
  };

  // Time labels as people here write them ("14:00", "7 dec"): the date under the first time of each day.
  const dayText = (ms) => format(ms, { day: "numeric", month: "short" });
  function timeValues(u, splits, axisIdx, space, incr) {
    let lastDay = null;
    return splits.map((s) => {
      const ms = s * 1000, day = dayText(ms);
      if (incr >= 86400) return day;
      const time = format(ms, { hour: "2-digit", minute: "2-digit" });
      const text = day !== lastDay ? `${time}\n${day}` : time;
      lastDay = day;
      return text;
    });
  }
  // A bar per local day, labelled under the bar; every few days when they would crowd.
  function daySplits(u) {
    const xs = u.data[0];
    const px = Math.max(1, u.bbox.width / (window.devicePixelRatio || 1));
    const every = Math.max(1, Math.ceil((xs.length * 58) / px));
    return xs.filter((_, i) => i % every === 0);
  }

  const axisFont = "12px system-ui, sans-serif";
  function axes(yLabel, x = {}) {
    const base = { stroke: "#3a4651", font: axisFont, labelFont: axisFont, grid: { stroke: "#e3e7eb", width: 1 }, ticks: { stroke: "#c4ccd4", width: 1 } };
    return [{ ...base, values: timeValues, space: 64, size: 44, ...x }, { ...base, label: yLabel, labelSize: 18, size: 44 }];
  }
  // The legend shows values only under the cursor: "–" when there is none, "?" for an unknown figure.
  const shown = (idx, v, text) => (idx === null || idx === undefined ? "–" : v === null || v === undefined ? "?" : text(v));

  // Replace chart `name` in `box` (an element) with a new one; `empty` is said instead when nothing is known.
  function draw(name, box, options, data, emptyText) {
    if (charts[name]) { charts[name].destroy(); delete charts[name]; }
    box.replaceChildren();
    const known = data.slice(1).some((s) => s.some((v) => v !== null && v !== undefined));
    box.classList.toggle("empty", !known);
    box.dataset.points = String(data[0].length);
    if (!known) {
      box.append(window.capacityCommon.el("p", { class: "no-data" }, emptyText || t("coord.chart.empty")));
    }
    const opts = {
      ...sizeOf(box),
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), TZ),
      fmtDate: (tpl) => window.uPlot.fmtDate(tpl, names()),
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      legend: { live: true },
      ...options,
    };
    const chart = new window.uPlot(opts, data, box);
    chart.root.querySelector("canvas")?.setAttribute("aria-hidden", "true");
    charts[name] = chart;
    return chart;
  }

  const minutesText = (v) => `${Math.round(v)}`;

  // Stop minutes per local day, stacked per SEH. `days`: local midnights (ms); `rows`: [{id, name, minutes: [per day]}].
  // uPlot draws bars per series, so each series is the running sum up to its SEH, drawn largest first.
  function stopBars(box, { days, rows, xRange }) {
    const sums = [];
    let running = days.map(() => 0);
    for (const row of rows) {
      running = running.map((v, i) => v + (row.minutes[i] || 0));
      sums.push(running);
    }
    const order = rows.map((_, i) => i).reverse();
    const series = [{ label: t("coord.chart.day"), value: (u, ts) => (ts === null ? "–" : format(ts * 1000, { day: "numeric", month: "short" })) }];
    const data = [days.map((ms) => ms / 1000)];
    for (const i of order) {
      const row = rows[i];
      series.push({
        label: row.name,
        stroke: colour(i),
        fill: colour(i),
        width: 0,
        paths: window.uPlot.paths.bars({ size: [0.7, 48], align: 0 }),
        points: { show: false },
        value: (u, v, si, idx) => shown(idx, row.minutes[idx], minutesText),
      });
      data.push(sums[i]);
    }
    const [from, to] = xRange.map((ms) => ms / 1000);
    return draw("stops", box, {
      series,
      scales: { x: { time: true, range: () => [from, to] }, y: { range: (u, min, max) => [0, Math.max(60, max * 1.05)] } },
      axes: axes(t("coord.chart.minutes"), { splits: daySplits, values: (u, splits) => splits.map((x) => dayText(x * 1000)), grid: { show: false } }),
    }, data, t("coord.chart.no_stops"));
  }

  // Lines over time: `at` (ms per bucket), `lines`: [{label, values (null = gap), colour?}].
  function lines(name, box, { at, lines: given, yLabel, xRange, yMax, hidden = new Set(), emptyText }) {
    const series = [{ label: t("coord.chart.time"), value: (u, ts) => (ts === null ? "–" : format(ts * 1000, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" })) }];
    const data = [at.map((ms) => ms / 1000)];
    given.forEach((line, i) => {
      series.push({
        label: line.label,
        stroke: line.colour || colour(i),
        dash: line.dash || dash(i),
        width: 2,
        spanGaps: false,
        show: !hidden.has(line.key),
        points: { show: at.length <= 60, size: 4 },
        value: (u, v, si, idx) => shown(idx, v, (x) => String(Math.round(x))),
      });
      data.push(line.values);
    });
    const [from, to] = xRange.map((ms) => ms / 1000);
    return draw(name, box, {
      series,
      scales: { x: { time: true, range: () => [from, to] }, y: { range: (u, min, max) => [0, Math.max(yMax || 5, (max || 0) * 1.1)] } },
      axes: axes(yLabel),
    }, data, emptyText);
  }

  // Every chart follows its box's width (a phone turned, a window resized, a page printed).
  function fit() {
    for (const chart of Object.values(charts)) {
      const box = chart.root.parentElement;
      if (box) chart.setSize(sizeOf(box));
    }
  }
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(fit, 120);
  });
  window.addEventListener("beforeprint", fit);
  window.addEventListener("afterprint", fit);

  return { TZ, HOUR, DAY, local, midnight, dateValue, isoDate, format, stepFor, colour, dash, stopBars, lines, fit, charts };
})();
