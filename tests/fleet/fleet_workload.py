"""Bind workloads that run inside one fleet host's network namespace.

A Binder holds one TCP listener per requested (addr, port) for its whole life
and, every `interval` seconds, binds a fresh socket to the same address and
port and closes it again. So whenever a trace window opens, the tracer sees
binds from this process, and the listener snapshot sees exactly one LISTEN
socket per port (the re-bound sockets never listen, and a bound-only TCP
socket is not in /proc/net/tcp). All sockets set SO_REUSEPORT so the re-binds
succeed while the listener holds the port: their opts read "r....".

Started as `ip netns exec <ns> /usr/bin/python3 -c SCRIPT SPEC`; `ip netns
exec` execs the command in place, so the Popen PID is the workload's PID.
"""
import json
import subprocess

PYTHON = "/usr/bin/python3"

SCRIPT = r"""
import json, signal, socket, sys, time
spec = json.loads(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))

def sock(family):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return s

binds = []
held = []
for b in spec["binds"]:
    fam = socket.AF_INET6 if ":" in b["addr"] else socket.AF_INET
    s = sock(fam)
    s.bind((b["addr"], b["port"]))
    s.listen(16)
    held.append(s)
    binds.append((fam, b["addr"], b["port"]))
print("ready", flush=True)
while True:
    for fam, addr, port in binds:
        s = sock(fam)
        s.bind((addr, port))
        s.close()
    time.sleep(spec["interval"])
"""


class Binder(object):
    """`binds`: list of (addr, port) pairs, TCP, bound inside host `host`."""

    def __init__(self, fleet, host, binds, interval=0.2, log=None):
        """`log`: a file for the workload's stderr; with it the workload runs
        in its own session and outlives the caller (the harness CLI's `bind`)."""
        self.fleet = fleet
        self.host = host
        self.binds = [(a, int(p)) for a, p in binds]
        self.interval = interval
        self.log = log
        self.proc = None

    def start(self, timeout=10):
        spec = json.dumps({"binds": [{"addr": a, "port": p} for a, p in self.binds],
                           "interval": self.interval})
        err = open(self.log, "a") if self.log else subprocess.PIPE
        try:
            self.proc = subprocess.Popen(
                self.fleet.exec_argv(self.host, [PYTHON, "-c", SCRIPT, spec]),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                universal_newlines=True, start_new_session=bool(self.log))
        finally:
            if self.log:
                err.close()
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            self.proc.wait(timeout=timeout)
            why = open(self.log).read() if self.log else self.proc.stderr.read()
            raise RuntimeError("workload in %s did not start: %s" % (self.host, why.strip()))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
