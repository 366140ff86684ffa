// netlab_magic trace widget: draws the packet-flow layouts Python computed, and the hop table.
// Python holds the state (packet, step); a click here sets it, a change there redraws.
// svg(), h() and SVGNS come from dom.js (joined in front: _esm.py).
const FILL = { passed: "#dff3e4", drop: "#fbe1de", idle: "#ffffff" };

function text(parent, x, y, s, attrs) {
  const t = svg("text", { x, y, ...(attrs || {}) }, parent);
  t.textContent = s;
  return t;
}

function arrow(parent, [x1, y1, x2, y2], cls) {
  return svg("line", { x1, y1, x2, y2, class: cls, "marker-end": `url(#${cls}-head)` }, parent);
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
    text(node, n.x, n.y + 0.07, n.label, { class: "nl-hook-label", "font-size": n.kind === "hook" ? 0.19 : 0.16 });
  } else if (n.kind === "decision") {
    const pts = [[n.x - n.w / 2, n.y], [n.x, n.y - n.h / 2], [n.x + n.w / 2, n.y], [n.x, n.y + n.h / 2]];
    svg("polygon", { points: pts.map((p) => p.join(",")).join(" "), fill: FILL[n.state], stroke: edge,
                     "stroke-width": sel ? 0.12 : sw, class: "nl-shape" }, node);
    text(node, n.x, n.y + 0.07, n.label, { class: "nl-decision-label", "font-size": 0.19 });
  } else {
    svg("circle", { cx: n.x, cy: n.y, r: n.w / 2, fill: n.state === "idle" ? "#fff" : edge, stroke: edge,
                    "stroke-width": sw }, node);
    text(node, n.x, n.y + 0.42, n.label, { class: "nl-end-label", "font-size": 0.19 });
  }
  if (n.steps.length) {
    const s = n.steps.slice(0, 4).join(",") + (n.steps.length > 4 ? "\u2026" : "");
    svg("rect", { x: n.x + 0.55, y: n.y - 0.52, width: 0.12 + 0.13 * s.length, height: 0.26,
                  class: "nl-badge", stroke: "none" }, node);
    text(node, n.x + 0.61, n.y - 0.33, s, { class: "nl-badge-text", "font-size": 0.18 });
  }
  n.notes.forEach((note, i) => {
    text(node, n.x, n.y + 0.5 + 0.22 * i, note.length < 38 ? note : note.slice(0, 36) + "\u2026",
         { class: note.includes("DROP") ? "nl-note nl-note-drop" : "nl-note", "font-size": 0.17 });
  });
  const tip = svg("title", {}, node);
  tip.textContent = [n.label, ...n.notes].join("\n");
}

function drawLayout(L, selected, scale) {
  const [x0, y0, x1, y1] = L.bounds;
  // fitted to the output area's width, never larger than `scale` px per unit
  const root = svg("svg", { class: "nl-trace-svg", viewBox: `${x0 - 0.1} ${y0 - 0.1} ${x1 - x0 + 0.2} ${y1 - y0 + 0.2}`,
                            preserveAspectRatio: "xMinYMin meet",
                            style: `width: 100%; height: auto; max-width: ${Math.round((x1 - x0 + 0.2) * scale)}px` });
  const defs = svg("defs", {}, root);
  for (const [id, c] of [["nl-edge", L.colors.idle], ["nl-path", L.colors.path]]) {
    const m = svg("marker", { id: `${id}-head`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 5,
                              markerHeight: 5, orient: "auto-start-reverse" }, defs);
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: c }, m);
  }
  for (const P of L.panels) {
    const g = svg("g", { class: "nl-panel", "data-netns": P.netns }, root);
    svg("rect", { x: P.x0 + 0.05, y: 0.1, width: 9.9, height: 6.4, rx: 0.25, class: "nl-panel-box" }, g);
    text(g, P.x0 + 0.3, 0.45, P.netns, { class: "nl-panel-title", "font-size": 0.3 });
    if (P.bridge) text(g, P.x0 + 9.7, 2.32, `bridge ${P.bridge}`, { class: "nl-bridge-label", "font-size": 0.2 });
    for (const e of P.edges) arrow(g, e.seg, "nl-edge");
    for (const a of P.arrows) arrow(g, a, "nl-path");
    for (const n of P.nodes) {
      drawNode(g, n, L.colors, selected);
      const port = P.labels[n.id];
      if (port) text(g, n.x, n.y + 0.65, port, { class: "nl-end-label", "font-size": 0.19 });
    }
    if (P.drop) {
      const n = P.nodes.find((m) => m.id === P.drop);
      text(g, n.x + n.w / 2 + 0.08, n.y + 0.08, "\u2718 DROP", { class: "nl-drop-mark", "font-size": 0.2 });
    }
  }
  for (const link of L.links) {
    const g = svg("g", { class: "nl-link" }, root);
    arrow(g, [link.x1, link.y1, link.x2, link.y2], "nl-path");
    const label = [link.out, link.in].filter(Boolean).join(" \u2192 ");
    text(g, (link.x1 + link.x2) / 2, (link.y1 + link.y2) / 2 - 0.25, label, { class: "nl-link-label", "font-size": 0.2 });
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
    scroller.appendChild(drawLayout(L, step, 62));
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
