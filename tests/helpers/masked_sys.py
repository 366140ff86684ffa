"""Start the netlab kernel where part of /sys is hidden, as Docker and Kubernetes mask /sys/firmware.

Run as an unprivileged user: this wrapper enters a user and mount namespace of its own (mapping
the user to itself, so it stays unprivileged), mounts an empty tmpfs over /sys/firmware (what a
container's "masked paths" are), and starts the netlab launcher. The launcher's own user
namespace inherits that mount locked in place, so the lab's new /sys is refused exactly as in a
container started without ``--security-opt systempaths=unconfined``.
"""

import os
import sys

import own_userns  # this folder's: the script's own directory is on sys.path
from netlab_magic.linux import syscalls

own_userns.enter()
syscalls.mount("masked", "/sys/firmware", "tmpfs", syscalls.MS_RDONLY)
os.execv(sys.executable, [sys.executable, "-m", "netlab_magic.jupyter.kernel", *sys.argv[1:]])
