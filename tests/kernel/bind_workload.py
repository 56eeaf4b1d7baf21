"""A bind workload with known answers, for the backend-comparison tests.

argv: comm, base port B. Prints {"pid"} and waits for "go" on stdin; then
binds (main thread unless noted) and prints the truth of every bind, in order:
 b1 TCP4 127.0.0.1:0            b2 UDP6 [::1]:B
 b3 TCP4 0.0.0.0:B+1 SO_REUSEADDR
 b4 TCP4 127.0.0.1:B+1 -> EADDRINUSE (b3 holds it)
 b5 TCP4 10.254.7.7:0 IP_FREEBIND + IP_BIND_ADDRESS_NO_PORT (port stays 0)
 b6 UDP4 127.0.0.1:0 bound to ifindex 1 (lo)
 (a unix-socket bind: not a network bind, never an event)
 b8 UDP4 127.0.0.1:B+2, three times (a new socket each time)
 b9 UDP4 127.0.0.1:0 in a child running as uid 65534
 b10 UDP4 0.0.0.0:0 in a thread inside a new network namespace"""
import ctypes
import errno
import json
import os
import socket
import sys
import tempfile
import threading

SO_BINDTOIFINDEX, IP_FREEBIND, IP_BIND_ADDRESS_NO_PORT = 62, 15, 24
OPTS = {(socket.SOL_SOCKET, socket.SO_REUSEADDR): "R", (socket.SOL_IP, IP_FREEBIND): "F",
        (socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT): "N"}


def opts_text(opts):
    letters = {OPTS[o] for o in opts}
    return "".join(c if c in letters else "." for c in "rRNTF")


def bind(fam, kind, addr, port, opts=(), if_index=0, keep=None):
    s = socket.socket(fam, kind)
    for level, opt in opts:
        s.setsockopt(level, opt, 1)
    if if_index:
        s.setsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX, if_index)
    try:
        s.bind((addr, port))
        ret = 0
    except OSError as exc:
        ret = -exc.errno
    name = s.getsockname()
    truth = {"pid": os.getpid(), "tid": threading.get_native_id(), "uid": os.getuid(),
             "comm": open("/proc/thread-self/comm").read().strip(),
             "family": 6 if fam == socket.AF_INET6 else 4,
             "proto": "TCP" if kind == socket.SOCK_STREAM else "UDP",
             "addr": name[0], "port": name[1], "requested_addr": addr, "requested_port": port,
             "opts": opts_text(opts), "if_index": if_index,
             "error": None if ret == 0 else errno.errorcode[-ret], "ret": ret,
             "netns": os.stat("/proc/thread-self/ns/net").st_ino}
    if keep is not None:
        keep.append(s)
    else:
        s.close()
    return truth


def in_child_as(uid, fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setgid(uid)
        os.setuid(uid)
        os.write(w, json.dumps(fn()).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)


def in_new_netns(fn):
    box = {}

    def work():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        box["truth"] = fn()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    return box["truth"]


def main():
    comm, base = sys.argv[1], int(sys.argv[2])
    with open("/proc/self/comm", "w") as f:
        f.write(comm)
    print(json.dumps({"pid": os.getpid()}), flush=True)
    assert sys.stdin.readline().strip() == "go"
    keep, truths = [], []
    v4, v6, tcp, udp = socket.AF_INET, socket.AF_INET6, socket.SOCK_STREAM, socket.SOCK_DGRAM
    truths.append(bind(v4, tcp, "127.0.0.1", 0, keep=keep))
    truths.append(bind(v6, udp, "::1", base, keep=keep))
    truths.append(bind(v4, tcp, "0.0.0.0", base + 1, [(socket.SOL_SOCKET, socket.SO_REUSEADDR)],
                       keep=keep))
    truths.append(bind(v4, tcp, "127.0.0.1", base + 1, keep=keep))
    truths.append(bind(v4, tcp, "10.254.7.7", 0, [(socket.SOL_IP, IP_FREEBIND),
                                                   (socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT)],
                       keep=keep))
    truths.append(bind(v4, udp, "127.0.0.1", 0, if_index=1, keep=keep))
    with tempfile.TemporaryDirectory() as d:
        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        u.bind(os.path.join(d, "s"))
        u.close()
    for _ in range(3):
        truths.append(bind(v4, udp, "127.0.0.1", base + 2))
    truths.append(in_child_as(65534, lambda: bind(v4, udp, "127.0.0.1", 0)))
    truths.append(in_new_netns(lambda: bind(v4, udp, "0.0.0.0", 0)))
    print(json.dumps({"truths": truths}), flush=True)
    sys.stdin.readline()  # keep the sockets until the test is done
    for s in keep:
        s.close()


if __name__ == "__main__":
    main()
