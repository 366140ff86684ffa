"""Every kernel thread that runs user code lives in the lab, ipykernel's subshells included.

Namespaces belong to threads. The lab moves the kernel's main thread, which runs the cells
of the notebook, and threads that code started from there are born inside. But ipykernel 7
can run cells on *subshells* (a client's ``create_subshell_request``), threads made by the
kernel's shell-channel thread, which lives in the machine's network: a cell there would see
the machine's routes, reach the machine's 127.0.0.1 and, as root, change the machine.

So every shell request (execute, complete, inspect, comm messages...) handled off the main
thread first moves its thread into the lab (:meth:`Sandbox.adopt_thread`), and follows the
lab to its new host after a reset. If that fails, the request fails: no user code runs outside.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable

_WRAPPED = "__netlab_in_lab__"


def keep_subshells_in_lab(kernel: Any, adopt: Callable[[], None]) -> None:
    """Wrap ``kernel``'s shell handlers so that each runs with its thread inside the lab first.

    ``adopt`` moves the calling thread into the lab. Handlers on the main thread are untouched.
    Idempotent; a kernel without ``shell_handlers`` (not ipykernel) is left as it is.
    """
    handlers = getattr(kernel, "shell_handlers", None)
    if not isinstance(handlers, dict):
        return
    for msg_type, handler in list(handlers.items()):
        if not getattr(handler, _WRAPPED, False):
            handlers[msg_type] = _in_lab(handler, adopt)


def _in_lab(handler: Callable[..., Any], adopt: Callable[[], None]) -> Callable[..., Any]:
    def enter() -> None:
        if threading.current_thread() is not threading.main_thread():
            adopt()

    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            enter()
            return await handler(*args, **kwargs)
    else:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            enter()
            return handler(*args, **kwargs)
    setattr(wrapper, _WRAPPED, True)
    return wrapper
