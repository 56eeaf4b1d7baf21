"""Listen lifecycle on the real kernel (sys_exit_listen tracepoint here):
a TCP server that binds, listens and closes within the window is a listener
of the window (listened, backlog) and unexpected under a policy that does not
allow it; a client bind (bind then connect) is not a listener; a port-0 bind
that listens is a listener on its real port (its bind is counted with the
client binds); listen() without bind too."""
import json
import os
import subprocess

import pytest

from bindtrace.facts import collect_facts, unexpected_failure

CHILD = r"""
import json, os, socket, sys
h = socket.socket(); h.bind(("127.0.0.1", 0)); h.listen(8)     # before the window
print(json.dumps({"pid": os.getpid(), "h": h.getsockname()[1]}), flush=True)
def free(kind=socket.SOCK_STREAM):
    t = socket.socket(socket.AF_INET, kind); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    t.close(); return p
A, B, D = free(), free(), free(socket.SOCK_DGRAM)
sys.stdin.readline()                                            # "go": the window is open
a = socket.socket(); a.bind(("127.0.0.1", A)); a.listen(7); a.close()
b = socket.socket(); b.bind(("127.0.0.1", B))
b.connect(("127.0.0.1", h.getsockname()[1]))                  # a client: bind then connect
c = socket.socket(); c.bind(("127.0.0.1", 0)); c.listen(3)      # port 0, then listen: stays
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.bind(("127.0.0.1", D))
e = socket.socket(socket.AF_INET6); e.listen(2)                 # listen without bind: [::]:port
ino = lambda s: os.fstat(s.fileno()).st_ino
print(json.dumps({"A": A, "B": B, "C": c.getsockname()[1], "D": d.getsockname()[1],
                  "E": e.getsockname()[1], "c_ino": ino(c), "e_ino": ino(e)}), flush=True)
sys.stdin.readline()
"""


class Child(object):
    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, universal_newlines=True)
        first = json.loads(self.proc.stdout.readline())
        self.pid, self.h = first["pid"], first["h"]
        self.ports = None

    def go(self):
        """Called by the window loop once the tracer is attached (should_stop)."""
        if self.ports is None:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            self.ports = json.loads(self.proc.stdout.readline())
        return False

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.mark.parametrize("build", ["fast", "compat"])
def test_listeners_of_the_window_and_clients(build, monkeypatch):
    if build == "compat":
        monkeypatch.setenv("BINDTRACE_CORE_PROGRAM", "compat")
    child = Child()
    try:
        facts = collect_facts(should_stop=child.go, duration=2, pid=child.pid, backend="core",
                              allow=[{"port": child.h, "proto": "tcp"}],
                              fail_on_unexpected=True)
        p = child.ports
        binds = {(b["proto"], b["port"]): b for b in facts["binds"]}
        assert {k: (b["listened"], b["backlog"]) for k, b in binds.items()} == {
            ("TCP", p["A"]): (True, 7),          # bound, listened, closed
            ("TCP", p["B"]): (False, None),      # a client: bind then connect
            # a port-0 bind is counted with the client binds (port 0, the range of ports);
            # the socket that then listened is a listener on its real port (below)
            ("TCP", 0): (False, None),
            ("UDP", p["D"]): (False, None)}      # UDP has no listen()
        assert (binds[("TCP", 0)]["port_min"], binds[("TCP", 0)]["port_max"]) == (p["C"], p["C"])
        mine = {(l["proto"], l["port"]): l for l in facts["listeners"] if l["pid"] == child.pid}
        assert {k: (l["addr"], l["seen"], l["listened"], l["backlog"], l["verdict"], l["state"])
                for k, l in mine.items()} == {
            ("TCP", child.h): ("127.0.0.1", "snapshot", False, None, "expected", "LISTEN"),
            ("TCP", p["A"]): ("127.0.0.1", "window", True, 7, "unexpected", "LISTEN"),
            ("TCP", p["C"]): ("127.0.0.1", "snapshot", True, 3, "unexpected", "LISTEN"),
            ("TCP", p["E"]): ("::", "snapshot", True, 2, "unexpected", "LISTEN"),
            ("UDP", p["D"]): ("127.0.0.1", "snapshot", None, None, "unexpected", "UNCONN")}
        gone = mine[("TCP", p["A"])]
        assert (gone["comm"], gone["exe"], gone["exposure"], gone["exposure_families"]) == (
            "python3", os.path.realpath("/usr/bin/python3"), "loopback", [4])
        assert mine[("TCP", p["C"])]["inode"] == p["c_ino"]
        assert mine[("TCP", p["E"])]["inode"] == p["e_ino"]
        # fail_on_unexpected names the listener that came and went
        msg = unexpected_failure(facts, True)
        assert "TCP 127.0.0.1:%d python3 pid %d" % (p["A"], child.pid) in msg
        assert "TCP 127.0.0.1:%d " % p["B"] not in msg.split("; unexpected binds")[0]
        assert facts["listens_full"] == 0
    finally:
        child.stop()
