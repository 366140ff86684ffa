"""One poller for every live view of the lab, and what it takes to poll only when it is worth it.

* **One thread.** Every widget reads through a :class:`Feed` (one per source: the lab's
  snapshot, one namespace's ``iptables-save``), and every feed is polled by the one
  :class:`Poller` thread of the process. Widgets of the same source share their feed: one read
  per refresh, however many views show it.
* **Only what is seen.** A view in the browser says when it appears, every 30 s while it is
  there, when its page is hidden or shown again, and when it goes (``{"netlab": "view", ...}``
  custom messages). A feed is polled only while one of its widgets has a live view (shown, in a
  visible page): nothing is read for a notebook nobody looks at, a background tab, nor in a
  kernel without a front end (nbclient, tests), where :meth:`Polled.refresh` reads on demand.
* **Only when something may change.** Right after a cell (``post_run_cell``) every live feed is
  read at once, then every ``interval`` while cells run; when the lab stays the same, the
  interval grows to :data:`IDLE_MAX` seconds. A read never takes more than a small share of the
  time (:data:`BUSY_SHARE`, :data:`IDLE_SHARE`): a slow source is read less often.
* **Closed when gone.** Re-running a cell closes the widgets its earlier runs made; a widget
  whose last view was removed (its output cleared or replaced) is closed after :data:`GRACE`
  seconds without a new one, counted while the kernel is idle.

Over 400 lines: the four share one state (feeds, views, the cell hooks), one section each.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

IDLE_MAX = 3.0  # seconds between reads of an unchanged lab when no cell runs
AFTER_CELL = 5.0  # seconds after a cell during which feeds are read every `interval`
BUSY_SHARE = 0.1  # a feed's reads take at most this share of the time while cells run...
IDLE_SHARE = 0.01  # ... and this share when the kernel is idle
VIEW_TTL = 100.0  # a view that did not say it is there for this long (kernel idle) is gone
GRACE = 5.0  # a widget without views for this long (kernel idle) is closed

UNSET = object()


def _now() -> float:
    return time.monotonic()


class Feed:
    """One source, read for every widget that shows it: its last value, and whether it changed.

    ``read()`` returns the value; ``same(a, b)`` says whether two values draw the same (``==``
    by default). Subscribers get ``feed_update(feed, changed)`` after every read.
    """

    def __init__(self, key: Hashable, read: Callable[[], Any], interval: float | None,
                 same: Callable[[Any, Any], bool] | None = None) -> None:
        self.key = key
        self.read = read
        self.interval = float(interval or 0)
        self.same = same or (lambda a, b: a == b)
        self.subscribers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.value: Any = UNSET
        self.version = 0  # bumped on every change
        self.error = ""
        self.reads = 0
        self.last_read = 0.0  # time.time() of the last read
        self.cost = 0.0  # seconds a read takes (smoothed)
        self.next_due = 0.0
        self.quiet = 0  # reads in a row that found nothing new
        self.baseline: Any = UNSET  # the value when the last cell started
        self.counts_moves = False  # set by widgets that show what moved since the last cell
        self.lock = threading.RLock()
        self._memo: dict[str, tuple[int, Any]] = {}

    def memo(self, name: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per version of the value (shared by the feed's widgets)."""
        got = self._memo.get(name)
        if got is not None and got[0] == self.version:
            return got[1]
        value = make()
        self._memo[name] = (self.version, value)
        return value

    def poll(self) -> bool:
        """Read once and tell every subscriber; True if the value changed."""
        with self.lock:
            changed = self._read()
            self._tell(changed)
        return changed

    def _read(self) -> bool:
        with self.lock:
            t0 = time.perf_counter()
            self.reads += 1
            self.last_read = time.time()
            try:
                value = self.read()
            except Exception as err:  # shown in the widgets; polling goes on
                self.error = f"{type(err).__name__}: {err}"
                changed = False
            else:
                self.error = ""
                changed = self.value is UNSET or not self.same(self.value, value)
                if changed:
                    self.value = value
                    self.version += 1
                if self.baseline is UNSET:
                    self.baseline = self.value
            dt = time.perf_counter() - t0
            self.cost = dt if self.reads == 1 else 0.7 * self.cost + 0.3 * dt
            return changed

    def cell_started(self) -> None:
        """A cell starts: what moves from now on is what it did (read now: the baseline)."""
        with self.lock:
            changed = self._read()
            if not self.error:
                changed = changed or self.baseline is not self.value
                self.baseline = self.value
            self._tell(changed)

    def _tell(self, changed: bool) -> None:
        for w in list(self.subscribers):
            try:
                w.feed_update(self, changed)
            except Exception:  # a widget being closed; the others still get it
                pass

    def watched(self) -> bool:
        """Whether some widget of this feed has a live view (and wants polling)."""
        return self.interval > 0 and any(w.live_views() for w in list(self.subscribers))


class Poller:
    """The one thread that reads every watched feed (and closes widgets nobody sees)."""

    def __init__(self) -> None:
        self.feeds: dict[Hashable, Feed] = {}
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.executing = False
        self.last_cell_end = _now()
        self.orphans: weakref.WeakSet[Any] = weakref.WeakSet()

    # -- feeds ------------------------------------------------------------------------------

    def feed(self, key: Hashable, read: Callable[[], Any], interval: float | None,
             same: Callable[[Any, Any], bool] | None = None) -> Feed:
        """The feed for ``key`` (made on first use; a shorter interval wins)."""
        with self.cond:
            f = self.feeds.get(key)
            if f is None:
                f = self.feeds[key] = Feed(key, read, interval, same)
            elif interval and (not f.interval or interval < f.interval):
                f.interval = float(interval)
            return f

    def subscribe(self, widget: Any, feed: Feed) -> None:
        with self.cond:
            feed.subscribers.add(widget)
            if feed.interval > 0:
                self._start()
            self.cond.notify()

    def unsubscribe(self, widget: Any, feed: Feed) -> None:
        with self.cond:
            feed.subscribers.discard(widget)
            self.orphans.discard(widget)
            if not len(feed.subscribers) and self.feeds.get(feed.key) is feed:
                del self.feeds[feed.key]
            else:  # the fastest of the widgets left
                feed.interval = min((w.poll_interval for w in list(feed.subscribers) if w.poll_interval),
                                    default=feed.interval)

    def wake(self, feed: Feed | None = None) -> None:
        """Read ``feed`` (every feed if None) as soon as possible."""
        with self.cond:
            for f in [feed] if feed else list(self.feeds.values()):
                f.next_due = 0.0
                f.quiet = 0
            self.cond.notify()

    def orphan(self, widget: Any) -> None:
        with self.cond:
            self.orphans.add(widget)
            self.cond.notify()

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def busy_until(self) -> float:
        """Now while a cell runs, else when the last one ended: idle time is counted from there."""
        return _now() if self.executing else self.last_cell_end

    # -- cells ------------------------------------------------------------------------------

    def cell_started(self) -> None:
        self.executing = True
        for f in list(self.feeds.values()):
            if f.counts_moves and f.subscribers:
                f.cell_started()
        self.wake()

    def cell_ended(self) -> None:
        self.executing = False
        self.last_cell_end = _now()
        self.wake()

    # -- the thread -------------------------------------------------------------------------

    def _start(self) -> None:
        if not self.alive:
            self.thread = threading.Thread(target=self._run, name="netlab-poller", daemon=True)
            self.thread.start()

    def _interval(self, f: Feed, changed: bool, now: float) -> float:
        busy = self.executing or now - self.last_cell_end < AFTER_CELL
        if changed or busy:
            f.quiet = 0
            every = f.interval
        else:
            f.quiet += 1
            every = min(IDLE_MAX, f.interval * 1.5 ** f.quiet)
        return max(every, f.cost / (BUSY_SHARE if busy else IDLE_SHARE))

    def _run(self) -> None:
        while True:
            with self.cond:
                now = _now()
                due: list[Feed] = []
                wait = math.inf
                for key, f in list(self.feeds.items()):
                    if not len(f.subscribers):  # its widgets were dropped without close()
                        del self.feeds[key]
                        continue
                    if not f.watched():
                        continue
                    if f.next_due <= now:
                        due.append(f)
                    else:
                        wait = min(wait, f.next_due - now)
                closing = []
                for w in list(self.orphans):
                    left = w.orphan_deadline() - now
                    if self.executing or left > 0:
                        wait = min(wait, max(left, 0.5))
                    else:
                        closing.append(w)
                if not due and not closing:
                    self.cond.wait(None if wait == math.inf else wait)
                    continue
            _join_lab()
            for f in due:
                changed = f.poll()
                f.next_due = _now() + self._interval(f, changed, _now())
            for w in closing:
                with self.cond:
                    self.orphans.discard(w)
                if not w.live_views() and w.orphan_deadline() <= _now() and not self.executing:
                    w.close()


def _join_lab() -> None:
    """Keep the poller in the lab's host (a reset makes a new one): sources may run commands."""
    lab_mod = sys.modules.get("netlab_magic.lab.lab")
    if lab_mod is not None:
        try:
            lab_mod.Lab.adopt_calling_thread()
        except Exception:
            pass


POLLER = Poller()

# ------------------------------------------------------------------ cells, and what they made

_cells = {"installed": None, "cell": None, "run": 0}
_made: dict[str, list[tuple[int, weakref.ref]]] = {}


def _pre_run_cell(info: Any = None) -> None:
    _cells["run"] += 1
    cell = getattr(info, "cell_id", None)
    _cells["cell"] = cell
    if cell:  # a re-run: what this cell made before is replaced
        for run, ref in _made.pop(cell, []):
            w = ref()
            if w is not None:
                w.close()
    POLLER.cell_started()


def _post_run_cell(result: Any = None) -> None:
    POLLER.cell_ended()


def install_cell_hooks() -> None:
    """Follow the cells of the IPython shell we run in (once)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None or _cells["installed"] is ip:
        return
    ip.events.register("pre_run_cell", _pre_run_cell)
    ip.events.register("post_run_cell", _post_run_cell)
    _cells["installed"] = ip
    POLLER.executing = True  # the cell that makes the first widget is running


def remember(widget: Any) -> None:
    """``widget`` was made by the cell that runs now."""
    cell = _cells["cell"]
    if cell:
        made = _made.setdefault(cell, [])
        made[:] = [(r, ref) for r, ref in made if ref() is not None]
        made.append((_cells["run"], weakref.ref(widget)))


# ------------------------------------------------------------------ what a widget adds


class Polled:
    """What a polling widget adds to its widget class: a feed, views, ``refresh()``,
    ``polling``, ``stop()`` and a ``close()`` that leaves the feed first."""

    _feed: Feed | None = None
    _stopped = False

    def _start_feed(self, key: Hashable, read: Callable[[], Any], interval: float | None,
                    same: Callable[[Any, Any], bool] | None = None) -> None:
        self._views: dict[str, float] = {}  # view id -> when it last said it is there
        self._hidden: set[str] = set()  # views whose page is hidden
        self._orphan_since: float | None = None
        self._interval = float(interval or 0)
        install_cell_hooks()
        remember(self)
        self.on_msg(self._on_view_msg)  # type: ignore[attr-defined]
        self._feed = POLLER.feed(key, read, interval, same)
        POLLER.subscribe(self, self._feed)
        self._feed.poll()  # what the widget shows first, and its static picture

    # -- views ------------------------------------------------------------------------------

    def _on_view_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("netlab") != "view":
            return
        vid = str(content.get("id"))
        if content.get("alive"):
            new = not self.live_views()
            self._views[vid] = _now()
            if content.get("hidden"):
                self._hidden.add(vid)
            else:
                self._hidden.discard(vid)
            self._orphan_since = None
            if new and self.live_views() and self._feed is not None:
                POLLER.wake(self._feed)  # it was not read while nobody looked
        else:
            self._hidden.discard(vid)
            if self._views.pop(vid, None) is not None and not self._views:
                self._orphan_since = _now()
                POLLER.orphan(self)

    def live_views(self) -> int:
        """Views in a visible page that said they are there within VIEW_TTL (of idle time)."""
        if self._stopped or not self._interval:
            return 0
        since = _now() - VIEW_TTL
        busy = POLLER.busy_until()
        hidden = self._hidden
        return sum(1 for vid, seen in list(self._views.items()) if max(seen, busy) > since and vid not in hidden)

    @property
    def poll_interval(self) -> float:
        """Seconds between reads while cells run (0: only on :meth:`refresh`)."""
        return self._interval

    def orphan_deadline(self) -> float:
        """When a widget without views is closed: GRACE seconds of idle kernel after it lost them."""
        return max(self._orphan_since or _now(), POLLER.last_cell_end) + GRACE

    @property
    def views(self) -> int:
        """How many views of this widget the front end shows (as it last said)."""
        return len(self._views)

    # -- reading ----------------------------------------------------------------------------

    @property
    def polling(self) -> bool:
        """True while the poller reads this widget's source: a view is shown, not closed."""
        return (self._feed is not None and not self._stopped and self.live_views() > 0
                and POLLER.alive and self._feed.key in POLLER.feeds)

    @property
    def refreshes(self) -> int:
        """How many times the source was read (for every widget of the same source)."""
        return self._feed.reads if self._feed else 0

    @property
    def last_refresh(self) -> float:
        return self._feed.last_read if self._feed else 0.0

    def refresh(self) -> bool:
        """Read the source now; True if what this widget shows changed."""
        if self._feed is None:
            return False
        self._changed = False
        self._feed.poll()
        return self._changed

    def mark(self) -> None:
        """Count moves from now on (what a new cell does by itself)."""
        if self._feed is not None:
            self._feed.cell_started()

    def stop(self) -> None:
        """Stop refreshing (the widget stays on screen, frozen)."""
        self._stopped = True

    def close(self) -> None:
        """Stop the refresh loop and close the widget."""
        self._stopped = True
        if self._feed is not None:
            POLLER.unsubscribe(self, self._feed)
        super().close()  # type: ignore[misc]

    def feed_update(self, feed: Feed, changed: bool) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
