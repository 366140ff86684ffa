"""The Lab API: :class:`~netlab_magic.lab.lab.Lab` and its :class:`~netlab_magic.lab.lab.NetNS`
handles, and the snapshot that reads it. (Which lab runs, this kernel's or a VM's: :mod:`netlab_magic.backend`.)"""
