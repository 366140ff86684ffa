// netlab_magic trace widget: draws the packet-flow layouts Python computed, and the hop table.
// Python holds the state (packet, step); a click here sets it, a change there redraws.
// svg(), h() and SVGNS come from dom.js (joined in front: web/esm.py).
const FILL = { passed: "#dff3e4", drop: "#fbe1de", idle: "#ffffff" };

function text(parent, x, y, s, attrs) {
  const t = svg("text", { x, y, ...(attrs || {}) }, parent);
  t.textContent = s;
  return t;
}

function arrow(parent, [x1, y1, x2, y2], cls) {
  return svg("line", { x1, y1, x2, y2, class: cls, "marker-end": `url(#${cls}-head)` }, parent);
}

// Lines of text, the first one's top at y (as the layout counted them): SVG places a baseline.
function lines(parent, x, y, list, size, attrs) {
  list.forEach((line, i) => text(parent, x, y + size * (0.8 + 1.3 * i), line, { "font-size": size, ...attrs }));
}

function drawNode(g, n, colors, selected) {
  const edge = colors[n.state] || colors.idle;
  const sel = selected && n.steps.includes(selected);
  const node = svg("g", {
    class: `nl-tnode nl-${n.kind} nl-${n.state}${sel ? " nl-selected" : ""}`,
    "data-node": n.id, "data-state": n.state, "data-steps": n.steps.join(","),
  }, g);
  const sw = n.state === "idle" ? 0.03 : 0.06;
  if (n.kind === "hook" || n.kind === "nf") {
    svg("rect", { x: n.x - n.w / 2, y: n.y - n.h / 2, width: n.w, height: n.h, rx: 0.08, class: "nl-shape",
                  fill: FILL[n.state], stroke: edge, "stroke-width": sel ? 0.12 : sw }, node);
    text(node, n.x, n.y + n.size * 0.35, n.label, { class: "nl-hook-label", "font-size": n.size });
  } else if (n.kind === "decision") {
    const pts = [[n.x - n.w / 2, n.y], [n.x, n.y - n.h / 2], [n.x + n.w / 2, n.y], [n.x, n.y + n.h / 2]];
    svg("polygon", { points: pts.map((p) => p.join(",")).join(" "), fill: FILL[n.state], stroke: edge,
                     "stroke-width": sel ? 0.12 : sw, class: "nl-shape" }, node);
    text(node, n.x, n.y + n.size * 0.35, n.label, { class: "nl-decision-label", "font-size": n.size });
  } else {
    svg("circle", { cx: n.x, cy: n.y, r: n.w / 2, fill: n.state === "idle" ? "#fff" : edge, stroke: edge,
                    "stroke-width": sw }, node);
    lines(node, n.x, n.label_y, [n.label], n.size, { class: "nl-end-label" });
  }
  if (n.badge) {
    const b = n.badge;
    svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, class: "nl-badge", stroke: "none" }, node);
    text(node, b.x + 0.05, b.y + b.h / 2 + 0.04, b.text, { class: "nl-badge-text", "font-size": 0.115 });
  }
  lines(node, n.note_x, n.note_y, n.note_lines, 0.12,
        { class: n.state === "drop" ? "nl-note nl-note-drop" : "nl-note", style: `text-anchor: ${n.note_anchor}` });
  const tip = svg("title", {}, node);
  tip.textContent = [n.label, ...n.notes].join("\n");
}

function drawLayout(L, selected, scale, least) {
  const [x0, y0, x1, y1] = L.bounds;
  // fitted to the output area's width, between `least` and `scale` px per unit (narrower: it scrolls)
  const w = x1 - x0 + 0.2;
  const root = svg("svg", { class: "nl-trace-svg", viewBox: `${x0 - 0.1} ${y0 - 0.1} ${w} ${y1 - y0 + 0.2}`,
                            preserveAspectRatio: "xMinYMin meet",
                            style: `width: 100%; height: auto; min-width: ${Math.round(w * least)}px; ` +
                                   `max-width: ${Math.round(w * scale)}px` });
  const defs = svg("defs", {}, root);
  for (const [id, c] of [["nl-edge", L.colors.idle], ["nl-path", L.colors.path]]) {
    const m = svg("marker", { id: `${id}-head`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 5,
                              markerHeight: 5, orient: "auto-start-reverse" }, defs);
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: c }, m);
  }
  for (const P of L.panels) {
    const g = svg("g", { class: "nl-panel", "data-netns": P.netns }, root);
    svg("rect", { x: P.x0 + 0.05, y: 0.1, width: 9.9, height: L.bounds[3] - 0.2, rx: 0.25, class: "nl-panel-box" }, g);
    lines(g, P.x0 + 0.3, 0.22, [P.netns], L.fonts.netns, { class: "nl-panel-title" });
    if (P.split !== null) svg("line", { x1: P.x0 + 0.15, x2: P.x0 + 9.85, y1: P.split, y2: P.split, class: "nl-split" }, g);
    for (const c of P.captions) lines(g, c.x, c.y, [c.text], c.size, { class: "nl-caption" });
    for (const e of P.edges) arrow(g, e.seg, "nl-edge");
    for (const a of P.arrows) arrow(g, a, "nl-path");
    for (const n of P.nodes) drawNode(g, n, L.colors, selected);
  }
  for (const link of L.links) {
    const g = svg("g", { class: "nl-link" }, root);
    arrow(g, [link.x1, link.y1, link.x2, link.y2], "nl-path");
  }
  return root;
}

function render({ model, el }) {
  el.classList.add("netlab-trace");
  const head = h("div", "nl-head");
  const picker = h("div", "nl-packets");
  const steps = h("div", "nl-steps");
  const prev = h("button", "nl-prev", "\u25c0 previous hop");
  const next = h("button", "nl-next", "next hop \u25b6");
  const where = h("span", "nl-where");
  steps.append(prev, next, where);
  const fate = h("div", "nl-fate");
  const scroller = h("div", "nl-scroll");
  const table = h("table", "nl-hops");
  el.append(head, picker, steps, fate, scroller, table);

  const hops = () => (model.get("rows")[model.get("packet")] || []);
  function stepBy(d) {
    const n = hops().length;
    if (!n) return;
    const s = model.get("step");
    model.set("step", d > 0 ? (s % n) + 1 : ((s - 2 + n) % n) + 1);
    model.save_changes();
  }
  prev.addEventListener("click", () => stepBy(-1));
  next.addEventListener("click", () => stepBy(1));

  function draw() {
    const layouts = model.get("layouts");
    const p = Math.min(model.get("packet"), Math.max(0, layouts.length - 1));
    const step = model.get("step");
    head.textContent = model.get("title");
    picker.replaceChildren();
    layouts.forEach((L, i) => {
      const b = h("button", i === p ? "nl-packet nl-current" : "nl-packet", L.title.replace(/^packet /, "#"));
      b.dataset.packet = i;
      b.addEventListener("click", () => { model.set("packet", i); model.set("step", 0); model.save_changes(); });
      picker.appendChild(b);
    });
    const L = layouts[p];
    scroller.replaceChildren();
    table.replaceChildren();
    steps.style.display = L ? "" : "none";
    if (!L) { fate.textContent = ""; return; }
    fate.textContent = L.fate;
    fate.className = L.fate.startsWith("dropped") ? "nl-fate nl-fate-drop" : "nl-fate";
    scroller.appendChild(drawLayout(L, step, 80, 62));
    const sel = scroller.querySelector("g.nl-selected");
    if (sel) {  // the selected hop in view, when the picture is wider than the output area
      const r = sel.getBoundingClientRect(), s = scroller.getBoundingClientRect();
      scroller.scrollLeft += (r.left + r.width / 2) - (s.left + s.width / 2);
    }
    const rows = hops();
    const cur = rows.find((r) => r.step === step);
    where.textContent = cur ? `hop ${cur.step} of ${rows.length}: ${cur.netns} ${cur.hook} ${cur.where} \u2192 ${cur.verdict}` : `${rows.length} hops`;
    const hr = h("tr");
    for (const c of ["#", "namespace", "hook", "table:chain", "rule or policy", "verdict", "in", "out", "addresses"]) hr.appendChild(h("th", "", c));
    table.appendChild(hr);
    let shown = "";
    for (const r of rows) {
      const tr = h("tr", r.step === step ? "nl-row nl-selected" : "nl-row");
      if (r.verdict === "DROP") tr.classList.add("nl-row-drop");
      tr.dataset.step = r.step;
      const addr = r.addresses && r.addresses !== shown ? r.addresses : "";
      if (r.addresses) shown = r.addresses;
      for (const c of [r.step, r.netns, r.hook, r.where, r.reason, r.verdict, r.iif, r.oif, addr]) tr.appendChild(h("td", "", String(c)));
      tr.addEventListener("click", () => { model.set("step", r.step); model.save_changes(); });
      table.appendChild(tr);
    }
  }
  draw();
  model.on("change:layouts", draw);
  model.on("change:rows", draw);
  model.on("change:packet", draw);
  model.on("change:step", draw);
  model.on("change:title", draw);
  return () => {
    model.off("change:layouts", draw);
    model.off("change:rows", draw);
    model.off("change:packet", draw);
    model.off("change:step", draw);
    model.off("change:title", draw);
  };
}

export default { render };
