#!/bin/sh
# dom0's init in the nested lab (built into the initramfs by image.py).
# Brings up Xen's control plane and the lab agent, then prints the marker
# that tests/lab/lab.py waits for. Every step that fails says so on the
# console, which the host keeps, and the marker then reports the failure.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin:/opt/vmistub/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /var/run/xen /var/lib/xen /var/log/xen/console /run/lock

status=ok
step() {
    if ! "$@" >/tmp/step.log 2>&1; then
        echo "VMISTUB-LAB: step failed: $*" >/dev/console
        cat /tmp/step.log >/dev/console
        status="failed: $*"
    fi
}

while read -r m; do
    step insmod "/lib/modules/$m"
done </etc/lab-modules
step mount -t xenfs xenfs /proc/xen

step /usr/lib/xen-4.17/bin/xenstored --pid-file=/run/xen/xenstored.pid
# xenstored serves once its socket answers; wait for that, bounded.
i=0
until xenstore-exists / 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 200 ] && { status="failed: xenstored did not answer"; break; }
    usleep 50000
done
step /usr/lib/xen-4.17/bin/xen-init-dom0
step /usr/lib/xen-4.17/bin/xenconsoled --pid-file=/run/xen/xenconsoled.pid \
    --log=guest --log-dir=/var/log/xen/console

ip link set lo up
if ip link set eth0 up 2>/dev/null; then
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
else
    status="failed: no eth0"
fi
/opt/lab/lab-agent 7000 >/var/log/lab-agent.log 2>&1 &
# The host connects as soon as it sees the marker: the agent must listen by
# then. It says so in its log once listen() returned.
i=0
until grep -q listening /var/log/lab-agent.log 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 200 ] && { status="failed: lab-agent did not start"; break; }
    usleep 50000
done

echo "VMISTUB-LAB: dom0 ready ($status)" >/dev/console
# init must never exit. (People and tests reach dom0 through the agent:
# `tests/lab/lab.py shell`.)
while :; do
    sleep 3600
done
