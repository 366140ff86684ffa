"""Where the VM's pieces come from: Debian's own kernel and busybox, unpacked into a per-user cache.

:func:`prepare` (``netlab-magic vm prepare``, ``scripts/setup.sh --vm``) is the only step that
downloads anything, and only from the distribution's package archive, with ``apt-get download``
(no root, nothing installed on the machine):

* the kernel: the package ``linux-image-amd64`` depends on (Debian 12: ``linux-image-6.1.0-N-amd64``,
  the generic flavour: the ``-cloud-`` one has no 9p), unpacked with ``dpkg-deb -x``; its
  bzImage's XZ payload is extracted to the uncompressed ELF ``vmlinux`` that QEMU boots directly
  (PVH); its module tree, pruned to networking, filesystems and virtio, indexed with ``depmod``,
  is what the guest loads ``veth``, ``bridge`` and ``nf_tables`` from;
* the initramfs: ``busybox-static``, the few modules that mount the shared root (virtio-mmio,
  virtio-console, 9p, overlay, in ``modprobe --show-depends`` order) and :file:`guest_init.sh`.

Everything else the guest runs (``ip``, ``iptables``, ``nc``, ``python3``) is this machine's own,
shared read-only over virtio-9p. The cache is ``$NETLAB_VM_CACHE``, else
``$XDG_CACHE_HOME/netlab-magic/vm`` (``~/.cache/netlab-magic/vm``), or for every user of the
machine :data:`SYSTEM_CACHE`.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import NetlabError

CACHE_ENV = "NETLAB_VM_CACHE"
#: Prepared once by root for every user of the machine (``netlab-magic vm prepare --system``,
#: ``scripts/setup.sh --vm``): looked in after the user's own cache.
SYSTEM_CACHE = Path("/var/cache/netlab-magic/vm")
KERNEL_META_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
#: What the initramfs loads before it can mount the shared root, dependencies resolved by modprobe.
BOOT_MODULES = ("virtio_mmio", "virtio_console", "9pnet_virtio", "9p", "overlay")
#: The parts of the kernel's module tree the lab can need (the rest: sound, GPUs, ...: ~300 MB).
KEPT_MODULE_DIRS = ("arch", "crypto", "fs", "lib", "net", "drivers/net", "drivers/virtio", "drivers/char")
#: The host tools :func:`prepare` needs, and the Debian packages that have them.
PREPARE_TOOLS = {"apt-get": "apt", "dpkg-deb": "dpkg", "depmod": "kmod", "modprobe": "kmod"}
GUEST_INIT = Path(__file__).with_name("guest_init.sh")
_XZ_MAGIC = b"\xfd7zXZ\x00"


class ImageError(NetlabError):
    """The VM's kernel and initramfs are missing, or could not be prepared."""


@dataclass(frozen=True)
class Image:
    """A prepared VM image in the cache: what QEMU boots and what the guest loads modules from."""

    directory: Path
    kernel_release: str  #: ``uname -r`` in the guest, e.g. ``6.1.0-57-amd64``
    package: str         #: the Debian package and version it came from

    @property
    def vmlinux(self) -> Path:
        return self.directory / "vmlinux"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.cpio"

    @property
    def modules(self) -> Path:
        """The kernel's module tree (``lib/modules/RELEASE``), bind-mounted there in the guest."""
        return self.directory / "lib" / "modules" / self.kernel_release


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netlab-magic" / "vm"


def find(cache: Path | None = None) -> Image | None:
    """The prepared image (the one :func:`prepare` made last) in ``cache``; by default in the user's
    cache, else in :data:`SYSTEM_CACHE`; or None."""
    if cache is None:
        return _find_in(cache_dir()) or _find_in(SYSTEM_CACHE)
    return _find_in(cache)


def _find_in(cache: Path) -> Image | None:
    try:
        meta = json.loads((cache / "current" / "image.json").read_text())
    except (OSError, ValueError):
        return None
    image = Image((cache / "current").resolve(), meta["kernel_release"], meta["package"])
    if not (image.vmlinux.is_file() and image.initrd.is_file() and image.modules.is_dir()):
        return None
    return image


def missing_tools() -> list[str]:
    """The Debian packages whose tools :func:`prepare` needs and this machine lacks."""
    return sorted({pkg for tool, pkg in PREPARE_TOOLS.items() if not _which(tool)})


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def prepare(cache: Path | None = None, progress: Callable[[str], None] = print) -> Image:
    """Download the kernel and busybox packages, unpack them and build the image; return it.

    Idempotent: a cache that already holds the image of the current kernel package is kept.
    """
    cache = cache or cache_dir()
    missing = missing_tools()
    if missing:
        raise ImageError(f"preparing the VM needs {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
    if " " in str(cache.resolve()) or "," in str(cache.resolve()):
        raise ImageError(f"the VM cache's path must have no space or comma (QEMU and the guest split on them): {cache}")
    package = kernel_package()
    existing = _find_in(cache)
    if existing is not None and existing.package.split("=")[0] == package:
        progress(f"the VM image is ready: {existing.directory} ({existing.package})")
        return existing
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prepare-", dir=cache))
    try:
        progress(f"downloading {package} and {BUSYBOX_PACKAGE} with apt-get download ...")
        debs = _download(work, [package, BUSYBOX_PACKAGE])
        unpacked = work / "unpacked"
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
        version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"]).strip()
        release = _kernel_release(unpacked)
        target = work / "image"
        target.mkdir()
        progress(f"extracting the uncompressed kernel of {release} ...")
        (target / "vmlinux").write_bytes(vmlinux_from_bzimage((unpacked / "boot" / f"vmlinuz-{release}").read_bytes()))
        progress("pruning and indexing its modules (depmod) ...")
        modules = target / "lib" / "modules" / release
        _keep_modules(unpacked / "lib" / "modules" / release, modules)
        _run([_which("depmod") or "depmod", "-b", str(target), release])
        progress("building the initramfs (busybox, virtio, 9p, overlay) ...")
        order = boot_module_order(target, release)
        (target / "initrd.cpio").write_bytes(initramfs(unpacked / "bin" / "busybox", modules, order))
        (target / "image.json").write_text(json.dumps({"kernel_release": release, "package": f"{package}={version}"}))
        final = cache / f"{package}={version}"
        if final.exists():
            shutil.rmtree(final)
        target.rename(final)
        tmp_link = cache / "current.new"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(final.name)
        tmp_link.replace(cache / "current")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    image = _find_in(cache)
    assert image is not None
    progress(f"the VM image is ready: {image.directory} ({image.package})")
    return image


def kernel_package() -> str:
    """The generic kernel package ``linux-image-amd64`` depends on today (``apt-cache depends``)."""
    out = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    for line in out.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind == "Depends" and name.startswith("linux-image-") and "cloud" not in name:
            return name
    raise ImageError(f"apt-cache depends {KERNEL_META_PACKAGE} names no kernel package: run apt-get update (as root)")


def _download(work: Path, packages: list[str]) -> list[Path]:
    _run(["apt-get", "download", "-q", *packages], cwd=work)
    debs = []
    for name in packages:
        found = sorted(work.glob(f"{name}_*.deb"))
        if not found:
            raise ImageError(f"apt-get download {name} left no package")
        debs.append(found[0])
    return debs


def _kernel_release(unpacked: Path) -> str:
    releases = [p.name for p in (unpacked / "lib" / "modules").iterdir()]
    if len(releases) != 1:
        raise ImageError(f"the kernel package holds {len(releases)} module trees, expected one")
    return releases[0]


def vmlinux_from_bzimage(bzimage: bytes) -> bytes:
    """The uncompressed ELF kernel inside a bzImage whose payload is XZ (Debian's)."""
    start = bzimage.find(_XZ_MAGIC)
    if start < 0:
        raise ImageError("the kernel image has no XZ payload (not a Debian amd64 bzImage?)")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
    if not elf.startswith(b"\x7fELF"):
        raise ImageError("the kernel image's XZ payload is not an ELF vmlinux")
    return elf


def _keep_modules(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    for sub in KEPT_MODULE_DIRS:
        if (source / "kernel" / sub).is_dir():
            shutil.copytree(source / "kernel" / sub, target / "kernel" / sub)


def boot_module_order(root: Path, release: str) -> list[str]:
    """The module files (relative to the tree) that :data:`BOOT_MODULES` need, dependencies first."""
    tree = root / "lib" / "modules" / release
    order: list[str] = []
    for module in BOOT_MODULES:
        out = _run([_which("modprobe") or "modprobe", "-d", str(root), "-S", release, "--show-depends", module])
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["insmod"]:
                rel = os.path.relpath(words[1], tree)
                if rel not in order:
                    order.append(rel)
    return order


def initramfs(busybox: Path, modules: Path, order: list[str]) -> bytes:
    """The initramfs (newc cpio): busybox, the boot modules and their load order.

    No ``/init``: each boot appends :func:`init_archive`, this package's own ``guest_init.sh``
    (the kernel unpacks archives one after the other, the later file winning), so a prepared
    image follows the package it runs with."""
    archive = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "modules", "run", "tmp"):
        archive.directory(directory)
    archive.device("dev/console", 5, 1)
    archive.device("dev/null", 1, 3)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    flat = []
    for rel in order:
        name = os.path.basename(rel)
        archive.file(f"modules/{name}", (modules / rel).read_bytes(), 0o644)
        flat.append(name)
    archive.file("modules/order", ("\n".join(flat) + "\n").encode(), 0o644)
    return archive.close()


def init_archive() -> bytes:
    """A cpio archive of one file, ``/init`` (:file:`guest_init.sh`), to append to the image's initramfs."""
    archive = _Cpio()
    archive.file("init", GUEST_INIT.read_bytes(), 0o755)
    return archive.close()


class _Cpio:
    """A newc cpio archive in memory (what the kernel unpacks as an initramfs); no device rights needed."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self._ino += 1
        self._out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0")
        self._pad()
        self._out.write(data)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, perm: int) -> None:
        self._entry(name, stat.S_IFREG | perm, data)

    def device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def close(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self._out.getvalue()


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as err:
        raise ImageError(f"{argv[0]}: {err.strerror}") from err
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise ImageError(f"{' '.join(argv[:3])} failed: {last}")
    return result.stdout
