"""Jupyter's side: the magics (``%%netns``, ``%netlab``, ``%docker``), ``%load_ext``, the kernel
launcher and its kernelspec, ``doctor``, the workbook's copy. Thin: parse, call the API, display."""
