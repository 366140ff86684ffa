// netlab_magic topology widget: draws the diagram that Python computed, fitted to its box.
// Each view tells the kernel it is there (and when it goes), so the kernel polls the lab only
// while someone looks at it.
// svg() and SVGNS come from dom.js, announce() from view.js (joined in front: web/esm.py).
const DASH = { DOWN: "7 4", LOWERLAYERDOWN: "2 3.5" };
const LINK_PX = 3; // veth halves, px
const PORT_PX = [3.5, 6]; // interface markers: radius within these, px

function title(parent, text) {
  const t = svg("title", {}, parent);
  t.textContent = text;
  return t;
}

function color(colors, state) {
  return colors[state] || colors.OTHER || "#8e44ad";
}

// One block of text as Python placed it: lines, baseline of the first, line step, size (units).
function drawText(parent, T, cls, attrs) {
  const text = svg("text", {
    class: cls, x: T.x, y: T.y, "text-anchor": T.anchor, "font-size": T.size,
    "font-weight": T.bold ? 600 : null, ...(attrs || {}),
  }, parent);
  T.lines.forEach((s, k) => {
    const t = svg("tspan", { x: T.x, y: T.y + k * T.dy, class: k ? "nl-addr" : "nl-first" }, text);
    t.textContent = s;
  });
  return text;
}

export function drawSvg(L, s) {
  const [x0, y0, x1, y1] = L.bounds;
  const w = x1 - x0, h = y1 - y0;
  const px = (p) => p / s; // a length in screen pixels, in units
  const root = svg("svg", {
    xmlns: SVGNS, class: "nl-svg", viewBox: `${x0} ${y0} ${w} ${h}`,
    width: Math.round(w * s), height: Math.round(h * s), "data-scale": s.toFixed(2),
    "data-namespaces": L.nodes.filter((n) => n.kind === "netns").length,
    "data-links": L.links.filter((l) => l.kind === "veth").length,
    "data-dense": L.dense ? "true" : "false",
  });
  const colors = L.colors;
  const ports = new Map(L.ports.map((p) => [p.id, p]));
  const gHost = svg("g", { class: "nl-nodes nl-under" }, root); // the host: its links and bridges on top
  const gLinks = svg("g", { class: "nl-links" }, root);
  const gNodes = svg("g", { class: "nl-nodes" }, root);
  const gPorts = svg("g", { class: "nl-ports" }, root);
  const gLabels = svg("g", { class: "nl-labels", "stroke-width": px(3.5) }, root);

  for (const n of L.nodes) {
    const g = svg("g", {
      class: `nl-node nl-${n.kind}${n.host ? " nl-host" : ""}`, "data-node-id": n.id,
      "data-kind": n.kind, "data-netns": n.netns, "data-name": n.name,
      "data-host": n.host ? "true" : "false",
      "data-ifname": n.kind === "bridge" ? n.name : null,
      "data-state": n.kind === "bridge" ? n.state : null,
    }, n.host ? gHost : gNodes);
    title(g, n.title);
    if (n.kind === "bridge") {
      svg("rect", {
        x: n.x - n.w, y: n.y - n.h, width: 2 * n.w, height: 2 * n.h, rx: Math.min(n.h, 0.08),
        class: "nl-shape", stroke: color(colors, n.state), "stroke-width": px(2),
      }, g);
      drawText(g, n.text, "nl-bridge-name", { "stroke-width": px(3) });
    } else {
      svg("circle", { cx: n.x, cy: n.y, r: n.r, class: "nl-shape", "stroke-width": px(n.host ? 2 : 1.3) }, g);
      // the name above the interface markers (a dense lab's names are larger than their circles)
      const t = drawText(gLabels, n.text, "nl-ns-name", { "stroke-width": px(3.5), "data-netns": n.netns });
      if (n.host) t.classList.add("nl-host-name");
    }
  }

  for (const l of L.links) {
    const g = svg("g", {
      class: `nl-link nl-${l.kind}`, "data-link-id": l.id, "data-kind": l.kind, "data-state": l.state,
    }, gLinks);
    if (l.kind === "member") {
      svg("line", { x1: l.x1, y1: l.y1, x2: l.x2, y2: l.y2, class: "nl-member-line",
                    "stroke-width": px(1.3), "stroke-dasharray": `${px(4)} ${px(3)}` }, g);
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
      const dash = DASH[p.state];
      const line = svg("line", {
        x1: xa, y1: ya, x2: xb, y2: yb, class: "nl-half", stroke: color(colors, p.state),
        "stroke-width": px(LINK_PX), "stroke-dasharray": dash ? dash.split(" ").map((d) => px(+d)).join(" ") : null,
        "data-netns": p.netns, "data-ifname": p.ifname, "data-state": p.state,
      }, g);
      title(line, p.title);
    }
    if (!b) {
      const st = svg("g", { class: "nl-stub" }, g);
      svg("circle", { cx: l.x2, cy: l.y2, r: px(5), "stroke-width": px(1.3) }, st);
      title(st, "peer outside the lab");
    }
  }

  const pr = Math.min(Math.max(0.075 * s, PORT_PX[0]), PORT_PX[1]) / s;
  for (const p of L.ports) {
    const g = svg("g", {
      class: "nl-port", "data-netns": p.netns, "data-ifname": p.ifname, "data-state": p.state,
      "data-operstate": p.operstate, "data-kind": p.kind, "data-admin": p.admin_up ? "up" : "down",
      "data-node-id": p.node, "data-label": p.text ? "shown" : "tooltip",
    }, gPorts);
    // admin down: a hollow marker, so a half-up veth shows which end was left down
    const c = color(colors, p.state);
    svg("circle", {
      cx: p.x, cy: p.y, r: pr, fill: p.admin_up ? c : "#fff", stroke: p.admin_up ? "#fff" : c,
      "stroke-width": px(p.admin_up ? 1 : 2), class: p.admin_up ? "nl-admin-up" : "nl-admin-down",
    }, g);
    title(g, p.title);
    if (p.text) drawText(gLabels, p.text, "nl-label", { "data-netns": p.netns, "data-ifname": p.ifname });
  }
  return root;
}

function legend(colors) {
  const box = document.createElement("div");
  box.className = "nl-legend";
  for (const s of ["UP", "DOWN", "LOWERLAYERDOWN"]) {
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
  let scale = null; // null: fit the box; else the scale the user zoomed to
  let shown = 0;
  for (const [label, f] of [["−", 1 / 1.25], ["fit", 0], ["+", 1.25]]) {
    const b = document.createElement("button");
    b.textContent = label;
    b.className = "nl-zoom-btn";
    b.dataset.zoom = label;
    b.addEventListener("click", () => {
      scale = f ? (scale || shown) * f : null;
      draw();
    });
    zoomBox.appendChild(b);
  }
  let legendBox = null;
  let lastBox = "";

  // the box: the widget's own height if its Layout sets one, else the `height` trait
  function box() {
    const W = Math.max(scroller.clientWidth || el.clientWidth || 600, 120);
    const fill = Boolean(el.style.height) && el.style.height !== "auto";
    el.classList.toggle("nl-fill", fill);
    const H = fill ? Math.max(el.clientHeight - bar.offsetHeight - 8, 60) : model.get("height");
    return [W - 2, H - 2, fill];
  }

  function draw() {
    pending = false;
    const L = model.get("diagram");
    err.textContent = model.get("error") || "";
    const [W, H, fill] = box();
    scroller.style.maxHeight = fill ? "" : `${H + 2}px`;
    lastBox = `${W}x${H}`;
    if (!L || !L.nodes) {
      scroller.replaceChildren(document.createTextNode("no snapshot yet"));
      return;
    }
    if (!legendBox) {
      legendBox = legend(L.colors);
      bar.replaceChildren(legendBox, zoomBox, info, err);
    }
    const [x0, y0, x1, y1] = L.bounds;
    const fit = Math.min(W / (x1 - x0), H / (y1 - y0));
    const s = scale || Math.max(L.scale.min, Math.min(L.scale.max, fit));
    shown = s;
    const top = scroller.scrollTop, left = scroller.scrollLeft;
    const pic = drawSvg(L, s);
    pic.dataset.fit = scale ? "user" : s > fit + 0.01 ? "readable" : "box";
    scroller.replaceChildren(pic);
    scroller.scrollTop = top;
    scroller.scrollLeft = left;
    const c = L.counts || {};
    const many = (k, one) => `${k} ${one}${k === 1 ? "" : "s"}`;
    info.textContent = [many(c.namespaces, "namespace"), many(c.veth, "veth pair")]
      .concat(c.bridges ? [many(c.bridges, "bridge")] : []).join(", ");
  }
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  }
  const resized = new ResizeObserver(() => {
    const [W, H] = box();
    if (`${W}x${H}` !== lastBox) schedule();
  });
  resized.observe(el);
  const events = ["change:diagram", "change:error", "change:height"];
  for (const e of events) model.on(e, schedule);
  draw();
  const bye = announce(model);
  return () => {
    for (const e of events) model.off(e, schedule);
    resized.disconnect();
    bye();
  };
}

export default { render };
