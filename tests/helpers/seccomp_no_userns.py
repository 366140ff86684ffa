"""Run under a seccomp filter that refuses user namespaces the way Docker's default profile does.

Docker's default seccomp profile (and Podman's, and Kubernetes' ``RuntimeDefault``) lets
``unshare`` and ``clone`` make namespaces only with CAP_SYS_ADMIN, which a container's user
lacks: ``unshare(CLONE_NEWUSER)`` fails with EPERM, ``clone3`` with ENOSYS. This installs a
filter with exactly that effect on this process and what it executes, then:

* ``seccomp_no_userns.py -f CONNECTION_FILE``: starts the netlab kernel launcher (a kernelspec);
* ``seccomp_no_userns.py [--as-nobody] --exec CMD...``: runs CMD (as root, ``--as-nobody``
  first drops to uid/gid 65534, as a container's non-root user).
"""

import ctypes
import errno
import os
import platform
import struct
import sys

CLONE_NEWUSER = 0x10000000
# machine -> (AUDIT_ARCH, unshare, clone, clone3)
ARCHES = {"x86_64": (0xC000003E, 272, 56, 435), "aarch64": (0xC00000B7, 97, 220, 435)}

LD_ABS, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
ALLOW, ERRNO = 0x7FFF0000, 0x00050000
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def install_filter() -> None:
    arch, nr_unshare, nr_clone, nr_clone3 = ARCHES[platform.machine()]
    program = [
        (LD_ABS, 0, 0, 4),              # 0: seccomp_data.arch
        (JEQ, 0, 8, arch),              # 1: another arch -> 10 allow
        (LD_ABS, 0, 0, 0),              # 2: seccomp_data.nr
        (JEQ, 2, 0, nr_unshare),        # 3: unshare -> 6
        (JEQ, 1, 0, nr_clone),          # 4: clone -> 6
        (JEQ, 3, 4, nr_clone3),         # 5: clone3 -> 9 ENOSYS, else -> 10 allow
        (LD_ABS, 0, 0, 16),             # 6: args[0] (low 32 bits): the flags
        (JSET, 0, 2, CLONE_NEWUSER),    # 7: CLONE_NEWUSER -> 8 EPERM, else -> 10 allow
        (RET, 0, 0, ERRNO | errno.EPERM),   # 8
        (RET, 0, 0, ERRNO | errno.ENOSYS),  # 9
        (RET, 0, 0, ALLOW),                 # 10
    ]
    code = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(code, len(code))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Fprog(len(program), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--as-nobody":
        argv = argv[1:]
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
    install_filter()
    if argv and argv[0] == "--exec":
        os.execvp(argv[1], argv[1:])
    os.execv(sys.executable, [sys.executable, "-m", "netlab_magic.jupyter.kernel", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
