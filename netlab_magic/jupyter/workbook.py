"""Where the workbook is found and copied from: ``netlab-magic workbook DIR``.

In an installed wheel the notebooks travel inside the package (``netlab_magic/workbook/``);
in a clone (an editable install) they are the repository's ``notebooks/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # netlab_magic/
# the notebooks, the pages they link to, nbval's sanitize.cfg (not editors' or Jupyter's leftovers)
_WORKBOOK_SUFFIXES = (".ipynb", ".md", ".cfg", ".png", ".svg")


class WorkbookError(Exception):
    """The workbook cannot be copied (nothing to copy, or a notebook would be overwritten)."""


def workbook_dir() -> Path:
    """The directory holding the workbook's notebooks."""
    for candidate in (_PACKAGE / "workbook", _PACKAGE.parent / "notebooks"):
        if any(candidate.glob("*.ipynb")):
            return candidate
    raise WorkbookError("this installation has no workbook (no notebooks found)")


def copy_workbook(target: str | os.PathLike, force: bool = False) -> list[str]:
    """Copy the workbook into ``target``: every notebook and what they link to (the glossary), and
    nbval's ``sanitize.cfg``; return the notebooks' names.

    Refuses, before copying anything, to overwrite a file that is already there unless ``force``.
    """
    source = workbook_dir()
    files = sorted(p.name for p in source.iterdir() if p.is_file() and p.suffix in _WORKBOOK_SUFFIXES)
    dest = Path(target)
    clash = [n for n in files if (dest / n).exists()]
    if clash and not force:
        raise WorkbookError(f"{dest} already has {', '.join(clash)}: use --force to overwrite, or another DIR")
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, dest / name)
    return [n for n in files if n.endswith(".ipynb")]
