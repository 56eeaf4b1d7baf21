"""Container id -> identity from the container runtimes' own state on disk, no
daemon needed: Docker config.v2.json, containerd task bundles (config.json
annotations), podman and CRI-O containers/storage (containers.json +
userdata/config.json); Kubernetes identity from kubelet's labels or the CRI
annotations."""
import json
import os
import re

DOCKER_DIRS = ("var/lib/docker",)
# standalone containerd, and the one dockerd runs for itself (namespace "moby")
CONTAINERD_TASKS = ("run/containerd/io.containerd.runtime.v2.task",
                    "run/docker/containerd/daemon/io.containerd.runtime.v2.task")
PODMAN_DIRS = ("var/lib/containers/storage/overlay-containers",)

# dockershim container names: k8s_<container>_<pod>_<namespace>_<pod uid>_<attempt>
_DOCKERSHIM = re.compile(r"^k8s_([^_]+)_([^_]+)_([^_]+)_([^_]+)_\d+$")

K8S_POD = ("io.kubernetes.pod.name", "io.kubernetes.cri.sandbox-name")
K8S_NAMESPACE = ("io.kubernetes.pod.namespace", "io.kubernetes.cri.sandbox-namespace")
K8S_CONTAINER = ("io.kubernetes.container.name", "io.kubernetes.cri.container-name")


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


def read_text(path):
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
