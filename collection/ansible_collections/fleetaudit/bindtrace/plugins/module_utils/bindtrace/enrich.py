"""Container and Kubernetes identity of a bind: (pid, cgroup id, mntns) -> container, k8s.

Read from the runtimes' own on-disk state, no daemon needed: Docker
config.v2.json, containerd task bundles (config.json annotations), podman and
CRI-O containers/storage (containers.json + userdata/config.json). The cgroup id a bind carries
(bpf_get_current_cgroup_id) is the inode of its cgroup2 directory, and the
cgroup path names the container (`/docker/<id>`, `/kubepods/.../pod<uid>/<id>`,
`.../cri-containerd-<id>.scope`, `/libpod_parent/libpod-<id>`, `/<ns>/<id>`).

Everything is cached by cgroup id (and mntns): after the first resolution the
per-event cost is a dict lookup. A container that binds and exits at once is
still named because it is resolved while it exists: prime() resolves every
container running at start, and an inotify watch on the cgroup2 tree resolves
each new container cgroup the moment runc creates it (before its process runs).
"""
import ctypes
import json
import os
import re
import select
import socket
import struct
import threading

from .ifnames import IfNames

DOCKER_DIRS = ("var/lib/docker",)
# standalone containerd, and the one dockerd runs for itself (namespace "moby")
CONTAINERD_TASKS = ("run/containerd/io.containerd.runtime.v2.task",
                    "run/docker/containerd/daemon/io.containerd.runtime.v2.task")
PODMAN_DIRS = ("var/lib/containers/storage/overlay-containers",)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# systemd driver: <runtime>-<id>.scope; CRI-O's cgroupfs driver: crio-<id>
_SCOPE = re.compile(r"^(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})(?:\.scope)?$")
_POD = re.compile(r"^(?:kubepods-(?:besteffort-|burstable-|guaranteed-)?)?pod([0-9a-fA-F_-]+?)(?:\.slice)?$")
_SCOPE_RUNTIME = {"docker": "docker", "cri-containerd": "containerd", "crio": "cri-o",
                  "libpod": "podman"}
# dockershim container names: k8s_<container>_<pod>_<namespace>_<pod uid>_<attempt>
_DOCKERSHIM = re.compile(r"^k8s_([^_]+)_([^_]+)_([^_]+)_([^_]+)_\d+$")

K8S_POD = ("io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name")
K8S_NAMESPACE = ("io.kubernetes.pod.namespace", "io.kubernetes.cri.sandbox-namespace")
K8S_CONTAINER = ("io.kubernetes.container.name", "io.kubernetes.cri.container-name")

MAX_TASKS = 65536


# ---------------------------------------------------------------- parsing

def parse_cgroup_path(path):
    """A cgroup path -> {"id", "runtime" (hint or None), "namespace" (containerd ns
    guess or None), "pod_uid", "kubepods", "weak"} or None for host cgroups.

    Walks from the leaf up so a sub-cgroup inside a container still names it.
    "weak" marks the containerd/ctr `/<ns>/<id>` form: any last component may be
    an id there, so it only counts if a task bundle confirms it."""
    parts = [p for p in path.split("/") if p]
    kube = any(p.startswith("kubepods") for p in parts)
    for i in range(len(parts) - 1, -1, -1):
        leaf = parts[i]
        m = _SCOPE.match(leaf)
        if m:
            cid, hint = m.group(2), _SCOPE_RUNTIME[m.group(1)]
        elif _HEX64.match(leaf):
            cid, hint = leaf, ("docker" if i > 0 and parts[i - 1] == "docker" else None)
        else:
            continue
        return {"id": cid, "runtime": hint, "namespace": None, "pod_uid": _pod_uid(parts[:i]),
                "kubepods": kube, "weak": False}
    if len(parts) >= 2:
        return {"id": parts[-1], "runtime": None, "namespace": parts[-2],
                "pod_uid": _pod_uid(parts[:-1]), "kubepods": kube, "weak": True}
    return None


def _pod_uid(parts):
    for p in reversed(parts):
        m = _POD.match(p)
        if m:
            return m.group(1).replace("_", "-")
    return None


def parse_proc_cgroup(text):
    """/proc/<pid>/cgroup -> the cgroup paths, the unified (`0::`) one first."""
    unified, others = [], []
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        if fields[0] == "0" and fields[1] == "":
            unified.append(fields[2])
        elif fields[2] not in others:
            others.append(fields[2])
    return unified + [p for p in others if p not in unified]


def cgroup2_mount(mountinfo_text):
    """The cgroup2 mount point from /proc/self/mountinfo (`/sys/fs/cgroup/unified`
    on a hybrid host, `/sys/fs/cgroup` on a pure v2 host), or None."""
    for line in mountinfo_text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        if right.split(" ", 1)[0] == "cgroup2":
            fields = left.split(" ")
            if len(fields) >= 5 and fields[3] == "/":
                return _unescape(fields[4])
    return None


def _unescape(path):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def k8s_identity(labels, name, node):
    """Kubernetes identity from kubelet's labels (dockershim, podman annotations)
    or containerd CRI annotations; dockershim's container name as a last resort.
    A container outside Kubernetes gets node + its own name as K8S.CONTAINERNAME,
    like ig does; namespace and pod stay None."""
    pod = _first(labels, K8S_POD)
    namespace = _first(labels, K8S_NAMESPACE)
    container = _first(labels, K8S_CONTAINER)
    if pod is None and namespace is None and name:
        m = _DOCKERSHIM.match(name)
        if m:
            container, pod, namespace = m.group(1), m.group(2), m.group(3)
    if pod is None and namespace is None:
        return {"node": node, "namespace": None, "pod": None, "container": name}
    return {"node": node, "namespace": namespace, "pod": pod, "container": container}


def _first(labels, keys):
    for k in keys:
        v = labels.get(k)
        if v:
            return v
    return None


def _load_json(path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


class Identity(object):
    """What a container resolved to: the event's `container` and `k8s` values."""
    __slots__ = ("container", "k8s")

    def __init__(self, runtime, cid, name, image, labels, node):
        self.container = {"runtime": runtime, "id": cid, "name": name, "image": image}
        self.k8s = k8s_identity(labels, name, node)


# ---------------------------------------------------------------- runtimes

class Runtimes(object):
    """Container id -> Identity from the runtimes' files under `root` ("/" on a
    real host, a captured tree in unit tests)."""

    def __init__(self, root="/", node=None):
        self.root = root
        self.node = node
        self.docker_dirs = [self._p(d) for d in DOCKER_DIRS]
        data_root = (_load_json(self._p("etc/docker/daemon.json")) or {}).get("data-root")
        if isinstance(data_root, str) and data_root:
            self.docker_dirs.insert(0, self._p(data_root.lstrip("/")))
        self.containerd_dirs = [self._p(d) for d in CONTAINERD_TASKS]
        self.podman_dirs = [self._p(d) for d in PODMAN_DIRS]
        self._podman_index = {}   # containers.json path -> (mtime, {id: (name, image)})

    def _p(self, rel):
        return os.path.join(self.root, rel)

    def lookup(self, parsed):
        """parse_cgroup_path() result -> Identity or None."""
        cid, hint = parsed["id"], parsed["runtime"]
        if parsed["weak"]:
            return self.containerd(cid, parsed["namespace"])
        order = [self.docker, self.podman, self.containerd]
        if hint == "podman":
            order = [self.podman]
        elif hint == "cri-o":   # CRI-O keeps its containers in the same containers/storage
            order = [lambda c: self.podman(c, runtime="cri-o")]
        elif hint == "containerd":
            order = [self.containerd, self.docker]
        for fn in order:
            ident = fn(cid)
            if ident is not None:
                return ident
        return None

    def docker(self, cid):
        for base in self.docker_dirs:
            d = _load_json(os.path.join(base, "containers", cid, "config.v2.json"))
            if d is None:
                continue
            cfg = d.get("Config") or {}
            name = (d.get("Name") or "").lstrip("/") or cid[:12]
            return Identity("docker", cid, name, cfg.get("Image") or None,
                            cfg.get("Labels") or {}, self.node)
        return None

    def containerd(self, cid, namespace=None):
        for base in self.containerd_dirs:
            try:
                namespaces = sorted(os.listdir(base))
            except OSError:
                continue
            if namespace in namespaces:   # the cgroup's parent is likely the namespace
                namespaces.remove(namespace)
                namespaces.insert(0, namespace)
            for ns in namespaces:
                d = _load_json(os.path.join(base, ns, cid, "config.json"))
                if d is None:
                    continue
                ann = d.get("annotations") or {}
                name = ann.get("io.kubernetes.cri.container-name") or ann.get("nerdctl/name") or cid
                runtime = "docker" if ns == "moby" else "containerd"   # dockerd's own tasks
                return Identity(runtime, cid, name, ann.get("io.kubernetes.cri.image-name"),
                                ann, self.node)
        return None

    def podman(self, cid, runtime="podman"):
        for base in self.podman_dirs:
            entry = self._podman_entries(os.path.join(base, "containers.json")).get(cid)
            spec = _load_json(os.path.join(base, cid, "userdata", "config.json"))
            if entry is None and spec is None:
                continue
            name, image = entry or (cid[:12], None)
            # podman keeps --label only in its BoltDB; --annotation lands in the spec
            ann = (spec or {}).get("annotations") or {}
            if runtime == "cri-o":   # its storage name is k8s_<ctr>_<pod>_...; crictl shows <ctr>
                name = ann.get("io.kubernetes.container.name") or name
            return Identity(runtime, cid, name, image, ann, self.node)
        return None

    def _podman_entries(self, path):
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return {}
        cached = self._podman_index.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        index = {}
        for ent in _load_json(path) or []:
            if not isinstance(ent, dict) or "id" not in ent:
                continue
            names = ent.get("names") or []
            try:
                meta = json.loads(ent.get("metadata") or "{}")
            except ValueError:
                meta = {}
            index[ent["id"]] = (names[0] if names else meta.get("name") or ent["id"][:12],
                                meta.get("image-name"))
        self._podman_index[path] = (mtime, index)
        return index


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
        self.cgroup2 = cgroup2_mount(_read(self._p("proc/self/mountinfo")) or "")
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
        text = _read(base + "/cgroup")
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
        procs = _read(os.path.join(full, "cgroup.procs"))
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
                ready, _, _ = select.select([fd, wake], [], [])
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
                wd, mask, _, length = _EVENT.unpack_from(data, off)
                name = data[off + _EVENT.size:off + _EVENT.size + length].split(b"\0", 1)[0]
                off += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    self._scan(self.cgroup2, add_watches=True)
                elif mask & _IN_CREATE and mask & _IN_ISDIR and wd in self._wd:
                    # a new cgroup: resolve it now, while its container exists
                    self._scan(os.path.join(self._wd[wd], name.decode("utf-8", "replace")),
                               add_watches=True)
