"""cgroup paths -> which container: the container id (and runtime hint, pod
uid) a cgroup path names (`/docker/<id>`, `/kubepods/.../pod<uid>/<id>`,
`.../cri-containerd-<id>.scope`, `/libpod_parent/libpod-<id>`, `/<ns>/<id>`),
the cgroup paths of a process, and where cgroup2 is mounted. Text parsing
only: unit-tested on files captured from real hosts."""
import re

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# systemd driver: <runtime>-<id>.scope; CRI-O's cgroupfs driver: crio-<id>
_SCOPE = re.compile(r"^(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})(?:\.scope)?$")
_POD = re.compile(r"^(?:kubepods-(?:besteffort-|burstable-|guaranteed-)?)?pod([0-9a-fA-F_-]+?)(?:\.slice)?$")
_SCOPE_RUNTIME = {"docker": "docker", "cri-containerd": "containerd", "crio": "cri-o",
                  "libpod": "podman"}


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
