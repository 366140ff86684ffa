// netlab_magic topology widget: draws the layout that Python computed. No state of its own.
const SVGNS = "http://www.w3.org/2000/svg";
const PX = 64; // pixels per layout unit at zoom 1
const DASH = { DOWN: "0.14 0.08", LOWERLAYERDOWN: "0.04 0.07" };

function svg(tag, attrs, parent) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  }
  if (parent) parent.appendChild(node);
  return node;
}

function title(parent, text) {
  const t = svg("title", {}, parent);
  t.textContent = text;
  return t;
}

function color(colors, state) {
  return colors[state] || colors.OTHER || "#8e44ad";
}

function drawLabel(parent, p, cls) {
  const line = 0.17;
  const n = p.lines.length;
  let y0 = p.ly + 0.05 - ((n - 1) * line) / 2;
  if (p.valign === "top") y0 = p.ly + 0.13;
  if (p.valign === "bottom") y0 = p.ly - (n - 1) * line - 0.02;
  const text = svg("text", {
    class: cls, x: p.lx, y: y0, "text-anchor": p.anchor,
    "data-netns": p.netns, "data-ifname": p.ifname,
  }, parent);
  p.lines.forEach((s, k) => {
    const t = svg("tspan", { x: p.lx, y: y0 + k * line, class: k ? "nl-addr" : "nl-ifname" }, text);
    t.textContent = s;
  });
  return text;
}

function drawSvg(L, zoom) {
  const [x0, y0, x1, y1] = L.bounds;
  const w = x1 - x0, h = y1 - y0;
  const root = svg("svg", {
    xmlns: SVGNS, class: "nl-svg", viewBox: `${x0} ${y0} ${w} ${h}`,
    width: Math.round(w * PX * zoom), height: Math.round(h * PX * zoom),
    "data-namespaces": L.nodes.filter((n) => n.kind === "netns").length,
    "data-links": L.links.filter((l) => l.kind === "veth").length,
  });
  const colors = L.colors;
  const ports = new Map(L.ports.map((p) => [p.id, p]));
  const gLinks = svg("g", { class: "nl-links" }, root);
  const gNodes = svg("g", { class: "nl-nodes" }, root);
  const gPorts = svg("g", { class: "nl-ports" }, root);
  const gLabels = svg("g", { class: "nl-labels" }, root);

  // nodes first in the DOM order of groups, so the host circle sits under its bridges
  const sorted = [...L.nodes].sort((a, b) => (a.host === b.host ? 0 : a.host ? -1 : 1));
  for (const n of sorted) {
    const g = svg("g", {
      class: `nl-node nl-${n.kind}${n.host ? " nl-host" : ""}`, "data-node-id": n.id,
      "data-kind": n.kind, "data-netns": n.netns, "data-name": n.name,
      "data-host": n.host ? "true" : "false",
      "data-ifname": n.kind === "bridge" ? n.name : null,
      "data-state": n.kind === "bridge" ? n.state : null,
    }, gNodes);
    title(g, n.title);
    if (n.kind === "bridge") {
      svg("rect", {
        x: n.x - n.r, y: n.y - n.r * 0.75, width: 2 * n.r, height: 1.5 * n.r, rx: 0.07,
        class: "nl-shape", stroke: color(colors, n.state),
      }, g);
      const t = svg("text", { x: n.x, y: n.y + 0.055, "text-anchor": "middle", class: "nl-bridge-name" }, g);
      t.textContent = n.name;
    } else {
      svg("circle", { cx: n.x, cy: n.y, r: n.r, class: "nl-shape" }, g);
      const y = n.host ? n.y - n.r + 0.3 : n.y + 0.07;
      const t = svg("text", { x: n.x, y, "text-anchor": "middle", class: "nl-ns-name" }, g);
      t.textContent = n.name;
    }
  }

  for (const l of L.links) {
    const g = svg("g", {
      class: `nl-link nl-${l.kind}`, "data-link-id": l.id, "data-kind": l.kind, "data-state": l.state,
    }, gLinks);
    if (l.kind === "member") {
      svg("line", { x1: l.x1, y1: l.y1, x2: l.x2, y2: l.y2, class: "nl-member-line" }, g);
      continue;
    }
    const a = ports.get(l.a), b = l.b ? ports.get(l.b) : null;
    for (const [p, side] of [[a, "a"], [b, "b"]]) {
      if (p) {
        g.setAttribute(`data-netns-${side}`, p.netns);
        g.setAttribute(`data-ifname-${side}`, p.ifname);
        g.setAttribute(`data-state-${side}`, p.state);
      }
    }
    const mx = l.mx, my = l.my; // the midpoint, or the apex of a loop
    const halves = b ? [[a, l.x1, l.y1, mx, my], [b, l.x2, l.y2, mx, my]] : [[a, l.x1, l.y1, l.x2, l.y2]];
    for (const [p, xa, ya, xb, yb] of halves) {
      const line = svg("line", {
        x1: xa, y1: ya, x2: xb, y2: yb, class: "nl-half", stroke: color(colors, p.state),
        "stroke-dasharray": DASH[p.state], "data-netns": p.netns, "data-ifname": p.ifname,
        "data-state": p.state,
      }, g);
      title(line, p.title);
    }
    if (!b) {
      const s = svg("g", { class: "nl-stub" }, g);
      svg("circle", { cx: l.x2, cy: l.y2, r: 0.1 }, s);
      title(s, "peer outside the lab");
    }
  }

  for (const p of L.ports) {
    const g = svg("g", {
      class: "nl-port", "data-netns": p.netns, "data-ifname": p.ifname, "data-state": p.state,
      "data-kind": p.kind, "data-admin": p.admin_up ? "up" : "down", "data-node-id": p.node,
    }, gPorts);
    // admin down: a hollow marker, so a half-up veth shows which end was left down
    const c = color(colors, p.state);
    svg("circle", {
      cx: p.x, cy: p.y, r: p.r, fill: p.admin_up ? c : "#fff",
      stroke: p.admin_up ? "#fff" : c, class: p.admin_up ? "nl-admin-up" : "nl-admin-down",
    }, g);
    title(g, p.title);
    if (p.label) drawLabel(gLabels, p, "nl-label");
  }
  return root;
}

function legend(colors) {
  const box = document.createElement("div");
  box.className = "nl-legend";
  for (const s of ["UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN"]) {
    const item = document.createElement("span");
    item.className = "nl-legend-item";
    item.dataset.state = s;
    const sw = document.createElement("i");
    sw.style.background = color(colors, s);
    item.append(sw, document.createTextNode(s));
    box.appendChild(item);
  }
  const hollow = document.createElement("span");
  hollow.className = "nl-legend-item";
  hollow.innerHTML = '<b class="nl-hollow"></b>admin down';
  box.appendChild(hollow);
  return box;
}

function render({ model, el }) {
  el.classList.add("netlab-topology");
  const bar = document.createElement("div");
  bar.className = "nl-bar";
  const info = document.createElement("span");
  info.className = "nl-info";
  const err = document.createElement("span");
  err.className = "nl-error";
  const zoomBox = document.createElement("span");
  zoomBox.className = "nl-zoom";
  const scroller = document.createElement("div");
  scroller.className = "nl-scroll";
  el.append(bar, scroller);
  let zoom = 1;
  for (const [label, f] of [["−", 1 / 1.25], ["fit", 0], ["+", 1.25]]) {
    const b = document.createElement("button");
    b.textContent = label;
    b.className = "nl-zoom-btn";
    b.dataset.zoom = label;
    b.addEventListener("click", () => {
      if (f) zoom *= f;
      else {
        const L = model.get("layout");
        if (L && L.bounds) zoom = Math.min(1, (scroller.clientWidth - 4) / ((L.bounds[2] - L.bounds[0]) * PX));
      }
      draw();
    });
    zoomBox.appendChild(b);
  }
  let legendBox = null;

  function draw() {
    pending = false;
    const L = model.get("layout");
    scroller.style.maxHeight = `${model.get("height")}px`;
    err.textContent = model.get("error") || "";
    if (!L || !L.nodes) {
      scroller.replaceChildren(document.createTextNode("no snapshot yet"));
      return;
    }
    if (!legendBox) {
      legendBox = legend(L.colors);
      bar.replaceChildren(legendBox, zoomBox, info, err);
    }
    const top = scroller.scrollTop, left = scroller.scrollLeft;
    scroller.replaceChildren(drawSvg(L, zoom));
    scroller.scrollTop = top;
    scroller.scrollLeft = left;
    const nns = L.nodes.filter((n) => n.kind === "netns").length;
    info.textContent = `${nns} namespaces, ${L.links.filter((l) => l.kind === "veth").length} veth pairs`;
  }
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    Promise.resolve().then(draw);
  }
  model.on("change:layout", schedule);
  model.on("change:error", schedule);
  model.on("change:height", schedule);
  draw();
  return () => {
    model.off("change:layout", schedule);
    model.off("change:error", schedule);
    model.off("change:height", schedule);
  };
}

export default { render };
