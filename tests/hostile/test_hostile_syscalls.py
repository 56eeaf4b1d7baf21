"""bind() called the way an attacker or a fuzzer would: NULL and wild address
pointers, zero and huge lengths, a file or a closed fd instead of a socket, a
unix socket, the wrong address family. The kernel program reads user memory
and the socket defensively: each failed call is one clean event with the
kernel's errno, calls on things that are not inet sockets are not events,
and nothing is garbage."""
import ctypes
import errno as E
import os
import socket
import struct

from bindtrace.filters import make_config
from helpers.kernel import trace_around

PORT = 29490
LIBC = ctypes.CDLL(None, use_errno=True)


def raw_bind(fd, addr, length):
    """bind(2) itself, with any pointer and length -> errno (0 on success)."""
    ret = LIBC.bind(fd, addr, length)
    return 0 if ret == 0 else ctypes.get_errno()


def calls():
    sin = struct.pack("<HH4s8x", socket.AF_INET, socket.htons(PORT), socket.inet_aton("127.0.0.1"))
    sin6 = struct.pack("<HHI16sI", socket.AF_INET6, socket.htons(PORT + 1), 0,
                       socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1"), 0)
    # an abstract unix address (leading NUL): no file left anywhere
    unix = struct.pack("<H", socket.AF_UNIX) + b"\0bt-hostile-%d" % os.getpid()
    keep = []

    def sock(family=socket.AF_INET):
        s = socket.socket(family)
        keep.append(s)
        return s.fileno()

    with open("/etc/hostname") as f:
        errnos = [
            raw_bind(f.fileno(), sin, len(sin)),                      # not a socket
            raw_bind(999, sin, len(sin)),                             # no such fd
            raw_bind(sock(), None, 16),                               # NULL
            raw_bind(sock(), ctypes.c_void_p(0x10), 16),              # wild pointer
            raw_bind(sock(), sin, 0),                                 # zero length
            raw_bind(sock(), sin, 1 << 20),                           # huge length
            raw_bind(sock(socket.AF_UNIX), unix, len(unix)),          # not inet
            raw_bind(sock(socket.AF_INET6), sin6, len(sin6)),         # v4-mapped v6: works
            raw_bind(sock(), sin6, len(sin6)),                        # v6 address, v4 socket
        ]
    for s in keep:
        s.close()
    return errnos


def test_hostile_bind_calls_give_clean_events():
    cfg = make_config(pid=os.getpid(), ignore_errors=False)
    errnos, events, stats = trace_around(cfg, calls)
    assert errnos == [E.ENOTSOCK, E.EBADF, E.EFAULT, E.EFAULT, E.EINVAL, E.EINVAL, 0, 0,
                      E.EAFNOSUPPORT]
    got = [(e["proto"], e["family"], e["addr"], e["port"], e["requested_addr"],
            e["requested_port"], e["error"], e["ret"]) for e in events]
    assert got == [
        ("TCP", 4, "0.0.0.0", 0, "0.0.0.0", 0, "EFAULT", -E.EFAULT),
        ("TCP", 4, "0.0.0.0", 0, "0.0.0.0", 0, "EFAULT", -E.EFAULT),
        ("TCP", 4, "0.0.0.0", 0, "0.0.0.0", 0, "EINVAL", -E.EINVAL),
        ("TCP", 4, "0.0.0.0", 0, "127.0.0.1", PORT, "EINVAL", -E.EINVAL),
        ("TCP", 6, "::ffff:127.0.0.1", PORT + 1, "::ffff:127.0.0.1", PORT + 1, None, 0),
        ("TCP", 4, "0.0.0.0", 0, "0.0.0.0", PORT + 1, "EAFNOSUPPORT", -E.EAFNOSUPPORT),
    ]
    assert all(e["pid"] == os.getpid() and e["tid"] == os.getpid() for e in events)
    assert stats["lost"] == 0
