// anycapture attention explorer: reads the page's index and, when an image is opened,
// its maps' text; draws the query's attention over the image as the PNG figures do
// (Pillow's resampling, the colormap's 256-entry table, the scale 0..max of the row).
const INDEX = JSON.parse(document.getElementById("ac-index").textContent);
const LUT = Uint8Array.from(INDEX.lut.match(/../g), (h) => parseInt(h, 16));
const TABLE = new Uint8Array(128);
for (let i = 0; i < INDEX.alphabet.length; i++) TABLE[INDEX.alphabet.charCodeAt(i)] = i;
const QUERY_BOX = "#ff2a2a";
const SVG = "http://www.w3.org/2000/svg";
const cache = new Map();
const state = {
  image: 0, layer: 0, head: -1, prefixMap: false, token: 0, rollout: false,
  point: null, pinned: false, key: null, keyPrefix: null,
};
const el = {};

function base64Floats(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

// An image's maps: the codes of every layer (one byte per weight) and row maxima.
function decode(i) {
  if (cache.has(i)) return cache.get(i);
  const text = document.getElementById(`ac-image-${i}`).textContent;
  const cut = text.indexOf("\n");
  const head = JSON.parse(text.slice(0, cut));
  const codes = new Uint8Array(text.length - cut - 1);
  for (let k = 0, j = cut + 1; k < codes.length; k++, j++) codes[k] = TABLE[text.charCodeAt(j)];
  const part = (p) => p && { offset: p.offset, scales: base64Floats(p.scales) };
  const data = {
    view: head.view, codes, layers: head.layers.map(part), rollout: part(head.rollout),
  };
  cache.set(i, data);
  return data;
}

function image() { return INDEX.images[state.image]; }
function plan() { return state.rollout ? image().rollout : image().layers[state.layer]; }
function planData() {
  const data = decode(state.image);
  return state.rollout ? data.rollout : data.layers[state.layer];
}

// Query row q of one head (or the head mean, head -1): N dequantised weights.
function row(p, d, head, q) {
  const codes = decode(state.image).codes;
  const out = new Float64Array(p.n);
  const heads = head < 0 ? [...Array(p.heads).keys()] : [head];
  for (const h of heads) {
    const r = h * p.q + q;
    const step = d.scales[r] / INDEX.levels;
    const base = d.offset + r * p.n;
    for (let k = 0; k < p.n; k++) out[k] += codes[base + k] * step;
  }
  if (heads.length > 1) for (let k = 0; k < p.n; k++) out[k] /= heads.length;
  return out;
}

function cellAt(p, pt) {
  if (!pt) return null;
  const [top, left, bottom, right] = p.rect;
  if (pt.y < top || pt.y >= bottom || pt.x < left || pt.x >= right) return null;
  const r = Math.min(Math.floor((pt.y - top) / (bottom - top) * p.grid[0]), p.grid[0] - 1);
  const c = Math.min(Math.floor((pt.x - left) / (right - left) * p.grid[1]), p.grid[1] - 1);
  return [r, c];
}

function cellCentre(p, r, c) {
  const [top, left, bottom, right] = p.rect;
  return { x: left + (c + 0.5) * (right - left) / p.grid[1],
    y: top + (r + 0.5) * (bottom - top) / p.grid[0] };
}

// The query: {q, cell, label} or {error}
function query(p) {
  if (p.kind === "none") return { error: p.note };
  if (state.prefixMap) {
    const t = state.token;
    if (t >= p.prefix) {
      return { error: `${p.name} has no prefix token ${t}: its tokens are patches only` };
    }
    if (t >= p.q) return { error: `${p.name}: ${p.note}; ${p.prefixNames[t]} does not query here` };
    return { q: t, cell: null, label: `${p.prefixNames[t]} token` };
  }
  if (p.kind === "class") return { error: `${p.name}: ${p.note} (press C)` };
  const cell = cellAt(p, state.point);
  if (!cell) {
    const where = p.kind === "window" ? `outside this layer's window: ${p.note}` : "off the image";
    return { error: `the query is ${where}` };
  }
  const label = `${p.kind === "window" ? "window token" : "patch"} (${cell[0]}, ${cell[1]})`;
  return { q: p.prefix + cell[0] * p.grid[1] + cell[1], cell, label };
}

// Pillow's resampling filters (support, weight of a distance) and their taps along one
// axis, as ImagingResample computes them: per output pixel, the first input index and
// normalised weights.  Nearest takes the input pixel under the output pixel's centre.
const FILTERS = {
  bilinear: [1, (x) => (x < 1 ? 1 - x : 0)],
  bicubic: [2, (x) => (x < 1 ? (1.5 * x - 2.5) * x * x + 1 :
    x < 2 ? (((x - 5) * x + 8) * x - 4) * -0.5 : 0)],  // a = -0.5
};
function taps(n, out) {
  const scale = n / out, start = new Int32Array(out), count = new Int32Array(out).fill(1);
  if (INDEX.upsample === "nearest") {
    for (let x = 0; x < out; x++) start[x] = Math.min(Math.floor((x + 0.5) * scale), n - 1);
    return { start, count, k: 1, weights: new Float64Array(out).fill(1) };
  }
  const [base, filter] = FILTERS[INDEX.upsample];
  const fscale = Math.max(scale, 1), support = base * fscale, k = Math.ceil(support) * 2 + 1;
  const weights = new Float64Array(out * k);
  for (let x = 0; x < out; x++) {
    const centre = (x + 0.5) * scale;
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const hi = Math.min(Math.trunc(centre + support + 0.5), n);
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const w = filter(Math.abs((j - centre + 0.5) / fscale));
      weights[x * k + j - lo] = w; total += w;
    }
    if (total !== 0) for (let j = 0; j < hi - lo; j++) weights[x * k + j] /= total;
    start[x] = lo; count[x] = hi - lo;
  }
  return { start, count, k, weights };
}

// A (rows, cols) grid resized to (h, w): the rows first, then the columns, as Pillow.
function resample(grid, rows, cols, h, w) {
  const tx = taps(cols, w), ty = taps(rows, h);
  const mid = new Float64Array(rows * w), out = new Float64Array(h * w);
  for (let r = 0; r < rows; r++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      const from = r * cols + tx.start[x], at = x * tx.k;
      for (let j = 0; j < tx.count[x]; j++) s += grid[from + j] * tx.weights[at + j];
      mid[r * w + x] = s;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      const from = ty.start[y] * w + x, at = y * ty.k;
      for (let i = 0; i < ty.count[y]; i++) s += mid[from + i * w] * ty.weights[at + i];
      out[y * w + x] = s;
    }
  }
  return out;
}

function paintHeat(p, grid, vmax) {
  const img = image();
  el.heat.width = img.width; el.heat.height = img.height;
  const ctx = el.heat.getContext("2d");
  const pixels = ctx.createImageData(img.width, img.height);
  if (grid) {
    const y0 = Math.round(p.rect[0]), x0 = Math.round(p.rect[1]);
    const h = Math.round(p.rect[2]) - y0, w = Math.round(p.rect[3]) - x0;
    const heat = resample(grid, p.grid[0], p.grid[1], h, w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const idx = lutAt(heat[y * w + x], vmax);
        const o = ((y0 + y) * img.width + x0 + x) * 4;
        pixels.data[o] = LUT[idx]; pixels.data[o + 1] = LUT[idx + 1];
        pixels.data[o + 2] = LUT[idx + 2]; pixels.data[o + 3] = 255;
      }
    }
  }
  ctx.putImageData(pixels, 0, 0);
}

// The colormap entry of v on the scale 0..vmax (its red's offset in LUT), as colourise().
function lutAt(v, vmax) { return Math.round(Math.min(Math.max(v / vmax, 0), 1) * 255) * 3; }
function colour(v, vmax) {
  const i = lutAt(v, vmax);
  return [LUT[i], LUT[i + 1], LUT[i + 2]];
}

function paintMarks(p, q) {
  const img = image();
  el.marks.replaceChildren();
  el.marks.setAttribute("viewBox", `0 0 ${img.width} ${img.height}`);
  if (p.kind === "window") {
    const [top, left, bottom, right] = p.rect;
    const outline = rect(left, top, right - left, bottom - top, "#ffffff", "6 4", 2);
    outline.setAttribute("id", "ac-window");
  }
  if (q && q.cell) markCell(p, q.cell, QUERY_BOX, state.pinned ? "" : "4 3", 2.5, "ac-query-box");
  const key = p.kind !== "none" && p.grid ? cellAt(p, state.key) : null;
  const onQuery = key && q && q.cell && String(key) === String(q.cell);
  if (key && !onQuery) markCell(p, key, "#ffffff", "2 2", 1.2, "ac-key-box");
}

function fmt(v) { return Number.isFinite(v) ? v.toPrecision(4) : "–"; }
function where(p, k) {
  if (k < p.prefix) return p.prefixNames[k];
  const cell = k - p.prefix;
  const at = `(${Math.floor(cell / p.grid[1])}, ${cell % p.grid[1]})`;
  return p.kind === "window" ? `window token ${at}` : at;
}
function show(node, text, value) {
  node.textContent = text;
  if (value === undefined) delete node.dataset.value; else node.dataset.value = value;
}

function keyWeight(p) {
  if (state.keyPrefix !== null && state.keyPrefix < p.prefix) return state.keyPrefix;
  const key = cellAt(p, state.key);
  return key ? p.prefix + key[0] * p.grid[1] + key[1] : null;
}

function draw() {
  const img = image(), p = plan();
  syncControls(img, p);
  const q = query(p);
  el.note.textContent = q.error || p.note || "";
  el.query.textContent = q.error ? "–" : q.label + (state.pinned && q.cell ? " (pinned)" : "");
  if (q.error) {
    paintHeat(p, null, 1); paintCells(p, null, 1); paintMarks(p, null);
    show(el.max, "–"); show(el.key, "–");
    el.ticks.forEach((t) => { t.textContent = ""; });
    return;
  }
  const w = row(p, planData(), state.rollout ? 0 : state.head, q.q);
  let top = 0;
  for (let k = 1; k < w.length; k++) if (w[k] > w[top]) top = k;
  const vmax = w[top] > 0 ? w[top] : 1;
  paintHeat(p, w.subarray(p.prefix), vmax);
  paintCells(p, w.subarray(0, p.prefix), vmax);
  paintMarks(p, q);
  show(el.max, `${fmt(w[top])} at ${where(p, top)}`, w[top]);
  const k = keyWeight(p);
  show(el.key, k === null ? "–" : `${where(p, k)}: ${fmt(w[k])}`, k === null ? undefined : w[k]);
  el.ticks[0].textContent = fmt(vmax); el.ticks[1].textContent = fmt(vmax / 2);
  el.ticks[2].textContent = "0";
}

function syncControls(img, p) {
  const layer = img.layers[state.layer];
  el.layerRange.max = img.layers.length - 1; el.layerRange.value = state.layer;
  el.headRange.max = layer.heads - 1; el.headRange.value = state.head;
  el.layerRange.disabled = el.headRange.disabled = state.rollout;
  el.layer.textContent = state.rollout ? p.name : `${state.layer}: ${layer.name}`;
  el.head.textContent = state.rollout ? "head mean" :
    state.head < 0 ? `mean of ${layer.heads}` : `${state.head} of ${layer.heads}`;
  el.what.textContent = state.rollout ? `${p.name} (head mean, residual added)` :
    `${layer.name} · ${state.head < 0 ? "head mean" : `head ${state.head}`}`;
  el.prefixMap.checked = state.prefixMap; el.rollout.checked = state.rollout;
  el.rollout.disabled = !img.rollout;
  el.rollout.title = img.rollout ? "" : "no layer covers every token: no rollout";
}

function fillTokens() {
  const longest = (a, l) => (l.prefixNames.length > a.length ? l.prefixNames : a);
  const names = image().layers.reduce(longest, []);
  el.token.replaceChildren();
  names.forEach((n, t) => make("option", { value: t }, el.token, n));
  el.prefixMap.disabled = el.token.disabled = names.length === 0;
  state.token = Math.min(state.token, Math.max(names.length - 1, 0));
  el.token.value = state.token;
}

function openImage(i) {
  const next = Math.max(0, Math.min(i, INDEX.images.length - 1));
  if (!document.getElementById(`ac-image-${next}`)) {  // the rest of the file is still being read
    el.note.textContent = `loading ${INDEX.images[next].name}…`;
    document.addEventListener("DOMContentLoaded", () => openImage(next), { once: true });
    return;
  }
  state.image = next;
  const img = image();
  el.pick.value = state.image;
  el.view.src = decode(state.image).view;
  el.stage.style.aspectRatio = `${img.width} / ${img.height}`;
  const outside = state.point && (state.point.x >= img.width || state.point.y >= img.height);
  if (!state.point || outside) {  // the middle patch (the figures' default query)
    const p = img.layers[Math.min(state.layer, img.layers.length - 1)];
    const grid = p.grid || [1, 1];
    state.point = cellCentre({ rect: [0, 0, img.height, img.width], grid },
      Math.floor(grid[0] / 2), Math.floor(grid[1] / 2));
  }
  stepLayer(0);  // the same layer, or this image's last
  if (!img.rollout) state.rollout = false;
  fillTokens();
  draw();
}

function stepLayer(d) {
  state.layer = Math.max(0, Math.min(state.layer + d, image().layers.length - 1));
  const p = image().layers[state.layer];
  state.head = Math.min(state.head, p.heads - 1);
  // a window layer shows one window: a query elsewhere moves to the window's middle
  if (p.kind === "window" && !cellAt(p, state.point)) {
    state.point = cellCentre(p, Math.floor(p.grid[0] / 2), Math.floor(p.grid[1] / 2));
  }
}
function stepHead(d) {
  const heads = image().layers[state.layer].heads;
  state.head = ((state.head + 1 + d + heads + 1) % (heads + 1)) - 1;  // -1 (mean), 0..heads-1
}
function moveQuery(dr, dc) {
  const p = plan();
  if (!p.grid) return;
  const cell = cellAt(p, state.point) || [0, 0];
  const r = Math.max(0, Math.min(cell[0] + dr, p.grid[0] - 1));
  const c = Math.max(0, Math.min(cell[1] + dc, p.grid[1] - 1));
  state.point = cellCentre(p, r, c); state.pinned = true; state.prefixMap = false;
}

function viewPoint(e) {
  const box = el.stage.getBoundingClientRect(), img = image();
  return { x: (e.clientX - box.left) / box.width * img.width,
    y: (e.clientY - box.top) / box.height * img.height };
}

const KEYS = {
  ArrowLeft: (e) => (e.shiftKey ? moveQuery(0, -1) : stepLayer(-1)),
  ArrowRight: (e) => (e.shiftKey ? moveQuery(0, 1) : stepLayer(1)),
  ArrowUp: (e) => (e.shiftKey ? moveQuery(-1, 0) : stepHead(1)),
  ArrowDown: (e) => (e.shiftKey ? moveQuery(1, 0) : stepHead(-1)),
  c: () => { state.prefixMap = !state.prefixMap && !el.prefixMap.disabled; },
  r: () => { state.rollout = !state.rollout && !!image().rollout; },
  Escape: () => { state.pinned = false; },
};

function listen() {
  el.stage.addEventListener("mousemove", (e) => {
    const pt = viewPoint(e);
    state.key = pt; state.keyPrefix = null;
    if (!state.pinned && !state.prefixMap) state.point = pt;  // else: pointing reads keys
    draw();
  });
  el.stage.addEventListener("mouseleave", () => { state.key = null; draw(); });
  el.stage.addEventListener("click", (e) => {
    const pt = viewPoint(e), p = plan();
    const same = state.pinned && p.grid && String(cellAt(p, pt)) === String(cellAt(p, state.point));
    state.point = pt; state.key = pt; state.pinned = !same; state.prefixMap = false;
    draw();
  });
  el.cells.addEventListener("click", (e) => {
    const t = e.target.dataset.token;
    if (t === undefined) return;
    state.token = Number(t); state.prefixMap = true; el.token.value = t; draw();
  });
  el.cells.addEventListener("mouseover", (e) => {
    const t = e.target.dataset.token;
    state.keyPrefix = t === undefined ? null : Number(t); state.key = null; draw();
  });
  el.pick.addEventListener("change", () => openImage(Number(el.pick.value)));
  const on = (node, type, change) => node.addEventListener(type, () => { change(); draw(); });
  on(el.layerRange, "input", () => { state.layer = Number(el.layerRange.value); stepLayer(0); });
  on(el.headRange, "input", () => { state.head = Number(el.headRange.value); });
  on(el.prefixMap, "change", () => { state.prefixMap = el.prefixMap.checked; });
  on(el.token, "change", () => { state.token = Number(el.token.value); state.prefixMap = true; });
  on(el.rollout, "change", () => { state.rollout = el.rollout.checked; });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "[" || e.key === "]") {
      e.preventDefault();
      openImage(state.image + (e.key === "]" ? 1 : -1));
      return;
    }
    const act = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!act) return;
    e.preventDefault();  // a focused slider would step as well
    act(e); draw();
  });
}

build();
listen();
state.layer = INDEX.images[0].layers.length - 1;  // the last layer, as the figures' default
openImage(0);
const decoded = () => [...cache.keys()].sort((a, b) => a - b);
window.anycapture = { state, readyMs: performance.now(), draw, openImage, decoded };
document.body.dataset.ready = "1";
