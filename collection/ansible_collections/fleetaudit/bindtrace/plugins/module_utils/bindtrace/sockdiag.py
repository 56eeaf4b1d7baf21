"""Listening sockets from the kernel's socket-diagnostics netlink interface
(NETLINK_SOCK_DIAG, inet_diag), as `ss -lt` / `ss -lu` ask for them: the kernel
filters by state, so a host with 100k established connections returns only its
listeners, instead of printing every socket into /proc/net/tcp for us to parse.

Pure stdlib (socket + struct). A netlink socket sees the network namespace it
was created in: other namespaces are read by creating the socket inside them
(setns on this thread only, then back).

What the kernel gives per socket (include/uapi/linux/inet_diag.h): family,
state, local address and port, uid, inode, the socket cookie, and as netlink
attributes INET_DIAG_SKV6ONLY (IPV6_V6ONLY of an AF_INET6 listener) and
INET_DIAG_CGROUP_ID (the cgroup v2 id of the socket's creator, Linux 5.7+),
which lets the owner lookup read only the processes of that cgroup.
"""
import ctypes
import errno
import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
CLONE_NEWNET = 0x40000000

TCP_LISTEN = 10
TCP_CLOSE = 7          # UDP: bound and not connected
INET_DIAG_SKV6ONLY = 11
INET_DIAG_CGROUP_ID = 21

NLMSGHDR = struct.Struct("=IHHII")
# struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48 bytes)
REQ = struct.Struct("=BBBxI48s")
# struct inet_diag_msg: family, state, timer, retrans, sockid{sport, dport (network order),
# src[16], dst[16], if, cookie[2]}, expires, rqueue, wqueue, uid, inode
MSG = struct.Struct("=BBBB2s2s16s16sIII5I")
RTA = struct.Struct("=HH")
U64 = struct.Struct("=Q")

# (proto name, IPPROTO, family, state wanted, state name)
QUERIES = (("TCP", socket.IPPROTO_TCP, 4, TCP_LISTEN, "LISTEN"),
           ("TCP", socket.IPPROTO_TCP, 6, TCP_LISTEN, "LISTEN"),
           ("UDP", socket.IPPROTO_UDP, 4, TCP_CLOSE, "UNCONN"),
           ("UDP", socket.IPPROTO_UDP, 6, TCP_CLOSE, "UNCONN"))


class SockDiagError(OSError):
    """The netlink interface is missing or refused (old kernel, no inet_diag
    module, seccomp): the caller falls back to /proc/net."""


def _align(n):
    return (n + 3) & ~3


def request(seq, proto, family, states):
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    body = REQ.pack(af, proto, 0, states, b"\0" * 48)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                         NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse_attrs(buf, off, end):
    """rtattrs of one message -> {type: bytes}."""
    attrs = {}
    while off + RTA.size <= end:
        alen, atype = RTA.unpack_from(buf, off)
        if alen < RTA.size:
            break
        attrs[atype & 0x3fff] = bytes(buf[off + RTA.size:off + alen])
        off += _align(alen)
    return attrs


def parse_msg(buf, off, end, proto, state_name):
    """One inet_diag_msg -> a listener dict (proto, family, addr, port, state,
    inode, uid, v6only, cgroup_id, cookie)."""
    (af, _state, _timer, _retrans, sport, _dport, src, _dst, _ifindex, cookie_lo, cookie_hi,
     _expires, _rq, _wq, uid, inode) = MSG.unpack_from(buf, off)
    family = 4 if af == socket.AF_INET else 6
    addr = socket.inet_ntop(socket.AF_INET, src[:4]) if family == 4 else socket.inet_ntop(
        socket.AF_INET6, src)
    attrs = parse_attrs(buf, off + _align(MSG.size), end)
    v6only = None
    if family == 6 and INET_DIAG_SKV6ONLY in attrs:
        v6only = bool(attrs[INET_DIAG_SKV6ONLY][:1] != b"\0")
    cgroup_id = None
    if INET_DIAG_CGROUP_ID in attrs and len(attrs[INET_DIAG_CGROUP_ID]) >= 8:
        cgroup_id = U64.unpack(attrs[INET_DIAG_CGROUP_ID][:8])[0]
    return {"proto": proto, "family": family, "addr": addr,
            "port": struct.unpack("!H", sport)[0], "state": state_name, "inode": inode,
            "uid": uid, "v6only": v6only, "cgroup_id": cgroup_id,
            "cookie": cookie_lo | (cookie_hi << 32)}


def dump(sock, seq, query):
    """One dump request over an open NETLINK_SOCK_DIAG socket -> listener dicts."""
    proto, ipproto, family, state, state_name = query
    sock.send(request(seq, ipproto, family, 1 << state))
    buf = bytearray(1 << 16)
    out = []
    while True:
        n = sock.recv_into(buf)
        off = 0
        while off + NLMSGHDR.size <= n:
            mlen, mtype, _flags, mseq, _pid = NLMSGHDR.unpack_from(buf, off)
            if mlen < NLMSGHDR.size:
                raise SockDiagError(errno.EPROTO, "malformed netlink message")
            body, end = off + NLMSGHDR.size, off + mlen
            if mseq != seq:
                pass  # not ours (cannot happen on a private socket): skip
            elif mtype == NLMSG_DONE:
                return out
            elif mtype == NLMSG_ERROR:
                err = -struct.unpack_from("=i", buf, body)[0]
                raise SockDiagError(err, "sock_diag %s/IPv%d: %s" % (proto, family, os.strerror(err)))
            elif mtype == SOCK_DIAG_BY_FAMILY and mlen >= NLMSGHDR.size + MSG.size:
                rec = parse_msg(buf, body, end, proto, state_name)
                if not (proto == "UDP" and rec["port"] == 0):  # UDP without a port: not bound
                    out.append(rec)
            off += _align(mlen)
        if n == 0:
            raise SockDiagError(errno.EPROTO, "netlink dump ended without NLMSG_DONE")


def open_socket():
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                             NETLINK_SOCK_DIAG)
    except (OSError, AttributeError) as exc:
        raise SockDiagError(getattr(exc, "errno", None) or errno.EAFNOSUPPORT,
                            "NETLINK_SOCK_DIAG unavailable: %s" % exc)
    sock.settimeout(5)
    return sock


def dump_all(sock):
    """The four dumps (TCP/UDP x IPv4/IPv6) over one netlink socket, then close it."""
    try:
        out = []
        for seq, query in enumerate(QUERIES, 1):
            try:
                out.extend(dump(sock, seq, query))
            except SockDiagError as exc:
                if query[2] == 6 and exc.errno in (errno.ENOENT, errno.EAFNOSUPPORT, errno.EOPNOTSUPP):
                    continue  # a kernel without IPv6: no v6 sockets to find
                raise
        return out
    except socket.timeout:
        raise SockDiagError(errno.ETIMEDOUT, "sock_diag dump timed out")
    finally:
        sock.close()


def listeners_here():
    """Every TCP listener and unconnected bound UDP socket of this thread's
    network namespace. Raises SockDiagError when the interface is unusable."""
    return dump_all(open_socket())


_libc = None


def _setns(fd, nstype):
    setns = getattr(os, "setns", None)   # Python 3.12+
    if setns is not None:
        setns(fd, nstype)
        return
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listeners_in(ns_path):
    """The listeners of the network namespace at ns_path (/proc/PID/ns/net):
    this thread enters it only to create the netlink socket (a socket keeps
    the namespace it was made in) and comes straight back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(own)
        raise
    try:
        _setns(target, CLONE_NEWNET)
        try:
            sock = open_socket()
        finally:
            _setns(own, CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)
    return dump_all(sock)
