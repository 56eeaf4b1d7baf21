"""Listener snapshot (bindtrace.listeners) against real sockets: exact addresses
and ports for both families and protocols, owner pid/comm/user, the states that
count, and other network namespaces (a real `unshare --net` child)."""
import json
import os
import pwd
import socket
import subprocess
import sys

import pytest

from bindtrace import cgroupfs
from bindtrace.listeners import decode_addr, parse_table, snapshot

# A child that opens the sockets it is told to, prints their bound names, then
# waits for stdin to close (the system Python, readable by any user: comm "python3").
CHILD = r"""
import json, os, socket, sys
out = []
keep = []
for proto, family, addr, listen in json.loads(sys.argv[1]):
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    s = socket.socket(af, socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM)
    if family == 6 and addr == "::":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 0))
    if proto == "TCP" and listen:
        s.listen(8)
    keep.append(s)
    out.append([s.fileno(), s.getsockname()[1], os.fstat(s.fileno()).st_ino])
print(json.dumps({"pid": os.getpid(), "socks": out,
                  "netns": os.stat("/proc/self/ns/net").st_ino}), flush=True)
sys.stdin.read()
"""


class Child(object):
    def __init__(self, specs, prefix=(), user=None):
        pre = None
        if user is not None:
            def pre():
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
        self.proc = subprocess.Popen(list(prefix) + ["/usr/bin/python3", "-c", CHILD,
                                                     json.dumps(specs)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=pre)
        line = self.proc.stdout.readline()
        assert line, "child failed to start"
        info = json.loads(line)
        self.pid, self.netns = info["pid"], info["netns"]
        self.socks = [dict(zip(("fd", "port", "inode"), s)) for s in info["socks"]]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def by_inode(listeners):
    return {r["inode"]: r for r in listeners}


def test_decode_addr_is_native_endian_words():
    # values as printed by the kernel on this (little-endian) machine
    assert decode_addr("0100007F:1F90", 4) == ("127.0.0.1", 8080)
    assert decode_addr("0302017F:0016", 4) == ("127.1.2.3", 22)
    assert decode_addr("00000000000000000000000001000000:0035", 6) == ("::1", 53)
    assert decode_addr("0000000000000000FFFF00000100007F:FFFF", 6) == ("::ffff:127.0.0.1", 65535)
    assert decode_addr("000080FE00000000FF005452123456FE:01BB", 6) == (
        "fe80::5254:ff:fe56:3412", 443)


def test_parse_table_keeps_listen_and_unconnected_udp_only():
    tcp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
           "timeout inode\n"
           "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 "
           "       0 4242 1 0000000000000000 100 0 0 10 0\n"
           "   1: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0 "
           "       0 4343 1 0000000000000000 20 4 30 10 -1\n")
    rows = parse_table(tcp, "TCP", 4, 0x0A, "LISTEN")
    assert rows == [{"proto": "TCP", "family": 4, "addr": "127.0.0.1", "port": 8080,
                     "state": "LISTEN", "inode": 4242, "uid": 1000}]
    udp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
           "timeout inode ref pointer drops\n"
           "  10: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0 "
           "       0 11 2 0000000000000000 0\n"
           "  11: 0100007F:9C40 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0 "
           "       0 12 2 0000000000000000 0\n")
    assert parse_table(udp, "UDP", 4, 0x07, "UNCONN") == [
        {"proto": "UDP", "family": 4, "addr": "0.0.0.0", "port": 53, "state": "UNCONN",
         "inode": 11, "uid": 0}]


BASE_KEYS = ["proto", "family", "addr", "port", "state", "inode", "uid", "user", "pid", "comm",
             "netns", "container", "k8s", "verdict"]


@pytest.mark.parametrize("source", ["sock_diag", "proc_net"])
def test_real_sockets_exact_addr_port_owner(source):
    specs = [["TCP", 4, "127.1.2.3", True], ["TCP", 6, "::1", True], ["UDP", 4, "0.0.0.0", False],
             ["UDP", 6, "::1", False], ["TCP", 4, "127.0.0.1", False],  # bound, not listening
             ["TCP", 6, "::", True]]
    child = Child(specs)
    try:
        snap = by_inode(snapshot("host", source=source))
        common = {"uid": 0, "user": "root", "pid": child.pid, "comm": "python3",
                  "netns": child.netns, "container": None, "k8s": None, "verdict": None}
        want = [("TCP", 4, "127.1.2.3", "LISTEN"), ("TCP", 6, "::1", "LISTEN"),
                ("UDP", 4, "0.0.0.0", "UNCONN"), ("UDP", 6, "::1", "UNCONN"), None,
                ("TCP", 6, "::", "LISTEN")]
        # the child sets IPV6_V6ONLY on its :: socket; sock_diag reads it, /proc/net cannot
        v6only = {"sock_diag": [None, True, None, True, None, True],
                  "proc_net": [None] * 6}[source]
        exposure = [("loopback", [4]), ("loopback", [6]), ("wildcard", [4]), ("loopback", [6]),
                    None, ("wildcard", [6] if source == "sock_diag" else [4, 6])]
        for i, (sock, w) in enumerate(zip(child.socks, want)):
            if w is None:
                assert sock["inode"] not in snap     # bound but not listening: no listener
                continue
            expected = dict(common, proto=w[0], family=w[1], addr=w[2], port=sock["port"],
                            state=w[3], inode=sock["inode"])
            rec = snap[sock["inode"]]
            assert {k: rec[k] for k in BASE_KEYS} == expected
            assert list(rec)[:len(BASE_KEYS)] == BASE_KEYS
            assert (rec["v6only"], rec["exposure"], rec["exposure_families"]) == (
                (v6only[i],) + exposure[i])
            assert rec["exe"] == os.path.realpath("/usr/bin/python3")
            assert rec["cmdline"].startswith("/usr/bin/python3 -c ")
            assert rec["seen"] == "snapshot"
            if source == "sock_diag":
                with open("/proc/%d/cgroup" % child.pid) as f:
                    path = [l.split(":", 2)[2] for l in f.read().splitlines()
                            if l.startswith("0::")][0]
                assert rec["cgroup_id"] == os.stat(
                    cgroupfs.v2_root() + path.rstrip("/")).st_ino
    finally:
        child.close()
    after = by_inode(snapshot("host", source=source))
    assert not set(s["inode"] for s in child.socks) & set(after)


def test_connected_udp_and_established_tcp_are_not_listeners():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    acc, _ = srv.accept()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect(("127.0.0.1", 9))
    try:
        snap = by_inode(snapshot("host"))
        inode = lambda s: os.fstat(s.fileno()).st_ino   # noqa: E731
        assert snap[inode(srv)]["port"] == srv.getsockname()[1]
        assert snap[inode(srv)]["pid"] == os.getpid()
        for s in (cli, acc, udp):
            assert inode(s) not in snap
    finally:
        for s in (srv, cli, acc, udp):
            s.close()


def test_shared_socket_owned_by_parent_and_user_name():
    nobody = pwd.getpwnam("nobody")
    child = Child([["TCP", 4, "127.0.0.1", True]], user=nobody)
    try:
        rec = by_inode(snapshot("host"))[child.socks[0]["inode"]]
        assert (rec["uid"], rec["user"], rec["pid"], rec["comm"]) == (
            nobody.pw_uid, "nobody", child.pid, "python3")
    finally:
        child.close()
    # a forked worker holds the same fd: the parent is the owner, whatever the
    # pid order (pids wrap around on a busy machine: the child's may be lower)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE, pass_fds=(srv.fileno(),))
    try:
        rec = by_inode(snapshot("host"))[os.fstat(srv.fileno()).st_ino]
        assert rec["pid"] == os.getpid() != worker.pid
    finally:
        worker.stdin.close()
        worker.wait(10)
        srv.close()


def test_other_network_namespace_read_through_its_process():
    own = os.stat("/proc/self/ns/net").st_ino
    setup = ("ip link set lo up && ip addr add 10.77.1.2/32 dev lo && "
             "ip -6 addr add fd00:77::1234/128 dev lo nodad && exec \"$@\"")
    child = Child([["TCP", 4, "10.77.1.2", True], ["UDP", 6, "fd00:77::1234", False],
                             ["TCP", 4, "0.0.0.0", True]],
                  prefix=["unshare", "--net", "--", "sh", "-c", setup, "sh"])
    try:
        assert child.netns != own
        everything = by_inode(snapshot("all"))
        mine = [everything[s["inode"]] for s in child.socks]
        assert [(r["proto"], r["family"], r["addr"], r["port"], r["netns"], r["pid"])
                for r in mine] == [
            ("TCP", 4, "10.77.1.2", child.socks[0]["port"], child.netns, child.pid),
            ("UDP", 6, "fd00:77::1234", child.socks[1]["port"], child.netns, child.pid),
            ("TCP", 4, "0.0.0.0", child.socks[2]["port"], child.netns, child.pid)]
        # host: only the caller's own namespace; an inode: only that namespace
        assert not set(s["inode"] for s in child.socks) & set(by_inode(snapshot("host")))
        only = snapshot(child.netns)
        assert set(r["netns"] for r in only) == {child.netns}
        assert sorted(r["inode"] for r in only) == sorted(s["inode"] for s in child.socks)
    finally:
        child.close()


@pytest.mark.parametrize("netns", ["all", "host"])
def test_snapshot_is_sorted_and_unique(netns):
    snap = snapshot(netns)
    keys = [(r["netns"], r["inode"]) for r in snap]
    assert len(keys) == len(set(keys))
    assert snap == sorted(snap, key=lambda r: (r["netns"], r["proto"], r["family"], r["port"],
                                               r["addr"], r["inode"]))
