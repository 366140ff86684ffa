"""The Lab API: :class:`~netlab_magic.lab.lab.Lab` and its :class:`~netlab_magic.lab.lab.NetNS`
handles, the snapshot that reads it, and the backend that chooses this kernel's lab or a VM's."""
