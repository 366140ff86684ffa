"""The images this lab knows, and what a container of each runs. Nothing is ever pulled.

A container shares the kernel's files and programs; only its network is its own. So an image
name only chooses a command: ``nginx`` (and ``httpd``) is Python's ``http.server`` on port 80
(:mod:`.webserver`: listening before its slow import, without its reverse DNS lookup), serving nginx's welcome page from the lab's
private ``/run``; any other image runs
``sleep infinity`` unless a command is given after it.

The web server is the image's own file, copied beside its page (``/run/netlab-docker/webserver.py``,
the same path on every machine), and started as the lab's keeper is: ``python3 -I -S FILE``, the
standard library only, without ``site`` (a ``.pth`` of the machine's) and without this package's
``__init__`` (the whole lab). In the VM's guest, where Python runs without KVM, its start is
much of what ``docker run -d nginx`` waits for (benchmarks/README.md).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from typing import Sequence

#: Where the engine keeps its files: in the lab's private ``/run`` (never the machine's).
RUN_DIR = "/run/netlab-docker"

#: image name (without tag) -> (default command, TCP port it listens on).
IMAGES: dict[str, tuple[str, int | None]] = {
    "nginx": ("{python} -I -S {run}/webserver.py 80 --bind 0.0.0.0 --directory {run}/nginx", 80),
    "httpd": ("{python} -I -S {run}/webserver.py 80 --bind 0.0.0.0 --directory {run}/nginx", 80),
}
DEFAULT_COMMAND = "sleep infinity"

NGINX_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. (In this lab, "nginx" is Python's http.server inside the container's
network namespace.)</p>
</body>
</html>
"""


# distribution/reference's grammar (what `docker run` accepts): [domain/]path[:tag][@digest]; the first
# component is a domain only if it has a dot or a port, or is localhost
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:(?=localhost[:/]|[^/]*[.:][^/]*/)[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?"
_REFERENCE = re.compile(rf"{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
                        r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")


def reference_error(image: str) -> str | None:
    """Docker's words for an image reference it would refuse (``nginx:``, ``Nginx``), else None."""
    if _REFERENCE.fullmatch(image):
        return None
    if image and _REFERENCE.fullmatch(image.lower()):
        repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image.split("@")[0]
        repo = repo if "/" in repo else "library/" + repo  # Docker names an official image so
        return f"docker: invalid reference format: repository name ({repo}) must be lowercase."
    return "docker: invalid reference format."


def image_name(image: str) -> str:
    """``nginx:1.25`` / ``docker.io/library/nginx@sha256:..`` -> ``nginx``."""
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":")[0]
    for prefix in ("docker.io/library/", "library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def image_port(image: str) -> int | None:
    """The TCP port a known image's server listens on (``nginx`` -> 80), else None."""
    known = IMAGES.get(image_name(image))
    return known[1] if known else None


def command_for(image: str, cmd: Sequence[str]) -> str:
    """The bash command a container of ``image`` runs: ``cmd`` if given, else the image's own."""
    if cmd:
        return shlex.join(cmd)
    known = IMAGES.get(image_name(image))
    if known is None:
        return DEFAULT_COMMAND
    os.makedirs(f"{RUN_DIR}/nginx", exist_ok=True)
    with open(f"{RUN_DIR}/nginx/index.html", "w") as f:
        f.write(NGINX_PAGE)
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "webserver.py"), f"{RUN_DIR}/webserver.py")
    return known[0].format(python=shlex.quote(sys.executable), run=RUN_DIR)


__all__ = ["RUN_DIR", "IMAGES", "DEFAULT_COMMAND", "NGINX_PAGE", "image_name", "reference_error", "image_port", "command_for"]
