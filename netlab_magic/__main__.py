"""Command line: ``netlab-magic install-kernel | workbook DIR | doctor | vm prepare | --version``
(also ``python -m netlab_magic ...``)."""

from __future__ import annotations

import argparse
import sys

PROG = "netlab-magic"


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install-kernel", help="install the 'Python 3 (netlab)' Jupyter kernel")
    where = inst.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python's prefix (the default)")
    where.add_argument("--prefix", help="into this prefix")
    inst.add_argument("--name", default="netlab", help="kernel name (default: netlab)")
    book = sub.add_parser("workbook", help="copy the workbook's notebooks into DIR, to open them in Jupyter")
    book.add_argument("dir", help="where to put them (made if missing)")
    book.add_argument("--force", action="store_true", help="overwrite notebooks already there")
    sub.add_parser("doctor", help="check what the lab needs on this machine")
    vm = sub.add_parser("vm", help="the small VM that runs the lab where the kernel refuses namespaces")
    vm.add_argument("action", choices=["prepare"],
                    help="prepare: build the VM's image in your cache from the installed kernel and busybox-static "
                         "(linux-image-amd64), else from Debian's packages (apt-get download)")
    into = vm.add_mutually_exclusive_group()
    into.add_argument("--system", action="store_true", help="as root: into /var/cache/netlab-magic/vm, for every user")
    into.add_argument("--sys-prefix", action="store_true",
                      help="into this Python's prefix (share/netlab-magic/vm), for every user of it (Binder's postBuild)")
    vm.add_argument("--if-missing", action="store_true",
                    help="do nothing where the lab finds an image already (yours, this Python's or the machine's)")
    args = parser.parse_args(argv)

    if args.command == "vm":
        from .vm.image import SYSTEM_CACHE, ImageError, find, prefix_cache, prepare

        from .vm import snapshot
        from .vm.machine import VMError

        image = find() if args.if_missing else None
        if image is not None:
            print(f"the VM image is ready: {image.directory} (--if-missing: no new image)")
        else:
            try:
                image = prepare(SYSTEM_CACHE if args.system else prefix_cache() if args.sys_prefix else None)
            except ImageError as err:
                print(f"{PROG} vm prepare: {err}", file=sys.stderr)
                return 1
        try:
            snapshot.make(image)
        except (VMError, OSError) as err:  # the VM still boots, the long way
            print(f"{PROG} vm prepare: no snapshot of the boot ({err}); each VM boots from the start")
        return 0

    if args.command == "workbook":
        from .jupyter.workbook import WorkbookError, copy_workbook

        try:
            copied = copy_workbook(args.dir, force=args.force)
        except WorkbookError as err:
            print(f"{PROG} workbook: {err}", file=sys.stderr)
            return 1
        print(f"copied {len(copied)} notebooks to {args.dir}: open {copied[0]} first")
        return 0

    if args.command == "install-kernel":
        from .jupyter.kernelspec import install

        path = install(user=args.user, prefix=args.prefix, name=args.name)
        print(f"installed kernel 'Python 3 (netlab)' ({args.name}) in {path}")
        return 0
    from .jupyter.doctor import report, run_checks

    checks = run_checks()
    print(repr(report(checks)))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
