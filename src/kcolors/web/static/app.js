// The kcolors page: send the chosen image and options to /api/compress whenever they change
// (debounced, older requests cancelled), and show the answer. No libraries, nothing from the internet.
"use strict";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 250;
const POINTS = 3000; // pixels sampled for the colour-space picture

const state = {
  file: null,         // the chosen File
  originalUrl: null,  // object URLs, revoked when replaced
  resultUrl: null,
  sweepUrl: null,
  timer: null,
  controller: null,   // AbortController of the request in flight
  seq: 0,             // answers to older requests are ignored
  limits: null,       // from /api/health
  points: [],         // [[r, g, b], ...] sampled from the original
  palette: [],        // [[r, g, b], ...] of the last result
  maxK: 256,          // from /api/health
  keep: "",           // the keep box as last applied
  zoomAt: null,       // [x, y] on 0-1: the centre of the close-up (null: the picture's centre)
  yaw: -0.6, pitch: 0.45,
};

const SPACE_HELP = {
  blend: "Clusters in RGB, matches each pixel by RGB and OKLab distance together: ahead of pngquant on SSIMULACRA2 and butteraugli, and on PSNR.",
  rgb: "Clusters in RGB: the best PSNR (closest to the pixel values).",
  lab: "Clusters in CIELAB: usually the smallest PNG (kodim03 at k = 16: 23.7 KiB against 32.2 KiB in RGB).",
  din99: "Clusters in DIN99: the lowest ΔE2000, the closest to what the eye sees.",
  oklab: "Clusters in OKLab, a modern perceptual space.",
};
const DITHER_HELP = {
  off: "No dithering: flat areas of colour; smooth gradients show bands.",
  selective: "Mixes colours only where a smooth band needs it; little grain in texture.",
  fs: "Classic Floyd–Steinberg: error diffused everywhere, a fine grain all over.",
  ordered: "An 8×8 Bayer pattern that stays still from frame to frame: the sweep's default.",
};

// ------------------------------------------------------------------ choosing an image

function setFile(file) {
  if (!file) return;
  hideError();
  if (state.limits && file.size > state.limits.max_upload_bytes) {
    // Refused here: nothing of an earlier image (shown or failed) may stay on show beside this message.
    forgetImage();
    showError(`${file.name} is ${formatBytes(file.size)}, over this server's limit of ` +
              `${formatBytes(state.limits.max_upload_bytes)} (kcolors serve --max-upload-mb raises it)`);
    return;
  }
  state.file = file;
  state.zoomAt = null;
  document.body.classList.add("has-image");
  $("images").hidden = false;
  $("drop-text").textContent = `${file.name} (${formatBytes(file.size)}): drop or choose another`;
  state.originalUrl = replaceUrl(state.originalUrl, file);
  const original = $("original");
  original.onload = () => { samplePoints(original); drawSpace(); };
  original.onerror = () => {  // not an image (the server explains), or a format this browser cannot show
    original.removeAttribute("src");
    $("original-caption").textContent = `original: ${file.name} (this browser cannot show it)`;
  };
  original.src = state.originalUrl;
  $("original-caption").textContent = `original: ${file.name}`;
  clearResult();
  compress();
}

function forgetImage() {
  // Back to the empty page: no image chosen.
  clearTimeout(state.timer);
  if (state.controller) state.controller.abort();
  state.seq++;
  state.file = null;
  clearResult();
  setStatus("");
  const original = $("original");
  original.onload = original.onerror = null;
  original.removeAttribute("src");
  $("original-caption").textContent = "original";
  $("drop-text").innerHTML = "Drop an image here, paste one, or <u>choose a file</u>";
  $("images").hidden = true;
  document.body.classList.remove("has-image");
  $("file").value = "";
}

function clearResult() {
  // A new image: nothing of the last one may stay on show (if this one fails, the page says why).
  const img = $("flattened");
  img.removeAttribute("src");
  delete img.dataset.k;
  delete img.dataset.colors;
  $("flattened-caption").textContent = "flattened";
  $("working").hidden = true;
  $("palette").replaceChildren();
  $("palette-count").textContent = "";
  $("figures").replaceChildren();
  const download = $("download");
  download.removeAttribute("href");
  download.classList.add("disabled");
  download.setAttribute("aria-disabled", "true");
  $("sweep").disabled = true;  // both need a result: neither is offered after a failure
  $("sweep-section").hidden = true;
  $("results").hidden = true;
  state.palette = [];
  drawSpace();
}

function replaceUrl(old, blob) {
  if (old) URL.revokeObjectURL(old);
  return URL.createObjectURL(blob);
}

// ------------------------------------------------------------------ the options

function ditherChoice() {
  return document.querySelector('input[name="dither"]:checked').value;
}

function options() {
  const method = ditherChoice();
  const fields = { k: $("k").value.trim(), space: $("space").value, dither: method === "off" ? "off" : "on" };
  if (method !== "off") fields.dither_method = method;
  return fields;
}

function keptColours() {
  // The keep box as the palette writes colours ("#rrggbb", "#rrggbbaa"), to mark them; the server checks them.
  return $("keep").value.split(",").map((c) => c.trim().toLowerCase()).filter(Boolean)
    .map((c) => (c.startsWith("#") ? c : `#${c}`));
}

function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(compress, DEBOUNCE_MS);
}

// The slider is logarithmic, 1 to maxK: its marks 1, 4, 16, 64, 256 lie evenly, and small k, where each
// step shows, get most of its length. The number box takes any k exactly.
function sliderToK(position) {
  return Math.max(1, Math.min(state.maxK, Math.round(Math.exp((position / 1000) * Math.log(state.maxK)))));
}

function kToSlider(k) { return String(Math.round((1000 * Math.log(k)) / Math.log(state.maxK))); }

function setSlider(k) {
  const range = $("k-range");
  range.value = kToSlider(k);
  range.setAttribute("aria-valuetext", plural(k, "colour"));
}

function onRange() {
  const k = sliderToK(Number($("k-range").value));
  $("k").value = String(k);
  $("k-range").setAttribute("aria-valuetext", plural(k, "colour"));
  kError("");
  schedule();
}

function checkedK() {
  // The k in the box, or null (and the reason shown next to it) when it is not one the server takes.
  const text = $("k").value.trim();
  const k = Number(text);
  if (text === "" || !Number.isInteger(k) || k < 1 || k > state.maxK) {
    kError(text === "" || $("k").validity.badInput
      ? `k must be a whole number from 1 to ${state.maxK}`
      : `k must be a whole number from 1 to ${state.maxK}, not ${text}`);
    return null;
  }
  kError("");
  return k;
}

function kError(text) {
  const box = $("k-error");
  box.textContent = text;
  box.hidden = !text;
  $("k").setAttribute("aria-invalid", text ? "true" : "false");
}

function onNumber() {
  const k = checkedK();
  if (k === null) { clearTimeout(state.timer); return; }  // nothing is sent until the box holds a k
  setSlider(k);
  schedule();
}

// ------------------------------------------------------------------ the API

function formData(fields) {
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  return form;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

async function compress() {
  clearTimeout(state.timer);
  if (!state.file) return;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const seq = ++state.seq;
  if (checkedK() === null) return;
  const opts = options();
  const keep = $("keep").value.trim();
  if (keep) opts.keep = keep;
  if ($("regions").checked && opts.dither === "off") opts.regions = "on";
  if ($("effort").value !== "8") opts.effort = $("effort").value;  // 8: the default
  setStatus(`Flattening to ${plural(Number(opts.k), "colour")}…`);
  $("working").hidden = false;
  try {
    const response = await fetch("/api/compress", { method: "POST", body: formData(opts), signal: controller.signal });
    if (!response.ok) throw new Error(await errorMessage(response));
    const metrics = JSON.parse(response.headers.get("X-Kcolors-Metrics"));
    const image = await response.blob();
    if (seq !== state.seq) return; // a newer request has been sent
    await showResult(image, metrics);
    hideError();
    setStatus(`${plural(metrics.colors_out, "colour")} in ${metrics.seconds.toFixed(2)} s`);
  } catch (error) {
    if (error.name === "AbortError" || seq !== state.seq) return;
    setStatus("");
    clearResult();  // what is on show would not match the options: nothing to download or sweep
    showError(error.message);
  } finally {
    if (seq === state.seq) $("working").hidden = true;
  }
}

async function showResult(image, metrics) {
  state.resultUrl = replaceUrl(state.resultUrl, image);
  const img = $("flattened");
  img.src = state.resultUrl;
  try { await img.decode(); } catch (_) { /* shown anyway */ }
  // an animation comes back in its own container (GIF, WebP, APNG), which the <img> above plays
  const download = $("download");
  download.href = state.resultUrl;
  download.download = metrics.output;
  download.classList.remove("disabled");
  download.setAttribute("aria-disabled", "false");
  $("sweep").disabled = false;
  $("flattened-caption").textContent =
    `k = ${metrics.k}: ${plural(metrics.colors_out, "colour")}, ${formatBytes(metrics.bytes_out)}` +
    (metrics.frames ? `, ${metrics.frames} frames` : "");
  $("results").hidden = false;
  showPalette(metrics);
  showFigures(metrics);
  drawZoom();
  // colours with alpha ("#rrggbbaa"): the transparent entry has no colour to draw
  state.palette = metrics.palette.map(hexToRgba).filter((c) => c[3] > 0);
  drawSpace();
  // Set last: the browser test waits for this attribute to know the page shows this result.
  img.dataset.k = String(metrics.k);
  img.dataset.colors = String(metrics.colors_out);
}

async function sweep() {
  if (!state.file) return;
  const button = $("sweep");
  button.disabled = true;
  const opts = options();
  setStatus("Making the sweep k = 2…15…");
  try {
    // The method chosen on the page, if any: the one whose grain the close-up shows (else the sweep's, ordered).
    const fields = { ...opts, k: "2-15", max_side: "640", format: "gif" };
    if ($("effort").value !== "8") fields.effort = $("effort").value;  // 8: the default
    delete fields.keep;  // the sweep has no locked colours
    const response = await fetch("/api/sweep", { method: "POST", body: formData(fields) });
    if (!response.ok) throw new Error(await errorMessage(response));
    const frames = JSON.parse(response.headers.get("X-Kcolors-Frames") || "[]");
    state.sweepUrl = replaceUrl(state.sweepUrl, await response.blob());
    $("sweep-image").src = state.sweepUrl;
    $("sweep-caption").textContent = `${frames.length} frames: ${frames[0]} … ${frames[frames.length - 1]}`;
    $("sweep-section").hidden = false;
    $("sweep-section").scrollIntoView({ behavior: "smooth", block: "nearest" });
    setStatus("Sweep ready");
    hideError();
  } catch (error) {
    setStatus("");
    showError(error.message);
  } finally {
    button.disabled = !$("flattened").dataset.k;  // only while a result is on show
  }
}

// ------------------------------------------------------------------ showing the results

function showPalette(metrics) {
  $("palette-count").textContent = `(${plural(metrics.palette.length, "colour")})`;
  const list = $("palette");
  const kept = new Set(keptColours().flatMap((c) => [c, c.length === 7 ? `${c}ff` : c, c.endsWith("ff") ? c.slice(0, 7) : c]));
  list.replaceChildren(...metrics.palette.map((hex, i) => {
    const item = document.createElement("li");
    item.className = kept.has(hex) ? "swatch kept" : "swatch";
    item.title = `${hex}: ${(100 * metrics.shares[i]).toFixed(2)} % of the pixels${kept.has(hex) ? " (kept)" : ""}`;
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.setProperty("--colour", hex);  // "#rrggbbaa" with alpha: drawn over a checkerboard
    const code = document.createElement("span");
    code.className = "hex";
    code.textContent = hex;
    const share = document.createElement("span");
    share.className = "share";
    share.textContent = `${(100 * metrics.shares[i]).toFixed(1)}%`;
    item.append(chip, code, share);
    return item;
  }));
}

function showFigures(m) {
  const percent = (100 * (m.bytes_out - m.bytes_in)) / m.bytes_in;
  const change = ` (${percent >= 0 ? "+" : ""}${percent.toFixed(1)} %)`;
  const sampled = m.delta_e_sample ? ` (on ${m.delta_e_sample.toLocaleString("en")} sampled pixels)` : "";
  const dither = !m.dither ? "off" : `${{ selective: "selective", fs: "classic", ordered: "ordered" }[m.dither_method]
    || m.dither_method}${m.dither < 1 ? ` at ${m.dither}` : ""}`;
  const rows = [
    ["Dimensions", `${m.width} × ${m.height} pixels`],
    ["Distinct colours", `${m.colors_in.toLocaleString("en")} → ${m.colors_out}`],
    ["PSNR", m.psnr === null ? "∞ (lossless)" : `${m.psnr.toFixed(2)} dB`],
    ["Mean ΔE2000", `${m.delta_e.toFixed(2)}${sampled}`],
    ["File size", `${formatBytes(m.bytes_in)} → ${formatBytes(m.bytes_out)}${change}`],
    ["Dithering", dither],
    ["Time", `${m.seconds.toFixed(2)} s`],
  ];
  $("figures").replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    return [dt, dd];
  }));
}

function showHelp() {
  $("space-help").textContent = SPACE_HELP[$("space").value] || "";
  $("dither-help").textContent = DITHER_HELP[ditherChoice()] || "";
}

function setStatus(text) { $("status").textContent = text; }
function showError(text) { const e = $("error"); e.textContent = text; e.hidden = false; }
function hideError() { const e = $("error"); e.textContent = ""; e.hidden = true; }

function formatBytes(n) {
  // One unit throughout the page: binary multiples, named as such (1 KiB = 1,024 bytes).
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function hexToRgba(hex) {
  // "#rrggbb" or "#rrggbbaa" -> [r, g, b, a], a on 0-255
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return rgb.concat(hex.length > 7 ? parseInt(hex.slice(7, 9), 16) : 255);
}

// ------------------------------------------------------------------ the close-up

const ZOOM = 48; // source pixels across the close-up

function drawZoom() {
  const original = $("original"), flattened = $("flattened");
  if (!flattened.getAttribute("src") || !flattened.naturalWidth) return;
  const w = flattened.naturalWidth, h = flattened.naturalHeight;
  const [fx, fy] = state.zoomAt || [0.5, 0.5];
  const size = Math.min(ZOOM, w, h);
  const sx = Math.max(0, Math.min(w - size, Math.round(fx * w - size / 2)));
  const sy = Math.max(0, Math.min(h - size, Math.round(fy * h - size / 2)));
  for (const [id, img] of [["zoom-original", original], ["zoom-flattened", flattened]]) {
    const canvas = $(id);
    canvas.width = canvas.height = size;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, size, size);
    ctx.imageSmoothingEnabled = false;
    if (img.getAttribute("src") && img.naturalWidth) ctx.drawImage(img, sx, sy, size, size, 0, 0, size, size);
  }
  const choice = DITHER_HELP[ditherChoice()] ? ditherChoice() : "off";
  $("zoom-caption").textContent = `flattened, dithering ${{ off: "off", selective: "selective", fs: "classic",
    ordered: "ordered" }[choice]}`;
}

function zoomOnClick(e) {
  const box = e.currentTarget.getBoundingClientRect();
  state.zoomAt = [(e.clientX - box.left) / box.width, (e.clientY - box.top) / box.height];
  drawZoom();
}

// ------------------------------------------------------------------ the colour-space picture

function samplePoints(img) {
  // Draw the original small and take up to POINTS of its opaque pixels.
  const scale = Math.min(1, 160 / Math.max(img.naturalWidth, img.naturalHeight));
  const w = Math.max(1, Math.round(img.naturalWidth * scale));
  const h = Math.max(1, Math.round(img.naturalHeight * scale));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  const step = Math.max(1, Math.floor((w * h) / POINTS));
  state.points = [];
  for (let i = 0; i < w * h; i += step) {
    if (data[4 * i + 3] > 0) state.points.push([data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]]);
  }
}

function project(rgb, canvas) {
  // Centre the cube, turn it (yaw about the vertical, then pitch), orthographic view.
  const [x0, y0, z0] = rgb.map((v) => v / 255 - 0.5);
  const cy = Math.cos(state.yaw), sy = Math.sin(state.yaw);
  const cp = Math.cos(state.pitch), sp = Math.sin(state.pitch);
  const x1 = cy * x0 + sy * y0;
  const y1 = -sy * x0 + cy * y0;
  const depth = cp * y1 - sp * z0;
  const up = sp * y1 + cp * z0;
  const s = canvas.width * 0.5;
  return [canvas.width / 2 + s * x1, canvas.height / 2 - s * up, depth];
}

function drawSpace() {
  const canvas = $("space3d");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  // The cube's edges and the three axes, labelled.
  const corners = [];
  for (let i = 0; i < 8; i++) corners.push([(i & 1) * 255, ((i >> 1) & 1) * 255, ((i >> 2) & 1) * 255]);
  ctx.strokeStyle = "#c8ccd2";
  ctx.lineWidth = 1;
  for (let a = 0; a < 8; a++) {
    for (let b = a + 1; b < 8; b++) {
      const diff = a ^ b;
      if (diff !== 1 && diff !== 2 && diff !== 4) continue;
      const [ax, ay] = project(corners[a], canvas);
      const [bx, by] = project(corners[b], canvas);
      ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke();
    }
  }
  ctx.font = "12px system-ui, sans-serif";
  const axes = [[[255, 0, 0], "Red", "#c00"], [[0, 255, 0], "Green", "#080"], [[0, 0, 255], "Blue", "#00c"]];
  for (const [end, name, colour] of axes) {
    const [x, y] = project(end, canvas);
    ctx.fillStyle = colour;
    ctx.fillText(name, x + 4, y - 4);
  }
  // Points and palette together, far ones first.
  const marks = state.points.map((p) => [p, 1.8, false]).concat(state.palette.map((p) => [p, 9, true]));
  const placed = marks.map(([rgb, r, big]) => [...project(rgb, canvas), rgb, r, big]);
  placed.sort((a, b) => b[2] - a[2]);
  for (const [x, y, , rgb, r, big] of placed) {
    // a translucent pixel or entry is drawn as transparent as it is
    ctx.fillStyle = `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${(rgb[3] ?? 255) / 255})`;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
    if (big) { ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5; ctx.stroke(); }
  }
  if (!state.points.length) {
    ctx.fillStyle = "#5f6368";
    ctx.fillText("Choose an image to see its colours here", 12, canvas.height - 12);
  }
}

function dragToTurn(canvas) {
  let last = null;
  canvas.addEventListener("pointerdown", (e) => {
    last = [e.clientX, e.clientY];
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointerup", () => { last = null; });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    state.yaw += (e.clientX - last[0]) * 0.01;
    state.pitch = Math.max(-1.5, Math.min(1.5, state.pitch + (e.clientY - last[1]) * 0.01));
    last = [e.clientX, e.clientY];
    drawSpace();
  });
}

// ------------------------------------------------------------------ wiring

function firstImage(files) {
  return Array.from(files || []).find((f) => f.type.startsWith("image/")) || (files && files[0]);
}

async function loadSample() {
  hideError();
  try {
    const response = await fetch("/sample.png");
    if (!response.ok) throw new Error(await errorMessage(response));
    setFile(new File([await response.blob()], "coffee.png", { type: "image/png" }));
  } catch (error) {
    showError(`no sample photo: ${error.message}`);
  }
}

function init() {
  $("file").addEventListener("change", (e) => setFile(e.target.files[0]));
  $("sample").addEventListener("click", loadSample);
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  document.addEventListener("drop", (e) => setFile(firstImage(e.dataTransfer.files)));
  document.addEventListener("paste", (e) => setFile(firstImage(e.clipboardData && e.clipboardData.files)));
  $("k-range").addEventListener("input", onRange);
  $("k").addEventListener("input", onNumber);
  $("space").addEventListener("change", () => { showHelp(); schedule(); });
  for (const radio of document.querySelectorAll('input[name="dither"]')) {
    radio.addEventListener("change", () => { showHelp(); schedule(); });
  }
  const keepChanged = () => {  // on leaving the box or Enter (either or both): once for each new value
    if ($("keep").value.trim() === state.keep) return;
    state.keep = $("keep").value.trim();
    compress();
  };
  $("regions").addEventListener("change", schedule);
  $("effort").addEventListener("change", schedule);
  $("keep").addEventListener("change", keepChanged);
  $("keep").addEventListener("keydown", (e) => { if (e.key === "Enter") keepChanged(); });
  $("sweep").addEventListener("click", sweep);
  $("original").addEventListener("click", zoomOnClick);
  $("flattened").addEventListener("click", zoomOnClick);
  dragToTurn($("space3d"));
  setSlider(Number($("k").value) || 16);
  showHelp();
  drawSpace();
  fetch("/api/health").then((r) => r.json()).then((health) => {
    state.limits = health.limits;
    state.maxK = health.limits.max_k;
    $("k").max = String(state.maxK);
    $("k-max").textContent = String(state.maxK);
    setSlider(Number($("k").value) || 16);
  }).catch(() => showError("the kcolors server does not answer; is `kcolors serve` still running?"));
}

init();
