"""The trace's picture reads on its own: every label legible, none over another label or box.

The traces are the workbook's own, recorded from real runs of notebooks 02, 03, 05, 06 and 07
(tests/fixtures/traces/record.py: each ``Trace.to_dict()``). Each packet is laid out and drawn as
``t.draw()`` draws it; matplotlib's renderer gives the box of every text, and no two may overlap,
no text may cover a hook, a decision or a step badge it does not belong to, none may be cut
(by the figure's edge or an ellipsis). No kernel: this runs once, not again rootless.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from netlab_magic.packets.trace_figure import draw_layouts  # noqa: E402
from netlab_magic.packets.trace_picture import trace_layout  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "traces"


def pictures() -> list:
    """One picture per different path of each notebook's traces (record.py keeps each path once)."""
    return [pytest.param(packet, id=f"{path.stem}-{t}-{packet['index'] + 1}")
            for path in sorted(FIXTURES.glob("*.json"))
            for t, trace in enumerate(json.loads(path.read_text())) for packet in trace["packets"]]


def boxes(fig):
    """The figure's texts and the boxes they must not cover, in pixels, with the gid that owns each."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    for ax in fig.axes:
        ax.apply_aspect()  # where drawing puts the axes (no need to draw)
    texts, shapes = [], []
    for ax in fig.axes:
        for text in [*ax.texts, ax.title, ax._left_title, ax._right_title]:
            if text.get_visible() and text.get_text().strip():
                texts.append((text.get_gid() or "", text.get_text(), text.get_window_extent(renderer)))
        shapes += [(p.get_gid(), p.get_window_extent(renderer)) for p in ax.patches if "/" in (p.get_gid() or "")]
    return texts, shapes, fig.bbox


def owner(gid: str) -> str:
    """A node's label and step badge may cover the node; nothing else may (its notes neither)."""
    return gid.split(":label")[0].split(":badge")[0]


def test_there_are_pictures_of_every_notebook():
    stems = {p.id.split("-")[0] for p in pictures()}
    assert stems == {"02", "03", "05", "06", "07"}, stems


@pytest.mark.parametrize("packet", pictures())
def test_no_label_covers_another_or_a_box_and_none_is_cut(packet):
    fig = draw_layouts([trace_layout(packet)])
    texts, shapes, edge = boxes(fig)
    problems = []
    for i, (gid, text, box) in enumerate(texts):
        if "\u2026" in text:
            problems.append(f"{text!r} is cut short")
        if box.x0 < edge.x0 - 0.5 or box.y0 < edge.y0 - 0.5 or box.x1 > edge.x1 + 0.5 or box.y1 > edge.y1 + 0.5:
            problems.append(f"{text!r} is cut by the figure's edge")
        for other_gid, other, other_box in texts[i + 1:]:
            if box.overlaps(other_box) and _area(box, other_box) > 1:
                problems.append(f"{text!r} over {other!r}")
        for shape_gid, shape in shapes:
            if owner(gid) != owner(shape_gid) and box.overlaps(shape) and _area(box, shape) > 1:
                problems.append(f"{text!r} over {shape_gid}")
    assert not problems, "\n".join(problems)


def _area(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0) * max(h, 0)
