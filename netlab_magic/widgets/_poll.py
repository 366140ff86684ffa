"""A background refresh loop that stops when its widget is closed or forgotten."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any


class Poller:
    """Calls ``tick(owner)`` every ``interval`` seconds on a daemon thread until stopped.

    Holds the owner only weakly, so a widget that is garbage-collected stops its loop too.
    """

    def __init__(self, owner: Any, tick: Callable[[Any], None], interval: float, name: str):
        self.interval = float(interval)
        self._stop = threading.Event()
        self._ref = weakref.ref(owner)
        self._tick = tick
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            owner = self._ref()
            if owner is None:
                return
            try:
                self._tick(owner)
            finally:
                del owner

    @property
    def alive(self) -> bool:
        """True while the loop thread runs."""
        return self._thread.is_alive()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the loop and wait (unless called from the loop itself) for it to end."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class Polled:
    """What a polling widget adds to its widget class: ``polling``, ``stop()`` and a ``close()``
    that stops the loop first. The class sets ``self._poller``."""

    _poller: Poller | None = None

    @property
    def polling(self) -> bool:
        """True while the refresh loop runs."""
        return self._poller is not None and self._poller.alive

    def stop(self) -> None:
        """Stop the refresh loop (the widget stays on screen, frozen)."""
        if self._poller is not None:
            self._poller.stop()

    def close(self) -> None:
        """Stop the refresh loop and close the widget."""
        self.stop()
        super().close()  # type: ignore[misc]
