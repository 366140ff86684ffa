"""`pip install netlab_magic` is enough: the wheel carries the netlab kernelspec and the workbook.

The wheel is built from this tree, installed (without dependencies: those are this venv's) into
a fresh prefix, and used from there, in a directory outside this tree: Jupyter finds the
"Python 3 (netlab)" kernel in the prefix's ``share/jupyter``, the kernel runs pyroute2's examples
and the README's tour (read from the wheel's own metadata) in its lab, ``netlab-magic workbook
DIR`` copies the notebooks and everything they link to, ``netlab-magic --version`` says the
wheel's version, and ``netlab-magic doctor`` names a tool missing from PATH and its install line.
"""

from __future__ import annotations

import email
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from netlab_magic.jupyter.kernelspec import kernel_json

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
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "netlab_magic/py.typed" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "netlab-magic = netlab_magic.__main__:main" in scripts and "\nnetlab =" not in scripts
    assert any(n.endswith(".data/data/share/jupyter/kernels/netlab/kernel.json") for n in names), names
    books = sorted(Path(n).name for n in names if n.startswith("netlab_magic/workbook/") and n.endswith(".ipynb"))
    assert books == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_an_installed_wheel_gives_jupyter_the_kernel_and_the_workbook(installed, tmp_path):
    from support.kernel_client import Kernel

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
            run_pyroute2_examples(k)
            k.ok("%netlab reset")
            run_the_readme_tour(k, readme_of(installed[0]))
        finally:
            k.shutdown()
        book = tmp_path / "book"
        out = subprocess.run([str(prefix / "bin" / "netlab-magic"), "workbook", str(book)],
                             capture_output=True, text=True, timeout=60, env={**os.environ}, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert sorted(p.name for p in book.glob("*.ipynb")) == \
            sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
        assert_every_relative_link_opens(book)
        again = subprocess.run([sys.executable, "-m", "netlab_magic", "workbook", str(book)],
                               capture_output=True, text=True, timeout=60, env={**os.environ}, cwd=tmp_path)
        assert again.returncode == 1 and "use --force" in again.stderr
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_pyroute2_examples(k) -> None:
    from support.pyroute2_cells import HOST_CELL, IN_NS1_CELL, NETNS_CELL

    assert k.ok(HOST_CELL).stdout.strip() == "['lo', 'veth1', 'veth2']"
    assert k.ok(NETNS_CELL).stdout.strip() == "['lo']"
    assert k.ok(IN_NS1_CELL).stdout.strip() == "['lo', 'veth2']"


def readme_of(wheel: Path) -> str:
    """The README as the wheel carries it (its metadata's long description)."""
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA")))
    return email.message_from_bytes(metadata).get_payload()


def tour_snippets(readme: str) -> list[str]:
    """The code blocks of the README's thirty-second tour, in order."""
    tour = readme.split("\n## The thirty-second tour", 1)[1].split("\n## ", 1)[0]
    return [block.strip("\n") for block in re.findall(r"```[a-z]*\n(.*?)```", tour, re.S)]


def run_the_readme_tour(k, readme: str) -> None:
    """Every snippet of the tour, pasted as it is into a cell: none fails, and each does what it says."""
    snippets = tour_snippets(readme)
    assert len(snippets) >= 6, snippets
    said = []
    for snippet in snippets:
        said.append(k.ok(snippet, timeout=60))
        if "--bg" in snippet:
            time.sleep(1)  # a listener's moment to listen (a reader takes longer between two cells)
    text = "\n".join(r.stdout + "".join(r.results) for r in said)
    assert "1 received" in text and "hello from ns1" in text, text


def assert_every_relative_link_opens(book: Path) -> None:
    """Every relative link of every notebook (and of the pages they link to) names a file in ``book``."""
    pages = sorted(book.glob("*.ipynb")) + sorted(book.glob("*.md"))
    assert any(p.name == "glossary.md" for p in pages), pages
    seen = 0
    for page in pages:
        if page.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(page.read_text())["cells"]
                             if c["cell_type"] == "markdown")
        else:
            text = page.read_text()
        for link in re.findall(r"\]\(([^)\s]+)\)|(?:src|href)=\"([^\"]+)\"", text):
            target = (link[0] or link[1]).split("#", 1)[0]
            if not target or re.match(r"[a-z]+:", target):
                continue
            seen += 1
            assert (page.parent / target).is_file(), f"{page.name} links to {target}, not in the workbook"
    assert seen > len(pages), seen


def test_the_console_script_says_its_version_and_the_doctor_names_a_missing_tool(installed, tmp_path):
    _, prefix, site = installed
    script = str(prefix / "bin" / "netlab-magic")
    env = {**os.environ, "PYTHONPATH": str(site)}
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    from importlib.metadata import PathDistribution

    wheel_version = PathDistribution(next(site.glob("netlab_magic-*.dist-info"))).version
    assert version.returncode == 0 and version.stdout.strip() == f"netlab-magic {wheel_version}", version
    # a PATH with every tool the notebooks call but curl (and Python, for the script itself)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ["ip", "iptables", "ping", "nc", "tcpdump", "conntrack", "bash", "sh"]:
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    doctor = subprocess.run([script, "doctor"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**env, "PATH": str(bin_dir)})
    rows = {line.split()[0]: line for line in doctor.stdout.splitlines()[3:] if line.strip()}
    assert doctor.returncode == 1 and "NO" in rows["curl"].split()[:2], doctor.stdout
    assert "nc" in rows and rows["nc"].split()[1] == "yes", doctor.stdout
    assert rows["install"].split("missing: curl", 1)[1].strip() == "apt-get install -y curl", doctor.stdout


def test_no_doc_names_a_path_of_a_developers_machine():
    docs = [p for p in ROOT.rglob("*.md") if not {".venv", "node_modules", ".git"} & set(p.parts)]
    docs += sorted((ROOT / "notebooks").glob("*.ipynb"))
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in docs
             for m in re.finditer(r"(?<![\w.])/(?:work|home|Users|root)/[\w./-]+", p.read_text())]
    assert not found, found
