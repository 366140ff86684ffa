"""The VM backend's pieces that need no VM: the wire's frames, the initramfs archive, the kernel's
extraction, the backend's choice and its one-line refusals. (A real VM: tests/test_vm.py.)"""

from __future__ import annotations

import lzma
import os
import time
import pickle
import re
import shutil
import subprocess
import sys

import pytest

from netlab_magic import backend
from netlab_magic.errors import InvalidArgument
from netlab_magic.vm import image, machine, protocol


def test_frames_survive_any_cut_of_the_stream():
    call = b"a pickled call"
    data = (protocol.frame(protocol.CALL, 1, call)
            + b"".join(protocol.frames(protocol.OUT, 7, b"x" * (protocol.MAX_PAYLOAD + 10)))
            + b"".join(protocol.result_frames(7, b"r" * (protocol.MAX_PAYLOAD + 2))))
    for step in (1, 5, 9, 4096):
        reader, got = protocol.Reader(), []
        for start in range(0, len(data), step):
            got += reader.feed(data[start:start + step])
        assert [(k, c, len(p)) for k, c, p in got] == [
            (protocol.CALL, 1, len(call)), (protocol.OUT, 7, protocol.MAX_PAYLOAD), (protocol.OUT, 7, 10),
            (protocol.MORE, 7, protocol.MAX_PAYLOAD), (protocol.RESULT, 7, 2)]


def test_a_stream_out_of_step_is_refused_not_read_as_a_huge_frame():
    with pytest.raises(ValueError, match="out of step"):
        protocol.Reader().feed(protocol.HEADER.pack(protocol.OUT, 1, 2**31))


def test_the_kernel_is_the_xz_payload_of_the_bzimage():
    elf = b"\x7fELF" + os.urandom(1000)
    bzimage = b"MZ setup code" + b"\0" * 100 + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"trailing"
    assert image.vmlinux_from_bzimage(bzimage) == elf
    with pytest.raises(image.ImageError, match="no XZ payload"):
        image.vmlinux_from_bzimage(b"MZ gzip kernel")


def test_tsc_khz_from_cpuinfo():
    assert machine.tsc_khz("processor\t: 0\ncpu MHz\t\t: 2445.430\n") == 2445430
    assert machine.tsc_khz("processor\t: 0\n") is None


def test_qemu_has_no_network_and_shares_root_read_only():
    img = image.Image(image.Path("/cache/k"), "6.1.0-57-amd64", "linux-image-6.1.0-57-amd64=6.1.192-3")
    argv = machine.qemu_argv(img, 5, 6)
    assert argv[argv.index("-nic") + 1] == "none" and "-nodefaults" in argv
    # the port and the console are descriptors QEMU inherits: no file of the VM's on disk
    assert "socket,id=agent,fd=5,server=off" in argv and "file:/proc/self/fd/6" in argv
    fsdev = argv[argv.index("-fsdev") + 1]
    assert "path=/," in fsdev and "readonly=on" in fsdev
    assert "netlab.modules=/cache/k/lib/modules/6.1.0-57-amd64" in argv[argv.index("-append") + 1]


def test_the_boot_word_carries_what_differs_between_kernels():
    """What guest_init.sh reads after the snapshot point: the Python, the package, the clock, randomness."""
    words = [machine.boot_word("/venv/bin/python", "/src").decode() for _ in range(2)]
    python, package, clock, entropy = words[0].split()
    assert (python, package) == ("/venv/bin/python", "/src") and words[0].endswith("\n")
    assert abs(int(clock) - time.time()) <= 1 and len(bytes.fromhex(entropy)) == 32
    assert words[0].split()[3] != words[1].split()[3]


def test_netlab_backend_forces_either_and_refuses_anything_else():
    assert backend.choose({"NETLAB_BACKEND": "vm"}) == backend.Choice("vm", "forced by NETLAB_BACKEND=vm")
    assert backend.choose({"NETLAB_BACKEND": "kernel"}).name == "kernel"
    with pytest.raises(InvalidArgument) as err:
        backend.choose({"NETLAB_BACKEND": "qemu"})
    assert str(err.value) == "NETLAB_BACKEND='qemu': choose 'kernel' (this kernel's namespaces) or 'vm'"


def test_without_a_refusal_the_kernels_lab_is_the_default(monkeypatch):
    monkeypatch.delenv("NETLAB_KERNEL_ERROR", raising=False)
    assert backend.choose({}) == backend.Choice("kernel", "this kernel's namespaces (the fast default)")


def test_a_refusal_without_the_vm_pieces_stays_in_kernel_and_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("NETLAB_KERNEL_ERROR", "netlab: this machine refuses user namespaces (...)")
    monkeypatch.setenv("NETLAB_VM_CACHE", str(tmp_path))
    monkeypatch.setattr(image, "SYSTEM_CACHE", tmp_path / "none")
    choice = backend.choose({})
    assert choice.name == "kernel" and "netlab-magic vm prepare" in choice.reason


def test_prepare_names_the_missing_tools_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, dpkg-deb, depmod here
    monkeypatch.setattr(image, "_which", lambda tool: None)
    with pytest.raises(image.ImageError) as err:
        image.prepare(tmp_path / "cache")
    assert str(err.value) == "preparing the VM needs apt, dpkg, kmod: apt-get install -y apt dpkg kmod"
    assert not (tmp_path / "cache").exists()  # nothing half-built


def test_a_bad_netlab_backend_is_one_line_in_a_kernel_that_still_works(jupyter_path, monkeypatch):
    from support.kernel_client import Kernel

    monkeypatch.setenv("NETLAB_BACKEND", "qemu")
    k = Kernel("netlab-test")
    try:
        r = k.run("%netns host true")
        assert r.usage_error == "NETLAB_BACKEND='qemu': choose 'kernel' (this kernel's namespaces) or 'vm'", r
        doctor = k.ok("%netlab doctor").results[0]
        assert re.search(r"^\s*backend\s+NO\s+NETLAB_BACKEND='qemu'", doctor, re.M), doctor
        assert k.ok("print(6 * 7)").stdout.strip() == "42"
    finally:
        k.shutdown()


def test_calls_cross_values_by_value_live_objects_by_reference_and_errors_whole():
    """The wire's pickling without a VM: what the guest's server answers, as the host reads it."""
    import threading

    from netlab_magic.linux import process
    from netlab_magic.errors import CommandFailed
    from netlab_magic.vm import remote

    class Guest:
        value = [1, "two"]

        def reader(self) -> threading.Thread:
            return threading.Thread(name="reader")

        def fail(self) -> None:
            raise CommandFailed("command in 'host' failed (exit status 1): x", 1)

        def stop(self) -> None:
            raise process.Interrupted("stopped the command in host")

    objects = remote.Objects(Guest(), (threading.Thread,))

    def call(target, name, args, kwargs):  # noqa: ANN001, ANN202 - the server's answer, without the port
        target, name, args, kwargs = objects.loads(remote.host_dumps((target, name, args, kwargs)))
        try:
            answer = ("value", objects.invoke(target, name, args, kwargs))
        except BaseException as exc:  # noqa: BLE001
            answer = ("raised", exc)
        kind, value = remote.host_loads(objects.dumps(answer), call)
        if kind == "raised":
            raise value
        return value

    lab = remote.Remote(call, remote.LAB, "Lab")
    assert lab.value == [1, "two"]
    reader = lab.reader()
    assert isinstance(reader, remote.Remote) and reader.name == "reader" and not reader.is_alive()
    with pytest.raises(CommandFailed) as err:
        lab.fail()
    assert err.value.returncode == 1
    with pytest.raises(process.Interrupted, match="stopped the command in host"):
        lab.stop()


def test_with_the_vm_chosen_lab_current_is_the_vms_lab():
    """One lab per process: with the VM backend chosen, ``Lab.current()`` (the widgets, the checks) gives the
    VM's lab, not an empty lab of its own (tests/test_vm.py uses it in a real VM)."""
    import subprocess
    import sys

    code = ("from netlab_magic import Lab, backend\nfrom netlab_magic.vm.lab import VMLab\n"
            "backend.chosen()\nprint(Lab.elsewhere == VMLab.current, Lab.existing())\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "NETLAB_BACKEND": "vm"},
                         capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "True None", out


def test_a_pyroute2_message_crosses_as_its_bytes_and_is_rebuilt_as_its_own_class():
    """What the guest's pyroute2 answers (:mod:`netlab_magic.vm.pyroute2_messages`): the same class, fields and
    NLAs in the kernel, what its socket added to the header too; a dump's generator a generator again."""
    import asyncio

    pytest.importorskip("pyroute2")
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    from netlab_magic.vm import pyroute2_messages as messages

    sent = ifinfmsg()
    sent["index"], sent["flags"], sent["header"]["type"] = 7, 1, 16
    sent["attrs"] = [("IFLA_IFNAME", "br9"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]
    sent.encode()
    read = ifinfmsg(sent.data)  # as a socket reads it
    read.decode()
    read["header"].update(target="ns1", error=None)
    read["event"] = "RTM_NEWLINK"
    crossed = pickle.loads(pickle.dumps(messages.pack((read, 7, [read]))))
    link, index, (again,) = messages.unpack(crossed)
    assert type(link) is ifinfmsg and index == 7 and link.dump() == read.dump() == again.dump()
    assert (link.get("ifname"), link.get("state"), link.get(("linkinfo", "kind"))) == ("br9", "up", "bridge")
    assert link["header"]["target"] == "ns1" and link["event"] == "RTM_NEWLINK"
    dump = messages.unpack(pickle.loads(pickle.dumps(messages.pack(iter([read])))))
    assert [m.get("ifname") for m in dump] == ["br9"]

    async def names() -> list:
        return [m.get("ifname") async for m in messages.unpack(messages.AsyncItems([messages.pack(read)]))]

    assert asyncio.run(names()) == ["br9"]


def _installed_root(root, source: image.Image) -> None:
    """A machine where the kernel and busybox-static are installed (as Binder's apt.txt would): the
    real Debian modules the boot needs and preloads (from the prepared image), a bzImage whose XZ payload is an
    ELF, and a static ELF as /bin/busybox (this machine's static ldconfig: nothing boots here)."""
    release = source.kernel_release
    tree = root / "lib" / "modules" / release / "kernel"
    for sub in ("arch", "crypto", "lib", "drivers/virtio", "drivers/char", "drivers/net", "net", "fs/9p", "fs/netfs",
                "fs/fscache", "fs/overlayfs"):
        (tree / sub).parent.mkdir(parents=True, exist_ok=True)
        (tree / sub).symlink_to(source.modules / "kernel" / sub)
    (root / "boot").mkdir()
    elf = open("/sbin/ldconfig", "rb").read()
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"MZ setup" + lzma.compress(elf, format=lzma.FORMAT_XZ, preset=0))
    (root / "bin").mkdir()
    (root / "bin" / "busybox").write_bytes(elf)
    (root / "lib" / "modules" / f"{release.replace('-amd64', '-cloud-amd64')}" / "kernel").mkdir(parents=True)


def test_prepare_builds_from_the_installed_kernel_and_busybox_without_apt(tmp_path, monkeypatch):
    source = image.find(image.SYSTEM_CACHE) or image.find()
    if source is None:
        pytest.skip("no prepared VM image to take Debian's modules from (scripts/setup.sh --vm)")
    root = tmp_path / "root"
    _installed_root(root, source)
    found = image.installed(root)
    assert found is not None and found.release == source.kernel_release  # the cloud flavour (no 9p) is passed over
    which = image._which
    monkeypatch.setattr(image, "_which", lambda tool: None if tool in ("apt-get", "dpkg-deb") else which(tool))
    progress = []
    made = image.prepare(tmp_path / "cache", progress.append, root=root)  # no apt-get: nothing downloaded
    assert made.package == f"linux-image-{source.kernel_release}=unknown" and made.kernel_release == source.kernel_release
    assert made.vmlinux.read_bytes() == open("/sbin/ldconfig", "rb").read()
    initrd = made.initrd.read_bytes()
    assert b"modules/order" in initrd and b"9pnet_virtio.ko\n" in initrd and b"bin/busybox" in initrd
    # what the lab would load at its first iptables rule, preloaded (each file once, in one of the lists)
    assert b"modules/preload" in initrd and b"nf_tables.ko\n" in initrd and b"br_netfilter.ko\n" in initrd
    assert initrd.count(b"modules/x_tables.ko\0") == 1
    assert (made.modules / "modules.dep").is_file() and image.find(tmp_path / "cache") == made
    assert progress[0].startswith(f"using the installed linux-image-{source.kernel_release}")
    assert image.prepare(tmp_path / "cache", progress.append, root=root) == made  # kept, not built again
    assert progress[-1].startswith("the VM image is ready")


def test_a_dynamic_busybox_is_not_an_installed_one(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "busybox").write_bytes(open("/bin/ls", "rb").read())  # needs ld.so: not busybox-static
    assert image.installed(tmp_path) is None


def test_the_prefix_cache_is_looked_in_after_the_users(tmp_path, monkeypatch):
    monkeypatch.setenv("NETLAB_VM_CACHE", str(tmp_path / "user"))
    monkeypatch.setattr(image.sys, "prefix", str(tmp_path / "env"))
    monkeypatch.setattr(image, "SYSTEM_CACHE", tmp_path / "none")
    assert image.prefix_cache() == tmp_path / "env" / "share" / "netlab-magic" / "vm"
    current = image.prefix_cache() / "linux-image-6.1.0-1-amd64=1"
    (current / "lib" / "modules" / "6.1.0-1-amd64").mkdir(parents=True)
    for name in ("vmlinux", "initrd.cpio"):
        (current / name).write_bytes(b"x")
    (current / "image.json").write_text('{"kernel_release": "6.1.0-1-amd64", "package": "linux-image-6.1.0-1-amd64=1"}')
    (image.prefix_cache() / "current").symlink_to(current.name)
    assert image.find().directory == current


def test_where_namespaces_are_refused_a_missing_vm_is_a_failed_check_with_its_line(monkeypatch, tmp_path):
    from netlab_magic.jupyter import doctor

    monkeypatch.setenv("NETLAB_KERNEL_ERROR", "netlab: a seccomp filter refuses unshare(CLONE_NEWUSER) (...)")
    monkeypatch.setenv("NETLAB_VM_CACHE", str(tmp_path))
    monkeypatch.setattr(image, "SYSTEM_CACHE", tmp_path / "none")
    monkeypatch.setattr(image.sys, "prefix", str(tmp_path / "env"))
    monkeypatch.setattr(backend, "_chosen", None)
    vm = {c.name: c for c in doctor.backend_checks()}["VM"]
    assert not vm.ok and "the kernel refuses namespaces here: missing the VM's kernel and initramfs" in vm.detail
    assert vm.advice.startswith("apt-get install -y qemu-system-x86 kmod && netlab-magic vm prepare")


def test_debians_kernel_comes_from_the_machines_own_release_on_debian_else_bookworm(tmp_path):
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_CODENAME=trixie\n')
    assert image.debian_suite(os_release) == "trixie"
    os_release.write_text('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=jammy\n')
    assert image.debian_suite(os_release) == "bookworm"  # Ubuntu is like Debian, not Debian: no jammy there
    assert image.debian_suite(tmp_path / "none") == "bookworm"
    keyring = image.debian_keyring("bookworm")
    assert keyring == image.BOOKWORM_KEYS and keyring.is_file()  # shipped: Ubuntu 22.04's keyring predates bookworm's keys
    assert image.debian_sources("bookworm", keyring) == (
        f"deb [signed-by={keyring}] http://deb.debian.org/debian bookworm main\n")
    assert image.debian_keyring("trixie", (tmp_path / "none.gpg",)) is None  # another suite: the machine's keyring


def test_the_shipped_keys_are_bookworms_two(tmp_path):
    """The keyring file is Debian's own keys (their fingerprints in image.py), not any key."""
    gpg = shutil.which("gpg")
    if gpg is None:
        pytest.skip("no gpg")
    out = subprocess.run([gpg, "--show-keys", "--with-colons", str(image.BOOKWORM_KEYS)], capture_output=True,
                         text=True, env={**os.environ, "GNUPGHOME": str(tmp_path)}, check=True).stdout
    fingerprints = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
    assert "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8" in fingerprints  # Archive Automatic Signing Key (12/bookworm)
    assert "4D64FEC119C2029067D6E791F8D2585B8783D481" in fingerprints  # Stable Release Key (12/bookworm)
    uids = [line.split(":")[9] for line in out.splitlines() if line.startswith("uid:")]
    assert uids == ["Debian Archive Automatic Signing Key (12/bookworm) <ftpmaster@debian.org>",
                    "Debian Stable Release Key (12/bookworm) <debian-release@lists.debian.org>"], uids


def _sources_without_a_kernel(tmp_path, monkeypatch) -> None:
    """apt's own APT_CONFIG: this machine's sources as an empty list, as Ubuntu's have no linux-image-amd64."""
    (tmp_path / "empty.list").write_text("")
    (tmp_path / "empty.d").mkdir()
    (tmp_path / "apt.conf").write_text(f'Dir::Etc::SourceList "{tmp_path / "empty.list"}";\n'
                                       f'Dir::Etc::SourceParts "{tmp_path / "empty.d"}";\n')
    monkeypatch.setenv("APT_CONFIG", str(tmp_path / "apt.conf"))


def test_without_linux_image_amd64_in_the_machines_sources_prepare_turns_to_debians_archive(tmp_path, monkeypatch):
    """The decision, with real apt and no network: the Debian mirror is a missing local directory."""
    if not any(image.Path("/var/lib/apt/lists").glob("*_Packages*")):
        pytest.skip("this machine has no package lists (apt-get update)")
    assert image.has_candidate(image.KERNEL_META_PACKAGE)  # this Debian machine's own sources
    _sources_without_a_kernel(tmp_path, monkeypatch)
    assert not image.has_candidate(image.KERNEL_META_PACKAGE)
    monkeypatch.setattr(image, "DEBIAN_MIRROR", f"file://{tmp_path / 'no-mirror'}")
    (tmp_path / "root").mkdir()  # no installed kernel: the download path
    progress = []
    with pytest.raises(image.ImageError) as err:
        image.prepare(tmp_path / "cache", progress.append, root=tmp_path / "root")
    suite = image.debian_suite()  # this machine's own release: it is Debian
    assert str(err.value).startswith(f"Debian {suite}'s lists could not be fetched or verified with ")
    assert "\n" not in str(err.value) and "Release" in str(err.value), err.value
    assert len(progress) == 1 and progress[0].startswith(
        f"this machine's apt sources have no linux-image-amd64: Debian {suite}'s lists "
        f"from file://{tmp_path / 'no-mirror'} into {tmp_path / 'cache'}/prepare-"), progress
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-built


def test_without_debians_keyring_the_foreign_path_says_what_to_install(tmp_path):
    with pytest.raises(image.ImageError) as err:
        image.debian_archive_options(tmp_path, print, keyrings=(tmp_path / "none.gpg",))
    assert str(err.value) == ("this machine's apt sources have no linux-image-amd64, and Debian's archive keyring "
                              "to take Debian's is missing: apt-get install -y debian-archive-keyring")
    assert list(tmp_path.iterdir()) == []


LATE_SITE = """
import sys
sys.path.insert(0, sys.argv[1])
from netlab_magic.vm import late_site, server  # what the guest's server imports: no site-packages needed
assert "site" not in sys.modules and not any("-packages" in p for p in sys.path), sys.path
if sys.argv[2] == "defer":
    late_site.defer()
try:
    import traitlets  # a dependency: in site-packages only
except ImportError:
    print("not found")
else:
    print("found", "site" in sys.modules)
"""


@pytest.mark.parametrize("how", ["defer", "plain"])
def test_the_guests_server_runs_site_when_an_import_first_needs_it(how):
    """guest_init.sh starts the server with ``python -I -S``: its own modules need nothing from site-packages,
    and late_site runs ``site`` whole when an import does (without it, the import fails)."""
    package = os.path.dirname(os.path.dirname(machine.__file__))
    r = subprocess.run([sys.executable, "-I", "-S", "-c", LATE_SITE, os.path.dirname(package), how],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("found True\n" if how == "defer" else "not found\n")


def test_the_boots_snapshot_is_found_only_for_what_it_was_made_of(tmp_path, monkeypatch):
    """A snapshot is named after QEMU, the kernel, the initramfs, this package's init and QEMU's
    command line: change one and find() finds none (the VM then boots as before)."""
    from netlab_magic.vm import snapshot

    (tmp_path / "vmlinux").write_bytes(b"kernel")
    (tmp_path / "initrd.cpio").write_bytes(b"initramfs")
    img = image.Image(tmp_path, "6.1.0-57-amd64", "linux-image-6.1.0-57-amd64=6.1.192-3")
    assert snapshot.find(img) is None
    snapshot.path(img).write_bytes(b"saved")
    assert snapshot.find(img) == snapshot.path(img)
    # an image's layers are tar files: the kernel's time comes back in whole seconds, the same snapshot
    kernel = tmp_path / "vmlinux"
    os.utime(kernel, ns=(1_700_000_000_123_456_789,) * 2)
    at_build = snapshot.path(img)
    os.utime(kernel, ns=(1_700_000_000_000_000_000,) * 2)
    assert snapshot.path(img) == at_build
    for change in (lambda: (tmp_path / "initrd.cpio").write_bytes(b"initramfs 2"),
                   lambda: monkeypatch.setattr(snapshot, "init_archive", lambda: b"another init"),
                   lambda: monkeypatch.setattr(machine, "BOOT_SHORTCUTS", ("quiet",))):
        before = snapshot.path(img)
        change()
        assert snapshot.path(img) != before and snapshot.find(img) is None
        snapshot.path(img).write_bytes(b"saved")
