"""Who owns a socket, and who that process is.

Owner lookup: a socket inode -> the process holding it. The kernel keeps no
socket -> process link, so some process's fd table must be read. When socket
diagnostics gave the socket's cgroup id (the cgroup of the process that
created it), only the processes of that cgroup are read, each only until it
has shown every wanted socket of its cgroup (listening sockets are opened
early, at low fd numbers): the cost follows the listeners' own processes,
not the number of connections on the host. Sockets not found that way (no
cgroup id, the creator moved or exited) fall back to reading every fd of
every process, as before.

Identity of a process: executable (deleted / replaced), command line
(bounded, escaped, secrets redacted by default), parent chain up to the
service manager, systemd unit from the cgroup path, package of the executable.
"""
import os
import re

from . import cgroupfs, units
from .packages import PackageIndex

CMDLINE_MAX = 1024       # characters kept of a command line
PARENTS_MAX = 16
REDACTED = "REDACTED"
CMDLINE_MODES = ("redacted", "full", "none")
# option names whose value is a secret (--password=x, --db-token x, API_KEY=x)
SECRET_NAME = re.compile(r"pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|private[-_]?key|"
                         r"^-*key$|[-_]key$|credential|auth", re.I)
URL_USERINFO = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")


def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _ppid_comm(pid):
    """(ppid, comm) from /proc/PID/stat, or (None, None) when gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None, None
    left, right = data.find(b"("), data.rfind(b")")
    try:
        ppid = int(data[right + 2:].split()[1])
    except (ValueError, IndexError):
        return None, None
    return ppid, data[left + 1:right].decode("utf-8", "replace")


# -- socket owners ------------------------------------------------------------------
class OwnerScan(object):
    """Counts what the lookup read (for the facts and the benchmark)."""

    def __init__(self):
        self.method = None
        self.processes = 0
        self.fds = 0

    def as_dict(self):
        return {"method": self.method, "processes": self.processes, "fds_read": self.fds}


PROBE_FDS = 64   # listening sockets are opened early: try these fds before listing all


def scan_process(pid, wanted, holders, scan, stop_early):
    """Read /proc/PID/fd, recording (pid, fd) for each wanted socket inode.
    stop_early: first try fds 0..PROBE_FDS-1 one by one, and stop as soon as
    every wanted socket was seen in this process, so a server holding 10k
    accepted connections costs a few readlinks, not a listing of 10k fds."""
    fd_dir = "/proc/%d/fd/" % pid
    left = set(wanted) if stop_early else None
    probed = 0
    if stop_early:
        for fd in range(PROBE_FDS):
            try:
                target = os.readlink(fd_dir + str(fd))
            except FileNotFoundError:
                continue
            except OSError:
                return      # gone, or not ours to read
            if probed == 0:
                scan.processes += 1
            probed += 1
            scan.fds += 1
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in wanted:
                    holders.setdefault(inode, []).append((pid, fd))
                    left.discard(inode)
                    if not left:
                        return
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return
    if not probed:
        scan.processes += 1
    for name in fds:
        fd = int(name)
        if stop_early and fd < PROBE_FDS:
            continue
        scan.fds += 1
        target = _readlink(fd_dir + name)
        if target is None or not target.startswith("socket:["):
            continue
        inode = int(target[8:-1])
        if inode in wanted:
            holders.setdefault(inode, []).append((pid, fd))
            if left is not None:
                left.discard(inode)
                if not left:
                    return


def _pick(holders_here):
    """Among the holders of one socket, the one whose parent is not a holder
    too (the parent of forked workers; pid order alone is wrong once pids
    wrap around). Ties: the lowest pid."""
    pids = {p for p, _comm in holders_here}
    if len(pids) == 1:
        return holders_here[0]
    roots = [h for h in holders_here if _ppid_comm(h[0])[0] not in pids]
    return min(roots or holders_here)


def socket_owners(socks, all_pids, index=None, scan=None):
    """socks: [(inode, cgroup_id or None)] -> ({inode: (pid, fd)}, {inode: all holders})."""
    scan = scan or OwnerScan()
    holders = {}
    by_cgroup = {}
    for inode, cgroup_id in socks:
        if inode:
            by_cgroup.setdefault(cgroup_id, set()).add(inode)
    index = index if index is not None else (cgroupfs.CgroupIndex() if any(
        by_cgroup) else None)
    narrowed = False
    for cgroup_id, inodes in sorted(by_cgroup.items(), key=lambda kv: kv[0] or 0):
        pids = index.pids(cgroup_id) if (cgroup_id and index is not None) else None
        if pids is None:
            continue
        narrowed = True
        for pid in pids:
            scan_process(pid, inodes, holders, scan, stop_early=True)
    wanted = {i for inodes in by_cgroup.values() for i in inodes}
    missing = wanted - set(holders)
    if missing:
        for pid in all_pids:
            scan_process(pid, missing, holders, scan, stop_early=False)
    scan.method = ("cgroup" if not missing else "cgroup+fd-scan") if narrowed else "fd-scan"
    return {inode: _pick(h) for inode, h in holders.items()}, holders


# -- process identity -------------------------------------------------------------------
def _escape(text):
    return "".join(ch if ch.isprintable() else (
        "\\x%02x" % ord(ch) if ord(ch) < 0x100 else "\\u%04x" % ord(ch)) for ch in text)


def redact_args(args):
    """Values of secret-looking options replaced by REDACTED: --password=x,
    --token x, PASSWORD=x, and the password of a URL's user:password@."""
    out = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("-"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, eq, _value = arg.partition("=")
        if eq and SECRET_NAME.search(name.lstrip("-")):
            out.append(name + "=" + REDACTED)
            continue
        if arg.startswith("-") and not eq and SECRET_NAME.search(arg.lstrip("-")):
            hide_next = True
        out.append(URL_USERINFO.sub(r"\1" + REDACTED + "@", arg))
    return out


def format_cmdline(raw, mode="redacted"):
    """/proc/PID/cmdline bytes -> one printable line (None when mode is none
    or there is no command line: kernel threads, zombies)."""
    if mode == "none" or not raw:
        return None
    args = [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]
    if mode != "full":
        args = redact_args(args)
    line = " ".join(_escape(a) if a and not any(c in a for c in " \t'\"") else
                    "'%s'" % _escape(a).replace("'", "'\\''") for a in args)
    if len(line) > CMDLINE_MAX:
        line = line[:CMDLINE_MAX] + "...[truncated]"
    return line


class Identities(object):
    """pid -> identity dict, each process read once; package indexes per root."""

    def __init__(self, cmdline="redacted"):
        self.cmdline_mode = cmdline
        self._cache = {}
        self._packages = {}
        self._socket_units = {}

    def _root_key(self, pid):
        # processes with the same root directory share their package database
        # (every `ip netns exec` makes a mount namespace, most keep the host's root)
        try:
            st = os.stat("/proc/%d/root" % pid)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def packages(self, pid):
        key = self._root_key(pid)
        if key not in self._packages:
            self._packages[key] = PackageIndex("/proc/%d/root" % pid if key else "/")
        return self._packages[key]

    def socket_units(self, pid):
        key = self._root_key(pid)
        if key not in self._socket_units:
            self._socket_units[key] = units.SocketUnits("/proc/%d/root" % pid if key else "/")
        return self._socket_units[key]

    def exe(self, pid):
        """-> (path, state): state 'ok', 'deleted' (no file at the path any more)
        or 'replaced' (another file now at the path: an upgrade)."""
        link = _readlink("/proc/%d/exe" % pid)
        if link is None:
            return None, None
        deleted = link.endswith(" (deleted)")
        path = link[:-len(" (deleted)")] if deleted else link
        try:
            now = os.stat("/proc/%d/root%s" % (pid, path))
        except OSError:
            return path, "deleted"
        if deleted:
            return path, "replaced"
        try:
            running = os.stat("/proc/%d/exe" % pid)
        except OSError:
            return path, None
        same = (now.st_dev, now.st_ino) == (running.st_dev, running.st_ino)
        return path, "ok" if same else "replaced"

    def parents(self, pid):
        """[{pid, comm}] from the parent up to the service manager (its
        init.scope, or pid 1), nearest first."""
        chain = []
        ppid, _comm = _ppid_comm(pid)
        while ppid and len(chain) < PARENTS_MAX:
            nxt, comm = _ppid_comm(ppid)
            if comm is None:
                break
            chain.append({"pid": ppid, "comm": comm})
            if ppid == 1 or units.is_manager_cgroup(cgroupfs.proc_cgroup(ppid)):
                break
            ppid = nxt
        return chain

    def of(self, pid):
        if pid is None:
            return empty_identity()
        if pid in self._cache:
            return self._cache[pid]
        exe, state = self.exe(pid)
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                raw = f.read(64 * 1024)
        except OSError:
            raw = b""
        cgroup = cgroupfs.proc_cgroup(pid)
        ident = {
            "exe": exe, "exe_state": state, "cmdline": format_cmdline(raw, self.cmdline_mode),
            "parents": self.parents(pid), "cgroup": cgroup, "unit": units.unit_of_cgroup(cgroup),
            "socket_unit": None,
            "package": self.packages(pid).owner(exe) if exe and state != "deleted" else None,
        }
        self._cache[pid] = ident
        return ident

    def is_manager(self, pid):
        ident = self.of(pid)
        return ident["unit"] == units.MANAGER_SCOPE or (
            pid == 1 and (ident["exe"] or "").rsplit("/", 1)[-1] == "systemd")


def empty_identity():
    return {"exe": None, "exe_state": None, "cmdline": None, "parents": [], "cgroup": None,
            "unit": None, "socket_unit": None, "package": None}


IDENTITY_KEYS = tuple(empty_identity())


def socket_unit(idents, rec, owner, holders, all_holders=None):
    """For a socket the service manager holds: the .socket unit that owns it,
    from the unit files' Listen*= lines, else from LISTEN_FDNAMES of an
    activated service holding it too (the name defaults to the .socket unit's;
    all_holders() reads every process when the holders known so far are only
    the manager). None for any other socket."""
    pid, _fd = owner
    if not idents.is_manager(pid):
        return None
    found = idents.socket_units(pid).match(rec["proto"], rec["addr"], rec["port"])
    if found:
        return found
    for candidates in (holders, all_holders() if all_holders else []):
        for hpid, hfd in candidates:
            if hpid != pid:
                name = units.activation_name(hpid, hfd)
                if name and name.endswith(".socket"):
                    return name
    return None


def annotate_binds(binds, idents, index=None):
    """Identity of each bind's process (read now, at the end of the window: a
    process already gone keeps exe/cmdline null, its unit still comes from the
    cgroup id the kernel recorded while that cgroup exists)."""
    index = index if index is not None else cgroupfs.CgroupIndex()
    for rec in binds:
        ident = dict(idents.of(rec.get("pid")))
        if ident["exe"] is None:   # gone (or another pid namespace's pid)
            ident = empty_identity()
            ident["cgroup"] = index.relative(rec.get("cgroup_id"))
            ident["unit"] = units.unit_of_cgroup(ident["cgroup"])
        for key in IDENTITY_KEYS:
            rec.setdefault(key, ident[key])
    return binds
