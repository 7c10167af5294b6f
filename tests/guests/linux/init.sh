#!/bin/sh
# init of the Linux test guest. Prints, on its console:
#   linux: vcpus=N              once
#   linux: sym ADDR NAME        a few kernel symbols from /proc/kallsyms, so
#                               tests can check System.map against the
#                               running kernel
#   linux: heartbeat N          every second
# and keeps every vCPU busy in a loop that enters the kernel on each
# iteration (open/read/close of /proc/uptime), so kernel functions on that
# path are hot on every vCPU.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

ncpu=$(grep -c '^processor' /proc/cpuinfo)
echo "linux: vcpus=$ncpu"
echo 0 >/proc/sys/kernel/kptr_restrict
for s in do_sys_openat2 vfs_read ksys_read __x64_sys_getpid schedule_idle _text; do
    grep -m1 " [tT] $s\$" /proc/kallsyms | while read -r addr type name; do
        echo "linux: sym $addr $name"
    done
done

cpu=0
while [ $cpu -lt "$ncpu" ]; do
    taskset -c $cpu sh -c 'while :; do read -r up </proc/uptime; done' &
    cpu=$((cpu + 1))
done

n=0
while :; do
    echo "linux: heartbeat $n"
    n=$((n + 1))
    sleep 1
done
