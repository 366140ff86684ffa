"""The images this lab knows, and what a container of each runs. Nothing is ever pulled.

A container shares the kernel's files and programs; only its network is its own. So an image
name only chooses a command: ``nginx`` (and ``httpd``) is Python's ``http.server`` on port 80
(:mod:`.webserver`: without its reverse DNS lookup), serving nginx's welcome page from the lab's
private ``/run``; any other image runs
``sleep infinity`` unless a command is given after it.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Sequence

#: Where the engine keeps its files: in the lab's private ``/run`` (never the machine's).
RUN_DIR = "/run/netlab-docker"

#: image name (without tag) -> (default command, TCP port it listens on).
IMAGES: dict[str, tuple[str, int | None]] = {
    "nginx": ("{python} -m netlab_magic.docker.webserver 80 --bind 0.0.0.0 --directory {run}/nginx", 80),
    "httpd": ("{python} -m netlab_magic.docker.webserver 80 --bind 0.0.0.0 --directory {run}/nginx", 80),
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
    return known[0].format(python=shlex.quote(sys.executable), run=RUN_DIR)


__all__ = ["RUN_DIR", "IMAGES", "DEFAULT_COMMAND", "NGINX_PAGE", "image_name", "image_port", "command_for"]
