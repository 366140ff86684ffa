"""What several test modules share, in one place (no test module imports another):

- :mod:`.kernel_client`: real IPython kernels driven through jupyter_client, as JupyterLab does;
- :mod:`.strays`, :mod:`.pids`: processes a lab may leave behind, and PIDs as the machine sees them;
- :mod:`.waiting`: a condition polled until it holds (what a test cannot be told about);
- :mod:`.docker_lab`: a Docker lab in a test kernel read from outside (its rules, the model's, its state);
- :mod:`.docker28_documents`: moby's documents of Docker Engine 28.5's rules;
- :mod:`.pyroute2_cells`: pyroute2's documented examples as kernel cells;
- :mod:`.widgets`, :mod:`.sandboxlab`: made-up labs and rule sets, and a tiny real lab, for the widgets;
- :mod:`.hub`, :mod:`.containers`: a JupyterHub, and container images, for the deployment tests.

Fixtures live in ``tests/conftest.py``; the kernel launchers the tests start (scripts, not
modules) in ``tests/helpers/``. ``tests/`` is on ``sys.path`` (pytest puts the folder of the
root ``conftest.py`` there), so a test writes ``from support.kernel_client import Kernel``.
"""
