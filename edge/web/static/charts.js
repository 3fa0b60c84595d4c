// edge-track console: the last minute as line charts, drawn on plain canvases (no library, no CDN).
"use strict";
const WINDOW_S = 60;
const PAN = "#ffb74d", TILT = "#4fc3f7";
// How each chart scales: "unit" fixes [0, 1], "zero" runs from 0 to the data, "sym" is centred on 0.
const CHARTS = [
  { id: "chart-score", title: "score", scale: "unit", series: [{ key: "score", name: "", color: "#9ccc65" }], digits: 2 },
  { id: "chart-error", title: "centring error °", scale: "sym", span: 1, digits: 2,
    series: [{ key: "error_yaw_deg", name: "pan", color: PAN }, { key: "error_pitch_deg", name: "tilt", color: TILT }] },
  { id: "chart-rate", title: "commanded rate °/s", scale: "sym", span: 5, digits: 1,
    series: [{ key: "yaw_dps", name: "pan", color: PAN }, { key: "pitch_dps", name: "tilt", color: TILT }] },
  { id: "chart-fps", title: "fps", scale: "zero", span: 10, digits: 1, series: [{ key: "fps", name: "", color: "#e0e0e0" }] },
  { id: "chart-latency", title: "capture → command ms", scale: "zero", span: 50, digits: 0,
    series: [{ key: "latency_ms", name: "", color: "#f06292" }] },
];
const STATE_TINT = { TRACKING: "rgba(29, 122, 51, 0.28)", LOST: "rgba(163, 32, 32, 0.4)" };

const samples = { now: 0, t: [], state: [] };
for (const chart of CHARTS) for (const s of chart.series) samples[s.key] = [];

// Append the samples of one /api/history answer and forget those older than the window.
function addHistory(reply) {
  // The service restarted (its clock starts at 0 again): what is drawn is another run's.
  if (reply.now < samples.now) for (const key of Object.keys(samples)) if (key !== "now") samples[key].length = 0;
  samples.now = reply.now;
  for (const key of Object.keys(samples)) if (key !== "now") samples[key].push(...(reply[key] || []));
  let old = 0;
  while (old < samples.t.length && samples.t[old] < reply.now - WINDOW_S) old++;
  if (old) for (const key of Object.keys(samples)) if (key !== "now") samples[key].splice(0, old);
}

function range(chart, values) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  const top = finite.length ? Math.max(...finite.map(Math.abs)) : 0;
  if (chart.scale === "unit") return [0, 1];
  const hi = nice(Math.max(chart.span, top * 1.1));
  return chart.scale === "sym" ? [-hi, hi] : [0, hi];
}

// The round number at or above v (1, 1.5, 2, 3, 5, 7.5 times a power of ten): labels read at a glance.
function nice(v) {
  const power = Math.pow(10, Math.floor(Math.log10(v)));
  for (const step of [1, 1.5, 2, 3, 5, 7.5, 10]) if (step * power >= v * 0.999) return step * power;
  return 10 * power;
}

function label(v, digits) { return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits); }

function drawChart(chart) {
  const canvas = document.getElementById(chart.id);
  if (!canvas) return;
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#181818"; ctx.fillRect(0, 0, w, h);
  const left = 38, right = w - 6, top = 16, bottom = h - 13;
  const x = (t) => left + (t - (samples.now - WINDOW_S)) / WINDOW_S * (right - left);
  const [lo, hi] = range(chart, chart.series.flatMap((s) => samples[s.key]));
  const y = (v) => bottom - (v - lo) / (hi - lo) * (bottom - top);
  // State behind the lines: green while tracking, red while lost, nothing while idle.
  if (chart.id === "chart-score") {
    for (let i = 0; i < samples.t.length; i++) {
      const tint = STATE_TINT[samples.state[i]];
      if (!tint) continue;
      const x0 = x(samples.t[i]), x1 = i + 1 < samples.t.length ? x(samples.t[i + 1]) : x0 + 2;
      ctx.fillStyle = tint; ctx.fillRect(x0, top, Math.max(1, x1 - x0), bottom - top);
    }
  }
  ctx.strokeStyle = "#333"; ctx.lineWidth = 1; ctx.fillStyle = "#888"; ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of chart.scale === "sym" ? [lo, 0, hi] : [lo, (lo + hi) / 2, hi]) {
    ctx.beginPath(); ctx.moveTo(left, Math.round(y(v)) + 0.5); ctx.lineTo(right, Math.round(y(v)) + 0.5); ctx.stroke();
    ctx.fillText(String(Math.round(v * 100) / 100), left - 4, y(v));
  }
  ctx.textAlign = "center"; ctx.textBaseline = "alphabetic";
  for (const ago of [60, 45, 30, 15, 0]) {
    const gx = x(samples.now - ago);
    ctx.beginPath(); ctx.moveTo(Math.round(gx) + 0.5, top); ctx.lineTo(Math.round(gx) + 0.5, bottom); ctx.stroke();
    ctx.fillText(ago ? `-${ago} s` : "now", Math.min(Math.max(gx, left + 12), right - 12), h - 2);
  }
  let points = 0;
  ctx.lineWidth = 1.5; ctx.lineJoin = "round";
  for (const s of chart.series) {
    const values = samples[s.key];
    ctx.strokeStyle = s.color; ctx.beginPath();
    let drawing = false;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || !Number.isFinite(v)) { drawing = false; continue; }   // a gap, not a line to zero
      const px = x(samples.t[i]), py = y(Math.min(Math.max(v, lo), hi));
      if (drawing) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      drawing = true; points++;
    }
    ctx.stroke();
  }
  // Title on the left, each series' latest value in its colour on the right.
  ctx.textBaseline = "top"; ctx.textAlign = "left"; ctx.fillStyle = "#bbb"; ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(chart.title, left, 2);
  ctx.textAlign = "right";
  let at = right;
  for (const s of [...chart.series].reverse()) {
    const values = samples[s.key], last = values.length ? values[values.length - 1] : null;
    const text = (s.name ? s.name + " " : "") + (last === null ? "—" : label(last, chart.digits));
    ctx.fillStyle = s.color; ctx.fillText(text, at, 2);
    at -= ctx.measureText(text).width + 10;
  }
  canvas.dataset.points = String(points);
}

function drawCharts() { for (const chart of CHARTS) drawChart(chart); }
window.addEventListener("resize", drawCharts);
