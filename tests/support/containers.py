"""The workbook's image, built from binder/ the way repo2docker would, and the engines that run it.

No image registry can be reached here, so the base image is made from Debian packages:
``debootstrap`` into a directory, then the steps repo2docker runs for a ``binder/`` directory
(``apt.txt`` with apt-get, then the package lists removed, a user ``jovyan`` with uid 1000
owning the repository in its home, the environment, ``pip install -r binder/requirements.txt``
from the repository's root, then ``binder/postBuild``, all as that user), then the directory is imported as an image (``docker
import``, ``podman import``). The build runs in a chroot inside a private mount namespace
(``unshare -m``): its /proc and /dev mounts vanish with it.

Engines: a private ``dockerd`` (Debian's docker.io) with its data in a temporary directory and
nothing of the machine's network touched (``--iptables=false --ip-forward=false --bridge=none``,
containers ``--network=none``), stopped afterwards; and Podman rootless, run by a user made
for it (with subordinate ids), its storage in a temporary directory. Each leaves nothing.
Used by tests/test_containers.py (scripts/test-containers.sh).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .pids import processes

REPO = Path(__file__).resolve().parents[2]
IMAGE = "netlab-workbook:test"
SUITE = "bookworm"
MIRROR = os.environ.get("NETLAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ["python3", "python3-venv", "ca-certificates", "procps"]
VENV = "/srv/venv"  # repo2docker's environment is /srv/conda/envs/notebook; a venv plays it here
NB_UID = 1000
PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PODMAN_USER = "netlab-podman"
PODMAN_COMMENT = "netlab container test (podman rootless)"


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(argv, **kw)
    if r.returncode != 0 and kw.get("check", True) is not False:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({r.returncode}):\n{(r.stdout or '')[-3000:]}\n{(r.stderr or '')[-3000:]}")
    return r


def repo_files() -> list[str]:
    r = subprocess.run(["git", "-c", f"safe.directory={REPO}", "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], cwd=REPO, capture_output=True)
    names = [n for n in r.stdout.decode().split("\0") if n] if r.returncode == 0 else []
    return [n for n in names if (REPO / n).is_file()]


# -- the image -------------------------------------------------------------------------------------

def base_tarball(cache: Path) -> Path:
    """A Debian base (debootstrap minbase + Python), cached in ``cache`` by its package list."""
    key = hashlib.sha256(" ".join([SUITE, MIRROR, *BASE_PACKAGES]).encode()).hexdigest()[:12]
    tar = cache / f"debian-{SUITE}-{key}.tar"
    if tar.exists():
        return tar
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp) / "rootfs"
        # in a mount namespace of its own: what debootstrap mounts in the target (/proc, /sys) goes with it
        run(["unshare", "--mount", "--propagation", "private", "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(root), MIRROR], timeout=1200)
        run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar) + ".part", "."])
        os.replace(str(tar) + ".part", tar)
    return tar


BUILD = """\
set -eu
R="$1"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
cp /etc/resolv.conf "$R/etc/resolv.conf"
# repo2docker: the packages of binder/apt.txt
chroot "$R" apt-get -qq update
chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends $(cat "$R/home/jovyan/binder/apt.txt")
chroot "$R" apt-get clean
rm -rf "$R"/var/lib/apt/lists/*  # as repo2docker does: postBuild finds no package lists
# the environment, owned by the notebook user; then, as that user, from the repository's root
chroot "$R" python3 -m venv {venv}
chroot "$R" chown -R {uid}:{uid} {venv} /home/jovyan
# the machine's CA bundle for pip during the build only (a TLS-inspecting proxy's CA, where there is one)
cp "$2" "$R/etc/ssl/certs/netlab-build-ca.crt"
chroot --userspec={uid}:{uid} "$R" env -i HOME=/home/jovyan PATH={path} LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_CERT=/etc/ssl/certs/netlab-build-ca.crt ${{PIP_INDEX_URL:+"PIP_INDEX_URL=$PIP_INDEX_URL"}} \\
    ${{HTTPS_PROXY:+"HTTPS_PROXY=$HTTPS_PROXY"}} ${{https_proxy:+"https_proxy=$https_proxy"}} \\
    sh -c 'cd /home/jovyan && pip install -q -r binder/requirements.txt && pip install -q nbval pytest && bash binder/postBuild'
rm -f "$R/etc/resolv.conf" "$R/etc/ssl/certs/netlab-build-ca.crt"
rm -rf "$R/home/jovyan/.cache"
"""


def build_image_tarball(workdir: Path, cache: Path) -> Path:
    """The workbook's image as a tar of its root: base + binder/ steps, as repo2docker does them."""
    files = repo_files()
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + (REPO / name).read_bytes())
    base = base_tarball(cache)
    tar = cache / f"netlab-workbook-{base.stem.split('-')[-1]}-{digest.hexdigest()[:12]}.tar"
    if tar.exists():
        return tar
    root = workdir / "image-rootfs"
    root.mkdir(parents=True)
    run(["tar", "-C", str(root), "--numeric-owner", "-xf", str(base)])
    run(["chroot", str(root), "useradd", "--create-home", "--uid", str(NB_UID), "--user-group", "--shell", "/bin/bash", "jovyan"])
    home = root / "home" / "jovyan"
    for name in files:
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, home / name)
    script = workdir / "build.sh"
    script.write_text(BUILD.format(venv=VENV, uid=NB_UID, path=PATH))
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    run(["unshare", "--mount", "--propagation", "private", "bash", str(script), str(root), ca], timeout=1800)
    for old in cache.glob("netlab-workbook-*.tar"):
        old.unlink()
    run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar) + ".part", "."])
    os.replace(str(tar) + ".part", tar)
    shutil.rmtree(root)
    return tar


IMPORT_CHANGES = ["--change", f"USER {NB_UID}", "--change", "WORKDIR /home/jovyan",
                  "--change", f"ENV PATH={PATH}", "--change", "ENV HOME=/home/jovyan",
                  "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["jupyter", "lab", "--ip=0.0.0.0"]']


# -- the machine, before and after --------------------------------------------------------------

def machine_state() -> dict:
    """What an engine must not change: links, routes, firewall, forwarding, mounts, engine processes."""
    def out(argv):
        r = subprocess.run(argv, capture_output=True, text=True)
        return sorted(r.stdout.splitlines()) if r.returncode == 0 else []

    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read().strip()
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    return {"links": [l.split(":")[1].strip().split("@")[0] for l in out(["ip", "-o", "link"])],
            "routes": out(["ip", "route", "show", "table", "all"]),
            "iptables": [l for l in out(["iptables-save"]) if not l.startswith("#")],
            "ip6tables": [l for l in out(["ip6tables-save"]) if not l.startswith("#")],
            "ip_forward": forward, "mounts": mounts,
            "engines": sorted(engine_processes().values())}


def engine_processes() -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm in ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc", "podman",
                        "conmon", "catatonit", "slirp4netns", "fuse-overlayfs"):
                found[int(entry)] = comm
    return found


# -- Docker ---------------------------------------------------------------------------------------

class Dockerd:
    """A private dockerd: its own socket, data and exec roots in ``workdir``; no iptables, no bridge."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.sock = workdir / "docker.sock"
        self.docker = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--host", f"unix://{self.sock}", "--data-root", str(self.dir / "data"),
             "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "dockerd.pid"),
             "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
             "--userland-proxy=false", "--storage-driver=vfs", "--log-level=warn", "--no-new-privileges=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}):\n{self.log()}")
            if self.sock.exists() and self.cli(["version"], check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return (self.dir / "dockerd.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def cli(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return run([self.docker, "--host", f"unix://{self.sock}", *args], **kw)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            ids = self.cli(["ps", "-aq"], check=False).stdout.split()
            if ids:
                self.cli(["rm", "-f", *ids], check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # containerd (started by dockerd) and its shims go with it; anything left is killed by pid
        for pid, comm in engine_processes().items():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if str(self.dir).encode() in f.read():
                        os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        unmount_under(self.dir)


def unmount_under(path: Path) -> None:
    """Lazily unmount anything still mounted below ``path`` (deepest first)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(str(path) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


# -- Podman rootless ------------------------------------------------------------------------------

class PodmanRootless:
    """Podman run by an unprivileged user with subordinate ids, its storage in ``workdir``."""

    SUBIDS = "300000-365535"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.home = workdir / "home"
        self.user: pwd.struct_passwd | None = None

    def setup(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        try:
            entry = pwd.getpwnam(PODMAN_USER)
            if entry.pw_gecos != PODMAN_COMMENT:
                raise RuntimeError(f"user {PODMAN_USER} exists and was not made by this test")
        except KeyError:
            run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(self.home),
                 "--shell", "/bin/bash", "--comment", PODMAN_COMMENT, PODMAN_USER])
        run(["usermod", "--home", str(self.home), "--add-subuids", self.SUBIDS, "--add-subgids", self.SUBIDS,
             PODMAN_USER])
        self.user = pwd.getpwnam(PODMAN_USER)
        for d in (self.home, self.dir / "run", self.dir / "storage", self.dir / "runroot", self.dir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.dir / "run", 0o700)

    def cli(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        u = self.user
        return run(["setpriv", f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}", "--init-groups", "--",
                    "env", "-i", f"HOME={self.home}", f"USER={PODMAN_USER}", f"XDG_RUNTIME_DIR={self.dir / 'run'}",
                    f"TMPDIR={self.dir / 'tmp'}", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG=C.UTF-8",
                    "podman", "--root", str(self.dir / "storage"), "--runroot", str(self.dir / "runroot"),
                    "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args],
                   cwd=str(self.dir), **kw)

    def teardown(self) -> None:
        if self.user is not None:
            self.cli(["rm", "-af"], check=False)
            self.cli(["system", "migrate"], check=False)  # stops the rootless pause process
            for _ in range(50):
                left = uid_processes(self.user.pw_uid)
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.1)
        unmount_under(self.dir)
        try:
            if pwd.getpwnam(PODMAN_USER).pw_gecos == PODMAN_COMMENT:
                run(["usermod", "--del-subuids", self.SUBIDS, "--del-subgids", self.SUBIDS, PODMAN_USER], check=False)
                run(["userdel", PODMAN_USER], check=False)
        except KeyError:
            pass


def uid_processes(uid: int) -> list[int]:
    return processes(lambda entry: os.stat(f"/proc/{entry}").st_uid == uid)


def probe_result(r: subprocess.CompletedProcess) -> dict:
    """The probe's JSON line (tests/helpers/container_probe.py), or what the engine said instead."""
    for line in reversed((r.stdout or "").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"ok": False, "stage": "engine", "error": ((r.stderr or "") + (r.stdout or "")).strip()[-1500:]}
