"""Snapshot of the sockets listening right now: TCP in LISTEN and bound,
unconnected UDP, with the owning process, its identity and the exposure.

Source: the kernel's socket diagnostics (sockdiag.py: only listeners cross
into user space, with IPV6_V6ONLY and the socket's cgroup id); where that
interface is unusable, /proc/net/{tcp,tcp6,udp,udp6} (every socket printed
and parsed; no V6ONLY, no cgroup id). The facts say which (`snapshot.source`).

Other network namespaces are read through one process living in each (netns
"all"). A namespace with no process in it (kept only by a bind mount) has no
process that could own a listener and is not read.
"""
import os
import socket
import struct

from . import owner as owners_mod
from . import sockdiag
from .events import user_name
from .exposure import annotate

TCP_LISTEN = 0x0A
UDP_UNCONN = 0x07   # TCP_CLOSE: bound, not connected (connected UDP is a client)
TABLES = (("tcp", "TCP", 4, TCP_LISTEN, "LISTEN"), ("tcp6", "TCP", 6, TCP_LISTEN, "LISTEN"),
          ("udp", "UDP", 4, UDP_UNCONN, "UNCONN"), ("udp6", "UDP", 6, UDP_UNCONN, "UNCONN"))
LISTENER_KEYS = ("proto", "family", "addr", "port", "state", "inode", "uid", "user", "pid", "comm",
                 "netns", "container", "k8s", "verdict", "rule", "v6only", "exposure",
                 "exposure_families",
                 "cgroup_id", "cookie") + owners_mod.IDENTITY_KEYS + ("listened", "backlog", "seen")


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


def _proc_net(tables):
    """{netns: [partial listener dicts]} from /proc/net (the fallback)."""
    out = {}
    for ns in sorted(tables):
        texts = _read_netns(tables[ns])
        if texts is None:
            continue
        recs = out.setdefault(ns, [])
        for (_name, proto, family, state, state_name), text in zip(TABLES, texts):
            for rec in parse_table(text or "", proto, family, state, state_name):
                rec.update(v6only=None, cgroup_id=None, cookie=None)
                recs.append(rec)
    return out


def _sock_diag(tables, own):
    """{netns: [partial listener dicts]} from socket diagnostics; raises
    SockDiagError when this host's kernel does not answer."""
    out = {}
    for ns in sorted(tables):
        if ns == own:
            out[ns] = sockdiag.listeners_here()
            continue
        for pid in tables[ns]:
            try:
                out[ns] = sockdiag.listeners_in("/proc/%s/ns/net" % pid)
                break
            except sockdiag.SockDiagError:
                raise
            except OSError:
                continue   # gone, or not ours to enter: try the next process there
    return out


def take(netns="all", enricher=None, source="auto", cmdline="redacted"):
    """Sockets listening now -> (listener dicts (DESIGN.md shape) sorted,
    info {source, why, owner_lookup}).
    netns: "all" (every namespace with a process in it), "host" (this process's
    own) or a namespace inode number. source: auto (socket diagnostics, else
    /proc/net), sock_diag or proc_net."""
    own = _ns_inode("self")
    pids = _pids()
    tables = namespaces(pids, netns, own)
    info = {"source": None, "why": None}
    found = None
    if source in ("auto", "sock_diag"):
        try:
            found, info["source"] = _sock_diag(tables, own), "sock_diag"
        except sockdiag.SockDiagError as exc:
            if source == "sock_diag":
                raise
            info["why"] = "socket diagnostics unusable (%s): read /proc/net" % exc
    if found is None:
        found, info["source"] = _proc_net(tables), "proc_net"
    seen = set()
    recs = []
    for ns in sorted(found):
        for rec in found[ns]:
            if (ns, rec["inode"]) in seen:
                continue
            seen.add((ns, rec["inode"]))
            rec["netns"] = ns
            recs.append(rec)
    scan = owners_mod.OwnerScan()
    owner_of, holders = owners_mod.socket_owners(
        [(r["inode"], r["cgroup_id"]) for r in recs], pids, scan=scan)
    idents = owners_mod.Identities(cmdline=cmdline)
    full = {}

    def all_holders_of(inode):
        def read_all():
            if inode not in full:
                everyone = {}
                for pid in pids:
                    owners_mod.scan_process(pid, {inode}, everyone, scan, stop_early=False)
                full[inode] = everyone.get(inode, [])
            return full[inode]
        return read_all
    out = []
    for rec in recs:
        held = owner_of.get(rec["inode"]) if rec["inode"] else None
        pid = held[0] if held else None
        rec.update(user=user_name(rec["uid"]), pid=pid,
                   comm=_comm(pid) if pid is not None else None,
                   container=None, k8s=None, verdict=None, listened=None, backlog=None,
                   seen="snapshot")
        rec.update(idents.of(pid))
        if held:
            rec["socket_unit"] = owners_mod.socket_unit(idents, rec, held,
                                                        holders.get(rec["inode"], []),
                                                        all_holders_of(rec["inode"]))
        annotate(rec)
        _enrich(enricher, rec)
        out.append({k: rec.get(k) for k in LISTENER_KEYS})
    out.sort(key=lambda r: (r["netns"], r["proto"], r["family"], r["port"], r["addr"], r["inode"]))
    info["owner_lookup"] = scan.as_dict()
    return out, info


def snapshot(netns="all", enricher=None, source="auto", cmdline="redacted"):
    """The listeners of take(), without the info."""
    return take(netns, enricher, source, cmdline)[0]


def from_listen(listen, idents, index, enricher=None):
    """A listener of the window from one listen record (listens.py): a socket
    that listened and was gone at the end. Its owner is who called listen();
    a process already gone keeps exe/cmdline null, its unit comes from the
    cgroup id the kernel recorded."""
    rec = {"proto": listen["proto"], "family": listen["family"], "addr": listen["addr"],
           "port": listen["port"], "state": "LISTEN", "inode": listen["inode"],
           "uid": listen["uid"], "user": listen["user"], "pid": listen["pid"],
           "comm": listen["comm"], "netns": listen["netns"], "container": None, "k8s": None,
           "verdict": None, "v6only": None, "cgroup_id": listen["cgroup_id"], "cookie": None,
           "listened": True, "backlog": listen["backlog"], "seen": "window"}
    owners_mod.annotate_binds([rec], idents, index)
    annotate(rec)
    _enrich(enricher, rec)
    return {k: rec.get(k) for k in LISTENER_KEYS}
