"""Decode raw kernel records (bpf/bind.h) into the one event shape of DESIGN.md."""
import errno
import os
import pwd
import socket
import struct
import time

from . import SCHEMA, BindtraceError
from .protocols import proto_name

# struct bind_key / bind_event / bind_stats of bpf/bind.h, little-endian x86/arm64
KEY_FMT = struct.Struct("<Q7Ii3H2B16s16s16s")
EVENT_FMT = struct.Struct("<%dsQI4x" % KEY_FMT.size)
STATS_FMT = struct.Struct("<3Q")
if KEY_FMT.size != 96 or EVENT_FMT.size != 112:  # bind.h changed without this file
    raise ImportError("events.py is out of step with bpf/bind.h")

OPT_FREEBIND, OPT_TRANSPARENT, OPT_NO_PORT, OPT_REUSEADDR, OPT_REUSEPORT = 1, 2, 4, 8, 16
# IG v1 column order, left to right: r R N T F
OPTS_ORDER = ((OPT_REUSEPORT, "r"), (OPT_REUSEADDR, "R"), (OPT_NO_PORT, "N"),
              (OPT_TRANSPARENT, "T"), (OPT_FREEBIND, "F"))
OPTION_NAMES = ((OPT_REUSEPORT, "reuseport"), (OPT_REUSEADDR, "reuseaddr"),
                (OPT_NO_PORT, "bind_address_no_port"), (OPT_TRANSPARENT, "transparent"),
                (OPT_FREEBIND, "freebind"))


def opts_string(bits):
    return "".join(ch if bits & bit else "." for bit, ch in OPTS_ORDER)


def opts_dict(bits):
    return {name: bool(bits & bit) for bit, name in OPTION_NAMES}


def format_addr(family, raw):
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw[:16])


def errno_name(ret):
    if ret >= 0:
        return None
    return errno.errorcode.get(-ret, "error#%d" % -ret)


def clean_comm(raw):
    """comm is chosen by whoever runs the process: keep it text, never bytes."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class Clock:
    """Converts bpf_ktime_get_boot_ns() stamps to wall-clock RFC 3339 (ns)."""

    def __init__(self):
        self.offset_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(
            time.CLOCK_BOOTTIME)

    def rfc3339(self, boot_ns):
        if boot_ns is None:
            return None
        ns = boot_ns + self.offset_ns
        secs, frac = divmod(ns, 1_000_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac


_users = {}


def user_name(uid):
    if uid is None:
        return None
    if uid not in _users:
        try:
            _users[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _users[uid] = str(uid)
    return _users[uid]


def key_fields(raw_key):
    """The identity part of a record, as a dict of the event shape."""
    (cgroup_id, pid, ppid, uid, gid, netns, mntns, bound_dev_if, ret, proto, port, req_port,
     family, opts, addr, req_addr, comm) = KEY_FMT.unpack(raw_key)
    return {
        "pid": pid, "ppid": ppid, "uid": uid, "gid": gid, "user": user_name(uid),
        "comm": clean_comm(comm), "proto": proto_name(proto), "family": family,
        "addr": format_addr(family, addr), "port": port,
        "requested_addr": format_addr(family, req_addr),
        "requested_port": req_port, "opts": opts_string(opts), "options": opts_dict(opts),
        "if_index": bound_dev_if, "if": "" if bound_dev_if == 0 else None,
        "error": errno_name(ret), "ret": ret, "netns": netns, "mntns": mntns,
        "cgroup_id": cgroup_id,
    }


EVENT_KEYS = ("schema", "timestamp", "pid", "tid", "ppid", "uid", "gid", "user", "comm", "proto",
              "family", "addr", "port", "requested_addr", "requested_port", "opts", "options",
              "if_index", "if", "error", "ret", "netns", "mntns", "cgroup_id", "container", "k8s")


def _ordered(fields):
    out = {k: fields.get(k) for k in EVENT_KEYS}
    for k, v in fields.items():
        if k not in out:
            out[k] = v
    return out


def _check_size(what, raw, fmt):
    # a record of another size means bind.h and this decoder disagree: say so
    # instead of a struct.error, or decoding garbage from a longer buffer
    if not isinstance(raw, (bytes, bytearray, memoryview)) or len(raw) != fmt.size:
        size = len(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else type(raw).__name__
        raise BindtraceError("malformed %s record: %s bytes, expected %d; the BPF object and the "
                             "host library are from different versions, reinstall the "
                             "collection" % (what, size, fmt.size))


def decode_event(raw, clock):
    _check_size("bind event", raw, EVENT_FMT)
    raw_key, ts, tid = EVENT_FMT.unpack(raw)
    fields = key_fields(raw_key)
    fields.update(schema=SCHEMA, timestamp=clock.rfc3339(ts), tid=tid, container=None, k8s=None)
    return _ordered(fields)


def decode_summary(raw_key, raw_stats, clock):
    _check_size("summary key", raw_key, KEY_FMT)
    _check_size("summary stats", raw_stats, STATS_FMT)
    count, first_ts, last_ts = STATS_FMT.unpack(raw_stats)
    fields = key_fields(raw_key)
    fields.update(schema=SCHEMA, timestamp=clock.rfc3339(first_ts), tid=None, container=None,
                  k8s=None, count=count, first_seen=clock.rfc3339(first_ts),
                  last_seen=clock.rfc3339(last_ts))
    return _ordered(fields)


def own_netns():
    return os.stat("/proc/self/ns/net").st_ino
