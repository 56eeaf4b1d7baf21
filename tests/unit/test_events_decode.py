"""The Python decoder against the C layout (bpf/bind.h) and IG's OPTS vectors."""
import os
import re
import socket
import struct

import pytest

from bindtrace import events
from bindtrace.backend_core import CONFIG_FMT, ports_bitmap
from bindtrace.protocols import proto_name

BIND_H = os.path.join(os.path.dirname(__file__), "..", "..", "collection", "ansible_collections", "fleetaudit", "bindtrace", "bpf", "bind.h")


def c_struct_size(name):
    """Sum the member sizes of a struct in bind.h (all members are naturally aligned)."""
    sizes = {"__u8": 1, "char": 1, "__u16": 2, "__u32": 4, "__s32": 4, "__u64": 8}
    body = re.search(r"struct %s \{(.*?)\};" % name, open(BIND_H).read(), re.S).group(1)
    total = 0
    for typ, member in re.findall(r"^\s*(struct \w+|\w+) (\w+(?:\[\w+\])?);", body, re.M):
        if typ.startswith("struct "):
            total += c_struct_size(typ.split()[1])
            continue
        count = 1
        m = re.search(r"\[(\w+)\]", member)
        if m:
            count = 16 if m.group(1) == "TASK_COMM_LEN" else int(m.group(1))
        total += sizes[typ] * count
    return total


def test_layout_matches_bind_h():
    assert c_struct_size("bind_key") == events.KEY_FMT.size
    assert c_struct_size("bind_event") == events.EVENT_FMT.size
    assert c_struct_size("bind_stats") == events.STATS_FMT.size
    assert c_struct_size("bind_config") == CONFIG_FMT.size


@pytest.mark.parametrize("bits,text", [
    (0, "....."), (16, "r...."), (8, ".R..."), (2, "...T."), (4, "..N.."), (1, "....F"),
    (16 | 8, "rR..."), (2 | 4 | 1, "..NTF"),
])
def test_opts_string_is_igs_rRNTF_order(bits, text):
    # the test vectors of IG's tracer_test.go TestBindTracerOpts
    assert events.opts_string(bits) == text


def test_proto_names_follow_ig_v1():
    assert [proto_name(n) for n in (0, 6, 17, 132, 136, 255, 262, 999)] == \
        ["IP", "TCP", "UDP", "SCTP", "UDPLITE", "RAW", "MPTCP", "UNKNOWN"]


def raw_key(**kw):
    v = dict(cgroup_id=7, pid=10, ppid=1, uid=0, gid=0, netns=1, mntns=2, dev=0, ret=0, proto=6,
             port=80, req_port=80, family=4, opts=8, addr=socket.inet_aton("10.0.0.1"),
             req_addr=socket.inet_aton("10.0.0.1"), comm=b"nc")
    v.update(kw)
    return events.KEY_FMT.pack(v["cgroup_id"], v["pid"], v["ppid"], v["uid"], v["gid"], v["netns"],
                               v["mntns"], v["dev"], v["ret"], v["proto"], v["port"], v["req_port"],
                               v["family"], v["opts"], v["addr"], v["req_addr"], v["comm"])


def test_decode_event_and_summary():
    clock = events.Clock()
    ev = events.decode_event(events.EVENT_FMT.pack(raw_key(), 123, 11), clock)
    assert list(ev)[:3] == ["schema", "timestamp", "pid"]
    assert (ev["addr"], ev["port"], ev["opts"], ev["tid"], ev["comm"], ev["if"]) == \
        ("10.0.0.1", 80, ".R...", 11, "nc", "")
    assert ev["client"] is False
    rec = events.decode_summary(raw_key(ret=-98), struct.pack("<3Q2H2I4x", 5, 100, 200, 80, 80,
                                                              10, 1), clock)
    assert (rec["count"], rec["error"], rec["tid"]) == (5, "EADDRINUSE", None)
    assert (rec["port"], rec["port_min"], rec["port_max"], rec["client"]) == (80, 80, 80, False)
    assert rec["first_seen"] < rec["last_seen"]


def test_decode_client_summary_takes_ports_and_first_binder_from_the_stats():
    # a client key (bind.h) has port, pid and ppid 0: the stats hold them
    key = raw_key(proto=17, port=0, req_port=0, pid=0, ppid=0)
    rec = events.decode_summary(key, struct.pack("<3Q2H2I4x", 2000, 100, 200, 32768, 60999,
                                                 4321, 4320), events.Clock())
    assert (rec["client"], rec["port"], rec["port_min"], rec["port_max"], rec["count"],
            rec["pid"], rec["ppid"]) == (True, 0, 32768, 60999, 2000, 4321, 4320)
    # a raw socket's port is its protocol: port 0 asked there is no client bind
    raw = events.decode_event(events.EVENT_FMT.pack(raw_key(proto=255, port=0, req_port=0), 1, 1),
                              events.Clock())
    assert raw["client"] is False


def test_hostile_comm_is_text():
    ev = events.decode_event(events.EVENT_FMT.pack(raw_key(comm=b"\xff\x1b[31m<x>"), 1, 1),
                             events.Clock())
    assert ev["comm"] == "\ufffd\x1b[31m<x>"


def test_ports_bitmap():
    words = ports_bitmap([(63, 65), (4242, 4242)])
    assert words == {0: 1 << 63, 1: 0b11, 4242 >> 6: 1 << (4242 & 63)}
