"""Binder, reproduced locally: what repo2docker would build from binder/, run as Binder runs it.

mybinder.org cannot be reached from here, so this test rebuilds its conditions: a fresh
virtualenv made only from the files in binder/ (requirements.txt installed from the repository
root, then postBuild), as a non-root user with no sudo, and every notebook executed with nbval
in the kernel postBuild installed. It runs in the unprivileged pass of the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"

pytestmark = pytest.mark.skipif(os.geteuid() == 0, reason="Binder runs as a non-root user: see the unprivileged pass")


def _copy_repo(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True)
    names = files.stdout.split() if files.returncode == 0 else []
    if not names:  # not a git checkout: copy what matters
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if p.is_file() and ".venv" not in p.parts and "__pycache__" not in p.parts]
    for name in names:
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def test_apt_txt_names_what_the_lab_needs():
    wanted = set(BINDER.joinpath("apt.txt").read_text().split())
    assert {"iproute2", "iptables", "iputils-ping", "netcat-openbsd"} <= wanted
    assert {"qemu-system-x86", "kmod"} <= wanted  # the VM, where the container refuses namespaces
    # repo2docker's base is Ubuntu 22.04: a Debian-only name (the kernel's) would fail the whole build
    assert not {p for p in wanted if p.startswith(("linux-image", "busybox"))}, wanted
    for package in wanted:  # repo2docker would install them; here they must be installed already
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        assert "install ok installed" in r.stdout, f"{package} from binder/apt.txt is not installed"


@pytest.mark.timeout(900)
def test_a_binder_like_build_runs_every_notebook(tmp_path):
    repo = tmp_path / "repo"
    home = tmp_path / "home"
    home.mkdir()
    _copy_repo(repo)
    env_dir = tmp_path / "srv-conda"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home),
           "LANG": "C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if os.environ.get("PIP_CACHE_DIR"):
        env["PIP_CACHE_DIR"] = os.environ["PIP_CACHE_DIR"]

    def run(*argv: str, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run(list(argv), cwd=repo, env=env, capture_output=True, text=True, **kw)
        assert r.returncode == 0, f"{' '.join(argv)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r

    assert not shutil.which("sudo", path=env["PATH"]) or subprocess.run(
        ["sudo", "-n", "true"], capture_output=True).returncode != 0, "Binder users have no sudo"
    # repo2docker: the runtime, then requirements.txt from the repository root, then postBuild.
    assert BINDER.joinpath("runtime.txt").read_text().strip() == "python-3.11"
    assert sys.version_info[:2] >= (3, 11)
    run(str(bin_dir / "pip"), "install", "-q", "-r", "binder/requirements.txt")
    run(str(bin_dir / "pip"), "install", "-q", "nbval", "pytest", "pytest-xdist")  # the checker, not part of the image
    built = run("bash", "binder/postBuild")
    assert "the VM image is ready" in built.stdout, built.stdout  # netlab-magic vm prepare --sys-prefix --if-missing
    specs = run(str(bin_dir / "jupyter"), "kernelspec", "list").stdout
    assert "netlab" in specs and str(env_dir) in specs
    config = (home / ".jupyter" / "jupyter_server_config.py").read_text()
    first = config.split("/lab/tree/")[1].split('"')[0]
    assert (repo / first).is_file(), f"JupyterLab would open {first}, which does not exist"
    # three notebooks at a time, each in its own kernel, cells in order (as scripts/test.sh runs nbval)
    run(str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "-n", "3",
        "--dist", "loadscope", "--nbval-sanitize-with", "notebooks/sanitize.cfg", "--nbval-kernel-name", "netlab",
        "notebooks/", timeout=600)
