"""Text as the layouts measure it, and the room it takes: where a label can go without covering
anything already drawn (boxes, circles, lines). Units are the layout's; no font is read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CHAR_W = 0.6  # average character width, in em (system-ui; generous for digits)
LINE_H = 1.22  # line height, in em
ASCENT, DESCENT = 0.8, 0.24  # of a line, in em


def v4_first(addrs: Sequence[str]) -> list[str]:
    """Addresses worth printing: IPv6 link-local ones are left to the tooltip."""
    return [a for a in addrs if not a.lower().startswith("fe80:")]


def text_size(lines: Sequence[str], size: float, bold: bool = False) -> tuple[float, float]:
    """Width and height (units) of ``lines`` of text of ``size`` units."""
    cw = CHAR_W * (1.06 if bold else 1.0)
    w = max((len(s) for s in lines), default=0) * cw * size
    h = (max(len(lines), 1) - 1) * LINE_H * size + (ASCENT + DESCENT) * size
    return w, h


def text_block(lines: Sequence[str], size: float, cx: float, cy: float, anchor: str = "middle",
          bold: bool = False) -> dict[str, Any]:
    """A text block centred on (cx, cy): where each line's baseline goes, and its box."""
    w, h = text_size(lines, size, bold)
    x0, y0 = cx - w / 2, cy - h / 2
    x = {"start": x0, "end": x0 + w}.get(anchor, cx)
    return {"lines": list(lines), "size": size, "x": x, "y": y0 + ASCENT * size, "dy": LINE_H * size,
            "anchor": anchor, "bold": bold, "box": [x0, y0, x0 + w, y0 + h]}


def text_beside(lines: Sequence[str], size: float, px: float, py: float, nx: float, ny: float,
            gap: float) -> dict[str, Any]:
    """A text block just off point (px, py) in direction (nx, ny), aligned towards the point."""
    w, h = text_size(lines, size)
    reach = abs(nx) * w / 2 + abs(ny) * h / 2 + gap
    anchor = "start" if nx > 0.3 else "end" if nx < -0.3 else "middle"
    return text_block(lines, size, px + nx * reach, py + ny * reach, anchor)


def _overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _hits_circle(box: Sequence[float], cx: float, cy: float, r: float) -> bool:
    qx, qy = min(max(cx, box[0]), box[2]), min(max(cy, box[1]), box[3])
    return (qx - cx) ** 2 + (qy - cy) ** 2 < r * r


def _hits_segment(box: Sequence[float], x1: float, y1: float, x2: float, y2: float) -> bool:
    """Whether the segment crosses the box (Liang-Barsky clipping)."""
    dx, dy = x2 - x1, y2 - y1
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x1 - box[0]), (dx, box[2] - x1), (-dy, y1 - box[1]), (dy, box[3] - y1)):
        if abs(p) < 1e-12:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


class Space:
    """Boxes, circles and lines already drawn, so that labels go where nothing is."""

    def __init__(self) -> None:
        self.boxes: list[Sequence[float]] = []
        self.circles: list[tuple[float, float, float]] = []
        self.segments: list[tuple[float, float, float, float]] = []

    def free(self, box: Sequence[float]) -> bool:
        return (not any(_overlap(box, b) for b in self.boxes)
                and not any(_hits_circle(box, *c) for c in self.circles)
                and not any(_hits_segment(box, *s) for s in self.segments))

    def take(self, box: Sequence[float]) -> None:
        self.boxes.append(box)
