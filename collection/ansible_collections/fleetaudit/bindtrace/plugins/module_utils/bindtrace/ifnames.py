"""ifindex -> interface name, inside the binder's network namespace.

An index only means something in its own netns (eth0 in a container is not
the host's index 2). Names are read by entering that netns in a short-lived
thread (setns(CLONE_NEWNET) changes only the calling thread) and listing
its interfaces. Cached by (netns, ifindex). When the netns cannot be found or
entered the answer is None: the caller keeps the index and the event.
"""
import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
# where runtimes keep a netns bind-mounted while its container runs
NETNS_DIRS = ("run/netns", "run/docker/netns", "var/run/netns", "var/run/docker/netns")
MAX_PROC_SCAN = 65536

_setns = None


def _get_setns():
    global _setns
    if _setns is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        _setns = libc.setns
    return _setns


def list_interfaces(ns_path, timeout=5.0):
    """{ifindex: name} of the netns at ns_path (/proc/<pid>/ns/net or a bind
    mount), read from a thread that enters it; raises OSError on failure."""
    result = {}

    def run():
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _get_setns()(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            result["names"] = dict(socket.if_nameindex())
        except Exception as exc:  # reported to the caller, thread must not die noisily
            result["error"] = exc

    t = threading.Thread(target=run, name="bindtrace-netns")
    t.daemon = True
    t.start()
    t.join(timeout)
    if "names" in result:
        return result["names"]
    err = result.get("error")
    if isinstance(err, OSError):
        raise err
    raise OSError("cannot list interfaces in %s: %s" % (ns_path, err or "timed out"))


class IfNames(object):
    def __init__(self, root="/"):
        self.root = root
        self.cache = {}      # (netns, ifindex) -> name
        self.listed = set()  # netns whose whole interface list is cached
        try:
            self.host_netns = os.stat(self._p("proc/self/ns/net")).st_ino
        except OSError:
            self.host_netns = None

    def _p(self, rel):
        return os.path.join(self.root, rel)

    def name(self, ifindex, pid=None, netns=None):
        """Name of ifindex in netns (or pid's netns); "" for 0; None if unknown."""
        if not ifindex:
            return ""
        if not netns:   # 0/None: not captured by this backend
            if pid:
                netns = self._pid_netns(pid)
                if netns is None:
                    return None   # binder gone, netns unknown: the host's name would be a guess
            else:
                netns = self.host_netns
        key = (netns, ifindex)
        if key in self.cache:
            return self.cache[key]
        if netns is None or netns == self.host_netns:
            # fast path: the tracer's own netns needs no thread
            try:
                name = socket.if_indextoname(ifindex)
            except OSError:
                name = None
            if name is not None:
                self.cache[key] = name
            return name
        if netns in self.listed:
            return None   # listed already and this index was not there
        path = self._netns_path(netns, pid)
        if path is None:
            return None
        try:
            names = list_interfaces(path)
        except OSError:
            return None
        for idx, nm in names.items():
            self.cache[(netns, idx)] = nm
        self.listed.add(netns)
        return self.cache.get(key)

    def _pid_netns(self, pid):
        try:
            return os.stat(self._p("proc/%d/ns/net" % pid)).st_ino
        except OSError:
            return None

    def _netns_path(self, netns, pid):
        """A path that opens netns: the binder itself if alive and still there,
        a runtime's bind mount, or any process in it."""
        if pid and self._pid_netns(pid) == netns:
            return self._p("proc/%d/ns/net" % pid)
        for d in NETNS_DIRS:
            try:
                names = os.listdir(self._p(d))
            except OSError:
                continue
            for n in names:
                path = os.path.join(self._p(d), n)
                try:
                    if os.stat(path).st_ino == netns:
                        return path
                except OSError:
                    continue
        try:
            pids = [p for p in os.listdir(self._p("proc")) if p.isdigit()][:MAX_PROC_SCAN]
        except OSError:
            return None
        for p in pids:
            path = self._p("proc/%s/ns/net" % p)
            try:
                if os.stat(path).st_ino == netns:
                    return path
            except OSError:
                continue
        return None
