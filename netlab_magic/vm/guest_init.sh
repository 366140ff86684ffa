#!/bin/busybox sh
# The guest's init (PID 1, busybox), packed into the initramfs by netlab_magic/vm/image.py.
# It is not the lab's server: it mounts the image's own / (shared read-only by QEMU over virtio-9p)
# under a tmpfs overlay, starts the server there (netlab_magic.vm.server), and powers the VM off
# when the server ends (the host went away), which ends QEMU (-no-reboot).
# The image's module tree comes on the kernel's command line (netlab.modules=); the rest in the
# host's word, one line on the agent's port: the kernel's Python, the directory that holds this
# package, the host's clock (seconds) and 32 random bytes (hex).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "netlab-init: $*" > /dev/ttyS0; poweroff -f; }
for word in $(cat /proc/cmdline); do
    case "$word" in
        netlab.modules=*) MODULES="${word#*=}" ;;
    esac
done
while read -r module; do insmod "/modules/$module" || fail "insmod $module failed"; done < /modules/order
# what the lab would load at its first bridge, veth, iptables rule or conntrack (image.py,
# PRELOADED_MODULES): loaded before the snapshot point, so restored VMs have them; one that fails
# is loaded on demand later, as the others were
[ -f /modules/preload ] && while read -r module; do insmod "/modules/$module" 2>/dev/null; done < /modules/preload
PORT=
for port in /sys/class/virtio-ports/*; do
    [ "$(cat "$port/name" 2>/dev/null)" = agent ] && PORT="/dev/${port##*/}"
done
[ -n "$PORT" ] || fail "no virtio-serial port named agent"
# The boot's snapshot (netlab_magic/vm/snapshot.py) is taken here, while init waits for the word: a VM
# restored from it starts at this read, with the clock and the randomness of the moment it was
# taken, which the word then puts right. Nothing before this line depends on who boots the VM.
echo "netlab-boot: waiting for the host's word" > /dev/ttyS0
WORD=
while [ -z "$WORD" ]; do read -r WORD < "$PORT" || sleep 0.1; done  # empty: no host connected (yet)
set -- $WORD
[ $# -eq 4 ] || fail "the host's word is not PYTHON PACKAGE CLOCK ENTROPY: $WORD"
PYTHON="$1" PACKAGE="$2"
[ "$(date +%s)" -lt "$3" ] && date -s "@$3" > /dev/null  # a restored clock is behind; a booted one is right
echo "$4" > /dev/urandom  # mixed in now; the server has the kernel reseed from it first thing
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro root /lower || fail "cannot mount the shared /"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
# nosuid: everything in the guest runs as root, and a set-user-ID file of the share may belong to
# 65534 (QEMU started in a user namespace, as the rootless kernel's launcher does, sees the machine's
# root as nobody): `umount` then ran as nobody and a container's `umount -l /run/netns` was refused.
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,nosuid overlay /newroot || fail "cannot mount the overlay"
for fs in proc:/proc sysfs:/sys devtmpfs:/dev tmpfs:/run; do  # /tmp: the overlay's (the share's, writable)
    mount -t "${fs%%:*}" "${fs%%:*}" "/newroot${fs#*:}" || fail "cannot mount ${fs#*:}"
done
mkdir -p /newroot/dev/pts && mount -t devpts devpts /newroot/dev/pts
# what udev and systemd give a bare machine's /dev, and scripts use (tee /dev/stderr, < /dev/stdin)
ln -s /proc/self/fd /newroot/dev/fd
for n in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${n%%:*}" "/newroot/dev/${n#*:}"; done
if [ -n "$MODULES" ]; then  # the kernel's own module tree (veth, bridge, nf_tables...), from the share
    for root in "" /newroot; do
        mkdir -p "$root/lib/modules/$(uname -r)"
        mount -o bind "/lower$MODULES" "$root/lib/modules/$(uname -r)"
    done
    # the kernel loads modules (ip link add ... type veth) with this root's modprobe: busybox's
    echo /bin/modprobe > /proc/sys/kernel/modprobe
    # bridged traffic through iptables (Demo 2), as on the machines the talk ran on
    modprobe br_netfilter || fail "modprobe br_netfilter failed"
fi
hostname netlab-vm
# The overlay becomes the root of the mount namespace, not only of a chroot: the lab's server
# enters mount namespaces (setns), which would otherwise land it back in this initramfs.
cd /newroot && mount --move . / || fail "cannot move the overlay to /"
# -S: the server's late_site.py runs site (site-packages, .pth files) when an import first needs it
chroot . /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb "$PYTHON" -I -S -c \
    'import sys; sys.path.insert(0, sys.argv[1]); from netlab_magic.vm.server import main; main(sys.argv[2])' \
    "$PACKAGE" "$PORT"
echo "netlab-init: the lab's server ended (status $?)" > /dev/ttyS0
poweroff -f
