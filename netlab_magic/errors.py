"""Typed errors. Each one prints as a single line a learner can act on.

Code catches the type; the magics turn any :class:`NetlabError` into an IPython
``UsageError`` (one line, no traceback). The cause is kept (``raise ... from err``).
"""

from __future__ import annotations


class NetlabError(Exception):
    """Base class: something the user asked for cannot be done."""


class InvalidName(NetlabError, ValueError):
    """A namespace, interface or job name that the kernel or iproute2 would refuse."""


class InvalidAddress(NetlabError, ValueError):
    """An address or CIDR that does not parse, or does not fit where it is used."""


class InvalidArgument(NetlabError, ValueError):
    """A value the kernel refuses (a sysctl set to something it does not take)."""


class NotFound(NetlabError, LookupError):
    """A namespace, interface or job that does not exist in the lab."""


class NamespaceNotFound(NotFound):
    """A network namespace that the lab does not have."""


class AlreadyExists(NetlabError):
    """A name that is already taken in the lab."""


class PrivilegeError(NetlabError, PermissionError):
    """The lab cannot be built with the privileges this process has."""


class CommandFailed(NetlabError):
    """A command run with ``check=True`` exited non-zero."""

    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode

    def __reduce__(self) -> tuple:  # pickled whole (the VM backend sends it from the guest)
        return type(self), (str(self), self.returncode)
