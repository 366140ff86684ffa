"""`pip install netlab_magic` is enough: the wheel carries the netlab kernelspec and the workbook.

The wheel is built from this tree, installed (without dependencies: those are this venv's) into
a fresh prefix, and used from there: Jupyter finds the "Python 3 (netlab)" kernel in the prefix's
``share/jupyter``, the kernel runs a cell in its lab, and ``netlab workbook DIR`` copies the notebooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from netlab_magic.kernelspec import kernel_json

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_kernelspec_is_the_one_install_kernel_writes():
    shipped = json.loads((ROOT / "share/jupyter/kernels/netlab/kernel.json").read_text())
    assert shipped == kernel_json("python")  # jupyter_client puts its own python in place of "python"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp), str(ROOT)], check=True, timeout=300)
    wheel = next(tmp.glob("netlab_magic-*.whl"))
    prefix = tmp / "prefix"
    ours = Path(sys.prefix, "share", "jupyter", "kernels", "netlab", "kernel.json")
    had = ours.exists()
    # --ignore-installed: without it pip uninstalls this venv's own (editable) netlab_magic, kernelspec and all
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q", "--prefix", str(prefix),
                    str(wheel)],
                   check=True, timeout=300)
    site = next(prefix.glob("lib/python*/site-packages"))
    assert ours.exists() == had, "installing the wheel elsewhere took this venv's netlab kernelspec away"
    return wheel, prefix, site


def test_the_wheel_holds_the_kernelspec_and_the_workbook(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".data/data/share/jupyter/kernels/netlab/kernel.json") for n in names), names
    books = sorted(Path(n).name for n in names if n.startswith("netlab_magic/workbook/") and n.endswith(".ipynb"))
    assert books == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_an_installed_wheel_gives_jupyter_the_kernel_and_the_workbook(installed, tmp_path):
    from kernel_client import Kernel

    _, prefix, site = installed
    env = {"JUPYTER_PATH": str(prefix / "share" / "jupyter"), "PYTHONPATH": str(site)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("netlab")
        assert spec.display_name == "Python 3 (netlab)" and spec.resource_dir.startswith(str(prefix))
        here = os.getcwd()
        os.chdir(tmp_path)  # `python -m` puts the cwd first on sys.path: not this tree
        try:
            k = Kernel("netlab")
        finally:
            os.chdir(here)
        try:
            where = k.value("__import__('netlab_magic').__file__")
            assert where.startswith(str(site)), where  # the installed copy, not this tree
            assert k.ok("%netns host ip -br link").stdout.split()[0] == "lo"
        finally:
            k.shutdown()
        out = subprocess.run([sys.executable, "-m", "netlab_magic", "workbook", str(tmp_path / "book")],
                             capture_output=True, text=True, timeout=60, env={**os.environ})
        assert out.returncode == 0, out.stderr
        assert sorted(p.name for p in (tmp_path / "book").glob("*.ipynb")) == \
            sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
        again = subprocess.run([sys.executable, "-m", "netlab_magic", "workbook", str(tmp_path / "book")],
                               capture_output=True, text=True, timeout=60, env={**os.environ})
        assert again.returncode == 1 and "use --force" in again.stderr
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
