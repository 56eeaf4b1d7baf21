"""Container and Kubernetes identity of a bind: (pid, cgroup id, mntns) -> container, k8s.

The cgroup id a bind carries (bpf_get_current_cgroup_id) is the inode of its
cgroup2 directory; the cgroup path names the container (cgroups.py), and the
runtimes' own state on disk names it further (runtimes.py).

Everything is cached by cgroup id (and mntns): after the first resolution the
per-event cost is a dict lookup. A container that binds and exits at once is
still named because it is resolved while it exists: prime() resolves every
container running at start, and an inotify watch on the cgroup2 tree resolves
each new container cgroup the moment runc creates it (before its process runs).
"""
import ctypes
import os
import select
import socket
import struct
import threading

from .cgroups import cgroup2_mount, parse_cgroup_path, parse_proc_cgroup
from .ifnames import IfNames
from .runtimes import Runtimes, read_text

MAX_TASKS = 65536


# ---------------------------------------------------------------- inotify

_IN_CREATE, _IN_ISDIR, _IN_Q_OVERFLOW = 0x100, 0x40000000, 0x4000
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_EVENT = struct.Struct("iIII")
MAX_WATCHES = 4096


def _libc():
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        return lib
    except (OSError, AttributeError):
        return None


# ---------------------------------------------------------------- enricher

_MISS = object()


class Enricher(object):
    """enrich(event) fills `container`, `k8s` (and `if` for a bound interface) in place.

    Lookup order: cgroup id cache; the live process (/proc/<pid>/cgroup, only if
    its mntns still matches the event's); the mntns cache; the cgroup2 tree
    (cgroup id -> path by inode) for processes already gone."""

    def __init__(self, node=None, root="/", watch=True, ifnames=None):
        self.node = node or socket.gethostname()
        self.root = root
        self.runtimes = Runtimes(root, self.node)
        self.ifnames = ifnames if ifnames is not None else IfNames(root)
        self.by_cgid = {}     # cgroup id -> Identity, or None for a host cgroup
        self.by_mntns = {}    # mntns -> Identity, or None for a host process's mntns
        self.by_task = {}     # (pid, mntns) -> Identity, where the cgroup id tells nothing
        self.paths = {}       # cgroup id -> cgroup path, from the last tree walk
        self._by_path = {}    # cgroup path -> Identity or None (parse + runtime files once)
        self._walked_for = set()
        self._lock = threading.Lock()
        self._watch = watch
        self._ino_fd = -1
        self._wd = {}
        self._wake = None
        self._thread = None
        try:
            self.host_mntns = os.stat(self._p("proc/self/ns/mnt")).st_ino
        except OSError:
            self.host_mntns = None
        self.cgroup2 = cgroup2_mount(read_text(self._p("proc/self/mountinfo")) or "")
        if self.cgroup2 is not None:
            self.cgroup2 = self._p(self.cgroup2.lstrip("/"))

    def _p(self, rel):
        return os.path.join(self.root, rel)

    # -- public API

    def enrich(self, ev):
        ident = self.lookup(ev.get("pid"), ev.get("cgroup_id"), ev.get("mntns"))
        if ident is None:
            ev["container"], ev["k8s"] = None, None
        else:
            ev["container"], ev["k8s"] = dict(ident.container), dict(ident.k8s)
        idx = ev.get("if_index")
        if idx:
            if ev.get("if") is None:
                # None when the name cannot be found: the index stays, the event too
                ev["if"] = self.ifnames.name(idx, pid=ev.get("pid"), netns=ev.get("netns"))
        elif "if_index" in ev and ev.get("if") is None:
            ev["if"] = ""
        return ev

    def for_pid(self, pid):
        """(container, k8s) of a live process (listeners snapshot)."""
        ident = self.lookup(pid, None, None)
        if ident is None:
            return None, None
        return dict(ident.container), dict(ident.k8s)

    def lookup(self, pid, cgroup_id, mntns):
        private = bool(mntns) and mntns != self.host_mntns
        if cgroup_id:
            ident = self.by_cgid.get(cgroup_id, _MISS)
            if ident is not _MISS and (ident is not None or not private):
                return ident
            # a host cgroup seen from a private mntns: a container whose runtime leaves
            # cgroup2 alone (cgroup v1: every task has cgroup id 1) or a sandboxed service
        if private and pid:
            ident = self.by_task.get((pid, mntns), _MISS)
            if ident is not _MISS:
                return ident
        found, ident, by_unified = self._from_pid(pid, mntns)
        if found and private and not by_unified:
            if len(self.by_task) >= MAX_TASKS:
                self.by_task.clear()
            self.by_task[(pid, mntns)] = ident
        if not found and mntns and mntns in self.by_mntns:
            # binder gone: its mntns, as resolved earlier (ns inums are reused, so only now)
            found, ident, by_unified = True, self.by_mntns[mntns], False
        if not found and cgroup_id:
            found, ident = self._from_cgid(cgroup_id)
            by_unified = True
        if cgroup_id and (ident is None or by_unified):
            self._remember(cgroup_id, ident)
            ident = self.by_cgid[cgroup_id]
        return ident

    def _remember(self, cgroup_id, ident):
        """A container replaces a cached "host"; "host" never replaces a container
        (the watcher may have named it while it existed)."""
        with self._lock:
            if ident is not None or self.by_cgid.get(cgroup_id) is None:
                self.by_cgid[cgroup_id] = ident

    def prime(self):
        """Resolve every cgroup (so every running container) now, and start the
        watch that resolves containers created later. Idempotent."""
        if self.cgroup2 is None:
            return self
        if self._watch and self._ino_fd < 0:
            self._start_inotify()
        self._scan(self.cgroup2, add_watches=self._ino_fd >= 0)
        if self._ino_fd >= 0 and self._thread is None:
            self._wake = os.pipe()
            self._thread = threading.Thread(target=self._watch_loop, name="bindtrace-cgroups")
            self._thread.daemon = True
            self._thread.start()
        return self

    def refresh(self):
        """Re-walk the cgroup2 tree: cgroup id -> path for every cgroup there now."""
        if self.cgroup2 is not None:
            self._scan(self.cgroup2, add_watches=False)

    def close(self):
        if self._thread is not None:
            os.write(self._wake[1], b"x")
            self._thread.join(2)
            self._thread = None
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        if self._ino_fd >= 0:
            os.close(self._ino_fd)
            self._ino_fd = -1
            self._wd = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def containers(self):
        """The distinct containers resolved so far (container dicts)."""
        seen = {}
        for ident in list(self.by_cgid.values()) + list(self.by_mntns.values()):
            if ident is not None:
                seen[ident.container["id"]] = ident.container
        return list(seen.values())

    # -- resolution

    def _identity_for_paths(self, paths):
        """First container named by any of the cgroup paths, or None."""
        for path in paths:
            ident = self._path_identity(path)
            if ident is not None:
                return ident
        return None

    def _path_identity(self, path):
        ident = self._by_path.get(path, _MISS)
        if ident is not _MISS:
            return ident
        parsed = parse_cgroup_path(path)
        ident = self.runtimes.lookup(parsed) if parsed is not None else None
        if ident is not None:
            self._by_path[path] = ident
        elif parsed is None or parsed["weak"]:
            self._by_path[path] = None   # a host cgroup: it will stay one
        return ident

    def _from_pid(self, pid, mntns):
        """(found, Identity or None, named by the cgroup2 path) from a live process;
        found=False if it is gone or its pid now belongs to another process (mntns
        differs). The answer is remembered for its mntns, host or container."""
        if not pid:
            return False, None, False
        base = self._p("proc/%d" % pid)
        try:
            own_mntns = os.stat(base + "/ns/mnt").st_ino
        except OSError:
            own_mntns = None
        if mntns and own_mntns != mntns:
            return False, None, False
        text = read_text(base + "/cgroup")
        if text is None:
            return False, None, False
        paths = parse_proc_cgroup(text)
        unified = 1 if "\n0::" in "\n" + text else 0
        ident = self._identity_for_paths(paths[:unified])
        by_unified = ident is not None
        if ident is None:
            ident = self._identity_for_paths(paths[unified:])   # v1 controllers' paths
        if own_mntns is not None:
            self.by_mntns[own_mntns] = ident
        return True, ident, by_unified

    def _from_cgid(self, cgroup_id):
        path = self.paths.get(cgroup_id)
        if path is None and cgroup_id not in self._walked_for and self.cgroup2 is not None:
            self._walked_for.add(cgroup_id)   # one walk per unknown id, not one per event
            self.refresh()
            ident = self.by_cgid.get(cgroup_id, _MISS)
            if ident is not _MISS:
                return True, ident
            path = self.paths.get(cgroup_id)
        if path is None:
            return False, None
        return True, self._path_identity(path)

    # -- cgroup2 tree

    def _rel(self, full):
        rel = full[len(self.cgroup2):]
        return rel if rel.startswith("/") else "/" + rel

    def _scan(self, top, add_watches):
        """Walk `top` (inclusive): index cgroup id -> path, resolve each cgroup
        once, and with add_watches put an inotify watch on every directory."""
        stack = [top]
        while stack:
            d = stack.pop()
            if add_watches:
                self._add_watch(d)
            try:
                ino = os.stat(d).st_ino
            except OSError:
                continue
            self._index(ino, d)
            try:
                with os.scandir(d) as it:
                    for ent in it:
                        if ent.is_dir(follow_symlinks=False):
                            stack.append(ent.path)
            except OSError:
                continue

    def _index(self, ino, full):
        rel = self._rel(full)
        self.paths[ino] = rel
        if self.by_cgid.get(ino) is not None:
            return
        ident = self._path_identity(rel)
        self._remember(ino, ident)
        if ident is not None:
            self._learn_mntns(full, ident)

    def _learn_mntns(self, full, ident):
        procs = read_text(os.path.join(full, "cgroup.procs"))
        for pid in (procs or "").split()[:1]:
            try:
                self.by_mntns[os.stat(self._p("proc/%s/ns/mnt" % pid)).st_ino] = ident
            except OSError:
                pass

    def _start_inotify(self):
        lib = _libc()
        if lib is None:
            return
        fd = lib.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd >= 0:
            self._ino_fd, self._lib = fd, lib

    def _add_watch(self, d):
        if len(self._wd) >= MAX_WATCHES:
            return
        wd = self._lib.inotify_add_watch(self._ino_fd, d.encode(), _IN_CREATE)
        if wd >= 0:
            self._wd[wd] = d

    def _watch_loop(self):
        fd, wake = self._ino_fd, self._wake[0]
        while True:
            try:
                ready, _w, _x = select.select([fd, wake], [], [])
            except (OSError, ValueError):
                return
            if wake in ready:
                return
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            off = 0
            while off + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, off)
                name = data[off + _EVENT.size:off + _EVENT.size + length].split(b"\0", 1)[0]
                off += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    self._scan(self.cgroup2, add_watches=True)
                elif mask & _IN_CREATE and mask & _IN_ISDIR and wd in self._wd:
                    # a new cgroup: resolve it now, while its container exists
                    self._scan(os.path.join(self._wd[wd], name.decode("utf-8", "replace")),
                               add_watches=True)
