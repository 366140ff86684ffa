"""The dependency list says the truth: every module the package imports is declared, nothing
declared is unused (deptry reads the imports of ``netlab_magic/`` against ``pyproject.toml``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dependencies_match_the_imports():
    out = subprocess.run([sys.executable, "-m", "deptry", "."], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
