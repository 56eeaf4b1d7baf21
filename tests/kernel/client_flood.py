"""A busy host's client binds, with known answers: N processes, each creating
M UDP sockets bound to ADDR:0 (what Java DatagramSocket(), Node dgram and many
DNS/StatsD clients do), one after the other, each closed after its bind.

argv: procs per_proc addr comm_prefix [listen]
  comm of process i is <comm_prefix><i> (two digits).
  listen: also hold a TCP socket bound to 127.0.0.1:0 that listens (a test
  server on a kernel-assigned port), opened while the flood runs.
Prints {"pids": {comm: pid}, "listen_port": P or null, "listen_pid": pid} once
every child is ready, waits for a line "go" on stdin, runs the flood and prints
{"binds": {comm: [successful binds, lowest port, highest port]}}; then holds the listener until stdin closes.

Runs under /usr/bin/python3 on purpose (stdlib only, like a host's)."""
import json
import os
import socket
import sys


def child(comm, per_proc, addr, ready_w, go_r, done_w):
    with open("/proc/self/comm", "w") as f:
        f.write(comm)
    os.write(ready_w, b"r")
    os.read(go_r, 1)
    ok, lo, hi = 0, 65536, 0
    for _ in range(per_proc):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((addr, 0))
            port = s.getsockname()[1]
            ok, lo, hi = ok + 1, min(lo, port), max(hi, port)
        finally:
            s.close()
    os.write(done_w, ("%s %d %d %d\n" % (comm, ok, lo, hi)).encode())
    os._exit(0)


def main():
    procs, per_proc, addr, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    listen = len(sys.argv) > 5 and sys.argv[5] == "listen"
    with open("/proc/self/comm", "w") as f:
        f.write(prefix + "srv")
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pids = {}
    for i in range(procs):
        comm = "%s%02d" % (prefix, i)
        pid = os.fork()
        if pid == 0:
            child(comm, per_proc, addr, ready_w, go_r, done_w)
        pids[comm] = pid
    os.close(ready_w)
    os.close(done_w)
    got = 0
    while got < procs:
        got += len(os.read(ready_r, procs))
    print(json.dumps({"pids": pids}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    os.write(go_w, b"g" * procs)      # every child starts at once
    lst = None
    if listen:                        # bind 0, then listen: a server on an assigned port
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.bind(("127.0.0.1", 0))
        lst.listen(8)
    text = b""
    while True:
        chunk = os.read(done_r, 65536)
        if not chunk:
            break
        text += chunk
    for pid in pids.values():
        os.waitpid(pid, 0)
    binds = {}
    for line in text.decode().splitlines():
        comm, ok, lo, hi = line.split()
        binds[comm] = [int(ok), int(lo), int(hi)]
    print(json.dumps({"binds": binds, "listen_port": lst.getsockname()[1] if lst else None,
                      "listen_pid": os.getpid()}), flush=True)
    sys.stdin.read()                  # hold the listener until the test is done


if __name__ == "__main__":
    main()
