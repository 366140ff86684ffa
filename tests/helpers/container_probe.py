"""Inside a container: does the lab start here, and if not, which call fails? One JSON line out.

Does what the "Python 3 (netlab)" kernel does, in one process: the launcher's user namespace
(as a non-root user), then the sandbox (``Lab.current()``: mount namespace, the lab's ``/run``,
the host namespace, its ``/sys``), then a piece of Demo 2 in the lab (a namespace, a veth
pair, a bridge, br_netfilter's sysctl, iptables, a ping). Prints what it saw: the stage reached,
the failing call and its error, and the doctor's paragraph when the user namespace is refused.
"""

import json
import os
import sys
import traceback


def status(field: str) -> str | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


DEMO = """\
set -e
ip netns add ns1
ip link add veth1 type veth peer name veth2
ip link set veth1 netns ns1
ip link add bridge0 type bridge
ip addr add 10.0.0.10/24 dev bridge0
ip link set bridge0 up
ip link set veth2 master bridge0
ip link set veth2 up
ip netns exec ns1 ip addr add 10.0.0.1/24 dev veth1
ip netns exec ns1 ip link set veth1 up
sysctl -q -w net.bridge.bridge-nf-call-iptables=1
iptables -P FORWARD DROP
iptables -I FORWARD -o bridge0 -j ACCEPT
ping -c 1 -W 2 10.0.0.1 >/dev/null
echo demo ok
"""


def main() -> None:
    out = {"uid": os.getuid(), "seccomp": status("Seccomp"), "no_new_privs": status("NoNewPrivs"),
           "cap_eff": status("CapEff"), "stage": "userns", "ok": False}
    try:
        from netlab_magic.jupyter import doctor, kernel

        if os.geteuid() != 0:
            try:
                kernel.enter_user_namespace()
            except OSError as err:
                out["call"] = getattr(err, "call", "unshare(CLONE_NEWUSER)")
                out["error"] = os.strerror(err.errno) if err.errno else str(err)
                out["doctor"] = doctor.refusal_text(out["call"], err)
                raise
        out["stage"] = "sandbox"
        from netlab_magic import Lab

        lab = Lab.current()
        out["mode"] = lab.mode
        out["stage"] = "lab"
        r = lab.run("host", ["bash", "-c", DEMO])
        out["demo"] = (r.stdout + r.stderr).strip()[-400:]
        if r.returncode != 0:
            raise RuntimeError(f"Demo 2 in the lab failed ({r.returncode}): {out['demo']}")
        out["ok"] = True
        out["stage"] = "done"
    except Exception as err:  # noqa: BLE001 - recorded, not hidden
        inner = err
        while inner.__cause__ is not None:  # the call that failed, below the message that explains it
            inner = inner.__cause__
        tb = traceback.extract_tb(inner.__traceback__) or traceback.extract_tb(err.__traceback__)
        out.setdefault("error", f"{type(err).__name__}: {err}")
        out.setdefault("call", " <- ".join(f"{f.name} ({os.path.basename(f.filename)}:{f.lineno})"
                                          for f in reversed(tb[-3:])))
    print(json.dumps(out), flush=True)
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
