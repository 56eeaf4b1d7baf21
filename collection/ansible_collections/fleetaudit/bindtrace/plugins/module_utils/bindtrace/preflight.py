"""Preconditions of the kernel side, checked up front: one clear message each,
naming the cause and the fix, before anything is loaded."""
import os
import platform

from . import BindtraceError

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
DEFAULT_BTF = "/sys/kernel/btf/vmlinux"


def btf_path():
    # BINDTRACE_BTF_PATH exists to point elsewhere (tests simulate a kernel without BTF)
    return os.environ.get("BINDTRACE_BTF_PATH", DEFAULT_BTF)


def check_linux():
    if platform.system() != "Linux":
        raise BindtraceError("unsupported: %s is not Linux; bindtrace traces Linux kernels only"
                             % platform.system())


def check_root():
    if os.geteuid() != 0:
        raise BindtraceError("not root: loading eBPF programs needs root; run with sudo "
                             "(Ansible: become: true)")


def has_btf():
    return os.path.exists(btf_path())


def check_btf():
    if not has_btf():
        raise BindtraceError(
            "no kernel BTF at %s: the core backend needs a kernel built with CONFIG_DEBUG_INFO_BTF; "
            "use backend bcc (install bcc and kernel headers) or a kernel with BTF" % btf_path())


def check_object_arch():
    """The core backend carries one object per architecture (bpf_object.OBJECTS)."""
    from . import bpf_object
    arch = bpf_object.machine()
    if arch not in bpf_object.OBJECTS:
        raise BindtraceError("unsupported: no bindtrace object for %s (objects exist for %s); "
                             "use backend bcc on this host" % (
                                 arch, ", ".join(sorted(bpf_object.OBJECTS))))


def tracefs_root():
    for d in TRACEFS_DIRS:
        if os.path.isdir(os.path.join(d, "events")):
            return d
    return None


def check_tracepoints():
    root = tracefs_root()
    if root is None:
        raise BindtraceError("tracefs is not mounted: mount it with "
                             "'mount -t tracefs nodev /sys/kernel/tracing' (or the collection's "
                             "prerequisites role) and retry")
    for tp in ("sys_enter_bind", "sys_exit_bind"):
        if not os.path.isdir(os.path.join(root, "events", "syscalls", tp)):
            raise BindtraceError(
                "tracepoint syscalls:%s is missing under %s: the kernel lacks syscall tracepoints "
                "(CONFIG_FTRACE_SYSCALLS); use a kernel with them enabled" % (tp, root))
