"""The guest's ``site``, run when it is first needed rather than at the lab server's start.

The guest's init starts the server with ``python -I -S``: the standard library and this package
(put on ``sys.path`` by hand) are all the lab needs to say READY. ``site`` is what Python does
before anything else otherwise: a venv's prefix, its site-packages, their ``.pth`` files, whose
``import`` lines run code (setuptools' distutils hack; on some machines a certificate bundle's
set-up) and ``sitecustomize``. Under TCG that took the guest ~1 s of a ~6 s boot here
(benchmarks/README.md).

It still happens, whole and as Python does it (``site.main()``), just late: the first time the
guest imports a module that neither the standard library nor this package has (pyroute2, say:
:class:`_SiteWhenMissing`), and before a learner's ``%%netns --python`` cell runs
(:func:`complete`), so the learner's code meets the interpreter a bare ``python3`` would give.
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec, PathFinder


def complete() -> None:
    """Run ``site.main()`` now, once: site-packages, ``.pth`` files, ``sitecustomize``."""
    finder = next((f for f in sys.meta_path if isinstance(f, _SiteWhenMissing)), None)
    if finder is None:
        return
    sys.meta_path.remove(finder)
    import site

    site.main()


class _SiteWhenMissing:
    """Last on ``sys.meta_path``: an import nothing else found completes ``site``, then is looked up again."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        complete()
        return PathFinder.find_spec(name, path)  # type: ignore[arg-type]


def defer() -> None:
    """In a ``python -S`` interpreter: run ``site`` when an import first needs it (see the module's text)."""
    if sys.flags.no_site and not any(isinstance(f, _SiteWhenMissing) for f in sys.meta_path):
        sys.meta_path.append(_SiteWhenMissing())
