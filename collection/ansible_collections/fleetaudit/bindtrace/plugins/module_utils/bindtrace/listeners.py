"""Snapshot of the sockets listening right now: TCP in LISTEN and bound,
unconnected UDP, from /proc/net/{tcp,tcp6,udp,udp6}, with the owning process.

/proc/<pid>/net/* shows the network namespace of <pid>, so other namespaces are
read through one process living in each (netns "all"). A namespace with no
process in it (kept only by a bind mount) has no process that could own a
listener and is not read.
"""
import os
import socket
import struct

from .events import user_name

TCP_LISTEN = 0x0A
UDP_UNCONN = 0x07   # TCP_CLOSE: bound, not connected (connected UDP is a client)
TABLES = (("tcp", "TCP", 4, TCP_LISTEN, "LISTEN"), ("tcp6", "TCP", 6, TCP_LISTEN, "LISTEN"),
          ("udp", "UDP", 4, UDP_UNCONN, "UNCONN"), ("udp6", "UDP", 6, UDP_UNCONN, "UNCONN"))
LISTENER_KEYS = ("proto", "family", "addr", "port", "state", "inode", "uid", "user", "pid", "comm",
                 "netns", "container", "k8s", "verdict")


def decode_addr(hexaddr, family):
    """'0100007F:1F90' -> ('127.0.0.1', 8080). The kernel prints the address as
    native-endian 32-bit words (%08X of the raw __be32s) and the port as a host
    number, so each word is re-packed in native order to get the wire bytes."""
    addr_hex, port_hex = hexaddr.split(":")
    words = [int(addr_hex[i:i + 8], 16) for i in range(0, len(addr_hex), 8)]
    raw = b"".join(struct.pack("=I", w) for w in words)
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    return socket.inet_ntop(af, raw), int(port_hex, 16)


def parse_table(text, proto, family, want_state, state_name):
    """Rows of one /proc/net table in the wanted state -> partial listener dicts."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            state = int(fields[3], 16)
            if state != want_state:
                continue
            addr, port = decode_addr(fields[1], family)
            uid, inode = int(fields[7]), int(fields[9])
        except ValueError:
            continue
        if proto == "UDP" and port == 0:
            continue  # a UDP socket without a local port is not bound
        out.append({"proto": proto, "family": family, "addr": addr, "port": port,
                    "state": state_name, "inode": inode, "uid": uid})
    return out


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return None


def _ns_inode(pid, kind="net"):
    try:
        return os.stat("/proc/%s/ns/%s" % (pid, kind)).st_ino
    except OSError:
        return None


def _pids():
    return sorted(int(d) for d in os.listdir("/proc") if d.isdigit())


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def socket_owners(pids):
    """socket inode -> the process that owns it: among the holders of an fd on
    it, the one whose parent is not a holder too (the parent of forked workers;
    pid order alone is wrong once pids wrap around). Ties: the lowest pid."""
    holders = {}
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or a kernel thread
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                holders.setdefault(int(target[8:-1]), []).append(pid)
    owners = {}
    for inode, pids_here in holders.items():
        if len(pids_here) == 1:
            owners[inode] = pids_here[0]
            continue
        held = set(pids_here)
        roots = [p for p in pids_here if _ppid(p) not in held]
        owners[inode] = min(roots or pids_here)
    return owners


def namespaces(pids, which, own):
    """netns inode -> pids living in it, for the namespaces to read."""
    found = {}
    if which == "host":
        return {own: ["self"]}
    for pid in pids:
        ns = _ns_inode(pid)
        if ns is None:
            continue
        if which not in ("all", None) and ns != which:
            continue
        found.setdefault(ns, []).append(pid)
    if which in ("all", None) or which == own:
        found[own] = ["self"] + found.get(own, [])
    return found


def _read_netns(pids):
    """The four tables of one namespace, read through the first live pid in it."""
    for pid in pids:
        texts = [_read("/proc/%s/net/%s" % (pid, t[0])) for t in TABLES]
        if texts[0] is not None:
            return texts
    return None


def _comm(pid):
    # comm is bytes chosen by whoever runs the process, maybe not UTF-8: decode
    # like events.clean_comm, or one such listener would fail the whole snapshot
    try:
        with open("/proc/%d/comm" % pid, "rb") as f:
            raw = f.read()
    except (IOError, OSError):
        return None
    return raw.rstrip(b"\n").decode("utf-8", "replace")


def _enrich(enricher, rec):
    """Container / Kubernetes identity of the owning process, from the same
    enricher as bind events (enrich.Enricher.for_pid)."""
    if enricher is None or rec["pid"] is None:
        return
    try:
        rec["container"], rec["k8s"] = enricher.for_pid(rec["pid"])
    except Exception:  # enrichment must never cost the snapshot
        rec["container"], rec["k8s"] = None, None


def default_enricher():
    """An Enricher without its cgroup watch thread (one look, no window), or None."""
    try:
        from .enrich import Enricher
        return Enricher(watch=False)
    except Exception:
        return None


def snapshot(netns="all", enricher=None):
    """Sockets listening now, as listener dicts (DESIGN.md shape), sorted.
    netns: "all" (every namespace with a process in it), "host" (this process's
    own) or a namespace inode number."""
    own = _ns_inode("self")
    pids = _pids()
    seen = set()
    out = []
    tables = namespaces(pids, netns, own)
    owners = socket_owners(pids)
    for ns in sorted(tables):
        texts = _read_netns(tables[ns])
        if texts is None:
            continue
        for (name, proto, family, state, state_name), text in zip(TABLES, texts):
            for rec in parse_table(text or "", proto, family, state, state_name):
                if (ns, rec["inode"]) in seen:
                    continue
                seen.add((ns, rec["inode"]))
                pid = owners.get(rec["inode"]) if rec["inode"] else None
                rec.update(user=user_name(rec["uid"]), pid=pid,
                           comm=_comm(pid) if pid is not None else None, netns=ns,
                           container=None, k8s=None, verdict=None)
                _enrich(enricher, rec)
                out.append({k: rec[k] for k in LISTENER_KEYS})
    out.sort(key=lambda r: (r["netns"], r["proto"], r["family"], r["port"], r["addr"], r["inode"]))
    return out
