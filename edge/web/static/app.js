// edge-track console: live view, drag-to-select, state, telemetry, charts (charts.js). No framework, no CDN.
"use strict";
const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("edgeTrackToken", params.get("token"));
const token = sessionStorage.getItem("edgeTrackToken") || "";
const headers = token ? { "Authorization": "Bearer " + token } : {};
const $ = (id) => document.getElementById(id);
let frameSize = null;

async function api(path, body) {
  const init = body === undefined ? { headers } :
    { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function say(text) { $("message").textContent = text; }

// -- live view -------------------------------------------------------------------------------
const live = $("live"), overlay = $("overlay");
live.src = "stream.mjpg" + (token ? "?token=" + encodeURIComponent(token) : "");
live.addEventListener("load", () => { live.dataset.frames = String(Number(live.dataset.frames || 0) + 1); });

// -- drag or tap to select --------------------------------------------------------------------
let start = null;
function toFrame(event) {
  const rect = overlay.getBoundingClientRect();
  const size = frameSize || [live.naturalWidth, live.naturalHeight];
  const x = (event.clientX - rect.left) / rect.width * size[0], y = (event.clientY - rect.top) / rect.height * size[1];
  // A drag released outside the view still selects inside the frame: the server refuses boxes beyond it.
  return [Math.min(Math.max(x, 0), size[0]), Math.min(Math.max(y, 0), size[1])];
}
function drawRect(a, b) {
  const ctx = overlay.getContext("2d");
  overlay.width = overlay.clientWidth; overlay.height = overlay.clientHeight;
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (!a || !b) return;
  const size = frameSize || [live.naturalWidth, live.naturalHeight];
  const sx = overlay.width / size[0], sy = overlay.height / size[1];
  ctx.strokeStyle = "#ffd400"; ctx.lineWidth = 2;
  ctx.strokeRect(Math.min(a[0], b[0]) * sx, Math.min(a[1], b[1]) * sy, Math.abs(b[0] - a[0]) * sx, Math.abs(b[1] - a[1]) * sy);
}
overlay.addEventListener("pointerdown", (e) => { start = toFrame(e); overlay.setPointerCapture(e.pointerId); });
overlay.addEventListener("pointermove", (e) => { if (start) drawRect(start, toFrame(e)); });
overlay.addEventListener("pointerup", async (e) => {
  if (!start) return;
  const end = toFrame(e), a = start;
  start = null;
  drawRect(null, null);
  const w = Math.abs(end[0] - a[0]), h = Math.abs(end[1] - a[1]);
  try {
    if (w < 6 && h < 6) await api("api/select", { point: end });
    else await api("api/select", { box: [Math.min(a[0], end[0]), Math.min(a[1], end[1]), w, h] });
    say("target selected");
  } catch (err) { say("select failed: " + err.message); }
});

$("stop").addEventListener("click", () => api("api/stop", {}).then(() => say("stopped"), (e) => say(e.message)));
$("recenter").addEventListener("click", () => api("api/recenter", {}).then(() => say("re-centring"), (e) => say(e.message)));
$("dryrun").addEventListener("change", (e) => api("api/outputs", { dry_run: e.target.checked })
  .then((r) => say(r.dry_run ? "dry run: commands are not sent" : "outputs live"), (err) => say(err.message)));

// -- state and telemetry ----------------------------------------------------------------------
async function refresh() {
  try {
    const s = await api("api/state");
    frameSize = s.frame_size;
    $("state").textContent = s.state; $("state").className = "badge " + s.state;
    $("metrics").textContent = `${s.fps.toFixed(1)} fps · frame age ${s.frame_age_ms.toFixed(0)} ms · latency ${s.latency_ms.toFixed(0)} ms`;
    $("dryrun").checked = s.dry_run;
    const rows = { engine: s.engine, model: s.model, score: s.score, box: s.box ? s.box.map((v) => v.toFixed(0)).join(", ") : "—",
      command: s.command.active ? `${s.command.yaw_dps.toFixed(1)} / ${s.command.pitch_dps.toFixed(1)} °/s` : "hold", frames: s.frames };
    $("details").innerHTML = Object.entries(rows).map(([k, v]) => `<dt>${k}</dt><dd>${String(v ?? "—").replace(/</g, "&lt;")}</dd>`).join("");
  } catch (err) { $("state").textContent = "offline"; $("state").className = "badge"; }
}
async function slowRefresh() {
  try { $("log").textContent = (await api("api/log?lines=20")).lines.join("\n"); } catch (err) { /* keep the last */ }
}
async function once() {
  try { $("config").textContent = JSON.stringify(await api("api/config"), null, 1); } catch (err) { $("config").textContent = err.message; }
  try { $("calibration").textContent = JSON.stringify(await api("api/calibration"), null, 1); } catch (err) { /* optional */ }
}
// The charts' last minute: the first call brings it all, the next ones what came since.
let chartedUntil = -1;
async function refreshCharts() {
  try {
    const reply = await api("api/history?since=" + chartedUntil);
    // A restarted service answers a 'since' from before the restart with its whole minute.
    if (reply.now < chartedUntil) chartedUntil = -1;
    if (reply.t.length) chartedUntil = reply.t[reply.t.length - 1];
    addHistory(reply);
  } catch (err) { /* keep the last minute drawn */ }
  drawCharts();
}
refresh(); slowRefresh(); once(); refreshCharts();
setInterval(refresh, 500);
setInterval(refreshCharts, 500);
setInterval(slowRefresh, 2000);
