"""The bcc backend: for hosts whose kernel has no BTF (the core object cannot load).

bcc compiles the C program on the host at run time against the kernel headers,
but headers may not describe the running kernel (and nothing else does without
BTF), so no struct offset is taken from them. Start-up:
1. calibrate (calibrate.py): find the offsets the tracer needs by searching
   kernel memory for values of sockets this process made;
2. compile MAIN_C with the filters and only the offsets found;
3. self-test: bind sockets with known addresses, ports and options in a thread
   the program reports unfiltered, and compare every field with the truth from
   userspace. Fields that were not found or did not match are null in every
   record and listed in missing_fields: never a guessed value.
Records use bpf/bind.h's layout, so events.py decodes them like core's."""
import ctypes
import errno
import os
import socket
import subprocess
import sys
import threading
import time

from .. import BindtraceError
from .program import render_main
from ..events import key_fields
from ..maps import ports_bitmap, read_stats
from ..record import EVENT_FMT, FIELDS, KEY_FMT, KEY_MEMBERS, BIND
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/libexec/platform-python", "/usr/bin/python3.6")
SO_BINDTOIFINDEX, SO_PROTOCOL = 62, 38
IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT = 15, 19, 24
SELFTEST_WAIT = 2.0

# which fields each calibrated offset (group) provides
FIELD_OFFSETS = (
    (("addr",), ("HAVE_SOCK", "OFF_SK_RCV_SADDR", "OFF_SK_V6_RCV_SADDR")),
    (("port",), ("HAVE_SOCK", "OFF_SK_NUM")),
    (("proto",), ("HAVE_SOCK", "OFF_SK_PROTOCOL")),
    (("opts", "options"), ("HAVE_SOCK", "HAVE_OPTS")),
    (("if_index", "if"), ("HAVE_SOCK", "OFF_SK_BOUND_DEV_IF")),
    (("netns",), ("HAVE_SOCK", "OFF_SK_NET", "OFF_NET_INUM")),
    (("mntns",), ("OFF_TASK_NSPROXY", "OFF_NSPROXY_MNT", "OFF_MNT_INUM")),
    (("ppid",), ("OFF_TASK_REAL_PARENT", "OFF_TASK_TGID")),
)
# fields the self-test compares with the truth; companions are nulled together
CHECKED = ("pid", "tid", "uid", "gid", "comm", "family", "addr", "port", "requested_addr",
           "requested_port", "proto", "opts", "if_index", "error", "ret", "netns", "mntns",
           "ppid")
# fields read from the same member as a checked one (options from opts, user
# from uid, if from if_index, error from ret) are nulled with it
COMPANIONS = {f.name: tuple(g.name for g in FIELDS if g.c == f.c and not g.code)
              for f in FIELDS if f.code}
# record fields the bcc program does not fill at all (a new field, until it
# does and its row in record.py says bcc=True): null in every bcc record
NOT_FILLED = [f.name for f in FIELDS if BIND in f.records and not f.bcc]
_PID = KEY_MEMBERS.index("pid")


def _headers_dir():
    return "/lib/modules/%s/build" % os.uname().release


def system_python_with_bcc():
    """Another interpreter on this host that can import bcc, or None."""
    for path in SYSTEM_PYTHONS:
        if os.path.exists(path) and os.path.realpath(path) != os.path.realpath(
                sys.executable):
            try:
                # library code (the module, Salt and the CLI run it): no AnsibleModule.run_command
                # here; a diagnostic of which interpreter to use, so its exit status is the answer
                ok = subprocess.run(  # pylint: disable=ansible-bad-function
                    [path, "-c", "import bcc"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    timeout=30, check=False).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            if ok:
                return path
    return None


def import_bcc():
    try:
        from bcc import BPF  # noqa: the system's python3-bpfcc / python3-bcc
    except ImportError:
        other = system_python_with_bcc()
        if other:
            raise BindtraceError(
                "bcc is not importable by this Python (%s), only by %s: run the tracer with that "
                "interpreter (trace-bind: '%s -m bindtrace.cli ...'; Ansible: "
                "ansible_python_interpreter=%s)" % (sys.executable, other, other, other))
        raise BindtraceError(
            "bcc is not installed: the bcc backend needs the bcc Python module and the kernel "
            "headers; install python3-bpfcc and linux-headers-%s (Debian/Ubuntu) or python3-bcc "
            "and kernel-devel-%s (RHEL family), e.g. with bindtrace_install_bcc: true"
            % (os.uname().release, os.uname().release))
    return BPF


def check_bcc():
    """Raise BindtraceError unless bcc can run here: the module and headers."""
    import_bcc()
    if not (os.path.isdir(_headers_dir()) or os.path.exists("/sys/kernel/kheaders.tar.xz")):
        raise BindtraceError(
            "no kernel headers for %s at %s: bcc compiles against them; install "
            "linux-headers-%s (Debian/Ubuntu) or kernel-devel-%s (RHEL family), e.g. with "
            "bindtrace_install_bcc: true" % ((os.uname().release, _headers_dir())
                                             + (os.uname().release,) * 2))


def missing_from_offsets(offsets):
    out = list(NOT_FILLED)
    for fields, needs in FIELD_OFFSETS:
        if not all(n in offsets for n in needs):
            out.extend(fields)
    return out


def _raw(obj):
    return ctypes.string_at(ctypes.addressof(obj), ctypes.sizeof(obj))


class BccBackend(object):
    name = "bcc"
    # the hook ladder's last rung (hooks.py): bcc compiles for the syscall tracepoints
    hook, build, hook_reason = "tracepoint", "bcc", ""
    hook_where = "tracepoints syscalls:sys_enter_bind/sys_exit_bind (bcc)"
    hook_sees = "bind(2) calls"

    def __init__(self, cfg, netns_inode=None):
        BPF = import_bcc()
        from .calibrate import calibrate
        self.bpf = None
        self._pending = []
        self._self_events = []
        self._selftest_tid = None
        self.perf_lost = 0
        self.mode = cfg.mode
        self.timings = {}  # seconds per start-up phase (the benchmark prints them)
        t0 = time.monotonic()
        try:
            self.offsets, self.notes = calibrate(BPF)
        except Exception as exc:
            raise BindtraceError("bcc calibration failed: %s" % exc)
        missing = missing_from_offsets(self.offsets)
        if netns_inode and "netns" in missing:
            raise BindtraceError("the netns filter needs the socket's network namespace, which "
                                 "the bcc backend cannot read on this kernel; trace all "
                                 "namespaces (netns: all) or use the core backend")
        text = render_main(cfg, netns_inode, self.offsets, cfg.summary_entries)
        t1 = time.monotonic()
        self.timings["calibrate"] = t1 - t0
        try:
            self.bpf = BPF(text=text)
        except Exception as exc:
            raise BindtraceError("bcc could not compile or attach the bind tracer: %s; check "
                                 "the kernel headers at %s" % (exc, _headers_dir()))
        try:
            self._fill_ports(cfg.ports)
            ncpu = max(1, os.cpu_count() or 1)
            pages = 8
            while pages * 2 * 4096 * ncpu <= cfg.ringbuf_bytes:
                pages *= 2
            self.bpf["events"].open_perf_buffer(self._on_event, page_cnt=pages,
                                                lost_cb=self._on_lost)
            t2 = time.monotonic()
            self.timings["compile_attach"] = t2 - t1
            failed = self._selftest()
            self.timings["selftest"] = time.monotonic() - t2
        except BaseException:
            self.close()
            raise
        for field in failed:
            if field not in missing:
                missing.append(field)
        for field in list(missing):
            for extra in COMPANIONS.get(field, ()):
                if extra not in missing:
                    missing.append(extra)
        self.missing_fields = tuple(missing)

    # -- set-up -----------------------------------------------------------
    def _fill_ports(self, ranges):
        table = self.bpf["ports"]
        for idx, word in ports_bitmap(ranges).items():
            table[ctypes.c_int(idx)] = ctypes.c_ulonglong(word)

    def _on_event(self, _cpu, data, size):
        raw = ctypes.string_at(data, size)[:EVENT_FMT.size]
        _key, _ts, tid = EVENT_FMT.unpack_from(raw)
        if tid == self._selftest_tid and KEY_FMT.unpack_from(raw)[_PID] == os.getpid():
            self._self_events.append(raw)
        else:
            self._pending.append(raw)

    def _on_lost(self, lost):
        self.perf_lost += lost

    def _selftest(self):
        """Bind known sockets in a thread the program reports unfiltered;
        -> the fields whose reported values differ from the truth."""
        box = {}
        t = threading.Thread(target=self._selftest_binds, args=(box,), name="bindtrace-selftest")
        t.start()
        t.join()
        if "exc" in box:
            raise BindtraceError("bcc self-test failed: %s" % box["exc"])
        truths = box["truths"]
        deadline = time.monotonic() + SELFTEST_WAIT
        while len(self._self_events) < len(truths) and time.monotonic() < deadline:
            self.bpf.perf_buffer_poll(50)
        self._selftest_tid = None
        events = sorted(self._self_events, key=lambda r: EVENT_FMT.unpack_from(r)[1])
        if len(events) != len(truths):
            return list(CHECKED)  # nothing can be trusted
        failed = []
        self.selftest_report = []
        for raw, truth in zip(events, truths):
            got = key_fields(EVENT_FMT.unpack_from(raw)[0])
            got["tid"] = EVENT_FMT.unpack_from(raw)[2]
            for field, want in truth.items():
                if got.get(field) != want and field not in failed:
                    failed.append(field)
            self.selftest_report.append((truth, {k: got.get(k) for k in truth}))
        return failed

    def _selftest_binds(self, box):
        try:
            tid = threading.get_native_id()
            self._selftest_tid = tid
            self.bpf["selftest"][ctypes.c_int(0)] = ctypes.c_uint(tid)
            try:
                box["truths"] = selftest_binds()
            finally:
                self.bpf["selftest"][ctypes.c_int(0)] = ctypes.c_uint(0)
        except Exception as exc:
            box["exc"] = exc

    # -- running -------------------------------------------------------------
    def poll(self, timeout_ms):
        """Raw event records delivered since the last call (events mode)."""
        if self.bpf is not None and self.mode == "events":
            self.bpf.perf_buffer_poll(int(timeout_ms))
        elif timeout_ms:
            time.sleep(timeout_ms / 1000.0)
        out = self._pending[:]
        del self._pending[:]
        return out

    def detach(self):
        """Stop tracing; maps stay readable until close()."""
        if self.bpf is None:
            return
        for tp in (b"syscalls:sys_enter_bind", b"syscalls:sys_exit_bind"):
            if tp in self.bpf.tracepoint_fds:
                self.bpf.detach_tracepoint(tp)
        if self.mode == "events":
            self.bpf.perf_buffer_poll(0)

    def stats(self):
        table = self.bpf["stats"]
        out = read_stats(lambda slot: table[ctypes.c_int(slot)])
        # the perf ring reports the same losses as perf_submit's failures
        out["lost"] = max(out["lost"], self.perf_lost)
        return out

    def summary(self):
        return [(_raw(k), _raw(v)) for k, v in self.bpf["summary"].items()]

    def close(self):
        if self.bpf is not None:
            self.bpf.cleanup()
            self.bpf = None


def _thread_ns(kind):
    return os.stat("/proc/thread-self/ns/%s" % kind).st_ino


def _truth(s, ret, req, opts_text, if_index, netns):
    """The fields a correct tracer reports for this bind, from userspace."""
    fam = 6 if s.family == socket.AF_INET6 else 4
    try:
        name = s.getsockname()
    except OSError:
        name = ("::" if fam == 6 else "0.0.0.0", 0)
    with open("/proc/thread-self/comm") as f:
        comm = f.read().strip()
    return {
        "pid": os.getpid(), "tid": threading.get_native_id(), "uid": os.getuid(),
        "gid": os.getgid(), "comm": comm, "family": fam, "addr": name[0], "port": name[1],
        "requested_addr": req[0], "requested_port": req[1],
        "proto": {6: "TCP", 17: "UDP"}[s.getsockopt(socket.SOL_SOCKET, SO_PROTOCOL)],
        "opts": opts_text, "if_index": if_index,
        "error": None if ret == 0 else errno.errorcode[-ret], "ret": ret,
        "netns": netns, "mntns": _thread_ns("mnt"), "ppid": os.getppid(),
    }


def selftest_binds():
    """Binds covering v4/v6, TCP/UDP, ephemeral and fixed ports, every option,
    an interface binding, a failure, and (when possible) another netns."""
    from .calibrate import _socket_in_new_netns
    netns = _thread_ns("net")
    truths, keep = [], []

    def bind(fam, kind, addr, port, opts=(), opts_text=".....", if_index=0, sock=None,
             ns=netns):
        s = sock or socket.socket(fam, kind)
        keep.append(s)
        for level, opt in opts:
            s.setsockopt(level, opt, 1)
        if if_index:
            s.setsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX, if_index)
        try:
            s.bind((addr, port))
            ret = 0
        except OSError as exc:
            ret = -exc.errno
        truths.append(_truth(s, ret, (addr, port), opts_text, if_index, ns))
        return s

    try:
        bind(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", 0,
             [(socket.SOL_SOCKET, socket.SO_REUSEADDR)], ".R...")
        bind(socket.AF_INET6, socket.SOCK_STREAM, "::1", 0,
             [(socket.SOL_SOCKET, socket.SO_REUSEPORT)], "r....", if_index=1)
        bind(socket.AF_INET, socket.SOCK_STREAM, "10.254.%d.%d" % (os.getpid() % 250 + 1, 7), 0,
             [(socket.SOL_IP, IP_FREEBIND), (socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT)], "..N.F")
        bind(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.3", 0,
             [(socket.SOL_IP, IP_TRANSPARENT)], "...T.")
        taken = bind(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", 0)
        bind(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", taken.getsockname()[1])
        bind(socket.AF_INET6, socket.SOCK_DGRAM, "::", 0)
        try:
            other, ino = _socket_in_new_netns()
        except Exception:
            other = None  # no second namespace here: the netns check uses ours only
        if other is not None:
            bind(socket.AF_INET, socket.SOCK_DGRAM, "0.0.0.0", 0, sock=other, ns=ino)
        return truths
    finally:
        for s in keep:
            s.close()
