"""Decode raw kernel records (bpf/bind.h) into the one event shape of DESIGN.md."""
import os
import time

from . import BindtraceError

# the formats and readers of the record (record.py, checked against bpf/bind.h);
# some are imported here for the modules and tests that use them as events.*
# pylint: disable-next=unused-import
from .record import (EVENT_FIELDS, EVENT_FMT, EVENT_KEYS, EVENT_MEMBERS, KEY_FMT,  # noqa: F401
                     KEY_MEMBERS, OPTION_NAMES, OPTS_ORDER, STATS_FMT, STATS_MEMBERS,
                     SUMMARY_FIELDS, clean_comm, errno_name, format_addr, make_decoder,
                     opts_dict, opts_string, user_name)


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


_KEY_DECODE = make_decoder([f for f in EVENT_FIELDS if f.args and
                           all(a in KEY_MEMBERS for a in f.args)], KEY_MEMBERS)
_EVENT_DECODE = make_decoder(EVENT_FIELDS, KEY_MEMBERS + EVENT_MEMBERS[1:])
# one record per distinct bind: its time is its first bind's, no thread; its
# pid/ppid the first binder's (a client key has none: bind.h's bind_stats)
_SUMMARY_DECODE = make_decoder(EVENT_FIELDS + SUMMARY_FIELDS, KEY_MEMBERS + STATS_MEMBERS,
                               fixed={"tid": None}, alias={"ts": "first_ts", "pid": "first_pid",
                                                           "ppid": "first_ppid"})


def key_fields(raw_key):
    """The identity part of a record, as a dict of the event shape."""
    return _KEY_DECODE(KEY_FMT.unpack(raw_key), None)


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
    values = EVENT_FMT.unpack(raw)    # the key (bytes), then the event's own members
    return _EVENT_DECODE(KEY_FMT.unpack(values[0]) + values[1:], clock)


def decode_summary(raw_key, raw_stats, clock):
    _check_size("summary key", raw_key, KEY_FMT)
    _check_size("summary stats", raw_stats, STATS_FMT)
    return _SUMMARY_DECODE(KEY_FMT.unpack(raw_key) + STATS_FMT.unpack(raw_stats), clock)


def own_netns():
    return os.stat("/proc/self/ns/net").st_ino
