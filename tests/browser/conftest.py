"""Fixtures shared by the browser tests (helpers: ``jlab.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from jlab import ARGS, CHROMIUM  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by playwright (``--no-sandbox``: it also runs as root)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
