"""The listen lifecycle of one window: which sockets listened (the kernel's
`listens` map, filled on every successful listen(), bpf/bind.bpf.c), joined
with the binds and the end-of-window listener snapshot.

- a bind whose socket listened during the window: listened true, backlog;
  a bind that never listened (a client: bind then connect): listened false;
- a listener of the snapshot that listened during the window: the same;
- a socket that listened during the window but is gone at its end (a server
  that bound, listened and closed): a listener of its own, seen "window",
  judged by the allow rules like any other.
listened is null where nothing traced listen() (the bcc backend).

UDP has no listen(): a UDP socket bound and not connected at the end of the
window is a listener of the snapshot (state UNCONN); a UDP bind within the
window says the socket could receive from then on, and is judged as a bind.
"""
from .events import user_name
from .record import clean_comm, format_addr
from .protocols import proto_name


def decode_listen(key, stats, clock):
    """Raw listen_key / listen_stats (backend_core.LISTEN_*_FMT) -> a dict."""
    from .backend_core import LISTEN_KEY_FMT, LISTEN_STATS_FMT
    cgroup_id, pid, uid, netns, proto, port, family, addr, comm = LISTEN_KEY_FMT.unpack(key)
    count, first_ts, last_ts, sock_ino, backlog = LISTEN_STATS_FMT.unpack(stats)
    return {"pid": pid, "uid": uid, "user": user_name(uid), "comm": clean_comm(comm),
            "proto": proto_name(proto), "family": family, "addr": format_addr(family, addr),
            "port": port, "netns": netns, "cgroup_id": cgroup_id, "inode": sock_ino,
            "backlog": backlog, "count": count, "first_seen": clock.rfc3339(first_ts),
            "last_seen": clock.rfc3339(last_ts)}


def where(rec):
    """The join key of a bind, a listen and a listener: the socket's place."""
    return (rec.get("netns"), rec.get("pid"), rec.get("proto"), rec.get("family"),
            rec.get("addr"), rec.get("port"))


def mark_binds(binds, listens):
    """Set listened/backlog on each bind (in place). listens None: not traced."""
    index = {where(l): l for l in listens or ()}
    for rec in binds:
        if listens is None:
            rec["listened"], rec["backlog"] = None, None
            continue
        hit = None if rec.get("error") else index.get(where(rec))
        rec["listened"] = hit is not None
        rec["backlog"] = hit["backlog"] if hit else None
    return binds


def window_listeners(listeners, listens, make_listener):
    """Mark the snapshot's listeners that listened during the window, and
    return the listeners that came and went (made by make_listener(listen))."""
    if listens is None:
        return []
    by_inode = {l["inode"]: l for l in listens if l.get("inode")}
    by_where = {}
    for l in listens:
        by_where.setdefault(where(l), l)
    for rec in listeners:
        hit = by_inode.get(rec.get("inode")) or by_where.get(where(rec))
        if rec.get("proto") == "TCP":
            rec["listened"] = hit is not None
            rec["backlog"] = hit["backlog"] if hit else None
    present = {rec.get("inode") for rec in listeners}
    present_where = {where(rec) for rec in listeners}
    gone = []
    for l in listens:
        # still listening (same socket, or the same server listening again on its place)
        if l.get("inode") in present or where(l) in present_where:
            continue
        gone.append(make_listener(l))
    return gone
