"""widgets/draw.py: the matplotlib picture of a lab (made up, and a real sandbox lab's)."""

from __future__ import annotations

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("matplotlib")

from netlab_magic.widgets import draw  # noqa: E402
from netlab_magic.widgets.draw import LabFigure  # noqa: E402
from netlab_magic.widgets.layout import MIN_PX, STATE_COLORS  # noqa: E402
from support.widgets import star  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_poller")


def test_draw_one_artist_per_namespace():
    snap = star(6, {2: ("DOWN", "LOWERLAYERDOWN")})
    fig = draw(snap)
    ax = fig.axes[0]
    gids = [p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("netns:")]
    assert gids == [f"netns:{n}" for n in snap.names]
    lines = {ln.get_gid(): ln for ln in ax.lines if ln.get_gid()}
    assert lines["if:c2/eth0"].get_color() == STATE_COLORS["LOWERLAYERDOWN"]
    assert lines["if:host/veth2"].get_color() == STATE_COLORS["DOWN"]
    assert lines["if:c1/eth0"].get_color() == STATE_COLORS["UP"]
    # into an existing axes
    from matplotlib.figure import Figure

    f2 = Figure()
    ax2 = f2.add_subplot()
    assert draw(snap, ax=ax2) is f2
    assert [p.get_gid() for p in ax2.patches if (p.get_gid() or "").startswith("netns:")] == gids


def test_draw_shows_itself_without_matplotlib_inline():
    """``draw(snap)`` in a fresh kernel: a PNG, not ``<Figure size ...>`` (no %matplotlib inline)."""
    import re

    from IPython.core.formatters import DisplayFormatter
    from matplotlib.figure import Figure

    fig = draw(star(4))
    assert isinstance(fig, LabFigure) and isinstance(fig, Figure)
    fmt = DisplayFormatter()
    with pytest.raises(KeyError):
        fmt.formatters["image/png"].lookup_by_type(Figure)  # nothing registered for Figure
    data, _ = fmt.format(fig)
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    # the text stays what notebooks/sanitize.cfg expects of a figure
    assert re.fullmatch(r"<Figure size [0-9.]+x[0-9.]+ with [0-9]+ Axes>", data["text/plain"])
    # 900 px wide at most, text 12 px or more (the live widget's picture)
    assert fig.get_figwidth() * fig.dpi <= 905
    sizes = [t.get_fontsize() * fig.dpi / 72 for t in fig.axes[0].texts]
    assert min(sizes) >= MIN_PX * 0.97
    big = draw(star(100))
    assert big.get_figwidth() * big.dpi <= 905 and big.get_figheight() * big.dpi <= 700
    assert min(t.get_fontsize() * big.dpi / 72 for t in big.axes[0].texts) >= MIN_PX * 0.97


def test_real_lab_draws(sandbox_lab):
    fig = draw(sandbox_lab.snapshot())
    gids = [p.get_gid() for p in fig.axes[0].patches if (p.get_gid() or "").startswith("netns:")]
    assert len(gids) == 4
