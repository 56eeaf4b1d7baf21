"""The hook ladder: which kernel hook carries the bind tracer on this host.

Cheapest first. The core backend tries each rung the host offers and keeps the
first whose program loads and attaches; `hook` pins one rung. Every rung runs
the same record body (bind.bpf.c record_bind), so the record and its fields
are the same whichever rung loaded; what differs is the cost and which binds
reach the hook:

  fexit       BPF trampolines on inet_bind / inet6_bind. Only binds pay, and
              the cheapest per bind (no trap, no fd walk). Sees every AF_INET/
              AF_INET6 bind that reaches the protocol: bind(2), io_uring's
              IORING_OP_BIND (6.11+) and in-kernel callers (kernel_bind). Not
              binds refused before the protocol (bad fd, bad address pointer,
              an LSM's denial: all are errors).
  kprobe      a kretprobe on the bind syscall. Only binds pay (a trap on entry
              and return). Sees bind(2) calls, as the tracepoint does.
  tracepoint  syscalls:sys_exit_bind. While enabled, every syscall of every
              process takes the slower tracing path (a host-wide tax), and it
              sees bind(2) calls only.
"""
import errno
import json
import os

from . import BindtraceError

SYSCALL_SEES = "bind(2) calls"
PROTO_SEES = "bind(2), io_uring IORING_OP_BIND and in-kernel binds (kernel_bind)"


class Rung(object):
    def __init__(self, name, where, builds, sees):
        self.name = name
        self.where = where        # what the programs attach to, for messages and facts
        self.builds = builds      # (("fast", (program, ...)), ("compat", (...)))
        self.sees = sees


# Each build also carries listen()'s program on the same hook (fexit on
# inet_listen, a kretprobe on the listen syscall, syscalls:sys_exit_listen):
# bind's program first (backend.program), listen's last.
RUNGS = (
    Rung("fexit", "fexit on inet_bind/inet6_bind",
         (("fast", (b"bind_fexit4", b"bind_fexit6", b"listen_fexit")),
          ("compat", (b"bind_fexit4_compat", b"bind_fexit6_compat", b"listen_fexit_compat"))),
         PROTO_SEES),
    Rung("kprobe", "kretprobe on the bind syscall",
         (("fast", (b"bind_kret", b"listen_kret")),
          ("compat", (b"bind_kret_compat", b"listen_kret_compat"))), SYSCALL_SEES),
    Rung("tracepoint", "tracepoint syscalls:sys_exit_bind",
         (("fast", (b"bind_exit", b"listen_exit")),
          ("compat", (b"bind_exit_compat", b"listen_exit_compat"))), SYSCALL_SEES),
)
HOOKS = ("auto",) + tuple(r.name for r in RUNGS)
ALL_PROGRAMS = tuple(p for r in RUNGS for _build, progs in r.builds for p in progs)
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"


def ladder(hook):
    """The rungs to try for a `hook` option value, cheapest first."""
    if hook in (None, "auto"):
        return list(RUNGS)
    for rung in RUNGS:
        if rung.name == hook:
            return [rung]
    raise BindtraceError("invalid hook %r: expected one of %s" % (hook, ", ".join(HOOKS)))


def unavailable(rung):
    """Why this host cannot offer the rung, found without loading anything; None if it may."""
    from .preflight import tracefs_root
    if rung.name == "kprobe":
        root = tracefs_root()
        if os.path.isdir(KPROBE_PMU) or (root and os.path.exists(os.path.join(root, "kprobe_events"))):
            return None
        return ("kprobes are not available: this kernel has no kprobe PMU (%s) and no "
                "kprobe_events (built without CONFIG_KPROBES)" % KPROBE_PMU)
    if rung.name == "tracepoint":
        root = tracefs_root()
        if root is None:
            return ("tracefs is not mounted: mount it with 'mount -t tracefs nodev "
                    "/sys/kernel/tracing' (or the collection's prerequisites role)")
        if not os.path.isdir(os.path.join(root, "events", "syscalls", "sys_exit_bind")):
            return ("tracepoint syscalls:sys_exit_bind is missing under %s: the kernel lacks "
                    "syscall tracepoints (CONFIG_FTRACE_SYSCALLS)" % root)
    return None


# A kernel that refuses a program type to root before verifying it (EPERM: a
# security policy; ENOTSUPP: no trampolines on this arch) refuses it until the
# next boot. Remembered here, `auto` skips that rung without loading it again:
# a refused load costs a whole object load (~45 ms of the ~110 ms start-up).
REFUSALS = "/run/bindtrace/refused-hooks.json"   # root's tmpfs: gone at reboot
BOOT_ID = "/proc/sys/kernel/random/boot_id"
LASTING = (errno.EPERM, errno.ENOTSUP, 524)


def _boot():
    try:
        with open(BOOT_ID) as f:
            return "%s %s" % (f.read().strip(), os.uname().release)
    except OSError:
        return None


def _refusals(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("boot") != _boot() or \
            not isinstance(data.get("refused"), dict):
        return {}
    return data["refused"]


def refused_this_boot(rung, path=REFUSALS):
    """The message of this boot's earlier refusal of the rung, or None."""
    why = _refusals(path).get(rung.name)
    return why if isinstance(why, str) else None


def remember_refusal(rung, err, message, path=REFUSALS):
    """Keep a refusal that lasts the boot (LASTING, as root); anything else
    (a verifier's word, a busy kernel) is tried again next time."""
    boot = _boot()
    if abs(err) not in LASTING or os.geteuid() != 0 or boot is None:
        return
    refused = dict(_refusals(path), **{rung.name: message})
    tmp = "%s.%d" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"boot": boot, "refused": refused}, f)
        os.rename(tmp, path)
    except OSError:
        pass   # only a cache: the next start loads the rung again


def load_hint(rung, err, log, kernel_release=None):
    """The cause of a refused load, named from the errno and the verifier's or
    libbpf's last words (never a guess at the kernel version)."""
    err = abs(err)
    for line in log:
        if "failed to resolve CO-RE relocation" in line or "<poisoned" in line:
            return ("the kernel's BTF lacks a type or field the program reads (CO-RE relocation "
                    "failed): %s" % line.strip())
    if err == errno.EPERM:
        if os.geteuid() != 0:
            return "run as root (CAP_BPF and CAP_PERFMON are needed)"
        return ("this kernel refuses %s programs even to root, before verifying them (a "
                "security policy or a kernel without that program type)" % rung.name)
    if err in (errno.ENOTSUP, 524):  # 524: the kernel's ENOTSUPP
        return "this kernel does not support %s programs here" % rung.name
    if err in (errno.ENOENT, errno.ESRCH):
        return "the kernel's BTF lacks a type or function the program needs"
    if err in (errno.EINVAL, errno.EACCES):
        release = kernel_release or os.uname().release
        if _older_than(release, (5, 15)):
            return ("kernel %s is older than 5.15 (the core backend needs bpf_task_pt_regs); "
                    "use backend bcc" % release)
        return "the verifier refused the program"
    return "see the kernel's log"


def attach_hint(rung, err):
    """'; <cause>' for an attach the kernel refused after the program loaded."""
    err = abs(err)
    if err == errno.E2BIG:
        # perf-event hooks (tracepoint, kprobe) take at most 64 programs each, a
        # trampoline (fexit) 38: other tracers (or other bindtrace runs) hold them
        return ("; the kernel allows only so many BPF programs on one %s hook and that many are "
                "attached (other tracers or other bindtrace runs on this host): stop some "
                "(bpftool perf / bpftool link list shows them) or pin another hook" % rung.name)
    if err in (errno.ENOTSUP, 524) and rung.name == "fexit":
        return ("; this kernel cannot attach BPF trampolines to kernel functions here (e.g. "
                "arm64 before Linux 6.4 has no direct calls for them)")
    if err in (errno.ENOENT, errno.EINVAL) and rung.name == "kprobe":
        return "; the kernel has no kprobe on %s" % rung.where
    return ""


def _older_than(release, version):
    parts = []
    for piece in release.split("-")[0].split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            return False
        parts.append(int(digits))
    return tuple(parts) < version


def retry_compat(err):
    """A refused fast build is worth retrying as the compat build only when the
    verifier refused it (bpf_rdonly_cast missing before 6.2), not when the
    program type or hook itself is refused."""
    return abs(err) in (errno.EINVAL, errno.EACCES)
