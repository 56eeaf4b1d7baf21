#!/bin/sh
# PID 1 inside a VM-matrix guest (after the initramfs switch_root): mount what
# the tracer and the kernel tests need, run the job, power off. Whatever
# happens, the host reads the results from the marked console lines.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs shm /dev/shm
mount -t tracefs nodev /sys/kernel/tracing
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
hostname btvm
ip link set lo up
cd /opt/bindtrace
python3 tests/vm/guest_run.py /job.json || echo "@@BTVM-FATAL guest_run.py exited $?" >/dev/console
sync
busybox poweroff -f
