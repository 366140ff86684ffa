#!/usr/bin/env python3
"""Print a seccomp profile for the workbook's container: a runtime's default profile, plus the lab's calls.

    python3 scripts/netlab-seccomp.py [BASE.json] > netlab-seccomp.json

The default profiles of Docker and containerd (Kubernetes' ``RuntimeDefault``) let ``unshare``,
``setns``, ``mount`` and ``umount2`` through only with CAP_SYS_ADMIN, which a notebook user
lacks, so the netlab kernel cannot make its user namespace. This adds one rule allowing those
four calls (inside its own user namespace the kernel is root of nothing but its lab); every
other rule of BASE stays. BASE defaults to ``/usr/share/containers/seccomp.json`` (Debian and
Ubuntu's containers-common, the default of Podman and CRI-O); Docker's own is moby's
``profiles/seccomp/default.json`` of the engine's version. Use the result with
``docker run --security-opt seccomp=netlab-seccomp.json``, or on Kubernetes as a ``Localhost``
profile (docs/deploy.md).
"""

import json
import sys

LAB_CALLS = ["unshare", "setns", "mount", "umount2"]


def profile(base: dict) -> dict:
    out = dict(base)
    out["syscalls"] = [*base.get("syscalls", []),
                       {"names": LAB_CALLS, "action": "SCMP_ACT_ALLOW",
                        "comment": "netlab: the kernel's own user, mount and network namespaces"}]
    return out


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/usr/share/containers/seccomp.json"
    with open(path) as f:
        base = json.load(f)
    json.dump(profile(base), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
