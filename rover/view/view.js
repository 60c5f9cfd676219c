// rover live view: the <img> plays /stream.mjpg by itself; this script only
// listens to /events (EventSource), fills the panel and draws the boxes.
"use strict";

const $ = (id) => document.getElementById(id);
const video = $("video"), overlay = $("overlay"), box = $("video-box");
const live = { frames: 0, lastFrame: null, stats: null, lastFrameAt: 0 };
window.roverView = live; // read by the browser test

function fmt(value, unit = "", digits = 1) {
  if (value === null || value === undefined) return "-";
  return (typeof value === "number" ? value.toFixed(digits) : String(value)) + unit;
}

function badge(id, online, text) {
  const el = $(id);
  el.textContent = text || (online ? "online" : "offline");
  el.className = "badge " + (online ? "online" : "offline");
}

function render(s) {
  live.stats = s;
  const d = s.detector, v = s.drive, f = s.video;
  badge("detector-badge", d.online && d.status === "ok", d.online ? (d.status === "ok" ? "online" : d.status) : "offline");
  $("detector-status").textContent = fmt(d.status);
  $("detector-fps").textContent = fmt(d.fps);
  $("detector-inference").textContent = fmt(d.inference_ms, " ms");
  $("detector-latency").textContent = fmt(d.capture_to_publish_ms, " ms");
  $("detector-view-latency").textContent = fmt(d.capture_to_view_ms, " ms");
  $("detector-count").textContent = fmt(d.detections, "", 0);
  $("detector-age").textContent = fmt(d.age_s, " s", 2);
  $("detector-model").textContent = fmt(d.model);
  badge("drive-badge", v.online, v.enabled ? (v.online ? "online" : "offline") : "disabled");
  $("drive-state").textContent = fmt(v.state);
  $("drive-follow").textContent = fmt(v.follow) + (v.locked ? " (locked)" : "");
  $("drive-throttle").textContent = fmt(v.throttle, "", 2);
  $("drive-steering").textContent = fmt(v.steering, "", 2);
  $("drive-pan").textContent = fmt(v.pan, "", 2);
  $("drive-scale").textContent = fmt(v.scale, "", 2);
  $("drive-detection-age").textContent = fmt(v.detection_age_ms, " ms", 0);
  $("drive-latency").textContent = fmt(v.latency_ms, " ms");
  $("drive-obstacle").textContent = fmt(v.obstacle_m, " m", 2);
  $("drive-bumper").textContent = fmt(v.bumper);
  $("drive-age").textContent = fmt(v.age_s, " s", 2);
  badge("video-badge", f.online);
  $("video-frames").textContent = String(f.frames);
  $("video-fps").textContent = fmt(f.fps);
  $("video-size").textContent = f.width ? f.width + " × " + f.height : "-";
  $("video-age").textContent = fmt(f.age_s, " s", 2);
  box.classList.toggle("live", f.online);
  if (!f.online) {
    draw(null);
    if (f.frames > 0) $("no-video-text").textContent = "video offline: no preview frame for " + fmt(f.age_s, " s") +
      (d.online ? "" : " (the detector is offline)");
  }
}

function rect(ctx, b, w, h) {
  ctx.strokeRect(b[0] * w, b[1] * h, (b[2] - b[0]) * w, (b[3] - b[1]) * h);
}

function draw(frame) {
  const w = overlay.clientWidth, h = overlay.clientHeight;
  overlay.width = w; overlay.height = h;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  if (!frame) return;
  ctx.font = "14px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  let locked = false;
  // The locked one last, so its box and label are on top.
  const dets = (frame.detections || []).slice().sort((a, b) => a.locked - b.locked);
  for (const d of dets) {
    locked = locked || d.locked;
    ctx.strokeStyle = ctx.fillStyle = d.locked ? "#00e676" : "#ffd600";
    ctx.lineWidth = d.locked ? 4 : 2;
    ctx.setLineDash([]);
    rect(ctx, d.box, w, h);
    const text = (d.locked ? "LOCKED " : "") + d.label + " " + d.score.toFixed(2);
    const x = d.box[0] * w, y = Math.max(16, d.box[1] * h);
    ctx.fillRect(x, y - 16, ctx.measureText(text).width + 6, 16);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + 3, y);
  }
  if (frame.target && !locked) {
    ctx.strokeStyle = "#00e676"; ctx.lineWidth = 2; ctx.setLineDash([6, 4]);
    rect(ctx, frame.target, w, h);
  }
}

const events = new EventSource("/events");
events.onerror = () => badge("link", false, "view server unreachable, retrying");
events.addEventListener("stats", (e) => render(JSON.parse(e.data)));
events.addEventListener("frame", (e) => {
  live.lastFrame = JSON.parse(e.data);
  live.frames += 1;
  live.lastFrameAt = Date.now();
  draw(live.lastFrame);
});
window.addEventListener("resize", () => draw(live.lastFrame));

// The <img> does not reopen an MJPEG stream that ended (view restarted): if
// frame events flow but the picture has not been (re)opened, open it again.
let reopenedAt = Date.now();
setInterval(() => {
  const f = live.stats && live.stats.video;
  if (f && f.online && (video.naturalWidth === 0 || video.dataset.ended) && Date.now() - reopenedAt > 2000) {
    reopenedAt = Date.now();
    delete video.dataset.ended;
    video.src = "/stream.mjpg?t=" + reopenedAt;
  }
}, 1000);
video.addEventListener("error", () => { video.dataset.ended = "1"; });
let connectedBefore = false;
events.onopen = () => {
  badge("link", true, "connected");
  // A reconnect means the view server restarted: its old MJPEG stream is gone.
  if (connectedBefore) { video.dataset.ended = "1"; reopenedAt = 0; }
  connectedBefore = true;
};
