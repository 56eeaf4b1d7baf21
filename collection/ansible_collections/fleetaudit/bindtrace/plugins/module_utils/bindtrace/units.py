"""systemd units without systemd's API: the unit a process runs in, from its
cgroup path, and the `.socket` unit a socket held by the service manager
belongs to (socket activation), from the unit files' Listen*= lines or from
the LISTEN_FDNAMES systemd gives the activated service.

Unit files are searched where systemd looks for system units (under the
process's root, so a container's own manager is read in its own tree);
drop-in directories (*.socket.d) are not read."""
import ipaddress
import os

UNIT_SUFFIXES = (".service", ".scope", ".socket", ".mount", ".swap", ".target", ".timer",
                 ".path", ".device", ".automount")
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/transient", "/run/systemd/system",
             "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
MANAGER_SCOPE = "init.scope"   # systemd keeps itself (pid 1, and each user manager) here


def unit_of_cgroup(path):
    """'/system.slice/nginx.service' -> 'nginx.service'; the innermost unit
    under the slices ('/user.slice/user-1000.slice/user@1000.service/app.slice/
    foo.service' -> 'foo.service'); components that are no unit names (a
    container runtime's or a test's own prefix, a service's sub-cgroups) are
    skipped. None when the path names no unit."""
    if not path:
        return None
    unit = None
    for part in path.strip("/").split("/"):
        if part.endswith(".slice"):
            continue
        if part.endswith(UNIT_SUFFIXES) and not part.startswith("."):
            unit = part
    return unit


def is_manager_cgroup(path):
    return unit_of_cgroup(path) == MANAGER_SCOPE


def _listen_spec(value):
    """A ListenStream=/ListenDatagram= value -> (addr or None, port) or None
    (unix paths, abstract sockets, netlink, vsock: not inet)."""
    value = value.strip()
    if not value or value.startswith(("/", "@")) or ":" in value and value.split(":", 1)[0] in (
            "vsock", "netlink"):
        return None
    if value.isdigit():
        return (None, int(value))
    if value.startswith("["):
        host, _sep, port = value[1:].partition("]:")
        host = host.split("%", 1)[0]
    else:
        host, _sep, port = value.rpartition(":")
    try:
        return (str(ipaddress.ip_address(host)), int(port))
    except ValueError:
        return None


def parse_socket_unit(text):
    """[(proto, addr or None, port, v6only or None)] of one .socket unit file."""
    listens, v6only = [], None
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Socket" or "=" not in line or line.startswith(("#", ";")):
            continue
        key, value = (x.strip() for x in line.split("=", 1))
        if key in ("ListenStream", "ListenDatagram"):
            spec = _listen_spec(value)
            if spec:
                listens.append(("TCP" if key == "ListenStream" else "UDP",) + spec)
        elif key == "BindIPv6Only":
            v6only = {"ipv6-only": True, "both": False}.get(value)
    return [l + (v6only,) for l in listens]


class SocketUnits(object):
    """The inet Listen*= lines of every .socket unit under one root, read once."""

    def __init__(self, root="/"):
        self.root = root
        self._units = None

    def units(self):
        if self._units is None:
            self._units = []
            seen = set()
            for d in UNIT_DIRS:
                top = os.path.join(self.root, d.lstrip("/"))
                try:
                    names = sorted(os.listdir(top))
                except OSError:
                    continue
                for name in names:
                    if not name.endswith(".socket") or name in seen:
                        continue
                    seen.add(name)   # the first directory in systemd's order wins
                    try:
                        with open(os.path.join(top, name), errors="replace") as f:
                            text = f.read(65536)
                    except OSError:
                        continue
                    for listen in parse_socket_unit(text):
                        self._units.append((name,) + listen)
        return self._units

    def match(self, proto, addr, port):
        """The .socket unit listening on (proto, addr, port), or None. A
        port-only ListenStream= binds the wildcard address."""
        for name, uproto, uaddr, uport, _v6only in self.units():
            if uproto != proto or uport != port:
                continue
            if uaddr is None and addr in ("::", "0.0.0.0"):
                return name
            if uaddr is not None and _same_ip(uaddr, addr):
                return name
        return None


def _same_ip(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def activation_name(pid, fd):
    """The name systemd gave fd `fd` of an activated service (LISTEN_PID is
    this pid, fd in 3 .. 3+LISTEN_FDS-1): its LISTEN_FDNAMES entry, which
    defaults to the .socket unit's name. Only these three variables are read
    from the environment; nothing else of it is kept."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read(1 << 20)
    except OSError:
        return None
    got = {}
    for item in env.split(b"\0"):
        for key in (b"LISTEN_PID", b"LISTEN_FDS", b"LISTEN_FDNAMES"):
            if item.startswith(key + b"="):
                got[key] = item[len(key) + 1:].decode("utf-8", "replace")
    try:
        if int(got.get(b"LISTEN_PID", "-1")) != pid:
            return None
        count = int(got.get(b"LISTEN_FDS", "0"))
    except ValueError:
        return None
    if not 3 <= fd < 3 + count:
        return None
    names = got.get(b"LISTEN_FDNAMES", "").split(":")
    name = names[fd - 3] if fd - 3 < len(names) else ""
    return name or None
