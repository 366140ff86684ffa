"""Where the VM's pieces come from: Debian's own kernel and busybox, unpacked into a per-user cache.

:func:`prepare` (``netlab-magic vm prepare``, ``scripts/setup.sh --vm``) builds the image from
the packages installed on this machine when they are there (:func:`installed`: ``apt-get
install linux-image-amd64 busybox-static``; nothing is downloaded), else it is the only step
that downloads anything, and only from the distribution's package archive, with ``apt-get
download`` (no root, nothing installed on the machine; where the package lists were removed, as
in a repo2docker image, into lists of its own: :func:`_apt_options`; where the distribution
has no ``linux-image-amd64``, as Ubuntu, from Debian's archive: :func:`debian_archive_options`):

* the kernel: the package ``linux-image-amd64`` depends on (Debian 12: ``linux-image-6.1.0-N-amd64``,
  the generic flavour: the ``-cloud-`` one has no 9p), unpacked with ``dpkg-deb -x``; its
  bzImage's XZ payload is extracted to the uncompressed ELF ``vmlinux`` that QEMU boots directly
  (PVH); its module tree, pruned to networking, filesystems and virtio, indexed with ``depmod``,
  is what the guest loads ``veth``, ``bridge`` and ``nf_tables`` from;
* the initramfs: ``busybox-static``, the few modules that mount the shared root (virtio-mmio,
  virtio-console, 9p, overlay, in ``modprobe --show-depends`` order) and :file:`guest_init.sh`.

Everything else the guest runs (``ip``, ``iptables``, ``nc``, ``python3``) is this machine's own,
shared read-only over virtio-9p. The cache is ``$NETLAB_VM_CACHE``, else
``$XDG_CACHE_HOME/netlab-magic/vm`` (``~/.cache/netlab-magic/vm``), or for every user of a
Python environment :func:`prefix_cache` (Binder's image), or for every user of the machine
:data:`SYSTEM_CACHE`.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import NetlabError

CACHE_ENV = "NETLAB_VM_CACHE"
#: Prepared once by root for every user of the machine (``netlab-magic vm prepare --system``,
#: ``scripts/setup.sh --vm``): looked in after the user's own cache.
SYSTEM_CACHE = Path("/var/cache/netlab-magic/vm")
KERNEL_META_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
#: Where :func:`debian_archive_options` fetches Debian's lists from on a machine that is not Debian.
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: The release it takes there unless the machine is Debian itself (why: :func:`debian_suite`).
DEBIAN_SUITE = "bookworm"
#: The keys apt checks bookworm's lists against, shipped with this package: Debian's "Archive Automatic
#: Signing Key (12/bookworm)" (B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8) and "Stable Release Key
#: (12/bookworm)" (4D64FEC119C2029067D6E791F8D2585B8783D481), copied from Debian 12's package
#: debian-archive-keyring 2023.3+deb12u2 (/usr/share/keyrings/debian-archive-bookworm-{automatic,stable}.gpg).
#: A machine's own keyring may be older than bookworm (Ubuntu 22.04's is from 2021).
BOOKWORM_KEYS = Path(__file__).with_name("debian-bookworm-keys.gpg")
#: For another suite (a Debian machine's own release): the package ``debian-archive-keyring``'s
#: keyring (Debian 13's is ``.pgp``; Debian 12's ``.gpg``).
DEBIAN_KEYRINGS = (Path("/usr/share/keyrings/debian-archive-keyring.pgp"),
                   Path("/usr/share/keyrings/debian-archive-keyring.gpg"))
#: What the initramfs loads before it can mount the shared root, dependencies resolved by modprobe.
BOOT_MODULES = ("virtio_mmio", "virtio_console", "9pnet_virtio", "9p", "overlay")
#: What the lab would have the guest kernel load at its first bridge (with br_netfilter, which a
#: Docker host loads), veth pair, iptables rule, conntrack or ``ss``: each a load from the shared
#: module tree under TCG (the first ``iptables -S`` in a VM took 0.4-0.6 s). Loaded by the initramfs
#: before the boot's snapshot point (:mod:`.snapshot`), so that a restored VM has them loaded already;
#: one that will not load is only loaded later, as before.
PRELOADED_MODULES = ("br_netfilter", "veth", "nf_tables", "nft_compat", "nft_chain_nat", "nf_conntrack_netlink",
                     "xt_conntrack", "xt_addrtype", "xt_MASQUERADE", "xt_nat", "xt_tcpudp", "tcp_diag")
#: Which initramfs :func:`prepare` builds: an image built by an older one is built again.
INITRAMFS_VERSION = 2
#: The parts of the kernel's module tree the lab can need (the rest: sound, GPUs, ...: ~300 MB).
KEPT_MODULE_DIRS = ("arch", "crypto", "fs", "lib", "net", "drivers/net", "drivers/virtio", "drivers/char")
#: The host tools :func:`prepare` needs, and the Debian packages that have them.
PREPARE_TOOLS = {"apt-get": "apt", "dpkg-deb": "dpkg", "depmod": "kmod", "modprobe": "kmod"}
#: What it needs when the kernel and busybox are installed already (:func:`installed`).
INSTALLED_TOOLS = {"depmod": "kmod", "modprobe": "kmod"}
GUEST_INIT = Path(__file__).with_name("guest_init.sh")
_XZ_MAGIC = b"\xfd7zXZ\x00"
_PT_INTERP = 3


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


def prefix_cache(prefix: str | None = None) -> Path:
    """The cache in a Python environment's prefix (``netlab-magic vm prepare --sys-prefix``), for
    every user of that environment: Binder's postBuild prepares the image there, where a home
    directory mounted over the image's own (a hub's persistent home) cannot hide it."""
    return Path(prefix or sys.prefix) / "share" / "netlab-magic" / "vm"


def find(cache: Path | None = None) -> Image | None:
    """The prepared image (the one :func:`prepare` made last) in ``cache``; by default in the user's
    cache, else in this Python's :func:`prefix_cache`, else in :data:`SYSTEM_CACHE`; or None."""
    if cache is None:
        return _find_in(cache_dir()) or _find_in(prefix_cache()) or _find_in(SYSTEM_CACHE)
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


def missing_tools(tools: dict[str, str] = PREPARE_TOOLS) -> list[str]:
    """The Debian packages whose ``tools`` (by default what :func:`prepare` downloads with) this machine lacks."""
    return sorted({pkg for tool, pkg in tools.items() if not _which(tool)})


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


@dataclass(frozen=True)
class Installed:
    """A kernel and a static busybox installed on this machine, to build the image from without a download."""

    root: Path
    release: str  #: e.g. ``6.1.0-57-amd64``
    package: str  #: ``linux-image-RELEASE=VERSION`` (the version from dpkg's database, if it has one)

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    @property
    def busybox(self) -> Path:
        return self.root / "bin" / "busybox"


def installed(root: Path = Path("/")) -> Installed | None:
    """The newest kernel under ``root`` the guest can boot (a readable ``/boot/vmlinuz-R`` and its
    ``/lib/modules/R``; not the cloud flavour, which has no 9p), if ``/bin/busybox`` is static
    (``busybox-static``: the initramfs has no C library); else None."""
    if not _is_static_elf(root / "bin" / "busybox"):
        return None
    try:
        names = [p.name for p in (root / "lib" / "modules").iterdir()]
    except OSError:
        return None
    usable = [r for r in names if "cloud" not in r and (root / "lib" / "modules" / r / "kernel").is_dir()
              and os.access(root / "boot" / f"vmlinuz-{r}", os.R_OK)]
    if not usable:
        return None
    release = max(usable, key=_release_key)
    try:
        version = subprocess.run(["dpkg-query", f"--admindir={root / 'var' / 'lib' / 'dpkg'}", "-W", "-f=${Version}",
                                  f"linux-image-{release}"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL).stdout.strip()
    except OSError:  # no dpkg
        version = ""
    return Installed(root, release, f"linux-image-{release}={version or 'unknown'}")


def _release_key(release: str) -> list[int]:
    return [int(n) for n in "".join(c if c.isdigit() else " " for c in release).split()]


def _is_static_elf(path: Path) -> bool:
    """A 64-bit little-endian ELF with no program interpreter (``PT_INTERP``): it runs without ld.so."""
    try:
        head = path.read_bytes()[:65536]
    except OSError:
        return False
    if head[:6] != b"\x7fELF\x02\x01":
        return False
    phoff = int.from_bytes(head[0x20:0x28], "little")
    size, count = int.from_bytes(head[0x36:0x38], "little"), int.from_bytes(head[0x38:0x3A], "little")
    if phoff + size * count > len(head):
        return False
    return all(int.from_bytes(head[phoff + i * size:phoff + i * size + 4], "little") != _PT_INTERP
               for i in range(count))


def prepare(cache: Path | None = None, progress: Callable[[str], None] = print, root: Path = Path("/")) -> Image:
    """Build the image from the kernel and busybox installed under ``root`` (:func:`installed`), else
    from the packages downloaded with ``apt-get download`` (:func:`_apt_options`); return it.

    Idempotent: a cache that already holds the image of that kernel package is kept.
    """
    cache = cache or cache_dir()
    local = installed(root)
    missing = missing_tools(INSTALLED_TOOLS if local else PREPARE_TOOLS)
    if missing:
        raise ImageError(f"preparing the VM needs {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
    if " " in str(cache.resolve()) or "," in str(cache.resolve()):
        raise ImageError(f"the VM cache's path must have no space or comma (QEMU and the guest split on them): {cache}")
    if local is not None and _kept(cache, local.package, progress):
        return _find_in(cache)  # type: ignore[return-value]
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prepare-", dir=cache))
    try:
        if local is None:
            apt = _apt_options(work, progress)
            if not has_candidate(KERNEL_META_PACKAGE, apt):
                apt = debian_archive_options(work, progress)
            package = kernel_package(apt)
            if _kept(cache, package, progress):
                return _find_in(cache)  # type: ignore[return-value]
            progress(f"downloading {package} and {BUSYBOX_PACKAGE} with apt-get download ...")
            debs = _download(work, [package, BUSYBOX_PACKAGE], apt)
            unpacked = work / "unpacked"
            for deb in debs:
                _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
            version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"]).strip()
            local = Installed(unpacked, _kernel_release(unpacked), f"{package}={version}")
        else:
            progress(f"using the installed {local.package} and {local.busybox} (no download)")
        _build(work / "image", local, progress)
        final = cache / local.package
        if final.exists():
            shutil.rmtree(final)
        (work / "image").rename(final)
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


def _kept(cache: Path, package: str, progress: Callable[[str], None]) -> bool:
    """Whether ``cache`` holds the image of ``package`` already (``NAME=VERSION``, or a download's
    ``NAME``), with this package's :data:`INITRAMFS_VERSION`."""
    existing = _find_in(cache)
    if existing is None or package not in (existing.package, existing.package.split("=")[0]):
        return False
    try:
        if json.loads((existing.directory / "image.json").read_text()).get("initramfs") != INITRAMFS_VERSION:
            return False
    except (OSError, ValueError):
        return False
    progress(f"the VM image is ready: {existing.directory} ({existing.package})")
    return True


def _apt_options(work: Path, progress: Callable[[str], None], lists: Path = Path("/var/lib/apt/lists")) -> list[str]:
    """apt's options for :func:`kernel_package` and :func:`_download`: none where the machine has its
    package lists; where they were removed (a container image: repo2docker deletes them after
    ``apt.txt``), the lists of the machine's own sources fetched into ``work``, as this user."""
    if any(lists.glob("*_Packages*")):
        return []
    own = work / "apt"
    options = _own_lists(own)
    progress(f"the machine has no package lists ({lists}): apt-get update into {own} ...")
    _run(["apt-get", "update", "-q", *options])
    return options


def _own_lists(own: Path) -> list[str]:
    """apt's options that keep its package lists and downloads in ``own``: no root, no lock on the machine's."""
    for d in (own / "lists" / "partial", own / "cache" / "archives" / "partial"):
        d.mkdir(parents=True)
    return ["-o", f"Dir::State::Lists={own / 'lists'}", "-o", f"Dir::Cache={own / 'cache'}",
            "-o", "Debug::NoLocking=true"]


def has_candidate(package: str, apt: list[str] | None = None) -> bool:
    """Whether apt's sources (the machine's, or those ``apt`` names) offer ``package`` (``apt-cache policy``)."""
    out = _run(["apt-cache", "policy", *(apt or []), package])
    return any(line.strip().startswith("Candidate:") and line.split()[-1] != "(none)" for line in out.splitlines())


def debian_suite(os_release: Path = Path("/etc/os-release")) -> str:
    """The Debian release whose kernel the VM takes: the machine's own on Debian (``VERSION_CODENAME``),
    else :data:`DEBIAN_SUITE`, ``bookworm`` (Debian 12), chosen, not ``stable``, because:

    * a codename does not move: ``stable`` became trixie in 2025 and will become forky, each move a
      new kernel the VM was never booted with and a new key its InRelease is signed with;
    * its kernel, 6.1, is the one the VM was built and tested with (FINDINGS, tests/test_vm.py);
    * apt verifies its InRelease with bookworm's own keys, shipped with this package
      (:data:`BOOKWORM_KEYS`): on 2026-12-07 bookworm's InRelease was signed by Debian's archive
      keys 12/bookworm and 13/trixie and the 12/bookworm stable release key (``gpgv``), and the
      keys of 12/bookworm came in ``debian-archive-keyring`` 2023.1, after Ubuntu 22.04's release:
      a machine's own keyring may not verify it; bullseye's InRelease, which older keyrings
      verify, is not taken: its support ended in August 2026;
    * it is on ``deb.debian.org`` until its long-term support ends (June 2028), then this moves on.

    Only ``SUITE main``, not ``SUITE-security``: the kernel of Debian's last point release (one
    more archive key to need for fixes that matter little in a guest with no network device,
    which runs only the learner's own commands behind QEMU).
    """
    try:
        fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
    except OSError:
        fields = {}
    codename = fields.get("VERSION_CODENAME", "").strip('"')
    return codename if fields.get("ID", "").strip('"') == "debian" and codename else DEBIAN_SUITE


def debian_sources(suite: str, keyring: Path, mirror: str = DEBIAN_MIRROR) -> str:
    """The one line of a private sources list for Debian's ``suite``, trusted only with ``keyring``."""
    return f"deb [signed-by={keyring}] {mirror} {suite} main\n"


def debian_keyring(suite: str, keyrings: tuple[Path, ...] = DEBIAN_KEYRINGS) -> Path | None:
    """The keyring apt verifies Debian ``suite``'s lists with: :data:`BOOKWORM_KEYS` for bookworm,
    else the machine's ``debian-archive-keyring``; None if there is none."""
    if suite == DEBIAN_SUITE and BOOKWORM_KEYS.is_file():
        return BOOKWORM_KEYS
    return next((k for k in keyrings if k.is_file()), None)


def debian_archive_options(work: Path, progress: Callable[[str], None], suite: str | None = None,
                           keyrings: tuple[Path, ...] | None = None) -> list[str]:
    """apt's options for Debian's archive alone, where the machine's sources have no
    ``linux-image-amd64`` (Ubuntu's): a sources list of its own in ``work``, no other source,
    and Debian's lists fetched into ``work`` (``apt-get update``, as this user), which apt verifies
    against :func:`debian_keyring` (``keyrings``: only these). The guest
    needs only a kernel and busybox-static from it (its userland is the machine's own ``/``), so
    Debian's kernel serves under any distribution's userland."""
    suite, mirror = suite or debian_suite(), DEBIAN_MIRROR
    keyring = debian_keyring(suite) if keyrings is None else next((k for k in keyrings if k.is_file()), None)
    if keyring is None:
        raise ImageError(f"this machine's apt sources have no {KERNEL_META_PACKAGE}, and Debian's archive keyring "
                         "to take Debian's is missing: apt-get install -y debian-archive-keyring")
    own = work / "debian"
    options = _own_lists(own)
    (own / "sources.list.d").mkdir()
    (own / "sources.list").write_text(debian_sources(suite, keyring, mirror))
    options += ["-o", f"Dir::Etc::SourceList={own / 'sources.list'}",
                "-o", f"Dir::Etc::SourceParts={own / 'sources.list.d'}", "-o", "Acquire::Languages=none"]
    progress(f"this machine's apt sources have no {KERNEL_META_PACKAGE}: Debian {suite}'s lists from "
             f"{mirror} into {own}, verified with {keyring}, for Debian's kernel and busybox-static ...")
    try:
        _run(["apt-get", "update", "-q", *options])
    except ImageError as err:
        raise ImageError(f"Debian {suite}'s lists could not be fetched or verified with {keyring}: {err}") from err
    return options


def _build(target: Path, source: Installed, progress: Callable[[str], None]) -> None:
    """The image in ``target``: the uncompressed kernel, its pruned and indexed modules, the initramfs."""
    release = source.release
    target.mkdir()
    progress(f"extracting the uncompressed kernel of {release} ...")
    (target / "vmlinux").write_bytes(vmlinux_from_bzimage(source.vmlinuz.read_bytes()))
    progress("pruning and indexing its modules (depmod) ...")
    modules = target / "lib" / "modules" / release
    _keep_modules(source.modules, modules)
    _run([_which("depmod") or "depmod", "-b", str(target), release])
    progress("building the initramfs (busybox, virtio, 9p, overlay; bridge, veth, netfilter preloaded) ...")
    order = boot_module_order(target, release)
    preload = [rel for rel in boot_module_order(target, release, PRELOADED_MODULES) if rel not in order]
    (target / "initrd.cpio").write_bytes(initramfs(source.busybox, modules, order, preload))
    (target / "image.json").write_text(json.dumps({"kernel_release": release, "package": source.package,
                                                   "initramfs": INITRAMFS_VERSION}))


def kernel_package(apt: list[str] | None = None) -> str:
    """The generic kernel package ``linux-image-amd64`` depends on today (``apt-cache depends``)."""
    out = _run(["apt-cache", "depends", KERNEL_META_PACKAGE, *(apt or [])])
    for line in out.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind == "Depends" and name.startswith("linux-image-") and "cloud" not in name:
            return name
    raise ImageError(f"apt-cache depends {KERNEL_META_PACKAGE} names no kernel package: run apt-get update (as root)")


def _download(work: Path, packages: list[str], apt: list[str] | None = None) -> list[Path]:
    _run(["apt-get", "download", "-q", *(apt or []), *packages], cwd=work)
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


def boot_module_order(root: Path, release: str, modules: tuple[str, ...] = BOOT_MODULES) -> list[str]:
    """The module files (relative to the tree) that ``modules`` need, dependencies first."""
    tree = root / "lib" / "modules" / release
    order: list[str] = []
    for module in modules:
        out = _run([_which("modprobe") or "modprobe", "-d", str(root), "-S", release, "--show-depends", module])
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["insmod"]:
                rel = os.path.relpath(words[1], tree)
                if rel not in order:
                    order.append(rel)
    return order


def initramfs(busybox: Path, modules: Path, order: list[str], preload: Sequence[str] = ()) -> bytes:
    """The initramfs (newc cpio): busybox, the boot modules and their load order, then the
    :data:`PRELOADED_MODULES` not among them and theirs (``modules/preload``).

    No ``/init``: each boot appends :func:`init_archive`, this package's own ``guest_init.sh``
    (the kernel unpacks archives one after the other, the later file winning), so a prepared
    image follows the package it runs with."""
    archive = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "modules", "run", "tmp"):
        archive.directory(directory)
    archive.device("dev/console", 5, 1)
    archive.device("dev/null", 1, 3)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    for listing, rels in (("order", order), ("preload", preload)):
        flat = []
        for rel in rels:
            name = os.path.basename(rel)
            archive.file(f"modules/{name}", (modules / rel).read_bytes(), 0o644)
            flat.append(name)
        archive.file(f"modules/{listing}", ("\n".join(flat) + "\n").encode(), 0o644)
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
