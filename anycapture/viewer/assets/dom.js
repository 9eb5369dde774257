// The explorer's elements: controls, the scale bar, prefix-token cells and the marks
// over the image (query box, pointed key, window).  Shares the page script's scope.
function make(tag, attrs, parent, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function build() {
  const app = document.getElementById("ac-app");
  const top = make("header", {}, app);
  make("h1", {}, top, INDEX.title);
  const pick = make("label", {}, top, "image ");
  el.pick = make("select", { id: "ac-pick" }, pick);
  INDEX.images.forEach((img, i) => make("option", { value: i }, el.pick,
    `${img.name} (${img.layers.length} layers, ${Math.round(img.bytes / 1024)} KB)`));
  const bar = make("section", { class: "ac-controls" }, app);
  const layer = make("label", {}, bar, "layer ");
  el.layerRange = make("input", { id: "ac-layer-range", type: "range", min: 0, step: 1 }, layer);
  el.layer = make("output", { id: "ac-layer" }, layer);
  const head = make("label", {}, bar, "head ");
  el.headRange = make("input", { id: "ac-head-range", type: "range", min: -1, step: 1 }, head);
  el.head = make("output", { id: "ac-head" }, head);
  const prefix = make("label", {}, bar);
  el.prefixMap = make("input", { id: "ac-prefix-map", type: "checkbox" }, prefix);
  prefix.append(" prefix-token map ");
  el.token = make("select", { id: "ac-token" }, prefix);
  const roll = make("label", {}, bar);
  el.rollout = make("input", { id: "ac-rollout", type: "checkbox" }, roll);
  roll.append(" rollout");
  const body = make("div", { class: "ac-body" }, app);
  const figure = make("div", { class: "ac-figure" }, body);
  el.cells = make("div", { class: "ac-prefix", id: "ac-prefix-cells" }, figure);
  el.stage = make("div", { class: "ac-stage", id: "ac-stage" }, figure);
  el.view = make("img", { id: "ac-view", alt: "the model's input view" }, el.stage);
  el.heat = make("canvas", { id: "ac-heat" }, el.stage);
  el.heat.style.opacity = INDEX.alpha;
  el.marks = document.createElementNS(SVG, "svg");
  el.marks.setAttribute("id", "ac-marks");
  el.marks.setAttribute("preserveAspectRatio", "none");
  el.stage.appendChild(el.marks);
  el.note = make("p", { class: "ac-note", id: "ac-note" }, figure);
  const side = make("aside", { class: "ac-side" }, body);
  const scale = make("div", { class: "ac-scale" }, side);
  el.scale = make("canvas", { id: "ac-scale", width: 1, height: 256 }, scale);
  const ticks = make("div", { class: "ac-ticks" }, scale);
  el.ticks = [0, 1, 2].map(() => make("span", {}, ticks));
  make("div", { class: "ac-scale-label" }, scale, "attention weight");
  const numbers = make("dl", { class: "ac-numbers" }, side);
  for (const [id, label] of [["what", "showing"], ["query", "query"], ["max", "max"],
    ["key", "pointed key"]]) {
    make("dt", {}, numbers, label);
    el[id] = make("dd", { id: `ac-${id}` }, numbers);
  }
  make("p", { class: "ac-help" }, side, "Point at a patch: its attention. Click: pin the " +
    "query, then point at keys. ←/→ layer, ↑/↓ head (and the head mean), shift+arrows " +
    "move the query, C prefix-token map, R rollout, [ ] image, Esc unpin.");
  make("p", { class: "ac-help" }, side, `Maps are quantised per query row to ${INDEX.levels + 1}` +
    ` levels: each weight is within ${(INDEX.maxError * 100).toFixed(2)}% of its row's` +
    " maximum (the maximum itself is exact).");
  paintScaleBar();
}

function paintScaleBar() {
  const ctx = el.scale.getContext("2d");
  const img = ctx.createImageData(1, 256);
  for (let i = 0; i < 256; i++) {
    const src = (255 - i) * 3;  // the top is the maximum
    img.data.set([LUT[src], LUT[src + 1], LUT[src + 2], 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}

// The prefix tokens' cells, kept while the names stay (a cell rebuilt under the pointer
// would lose its click), coloured by their weights (grey without a map).
function paintCells(p, prefix, vmax) {
  const names = p && p.kind !== "none" ? p.prefixNames : [];
  if ([...el.cells.children].map((c) => c.textContent).join("\n") !== names.join("\n")) {
    el.cells.replaceChildren();
    names.forEach((name, t) => {
      make("button", { class: "ac-cell", "data-token": t, type: "button" }, el.cells, name);
    });
  }
  [...el.cells.children].forEach((cell, t) => {
    const [r, g, b] = prefix ? colour(prefix[t], vmax) : [238, 238, 238];
    cell.style.background = `rgb(${r},${g},${b})`;
    cell.style.color = 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff";
    cell.title = prefix ? `${names[t]}: ${fmt(prefix[t])}` : names[t];
    cell.classList.toggle("ac-chosen", state.prefixMap && state.token === t);
  });
}

function rect(x, y, w, h, stroke, dash, width) {
  const r = document.createElementNS(SVG, "rect");
  const attrs = { x, y, width: w, height: h, fill: "none", stroke, "stroke-width": width,
    "vector-effect": "non-scaling-stroke" };
  if (dash) attrs["stroke-dasharray"] = dash;
  for (const [k, v] of Object.entries(attrs)) r.setAttribute(k, v);
  el.marks.appendChild(r);
  return r;
}

function markCell(p, cell, stroke, dash, width, id) {
  const [top, left, bottom, right] = p.rect;
  const h = (bottom - top) / p.grid[0], w = (right - left) / p.grid[1];
  rect(left + cell[1] * w, top + cell[0] * h, w, h, stroke, dash, width).setAttribute("id", id);
}

