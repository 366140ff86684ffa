"""Waiting for something the tests cannot be told about: a condition polled until it holds."""

from __future__ import annotations

import time
from typing import Callable


def wait_for(pred: Callable[[], object], timeout: float = 10.0, step: float = 0.05) -> bool:
    """Whether ``pred()`` came true within ``timeout`` seconds (asked every ``step`` seconds, and once at the end)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())
