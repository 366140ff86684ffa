"""Where the workbook is found and copied from: ``netlab workbook DIR``.

In an installed wheel the notebooks travel inside the package (``netlab_magic/workbook/``);
in a clone (an editable install) they are the repository's ``notebooks/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_HERE = Path(__file__).resolve().parent


class WorkbookError(Exception):
    """The workbook cannot be copied (nothing to copy, or a notebook would be overwritten)."""


def workbook_dir() -> Path:
    """The directory holding the workbook's notebooks."""
    for candidate in (_HERE / "workbook", _HERE.parent / "notebooks"):
        if any(candidate.glob("*.ipynb")):
            return candidate
    raise WorkbookError("this installation has no workbook (no notebooks found)")


def copy_workbook(target: str | os.PathLike, force: bool = False) -> list[str]:
    """Copy every notebook (and nbval's ``sanitize.cfg``) into ``target``; return the notebooks' names.

    Refuses, before copying anything, to overwrite a notebook that is already there unless ``force``.
    """
    source = workbook_dir()
    notebooks = sorted(p.name for p in source.glob("*.ipynb"))
    dest = Path(target)
    clash = [n for n in notebooks if (dest / n).exists()]
    if clash and not force:
        raise WorkbookError(f"{dest} already has {', '.join(clash)}: use --force to overwrite, or another DIR")
    dest.mkdir(parents=True, exist_ok=True)
    for name in [*notebooks, "sanitize.cfg"]:
        if (source / name).exists():
            shutil.copyfile(source / name, dest / name)
    return notebooks
