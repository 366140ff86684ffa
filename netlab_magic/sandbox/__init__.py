"""The lab's walls: the private mount and network namespaces the lab lives in (rootless through a
user namespace), its PID and UTS namespaces, the masked ``/sys`` it refuses, the keeper that tears
it down if the kernel dies, and the kernel threads kept inside it."""
