"""The lab in a small virtual machine, for machines whose kernel refuses namespaces.

One concern per module, each importing only those before it:

* :mod:`.image`: the kernel and initramfs, from the distribution's own packages, in a per-user cache;
* :mod:`.protocol`: the frames on the virtio-serial port between host and guest;
* :mod:`.remote`: calls across it, pickled: values by value, the lab's live objects by reference;
* :mod:`.server`: the guest's side: this package's own in-kernel lab, started by ``guest_init.sh``;
* :mod:`.client`: the host's side: a call to the guest's lab, output streamed, the interrupt;
* :mod:`.machine`: QEMU's life: start in the background, ready, crashed, stopped;
* :mod:`.snapshot`: the boot's snapshot: a VM saved where every boot is the same, restored instead of booted;
* :mod:`.pyroute2_messages`: a pyroute2 message across the port, as its bytes, rebuilt as its class;
* :mod:`.pyroute2_guest`: the guest's side of a plain cell's pyroute2: real objects on the guest's lab;
* :mod:`.kernel_network`: the kernel's own cells, beside the VM: an empty namespace where the machine allows it;
* :mod:`.lab`: :class:`VMLab`, the VM's implementation of the lab the magics use (see :mod:`netlab_magic.backend`);
* :mod:`.pyroute2_proxy`: the kernel's side: ``IPRoute``, ``NetNS``, ``AsyncIPRoute``, ``pyroute2.netns`` forwarded to the lab's guest.
"""
