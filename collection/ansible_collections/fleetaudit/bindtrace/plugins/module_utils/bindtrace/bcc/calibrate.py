"""Find struct offsets of the RUNNING kernel for the bcc backend.

bcc compiles against header files that may not match the kernel (and on a host
without BTF nothing else describes its structs), so no offset is taken from
headers. Instead, this thread makes sockets whose state it knows (an unusual
multicast address and port, options toggled on and off, a second network
namespace) and searches kernel memory, read through a small BPF "oracle"
program, for exactly those values. An offset is kept only when exactly one
candidate fits every probe; otherwise the field is left out (reported null).
The backend then re-checks every kept field against real binds (self-test)."""
import ctypes
import os
import random
import socket
import struct
import threading

from .program import ORACLE_C, ORACLE_SLOTS

SO_REUSEADDR, SO_REUSEPORT, SO_BINDTOIFINDEX = 2, 15, 62
IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT = 15, 19, 24
CLONE_NEWNET = 0x40000000
MAX_READS = 60000        # give up the search past this many kernel reads
SOCK_DUMP = 4096         # bytes of struct sock (+ inet_sock) searched
TASK_DUMP = 16384        # bytes of task_struct searched


# Where the kernel half of the address space may start, per architecture (the
# MMU's canonical layouts): x86_64 with 4-level (48-bit) or 5-level (LA57, 57-bit)
# paging; arm64 with 39, 42, 47, 48 or 52-bit kernel VAs. A 5-level kernel puts
# its direct map at 0xff11..., far below 0xffff000000000000.
KERNEL_HALF_STARTS = {
    "x86_64": (0xffff800000000000, 0xff00000000000000),
    "aarch64": (0xffffff8000000000, 0xfffffc0000000000, 0xffff800000000000,
                0xffff000000000000, 0xfff0000000000000),
}
# the running kernel's, set from its own current-task pointer (Oracle.current_task)
# before any search; until then, the 4-level x86_64 / 48-bit arm64 value
kernel_start = 0xffff000000000000


def kernel_half(known, machine=None):
    """Lowest kernel address of the running kernel's layout, given one pointer
    the kernel itself handed us (the current task): the narrowest architectural
    kernel half holding it. Unknown architecture: every bit down to the pointer's
    highest zero bit is taken as the sign extension."""
    starts = KERNEL_HALF_STARTS.get(machine or os.uname().machine, ())
    fit = [s for s in starts if known >= s]
    if fit:
        return max(fit)
    if not known >> 63:
        raise CalibrationError("0x%x is not a kernel address" % known)
    lead = 64 - (~known & ((1 << 64) - 1)).bit_length()
    return ((1 << lead) - 1) << (64 - lead)


def is_kptr(v):
    return v >= kernel_start and v & 7 == 0 and v < 0xfffffffffffff000


def u64s(buf, limit=None):
    n = len(buf) // 8 if limit is None else min(len(buf), limit) // 8
    return struct.unpack_from("<%dQ" % n, buf)


class Oracle(object):
    """Kernel memory reads on behalf of one thread (the one that calls read)."""

    def __init__(self, BPF):
        self.bpf = BPF(text=ORACLE_C)
        self.req = self.bpf["oreq"]
        self.out = self.bpf["oout"]
        self.tid = threading.get_native_id()
        self.cache = {}
        self.reads = 0
        self.task = None

    def read_many(self, items):
        """[(addr, len)] -> [bytes or None (fault)]; cached, batched."""
        want = [(a, n) for a, n in items if (a, n) not in self.cache]
        want = list(dict.fromkeys(want))
        for i in range(0, len(want), ORACLE_SLOTS):
            batch = want[i:i + ORACLE_SLOTS]
            self.reads += len(batch)
            if self.reads > MAX_READS:
                raise CalibrationError("kernel memory search did not converge")
            for j, (addr, n) in enumerate(batch):
                self.req[ctypes.c_int(j)] = self.req.Leaf(addr, n, self.tid)
            if len(batch) < ORACLE_SLOTS:
                self.req[ctypes.c_int(len(batch))] = self.req.Leaf(0, 0, self.tid)
            os.getppid()  # the oracle runs on this syscall, in this thread
            for j, (addr, n) in enumerate(batch):
                o = self.out[ctypes.c_int(j)]
                self.task = o.task
                self.cache[(addr, n)] = None if o.rc != 0 else ctypes.string_at(
                    ctypes.addressof(o.data), n)
        return [self.cache[(a, n)] for a, n in items]

    def read(self, addr, n):
        if not is_kptr(addr):
            return None
        return self.read_many([(addr, n)])[0]

    def current_task(self):
        """The current task_struct's address; it also fixes where kernel addresses
        start on this kernel (is_kptr), whatever its paging mode."""
        global kernel_start
        self.read_many([(0xffffffffffff0000 - 4096, 8)])  # any read reports the task
        kernel_start = kernel_half(self.task)
        return self.task

    def close(self):
        self.req[ctypes.c_int(0)] = self.req.Leaf(0, 0, 0)
        self.bpf.cleanup()


class CalibrationError(Exception):
    pass


def _unusual_port(used):
    while True:
        p = random.randint(20000, 60999)
        if (p >> 8) != (p & 0xff) and p not in used:
            used.add(p)
            return p


class Calibrator(object):
    """Runs in its own thread (so its tid differs from the process id)."""

    def __init__(self, BPF):
        self.BPF = BPF
        self.offsets = {}
        self.notes = []
        self.socks = []
        self.ports = set()

    # -- helpers ---------------------------------------------------------
    def sock(self, family, kind, proto=0):
        s = socket.socket(family, kind, proto)
        self.socks.append(s)
        return s

    def chain_sock(self, fd):
        """sk pointer of one of our fds through the calibrated chain."""
        o = self.offsets
        ptr = self.task
        for off in ("OFF_TASK_FILES", "OFF_FILES_FDT", "OFF_FDT_FD", None, "OFF_FILE_PRIVATE",
                    "OFF_SOCKET_SK"):
            addr = ptr + (8 * fd if off is None else o[off])
            self.oracle.cache.pop((addr, 8), None)  # tables move when they grow
            ptr = self._p(self.oracle.read(addr, 8))
            if ptr is None:
                return None
        return ptr

    @staticmethod
    def _p(buf):
        if not buf:
            return None
        v = struct.unpack_from("<Q", buf)[0]
        return v if is_kptr(v) else None

    def dump(self, s):
        sk = self.chain_sock(s.fileno())
        if sk is None:
            raise CalibrationError("socket chain lost")
        # fresh read every time: the state changes between dumps
        self.oracle.cache.pop((sk, SOCK_DUMP), None)
        d = self.oracle.read(sk, SOCK_DUMP)
        if d is None:
            raise CalibrationError("cannot read a socket")
        return d

    # -- the search ------------------------------------------------------
    def run(self):
        self.oracle = Oracle(self.BPF)
        try:
            self.task = self.oracle.current_task()
            self.find_chain()
            for step in (self.find_addresses, self.find_ports_family_proto, self.find_opts,
                         self.find_bound_dev_if, self.find_netns, self.find_mntns, self.find_ppid):
                try:
                    step()
                except CalibrationError as exc:
                    self.notes.append("%s: %s" % (step.__name__, exc))
        finally:
            self.oracle.close()
            for s in self.socks:
                s.close()

    def find_chain(self):
        """task->files->fdt->fd[n]->file->private_data(socket)->sk, found by
        searching for a socket bound to a multicast address nobody else uses."""
        s = self.sock(socket.AF_INET, socket.SOCK_DGRAM)
        addr = bytes([239, random.randint(1, 254), random.randint(1, 254), random.randint(1, 254)])
        port = _unusual_port(self.ports)
        s.bind((socket.inet_ntoa(addr), port))
        fd = s.fileno()
        pport = struct.pack("<H", port)
        task = self.oracle.read(self.task, TASK_DUMP)
        if task is None:
            raise CalibrationError("cannot read the current task")
        rd = self.oracle.read_many
        cands = [(i * 8, v) for i, v in enumerate(u64s(task)) if is_kptr(v)]
        level1 = rd([(v, 128) for _off, v in cands])
        found = []
        for (o_files, files), fbuf in zip(cands, level1):
            if fbuf is None:
                continue
            fdts = [(i * 8, v) for i, v in enumerate(u64s(fbuf)) if is_kptr(v)]
            for (o_fdt, fdt), tbuf in zip(fdts, rd([(v, 16) for _off, v in fdts])):
                if tbuf is None:
                    continue
                max_fds, fds = struct.unpack_from("<I4xQ", tbuf)
                if not (fd < max_fds <= 1 << 24 and is_kptr(fds)):
                    continue
                fpb = self.oracle.read(fds + 8 * fd, 8)
                fp = self._p(fpb)
                fbody = self.oracle.read(fp, 512) if fp else None
                if not fbody:
                    continue
                socks = [(i * 8, v) for i, v in enumerate(u64s(fbody)) if is_kptr(v)]
                for (o_priv, so), sbuf in zip(socks, rd([(v, 128) for _off, v in socks])):
                    if not sbuf:
                        continue
                    words = u64s(sbuf)
                    backs = [i * 8 for i, v in enumerate(words) if v == fp]
                    sks = [(i * 8, v) for i, v in enumerate(words) if is_kptr(v) and v != fp]
                    if not backs:
                        continue
                    for (o_sk, sk), kbuf in zip(sks, rd([(v, 128) for _off, v in sks])):
                        if kbuf and _at(kbuf, addr, 4) and _at(kbuf, pport, 2):
                            found.append((o_files, o_fdt, o_priv, tuple(backs), o_sk))
        found = sorted(set(found))
        if len(found) != 1 or len(found[0][3]) != 1:
            raise CalibrationError("socket chain not unique (%d candidates)" % len(found))
        o_files, o_fdt, o_priv, backs, o_sk = found[0]
        self.offsets.update(OFF_TASK_FILES=o_files, OFF_FILES_FDT=o_fdt, OFF_FDT_MAX=0,
                            OFF_FDT_FD=8, OFF_FILE_PRIVATE=o_priv, OFF_SOCKET_FILE=backs[0],
                            OFF_SOCKET_SK=o_sk, HAVE_SOCK=1)
        self.chain_probe = (s, addr, port)

    def find_addresses(self):
        """skc_rcv_saddr / skc_v6_rcv_saddr: multicast binds set only these."""
        v4, v6 = [], []
        for _attempt in range(2):
            s = self.sock(socket.AF_INET, socket.SOCK_DGRAM)
            a = bytes([239] + [random.randint(1, 254) for _i in range(3)])
            s.bind((socket.inet_ntoa(a), _unusual_port(self.ports)))
            v4.append((s, a))
            s6 = self.sock(socket.AF_INET6, socket.SOCK_DGRAM)
            a6 = bytes([0xff, 0x0e] + [random.randint(1, 254) for _i in range(14)])
            s6.bind((socket.inet_ntop(socket.AF_INET6, a6), _unusual_port(self.ports)))
            v6.append((s6, a6))
        self.offsets["OFF_SK_RCV_SADDR"] = _unique(
            "skc_rcv_saddr", [_common(self.dump(s), a, 4, 4) for s, a in v4])
        self.offsets["OFF_SK_V6_RCV_SADDR"] = _unique(
            "skc_v6_rcv_saddr", [_common(self.dump(s), a, 4, 16) for s, a in v6])
        self.bound = v4 + v6

    def find_ports_family_proto(self):
        tcp4 = self.sock(socket.AF_INET, socket.SOCK_STREAM)
        tcp4.bind(("127.%d.%d.%d" % tuple(random.randint(1, 254) for _i in range(3)),
                   _unusual_port(self.ports)))
        tcp6 = self.sock(socket.AF_INET6, socket.SOCK_STREAM)
        tcp6.bind(("::1", _unusual_port(self.ports)))
        probes = [(s, s.getsockname()[1]) for s, _addr in self.bound] + [
            (tcp4, tcp4.getsockname()[1]), (tcp6, tcp6.getsockname()[1])]
        dumps = [(s, self.dump(s)) for s, _port in probes]
        self.offsets["OFF_SK_NUM"] = _unique(
            "skc_num", [_common(d, struct.pack("<H", p), 2, 2) for (_s, d), (_s2, p) in zip(dumps, probes)])
        self.offsets["OFF_SK_FAMILY"] = _unique(
            "skc_family", [_common(d, struct.pack("<H", s.family), 2, 2) for s, d in dumps])
        raw = self.sock(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        dumps.append((raw, self.dump(raw)))
        protos = [(d, s.proto or (socket.IPPROTO_TCP if s.type == socket.SOCK_STREAM
                                  else socket.IPPROTO_UDP)) for s, d in dumps]
        try:
            self.offsets["OFF_SK_PROTOCOL"] = _unique(
                "sk_protocol", [_common(d, struct.pack("<H", p), 2, 2) for d, p in protos])
            self.offsets["SK_PROTOCOL_SIZE"] = 2
        except CalibrationError:  # kernels before 5.6: an 8-bit bitfield
            self.offsets["OFF_SK_PROTOCOL"] = _unique(
                "sk_protocol", [_common(d, bytes([p]), 1, 1) for d, p in protos])
            self.offsets["SK_PROTOCOL_SIZE"] = 1

    def find_opts(self):
        found = {}
        for name, level, opt, family in (
                ("REUSEADDR", socket.SOL_SOCKET, SO_REUSEADDR, socket.AF_INET),
                ("REUSEPORT", socket.SOL_SOCKET, SO_REUSEPORT, socket.AF_INET6),
                ("FREEBIND", socket.SOL_IP, IP_FREEBIND, socket.AF_INET),
                ("TRANSPARENT", socket.SOL_IP, IP_TRANSPARENT, socket.AF_INET),
                ("NO_PORT", socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, socket.AF_INET)):
            s = self.sock(family, socket.SOCK_DGRAM)
            on, off = [], []
            for value in (0, 1, 0, 1, 0, 1):
                s.setsockopt(level, opt, value)
                (on if value else off).append(self.dump(s))
            cand = set()
            base_on, base_off = on[0], off[0]
            for i in range(len(base_on)):
                x = base_on[i] & ~base_off[i] & 0xff
                for b in range(8):
                    if x >> b & 1:
                        cand.add((i, b))
            bits = [c for c in cand if all(d[c[0]] >> c[1] & 1 for d in on)
                    and not any(d[c[0]] >> c[1] & 1 for d in off)]
            if len(bits) != 1:
                raise CalibrationError("option %s: %d candidate bits" % (name, len(bits)))
            found[name] = bits[0]
        for name, (byte, bit) in found.items():
            self.offsets["OPT_%s_BYTE" % name] = byte
            self.offsets["OPT_%s_BIT" % name] = bit
        self.offsets["HAVE_OPTS"] = 1

    def find_bound_dev_if(self):
        s = self.sock(socket.AF_INET, socket.SOCK_DGRAM)
        dumps = []
        for value in (0, 1, 0, 1):
            s.setsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX, value)
            dumps.append((self.dump(s), value))
        self.offsets["OFF_SK_BOUND_DEV_IF"] = _unique(
            "skc_bound_dev_if", [_common(d, struct.pack("<I", v), 4, 4) for d, v in dumps])

    def find_netns(self):
        """skc_net -> struct net -> ns.inum; checked in two network namespaces."""
        here = os.stat("/proc/thread-self/ns/net").st_ino
        mine = self.sock(socket.AF_INET, socket.SOCK_DGRAM)
        probes = [(mine, here)]
        try:
            probes.append(_socket_in_new_netns())
            self.socks.append(probes[-1][0])
        except CalibrationError as exc:  # e.g. in a container: one namespace must do
            self.notes.append("netns checked in one namespace only: %s" % exc)
        sets = []
        for s, ino in probes:
            d = self.dump(s)
            ptrs = [(i * 8, v) for i, v in enumerate(u64s(d, 512)) if is_kptr(v)]
            cand = set()
            for (o_net, p), nb in zip(ptrs, self.oracle.read_many([(v, 2048) for _off, v in ptrs])):
                if nb:
                    for o_inum in _common(nb, struct.pack("<I", ino), 4, 4):
                        cand.add((o_net, o_inum))
            sets.append(cand)
        o_net, o_inum = _unique("skc_net/ns.inum", sets)
        self.offsets.update(OFF_SK_NET=o_net, OFF_NET_INUM=o_inum)

    def find_mntns(self):
        """task->nsproxy->mnt_ns->ns.inum; the same nsproxy must also hold
        our net namespace (calibrated above), so a stray match is rejected."""
        mnt = os.stat("/proc/thread-self/ns/mnt").st_ino
        net_ino = struct.pack("<I", os.stat("/proc/thread-self/ns/net").st_ino)
        o_inum_net = self.offsets.get("OFF_NET_INUM")
        task = self.oracle.read(self.task, TASK_DUMP)
        cands = [(i * 8, v) for i, v in enumerate(u64s(task)) if is_kptr(v)]
        found = set()
        rd = self.oracle.read_many
        for (o_nsp, nsp), nb in zip(cands, rd([(v, 128) for _off, v in cands])):
            if not nb:
                continue
            ptrs = [(i * 8, v) for i, v in enumerate(u64s(nb, 64)) if is_kptr(v)]
            if o_inum_net is not None:
                nets = rd([(v + o_inum_net, 4) for _off, v in ptrs])
                if net_ino not in nets:
                    continue
            for (o_mnt, p), mb in zip(ptrs, rd([(v, 512) for _off, v in ptrs])):
                if mb:
                    for o_inum in _common(mb, struct.pack("<I", mnt), 4, 4):
                        found.add((o_nsp, o_mnt, o_inum))
        o_nsp, o_mnt, o_inum = _unique("nsproxy/mnt_ns", [found])
        self.offsets.update(OFF_TASK_NSPROXY=o_nsp, OFF_NSPROXY_MNT=o_mnt, OFF_MNT_INUM=o_inum)

    def find_ppid(self):
        """task->tgid: the slot right after task->pid holding our tid (we run
        in a thread, so pid != tgid); real_parent: the first task pointer whose
        target's tgid is our parent (real_parent precedes parent)."""
        task = self.oracle.read(self.task, TASK_DUMP)
        tid, pid, ppid = threading.get_native_id(), os.getpid(), os.getppid()
        pair = struct.pack("<II", tid, pid)
        o_tgid = _unique("pid/tgid", [set(o + 4 for o in _common(task, pair, 4, 8))])
        cands = [(i * 8, v) for i, v in enumerate(u64s(task)) if is_kptr(v)]
        want = struct.pack("<I", ppid)
        reads = self.oracle.read_many([(v + o_tgid, 4) for _off, v in cands])
        hits = [o for (o, v), b in zip(cands, reads) if b == want]
        if not hits or hits[1:] not in ([], [hits[0] + 8]):
            raise CalibrationError("real_parent: %d candidates" % len(hits))
        self.offsets.update(OFF_TASK_TGID=o_tgid, OFF_TASK_REAL_PARENT=hits[0])


def _at(buf, needle, align):
    return bool(_common(buf, needle, align, len(needle)))


def _common(buf, needle, align, size):
    """Offsets (multiple of align) where buf holds needle."""
    out = set()
    start = buf.find(needle)
    while start != -1:
        if start % align == 0:
            out.add(start)
        start = buf.find(needle, start + 1)
    return out


def _unique(what, sets):
    sets = list(sets)
    common = set.intersection(*sets) if sets else set()
    if len(common) != 1:
        raise CalibrationError("%s: %d candidate offsets" % (what, len(common)))
    return common.pop()


def _socket_in_new_netns():
    """(socket, netns inode) from a fresh network namespace. unshare() acts on
    the calling thread only, so a throwaway thread does it."""
    box = {}

    def work():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                box["err"] = os.strerror(ctypes.get_errno())
                return
            box["sock"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            box["ino"] = os.stat("/proc/thread-self/ns/net").st_ino
        except Exception as exc:  # reported as a calibration note
            box["err"] = str(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if "sock" not in box:
        raise CalibrationError("cannot create a network namespace: %s" % box.get("err"))
    return box["sock"], box["ino"]


def calibrate(BPF):
    """-> (offsets dict, notes). Runs the search in a thread of its own."""
    cal = Calibrator(BPF)
    box = {}

    def work():
        try:
            cal.run()
        except CalibrationError as exc:
            cal.notes.append(str(exc))
        except Exception as exc:
            box["exc"] = exc

    t = threading.Thread(target=work, name="bindtrace-calibrate")
    t.start()
    t.join()
    if "exc" in box:
        raise box["exc"]
    return cal.offsets, cal.notes
