"""Self-checking exercises for the Docker notebooks (Demo 3 and Demo 4 of the talk).

Same style as :mod:`netlab_magic.checks`: each ``check_*`` reads the lab and returns a
:class:`~netlab_magic.checks.CheckResult` (✔ or ✘, with a hint); pass several to
:func:`~netlab_magic.checks.exercise`.

    >>> from netlab_magic.changes import record
    >>> before = record()                      # as the exercise begins
    >>> ...                                    # the learner's commands
    >>> from netlab_magic.checks import check_ping, exercise
    >>> from netlab_magic.docker.checks import check_blocked, check_kept_changes, check_opens_no_more
    >>> exercise(check_ping("dummy1", "172.19.0.2"),
    ...          check_blocked(("dummy2", "dummy1"), ("dummy1", "c0")),
    ...          check_opens_no_more(("dummy1", "dummy2")),
    ...          check_kept_changes(before, ["iptables host filter DOCKER-USER"], "DOCKER-USER"))

Nothing here changes the lab. ``check_http`` sends one HTTP request from inside a namespace of
the lab to the address asked for (lab addresses or the namespace's own ``localhost``);
``check_tcp`` starts a listener in the namespace asked for, for the time of one connection;
``check_dnat`` follows one connection in conntrack, to see where NAT really sent it.

What must *stay* is judged by effect, not by the text of rules:

- :func:`check_blocked` sends, for each pair of containers that must stay apart, every kind of
  :mod:`probe <netlab_magic.packets.probes>` (new conversations, and packets that only look like
  answers) and follows each in the kernel's trace: none may be delivered, and each must die
  where Docker drops it, or before (a DROP of the learner's own met first). A packet that now
  passes Docker's drop and dies further on means Docker's protection was weakened;
- :func:`check_opens_no_more` asks the rule set itself (:mod:`.verdict`) about every kind of new
  packet between the networks and from the outside, also those nothing sends today (another port,
  a container not yet started, a port DNATed there later): none that Docker drops may pass, but
  those the exercise opens;
- :func:`check_docker_rules_kept` compares every chain Docker made with the rules dockerd
  installs (the model, :func:`netlab_magic.docker.rules.build`): each rule there, in order;
- :func:`check_kept_changes` holds the learner to the chains and settings the exercise names
  (:mod:`netlab_magic.changes`: the lab recorded before the exercise, every other change named);
- :func:`check_proxy_serves` and :func:`check_source_kept` say that a published port still
  goes through ``docker-proxy`` and that a connection between containers keeps its source.

Feedback names the symptom and where to look, never the command that fixes it.
"""

from __future__ import annotations

from .reach import (NGINX_TITLE, check_dnat, check_http, check_isolation_intact, check_no_listener,
                    check_proxy_serves, check_source_kept, check_tcp)
from .stays import check_blocked, check_docker_rules_kept, check_kept_changes, check_opens_no_more


