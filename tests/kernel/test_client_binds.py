"""Client binds on the real kernel (issue 19): a bind that asks for port 0 is
counted in summary mode under one key per identity without its port, with the
range of ports the kernel handed out; events mode keeps each one with its real
port; the policy gives them verdict `client` unless a `client: true` rule asks."""
import os
import socket

from bindtrace.facts import unexpected_failure
from bindtrace.filters import make_config
from bindtrace.facts import build_facts
from helpers.kernel import trace_around

ME = os.getpid()
IP_BIND_ADDRESS_NO_PORT = 24
META = {"hostname": "h1", "kernel": "k", "backend": "core", "backend_reason": "test",
        "missing_fields": [], "start": None, "end": None, "duration": 1, "own_netns": 1}


def workload(fixed_port, keep):
    """200 UDP client binds, 50 TCP IP_BIND_ADDRESS_NO_PORT binds, one TCP
    server on an assigned port, 3 UDP binds to fixed_port; -> the truth."""
    ports = []
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    for _ in range(50):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind(("127.0.0.1", 0))
            assert s.getsockname()[1] == 0          # the port comes at connect()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    keep.append(server)
    for _ in range(3):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", fixed_port))
    return {"ports": ports, "server": server.getsockname()[1]}


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_summary_counts_client_binds_per_identity_with_the_range_of_ports():
    fixed, keep = free_udp_port(), []
    truth, records, stats = trace_around(make_config(mode="summary", pid=ME),
                                         lambda: workload(fixed, keep))
    try:
        got = sorted((r["proto"], r["addr"], r["port"], r["opts"], r["client"], r["count"],
                      r["port_min"], r["port_max"], r["pid"]) for r in records)
        assert got == sorted([
            ("UDP", "127.0.0.1", 0, ".....", True, 200, min(truth["ports"]), max(truth["ports"]),
             ME),
            ("TCP", "127.0.0.1", 0, "..N..", True, 50, 0, 0, ME),
            ("TCP", "127.0.0.1", 0, ".....", True, 1, truth["server"], truth["server"], ME),
            ("UDP", "127.0.0.1", fixed, ".....", False, 3, fixed, fixed, ME)])
        assert stats["summary_full"] == 0

        # the policy: client binds are not judged...
        facts = build_facts(make_config(mode="summary"), [dict(r) for r in records], stats, META,
                            [], [{"port": fixed, "proto": "udp"}])
        assert sorted(b["verdict"] for b in facts["binds"]) == [
            "client", "client", "client", "expected"]
        assert facts["counts"]["client_binds"] == 251 and facts["counts"]["binds"] == 254
        assert unexpected_failure(facts, True) is None
        # ...until a client rule asks: then only what it allows is expected
        rules = [{"port": fixed, "proto": "udp"}, {"client": True, "proto": "udp"}]
        facts = build_facts(make_config(mode="summary"), [dict(r) for r in records], stats, META,
                            [], rules)
        verdicts = {(b["proto"], b["opts"], b["client"]): b["verdict"] for b in facts["binds"]}
        assert verdicts == {("UDP", ".....", True): "expected", ("TCP", "..N..", True): "unexpected",
                            ("TCP", ".....", True): "unexpected",
                            ("UDP", ".....", False): "expected"}
        comm = records[0]["comm"]
        # named in record order, i.e. first-bind order to a clock tick (summary stamps are
        # tick-grained): the 50 IP_BIND_ADDRESS_NO_PORT binds came first, or in the same tick
        named = ["TCP 127.0.0.1:0 client binds x50 %s pid %d" % (comm, ME),
                 "TCP 127.0.0.1:0 client bind x1 (port %d) %s pid %d" % (truth["server"], comm, ME)]
        tcp = [b for b in facts["binds"] if b["proto"] == "TCP"]
        if tcp[0]["count"] == 1:
            assert tcp[0]["first_seen"] == tcp[1]["first_seen"]   # only a tie puts it first
            named.reverse()
        assert unexpected_failure(facts, True) == (
            "unexpected binds on h1: %s, %s. No allow rule matches them: stop them, or add a "
            "rule to allow (e.g. {port: N, proto: tcp, comm: NAME})" % tuple(named))
    finally:
        for s in keep:
            s.close()


def test_events_keep_each_client_bind_with_its_real_port():
    fixed, keep = free_udp_port(), []
    truth, events, stats = trace_around(
        make_config(mode="events", pid=ME), lambda: workload(fixed, keep),
        until=lambda _r, evs: len(evs) >= 254)
    for s in keep:
        s.close()
    udp = [e for e in events if e["proto"] == "UDP" and e["client"]]
    assert [e["port"] for e in udp] == truth["ports"]
    assert all(e["requested_port"] == 0 for e in udp)
    assert [e["port"] for e in events if e["proto"] == "TCP" and e["opts"] == "..N.."] == [0] * 50
    assert len(events) == 254 and stats["lost"] == 0
