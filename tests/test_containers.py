"""The workbook in the containers that Binder, repo2docker, Docker, Podman and Kubernetes give a user.

Runs only with NETLAB_CONTAINER_TESTS=1 (scripts/test-containers.sh), as root: it installs
nothing itself but needs debootstrap, docker.io and podman, builds the image from binder/
(tests/support/containers.py: debootstrap, then repo2docker's steps; minutes the first time) and runs
it as each platform does:

=================================  ========================================================
docker, default                    ``docker run`` as the image's user (uid 1000), Docker's
                                   default seccomp profile: what repo2docker and
                                   mybinder.org's pods give. Refused and explained.
docker, seccomp=unconfined only    the user namespace works; the lab's /sys is refused
                                   (Docker masks /sys/firmware). Explained.
docker, default: the VM           the same container, through the "Python 3 (netlab)" kernel:
                                   it chooses the VM backend by itself (QEMU, TCG) and the
                                   whole workbook passes nbval there; what the first cell
                                   and each cell cost (benchmarks/vm.py)
docker, recommended                ``--security-opt seccomp=unconfined --security-opt
                                   systempaths=unconfined``: the lab works, nbval passes
kubernetes pod (Helm values)       what docs/deploy.md's values give a container: uid 1000
                                   gid 100, all capabilities dropped, no privilege
                                   escalation, the Localhost seccomp profile of
                                   scripts/netlab-seccomp.py, unmasked system paths
podman rootless, default           ``podman run`` by an unprivileged user (runc); Podman's
                                   seccomp profile allows the user namespace, its masked
                                   paths refuse the lab's /sys. Explained.
podman rootless, recommended       ``--security-opt unmask=ALL``: the lab works
=================================  ========================================================

For each: whether the lab starts, and which call fails if not (tests/helpers/container_probe.py);
the table goes to NETLAB_CONTAINER_REPORT (default: stdout only). The workbook's notebooks
pass nbval in the recommended container. The machine is compared before and after: no rule,
interface, mount or process of the engines is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support import containers as C

pytestmark = [
    pytest.mark.skipif(os.environ.get("NETLAB_CONTAINER_TESTS") != "1",
                       reason="container tests run with NETLAB_CONTAINER_TESTS=1 (scripts/test-containers.sh)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (dockerd, useradd)"),
    pytest.mark.timeout(2400),  # the first test builds the image
]

PROBE = ["python", "tests/helpers/container_probe.py"]
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def machine_before():
    return C.machine_state()


@pytest.fixture(scope="module")
def workdir(machine_before):
    """The module's files; torn down last, after the engines: then the machine must be as it was."""
    d = Path(tempfile.mkdtemp(prefix="netlab-containers-", dir="/var/tmp"))
    os.chmod(d, 0o755)
    yield d
    C.unmount_under(d)
    subprocess.run(["rm", "-rf", "--one-file-system", str(d)])
    after = C.machine_state()
    changed = {k: (machine_before[k], after[k]) for k in after if after[k] != machine_before[k]}
    assert not changed, f"the container engines changed the machine: {changed}"


@pytest.fixture(scope="module")
def image_tar(workdir, machine_before):
    cache = Path(os.environ.get("NETLAB_CONTAINER_CACHE") or workdir / "cache")
    cache.mkdir(parents=True, exist_ok=True)
    tar = C.build_image_tarball(workdir / "build", cache)
    os.chmod(tar, 0o644)
    return tar


@pytest.fixture(scope="module")
def seccomp_profile(workdir):
    path = workdir / "netlab-seccomp.json"
    out = subprocess.run([sys.executable, str(C.REPO / "scripts" / "netlab-seccomp.py")], capture_output=True,
                         text=True, check=True).stdout
    path.write_text(out)
    os.chmod(path, 0o644)
    return path


@pytest.fixture(scope="module")
def docker(workdir, image_tar, machine_before):
    d = C.Dockerd(workdir / "docker")
    try:
        d.start()
        with open(image_tar, "rb") as f:
            d.cli(["import", *C.IMPORT_CHANGES, "-", C.IMAGE], stdin=f, text=False)
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def podman(workdir, image_tar):
    p = C.PodmanRootless(workdir / "podman")
    try:
        p.setup()
        p.cli(["import", *C.IMPORT_CHANGES, str(image_tar), C.IMAGE], timeout=600)
        yield p
    finally:
        p.teardown()


def record(name: str, how: str, result: dict) -> dict:
    RESULTS[name] = {"how": how, **result}
    report = os.environ.get("NETLAB_CONTAINER_REPORT")
    if report:
        Path(report).write_text(json.dumps(RESULTS, indent=1) + "\n")
    print(f"\n{name}: {json.dumps(result)}")
    return result


DOCKER_RUN = ["run", "--rm", "--network=none"]
RECOMMENDED = ["--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined"]
SECCOMP_ONLY = ["--security-opt", "seccomp=unconfined"]


def kube_pod(profile: Path) -> list[str]:
    """docs/deploy.md's values, as the kubelet gives them to the container."""
    return ["--user", "1000:100", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
            "--security-opt", f"seccomp={profile}", "--security-opt", "systempaths=unconfined"]


def test_docker_default_seccomp_is_refused_and_explained(docker):
    r = record("docker, default", "docker run --network=none IMAGE (uid 1000, default seccomp)",
               C.probe_result(docker.cli([*DOCKER_RUN, C.IMAGE, *PROBE], check=False)))
    assert not r["ok"] and r["stage"] == "userns" and r["call"] == "unshare(CLONE_NEWUSER)", r
    assert "seccomp filter refuses unshare(CLONE_NEWUSER)" in r["doctor"]
    assert "--security-opt seccomp=unconfined" in r["doctor"] and "Traceback" not in r["doctor"]


#: In the container: a "Python 3 (netlab)" kernel as JupyterLab starts it (no NETLAB_BACKEND), its
#: first cell (which waits for the VM's boot), then ``%netlab doctor``; one JSON line out.
KERNEL_CHOICE = """
import json, time
from jupyter_client.manager import KernelManager
out = []
def hook(msg):
    c = msg["content"]
    if msg["msg_type"] == "stream":
        out.append(c["text"])
    elif msg["msg_type"] in ("execute_result", "display_data", "error"):
        out.append(c.get("data", {}).get("text/plain", "") or " ".join(c.get("traceback", [])))
start = time.perf_counter()
km = KernelManager(kernel_name="netlab")
km.start_kernel()
kc = km.client()
kc.start_channels()
try:
    kc.wait_for_ready(timeout=120)
    first = kc.execute_interactive("%netns host true", timeout=600, output_hook=hook)["content"]["status"]
    first_s = time.perf_counter() - start
    kc.execute_interactive("%netlab doctor", timeout=120, output_hook=hook)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=False)
print(json.dumps({"first_cell": first, "first_cell_s": round(first_s, 2), "doctor": "".join(out)}))
"""


def test_docker_default_the_kernel_chooses_the_vm_by_itself(docker):
    r = docker.cli([*DOCKER_RUN, C.IMAGE, "python", "-c", KERNEL_CHOICE], check=False, timeout=900)
    result = C.probe_result(r)
    doctor = result.get("doctor", "")
    rows = [line.strip() for line in doctor.splitlines() if line.strip().startswith(("backend", "VM", "mode"))]
    record("docker, default: the VM", "the netlab kernel in docker run --network=none IMAGE (uid 1000, default seccomp)",
           {"ok": result.get("first_cell") == "ok", "first_cell_s": result.get("first_cell_s"), "doctor": rows,
            **({"error": result["error"]} if "error" in result else {})})
    assert result.get("first_cell") == "ok", r.stdout[-3000:] + r.stderr[-3000:]
    assert any(row.startswith("backend") and "vm: the kernel refuses namespaces here" in row for row in rows), doctor
    assert any(row.startswith("mode") and "vm: the lab is a small virtual machine" in row for row in rows), doctor
    # postBuild's `vm prepare` saved the boot's snapshot in the image: the image's tar layers keep
    # whole seconds only, and the snapshot's name must survive that (it did not, at first)
    assert any(row.startswith("VM boot") and "restored from the snapshot of its boot" in row for row in rows), doctor


def test_docker_default_what_the_vm_costs(docker):
    """benchmarks/vm.py in the container: recorded for docs/deploy.md, never asserted on (a loaded machine)."""
    r = docker.cli([*DOCKER_RUN, C.IMAGE, "python", "benchmarks/vm.py", "--boots", "2", "--rounds", "10", "--cells"],
                   check=False, timeout=1200)
    record("docker, default: the VM's costs", "python benchmarks/vm.py --boots 2 --rounds 10 --cells",
           {"ok": r.returncode == 0, "report": r.stdout.strip().splitlines()[-16:] or r.stderr[-1500:]})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.timeout(3600)
def test_docker_default_the_workbook_passes_nbval_in_the_vm(docker):
    r = docker.cli([*DOCKER_RUN, C.IMAGE, *NBVAL], check=False, timeout=3400)
    failed = [line[len("FAILED "):].split(" - ")[0] for line in r.stdout.splitlines() if line.startswith("FAILED ")]
    report = os.environ.get("NETLAB_CONTAINER_REPORT")
    if report:  # each failed cell's difference, whole, beside the table
        Path(report).with_suffix(".nbval-vm.txt").write_text(r.stdout + r.stderr)
    record("nbval, docker default (the VM)", "pytest --nbval notebooks/ in the container, the kernel's own choice",
           {"ok": r.returncode == 0, "summary": _last_line(r), "failed": failed})
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_docker_without_its_seccomp_filter_but_masked_sys_is_explained(docker):
    r = record("docker, seccomp=unconfined only", "docker run " + " ".join(SECCOMP_ONLY),
               C.probe_result(docker.cli([*DOCKER_RUN, *SECCOMP_ONLY, C.IMAGE, *PROBE], check=False)))
    assert not r["ok"] and r["stage"] == "sandbox" and "_mount_sysfs" in r["call"], r
    assert "cannot mount its own /sys" in r["error"] and "systempaths=unconfined" in r["error"], r


def test_docker_with_the_recommended_settings_runs_the_lab(docker):
    r = record("docker, recommended", "docker run " + " ".join(RECOMMENDED),
               C.probe_result(docker.cli([*DOCKER_RUN, *RECOMMENDED, C.IMAGE, *PROBE], check=False)))
    assert r["ok"] and r["mode"] == "rootless", r


def test_docker_as_a_kubernetes_pod_with_the_helm_values_runs_the_lab(docker, seccomp_profile):
    r = record("kubernetes pod (Helm values)", "docker run " + " ".join(kube_pod(Path("netlab-seccomp.json"))),
               C.probe_result(docker.cli([*DOCKER_RUN, *kube_pod(seccomp_profile), C.IMAGE, *PROBE], check=False)))
    assert r["ok"] and r["cap_eff"] == "0000000000000000" and r["no_new_privs"] == "1", r


# runc: crun refuses this VM's hybrid cgroup layout ("cgroups in hybrid mode not supported")
PODMAN_RUN = ["run", "--rm", "--network=none", "--runtime", "runc"]
PODMAN_RECOMMENDED = ["--security-opt", "unmask=ALL"]


def test_podman_rootless_default_is_explained(podman):
    r = record("podman rootless, default", "podman run --network=none IMAGE (rootless, Podman's defaults)",
               C.probe_result(podman.cli([*PODMAN_RUN, C.IMAGE, *PROBE], check=False, timeout=600)))
    assert r["stage"] != "engine", r
    assert r["ok"] or ("unmask=ALL" in r.get("doctor", "") + r.get("error", "")
                       and "Traceback" not in r.get("doctor", "") + r.get("error", "")), r


def test_podman_rootless_with_the_recommended_settings_runs_the_lab(podman):
    r = record("podman rootless, recommended", "podman run " + " ".join(PODMAN_RECOMMENDED),
               C.probe_result(podman.cli([*PODMAN_RUN, *PODMAN_RECOMMENDED, C.IMAGE, *PROBE], check=False, timeout=600)))
    assert r["ok"] and r["mode"] == "rootless", r


NBVAL = ["python", "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--nbval", "notebooks/",
         "--nbval-sanitize-with", "notebooks/sanitize.cfg", "--nbval-kernel-name", "netlab", "--nbval-cell-timeout=300"]


def _last_line(r: subprocess.CompletedProcess) -> str:
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:]


@pytest.mark.timeout(1200)
def test_the_workbook_passes_nbval_in_the_recommended_container(docker):
    r = docker.cli([*DOCKER_RUN, *RECOMMENDED, C.IMAGE, *NBVAL], check=False, timeout=1100)
    record("nbval, docker recommended", "pytest --nbval notebooks/ in the container", {"ok": r.returncode == 0, "summary": _last_line(r)})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
