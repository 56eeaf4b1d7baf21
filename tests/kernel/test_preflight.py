"""Preconditions on the real system: each missing piece is made really missing
inside a private mount namespace (unshare -m), so the host is untouched."""
import subprocess

import pytest

from helpers.kernel import CLI, LIBDIR, cli_env


def run_in_private_mounts(setup, args=(), user=None):
    cli = " ".join(CLI + list(args))
    if user is not None:
        cli = "setpriv --reuid=%d --regid=%d --clear-groups /usr/bin/python3 -m bindtrace.cli %s" % (
            user, user, " ".join(args))
    script = "set -e; %s; exec %s" % (setup or "true", cli)
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, env=cli_env(), timeout=60)
    return proc


@pytest.mark.parametrize("name,setup,args,message", [
    ("tracefs", "umount -l /sys/kernel/tracing", ["--timeout", "1"],
     "trace-bind: tracefs is not mounted: mount it with 'mount -t tracefs nodev /sys/kernel/tracing'"),
    ("tracepoint", "mount -t tmpfs none /sys/kernel/tracing/events/syscalls", ["--timeout", "1"],
     "trace-bind: tracepoint syscalls:sys_enter_bind is missing under /sys/kernel/tracing"),
    ("btf", "mount -t tmpfs none /sys/kernel/btf", ["--backend", "core", "--timeout", "1"],
     "trace-bind: no kernel BTF at /sys/kernel/btf/vmlinux"),
    ("libbpf", "mount --bind /dev/null /usr/lib/x86_64-linux-gnu/libbpf.so.1.1.2",
     ["--backend", "core", "--timeout", "1"], "trace-bind: libbpf.so.1 not found"),
])
def test_missing_piece_one_clear_message(name, setup, args, message):
    proc = run_in_private_mounts(setup, args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr


def test_not_root():
    proc = run_in_private_mounts(None, ["--timeout", "1"], user=65534)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("trace-bind: not root: loading eBPF programs needs root; run "
                                   "with sudo (Ansible: become: true)")


def test_no_btf_and_no_bcc_is_unsupported():
    # the venv's Python cannot import bcc, and BTF is hidden: nothing can trace
    proc = run_in_private_mounts("mount -t tmpfs none /sys/kernel/btf", ["--timeout", "1"])
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.startswith("trace-bind: unsupported: no usable backend on this host (no kernel BTF "
                           "at /sys/kernel/btf/vmlinux;"), line
    assert "install libbpf1" in line and "bcc" in line
