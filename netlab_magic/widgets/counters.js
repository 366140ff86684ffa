// netlab_magic counters widget: draws the chains Python sends; clicking a rule selects it for the plot.
// A row's delta is what moved since the last cell ran (Python keeps the baseline); it stays
// highlighted until the next cell runs. Each view tells the kernel it is there, and when it goes.
// h() and SVGNS come from dom.js, announce() from view.js (joined in front: web/esm.py).
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function human(n) {
  if (n < 10000) return String(n);
  for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]]) {
    if (n >= d) return `${(n / d).toFixed(n >= 10 * d ? 0 : 1)}${s}`;
  }
  return String(n);
}

function deltaText(r) {
  if (!(r.dpackets || r.dbytes)) return "";
  return `+${human(r.dpackets)} pkt${r.dpackets === 1 ? "" : "s"}, +${human(r.dbytes)} B`;
}

function structure(chains) {
  return chains.map((c) => `${c.name}:${c.policy}:${c.rules.map((r) => r.key).join("\u0001")}`).join("\u0002");
}

function chart(series) {
  const keys = Object.keys(series);
  const box = h("div", "nl-chart");
  if (!keys.length) return box;
  const W = 560, H = 150, L = 48, B = 18, T = 6, R = 8;
  let tmax = 1, vmin = Infinity, vmax = -Infinity;
  for (const k of keys) for (const [t, v] of series[k].points) {
    tmax = Math.max(tmax, t); vmin = Math.min(vmin, v); vmax = Math.max(vmax, v);
  }
  if (!isFinite(vmin)) { vmin = 0; vmax = 1; }
  if (vmax === vmin) vmax = vmin + 1;
  const X = (t) => L + (t / tmax) * (W - L - R);
  const Y = (v) => T + (1 - (v - vmin) / (vmax - vmin)) * (H - T - B);
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  svg.setAttribute("class", "nl-chart-svg");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [a, v] of Object.entries(attrs)) e.setAttribute(a, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "nl-axis" });
  add("line", { x1: L, y1: T, x2: L, y2: H - B, class: "nl-axis" });
  add("text", { x: L - 4, y: T + 8, "text-anchor": "end", class: "nl-tick" }, human(vmax));
  add("text", { x: L - 4, y: H - B, "text-anchor": "end", class: "nl-tick" }, human(vmin));
  add("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "nl-tick" }, `${tmax.toFixed(0)} s`);
  add("text", { x: L + 4, y: T + 8, class: "nl-tick" }, "packets");
  const legend = h("div", "nl-chart-legend");
  keys.forEach((k, i) => {
    const c = PALETTE[i % PALETTE.length];
    const pts = series[k].points.map(([t, v]) => `${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
    const pl = add("polyline", { points: pts, fill: "none", stroke: c, "stroke-width": 1.5, "data-key": k });
    pl.dataset.key = k;
    const item = h("span", "nl-chart-item", series[k].label);
    item.style.borderLeftColor = c;
    legend.appendChild(item);
  });
  box.append(svg, legend);
  return box;
}

function render({ model, el }) {
  el.classList.add("netlab-counters");
  const bar = h("div", "nl-bar");
  const err = h("span", "nl-error");
  const info = h("span", "nl-info");
  bar.append(info, err);
  const chartBox = h("div", "nl-chart-box");
  const scroller = h("div", "nl-scroll");
  el.append(bar, chartBox, scroller);
  let shape = null;
  let rows = new Map(); // key -> {tr, pk, by, dl}

  function toggle(key) {
    const sel = [...model.get("selected")];
    const i = sel.indexOf(key);
    if (i >= 0) sel.splice(i, 1);
    else sel.push(key);
    model.set("selected", sel);
    model.save_changes();
  }

  function row(tbody, r, isPolicy) {
    const tr = h("tr", isPolicy ? "nl-rule nl-policy" : "nl-rule");
    tr.dataset.key = r.key;
    const idx = h("td", "nl-idx", isPolicy ? "policy" : String(r.index));
    const pk = h("td", "nl-num nl-packets");
    const by = h("td", "nl-num nl-bytes");
    const dl = h("td", "nl-delta");
    const spec = h("td", "nl-spec", isPolicy ? `policy ${r.policy}` : r.spec);
    spec.title = r.key;
    tr.append(idx, pk, by, dl, spec);
    tr.addEventListener("click", () => toggle(r.key));
    tbody.appendChild(tr);
    const rec = { tr, pk, by, dl };
    rows.set(r.key, rec);
    return rec;
  }

  function fill(rec, r, selected) {
    rec.pk.textContent = human(r.packets);
    rec.by.textContent = human(r.bytes);
    rec.dl.textContent = deltaText(r);
    const moved = Boolean(r.dpackets || r.dbytes);
    rec.tr.classList.toggle("nl-moved", moved);
    rec.tr.classList.toggle("nl-selected", selected.has(r.key));
    rec.tr.dataset.packets = r.packets;
    rec.tr.dataset.bytes = r.bytes;
    rec.tr.dataset.dpackets = r.dpackets;
    rec.tr.dataset.moved = moved ? "true" : "false";
  }

  function build(chains) {
    rows = new Map();
    const frag = document.createDocumentFragment();
    for (const c of chains) {
      const sec = h("section", "nl-chain");
      sec.dataset.chain = c.name;
      const head = c.policy ? `Chain ${c.name} (policy ${c.policy})` : `Chain ${c.name} (user chain)`;
      sec.appendChild(h("div", "nl-chain-head", head));
      const table = h("table", "nl-rules");
      const cols = h("colgroup");
      for (const w of ["4.5em", "6.5em", "7em", "12em", "auto"]) {
        const col = h("col");
        col.style.width = w;
        cols.appendChild(col);
      }
      table.appendChild(cols);
      const thead = h("thead");
      const htr = h("tr");
      for (const s of ["#", "pkts", "bytes", "moved", "rule"]) {
        const th = h("th", "", s);
        if (s === "moved") th.title = "since the last cell ran (until the next one runs)";
        htr.appendChild(th);
      }
      thead.appendChild(htr);
      const tbody = h("tbody");
      table.append(thead, tbody);
      if (c.policy) row(tbody, c, true).tr.dataset.chain = c.name;
      for (const r of c.rules) row(tbody, r, false).tr.dataset.chain = c.name;
      sec.appendChild(table);
      frag.appendChild(sec);
    }
    scroller.replaceChildren(frag);
  }

  function draw() {
    pending = false;
    const chains = model.get("chains") || [];
    const selected = new Set(model.get("selected") || []);
    scroller.style.maxHeight = `${model.get("height")}px`;
    err.textContent = model.get("error") || "";
    const s = structure(chains);
    if (s !== shape) {
      build(chains);
      shape = s;
    }
    // "moved" counts every row: a chain's policy moves as its rules do
    let n = 0, moved = 0;
    for (const c of chains) {
      if (c.policy) {
        fill(rows.get(c.key), c, selected);
        if (c.dpackets || c.dbytes) moved += 1;
      }
      for (const r of c.rules) {
        fill(rows.get(r.key), r, selected);
        n += 1;
        if (r.dpackets || r.dbytes) moved += 1;
      }
    }
    const where = model.get("where") ? ` in ${model.get("where")}` : "";
    const many = (k, one) => `${k} ${one}${k === 1 ? "" : "s"}`;
    info.textContent = chains.length
      ? `table ${model.get("table")}${where}: ${many(chains.length, "chain")}, ${many(n, "rule")} · ` +
        `${moved} moved since the last cell ran`
      : `table ${model.get("table")}${where}: empty (no rules yet)`;
    info.dataset.rules = n;
    info.dataset.moved = moved;
    chartBox.replaceChildren(chart(model.get("series") || {}));
  }
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    Promise.resolve().then(draw);
  }
  const events = ["change:chains", "change:selected", "change:series", "change:error", "change:height"];
  for (const e of events) model.on(e, schedule);
  draw();
  const bye = announce(model);
  return () => {
    for (const e of events) model.off(e, schedule);
    bye();
  };
}

export default { render };
