"""cgroup v2 facts the owner lookup needs (the hierarchy itself; which
container a cgroup path names is cgroups.py's job): where it is mounted, a
cgroup id -> its directory (the id is the directory's inode number), the
processes of one cgroup, and a process's cgroup path."""
import os


def v2_root():
    """Mount point of the cgroup v2 hierarchy (/sys/fs/cgroup, or
    /sys/fs/cgroup/unified on a hybrid host), or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _sep, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return left.split(" ")[4].replace("\\040", " ")
    except OSError:
        pass
    return None


class CgroupIndex(object):
    """cgroup id -> directory, built by one walk of the hierarchy on first use."""

    def __init__(self, root=None):
        self.root = v2_root() if root is None else root
        self._by_id = None

    def path(self, cgroup_id):
        if not self.root or not cgroup_id:
            return None
        if self._by_id is None:
            self._by_id = {}
            for top, dirs, _files in os.walk(self.root):
                try:
                    self._by_id[os.stat(top).st_ino] = top
                except OSError:
                    continue
        return self._by_id.get(cgroup_id)

    def pids(self, cgroup_id):
        """The processes of exactly this cgroup (not its children), or None
        when the cgroup is unknown or gone."""
        top = self.path(cgroup_id)
        if top is None:
            return None
        try:
            with open(os.path.join(top, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return None

    def relative(self, cgroup_id):
        """'/system.slice/nginx.service' for a cgroup id, or None."""
        top = self.path(cgroup_id)
        if top is None:
            return None
        rel = os.path.relpath(top, self.root)
        return "/" if rel == "." else "/" + rel


def proc_cgroup(pid):
    """A process's cgroup path: the v2 one ('0::/...'), or on a hybrid host
    whose v2 tree is unused, the systemd hierarchy's (name=systemd). None if gone."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    v2 = named = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif parts[1] == "name=systemd":
            named = parts[2]
    if v2 and v2 != "/":
        return v2
    return named or v2
