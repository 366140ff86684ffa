"""The floor: Linux's interfaces as the lab uses them, and nothing of the lab.

System calls through libc, netlink (rtnetlink, nf_tables), entering a network namespace and coming
back, ``iptables-save`` read and iptables held in memory, a command run in a namespace (``process``)
and the ones left running in the background (``jobs``).
"""
