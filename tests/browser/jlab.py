"""Helpers shared by the browser tests: a real JupyterLab on 127.0.0.1, Chromium, running cells.

``jupyter_lab(root)`` starts ``jupyter lab`` serving ``root`` (its own config, runtime,
workspace and settings directories under ``root``, no news, no update checks, every cell in
the DOM); ``open_notebook`` opens one notebook in its own reset workspace and waits for an
idle kernel; ``run_cell`` runs a code cell through the UI (Shift+Enter).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
ARTIFACTS = REPO / "artifacts"
CHROMIUM = os.environ.get("NETLAB_CHROMIUM", "/usr/bin/chromium")
TOKEN = "netlab-widgets-test"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def browser_tools_missing() -> str | None:
    """Why the browser tests cannot run here (Chromium, playwright, jupyterlab), or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed"
    return None


def write_notebook(path: Path, cells: list[str], kernel: str = "python3",
                   display_name: str = "Python 3") -> None:
    """A notebook of code cells, never run."""
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{k}", "metadata": {},
                   "outputs": [], "source": src} for k, src in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": display_name, "language": "python", "name": kernel}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


def netlab_kernelspec(base: Path) -> dict[str, str]:
    """Write a ``netlab`` kernelspec (this Python, this repo) under ``base``; the env that finds it.

    The same kernel as the one ``python -m netlab_magic install-kernel`` installs: as real root it
    only loads the extension, otherwise it starts the kernel in a user namespace (rootless lab).
    """
    spec = base / "kernels" / "netlab"
    spec.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "netlab_magic.jupyter.kernel", "-f", "{connection_file}"],
        "display_name": "Python 3 (netlab)", "language": "python", "interrupt_mode": "signal",
        "env": {"PYTHONPATH": pythonpath},
    }))
    old = os.environ.get("JUPYTER_PATH")
    return {"JUPYTER_PATH": str(base) + (os.pathsep + old if old else "")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(root: Path) -> None:
    def put(plugin: str, name: str, value: dict) -> None:
        d = root / ".settings" / "@jupyterlab" / plugin
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.jupyterlab-settings").write_text(json.dumps(value))

    put("apputils-extension", "notification", {"fetchNews": "false"})
    # every cell stays in the DOM, so a widget scrolled out of view can still be inspected
    put("notebook-extension", "tracker", {"windowingMode": "none"})


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``jupyter lab`` serving ``root`` on 127.0.0.1; yields its URL, stops it afterwards."""
    _settings(root)
    port = free_port()
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(root / ".cfg"), "JUPYTER_RUNTIME_DIR": str(root / ".rt"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".ws"), "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           **(env or {})}
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--ServerApp.allow_root=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {(root / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        else:
            pytest.fail("jupyter lab did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def shutdown_kernels(url: str) -> None:
    """Shut every kernel of the server down (its lab goes with it), through the REST API."""
    import urllib.request

    def call(method: str, path: str):
        req = urllib.request.Request(f"{url}{path}", method=method,
                                     headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as r:  # 127.0.0.1 only
            return json.loads(r.read() or b"null")

    for k in call("GET", "/api/kernels") or []:
        try:
            call("DELETE", f"/api/kernels/{k['id']}")
        except Exception:
            pass


def open_notebook(browser, url: str, notebook: str, kernel: bool = True):
    """A new page with ``notebook`` open in a workspace of its own, its kernel idle (its console
    watched: ``page.console``)."""
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.set_default_timeout(60_000)
    pg.console = watch_console(pg)
    pg.goto(f"{url}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={TOKEN}")
    pg.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    if not kernel:
        return pg
    pg.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    pg.wait_for_function("() => /\\| Idle/.test(document.querySelector('.jp-StatusBar-Widget')?.parentElement"
                         "?.textContent ?? '')", timeout=90_000)
    return pg


def run_cell(page, k: int, timeout: float = 120) -> str:
    """Select code cell ``k`` and run it (Shift+Enter), wait for its prompt number; its output text."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(k)
    prompt = cell.locator(".jp-InputArea-prompt")
    for _ in range(3):  # a key press sent while the kernel still connects can be lost
        prompt.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("el => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                                   arg=prompt.element_handle(), timeout=15_000)
            break
        except Exception:
            continue
    try:
        page.wait_for_function(
            "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=timeout * 1000,
        )
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"browser-failed-cell-{k}.png"))
        pytest.fail(f"cell {k} did not finish: prompt {prompt.inner_text()!r}, "
                    f"output {cell.locator('.jp-OutputArea').inner_text()[-2000:]!r}")
    out = cell.locator(".jp-OutputArea").inner_text()
    if "Traceback" in out or "Error" in out.split("\n")[0]:
        pytest.fail(f"cell {k} failed: {out[-2000:]}")
    return out


#: Console errors that are JupyterLab's own, not the project's (each with its reason).
KNOWN_CONSOLE_NOISE: list[str] = []


class Console:
    """Every error the page logs (``console.error`` and uncaught exceptions), from now on."""

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda err: self.messages.append(f"uncaught: {err}"))

    def _console(self, msg) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            self.messages.append(f"{msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})")

    def errors(self) -> list[str]:
        """The errors that are not known JupyterLab noise."""
        return [m for m in self.messages if not any(n in m for n in KNOWN_CONSOLE_NOISE)]

    def check(self) -> None:
        """Fail on any project error in the console (widgets, anywidget, the kernel's messages)."""
        errors = self.errors()
        if errors:
            pytest.fail("errors in the browser console:\n" + "\n".join(errors[:20]))


def watch_console(page) -> Console:
    return Console(page)


def shot(locator, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    locator.screenshot(path=str(path))
    return path


def compose(top: Path, bottom: Path, out: Path) -> None:
    """Stack two screenshots (the picture for the docs)."""
    from PIL import Image

    a, b = Image.open(top), Image.open(bottom)
    img = Image.new("RGB", (max(a.width, b.width), a.height + b.height + 12), "white")
    img.paste(a, (0, 0))
    img.paste(b, (0, a.height + 12))
    img.save(out)


def attr(page, selector: str, name: str) -> str | None:
    return page.eval_on_selector(selector, f"el => el.getAttribute({name!r})")
