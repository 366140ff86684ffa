"""The package's version: one line the build reads (pyproject's ``[tool.hatch.version]``), below every module."""

__version__ = "0.1.0"
