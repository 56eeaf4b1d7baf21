"""bind() and listen() through io_uring (IORING_OP_BIND, IORING_OP_LISTEN:
Linux 6.11+) from Python: one submission on a ring of one entry, raw
syscalls and mmap only (no liburing: the VM guests have no compiler). They
reach inet_bind/inet_listen without the bind(2)/listen(2) syscalls, so the
syscall rungs cannot see them and fexit can.

    res = uring_bind(sock, ("127.0.0.1", 0))   # 0 or -errno, like the CQE
    res = uring_listen(sock, 5)"""
import ctypes
import mmap
import os
import platform
import socket
import struct

# asm-generic numbers: the same on x86_64 and arm64
SYS_IO_URING_SETUP, SYS_IO_URING_ENTER, SYS_IO_URING_REGISTER = 425, 426, 427
IORING_REGISTER_PROBE = 8
IORING_OP_BIND, IORING_OP_LISTEN = 56, 57
OP_NAMES = {IORING_OP_BIND: "IORING_OP_BIND", IORING_OP_LISTEN: "IORING_OP_LISTEN"}
IORING_ENTER_GETEVENTS = 1
IORING_OFF_SQ_RING, IORING_OFF_CQ_RING, IORING_OFF_SQES = 0, 0x8000000, 0x10000000
SQE_SIZE, CQE_SIZE = 64, 16
USER_DATA = 0x62696e64

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class Unavailable(Exception):
    """This kernel or process cannot submit the operation (the reason)."""


def _sockaddr(family, addr):
    host, port = addr[0], addr[1]
    if family == socket.AF_INET:
        return struct.pack("=HH4s8x", family, socket.htons(port), socket.inet_aton(host))
    return struct.pack("=HHI16sI", family, socket.htons(port), 0,
                       socket.inet_pton(socket.AF_INET6, host), 0)


def uring_bind(sock, addr):
    """Bind sock to addr with one IORING_OP_BIND; returns the CQE's result
    (0, or -errno as bind(2) would fail)."""
    sa = ctypes.create_string_buffer(_sockaddr(sock.family, addr))
    # off (io_uring_sqe's addr2) holds the address length, addr the sockaddr
    return _submit(sock, IORING_OP_BIND, off=len(sa.raw), addr=ctypes.addressof(sa))


def uring_listen(sock, backlog):
    """listen(sock, backlog) as one IORING_OP_LISTEN (len holds the backlog)."""
    return _submit(sock, IORING_OP_LISTEN, length=backlog)


def _submit(sock, opcode, off=0, addr=0, length=0):
    """One SQE on sock's fd; the CQE's result. Raises Unavailable when io_uring
    itself is missing or disabled, or the kernel lacks the opcode."""
    params = ctypes.create_string_buffer(120)   # struct io_uring_params
    fd = _libc.syscall(SYS_IO_URING_SETUP, 1, params)
    if fd < 0:
        err = ctypes.get_errno()
        raise Unavailable("io_uring_setup: %s (%s)" % (os.strerror(err), platform.release()))
    try:
        if not _knows(fd, opcode):
            raise Unavailable("this kernel has no %s (Linux 6.11+; %s)"
                              % (OP_NAMES[opcode], platform.release()))
        sq_entries, cq_entries = struct.unpack_from("=II", params.raw, 0)
        # io_sqring_offsets at 40: head tail ring_mask ring_entries flags dropped array
        _, sq_tail, sq_mask, _, _, _, sq_array = struct.unpack_from("=7I", params.raw, 40)
        # io_cqring_offsets at 80: head tail ring_mask ring_entries overflow cqes
        cq_head, cq_tail, cq_mask, _, _, cqes = struct.unpack_from("=6I", params.raw, 80)
        rw = mmap.PROT_READ | mmap.PROT_WRITE
        sq = mmap.mmap(fd, sq_array + 4 * sq_entries, mmap.MAP_SHARED, rw,
                       offset=IORING_OFF_SQ_RING)
        cq = mmap.mmap(fd, cqes + CQE_SIZE * cq_entries, mmap.MAP_SHARED, rw,
                       offset=IORING_OFF_CQ_RING)
        sqes = mmap.mmap(fd, SQE_SIZE * sq_entries, mmap.MAP_SHARED, rw, offset=IORING_OFF_SQES)
        try:
            tail = struct.unpack_from("=I", sq, sq_tail)[0]
            idx = tail & struct.unpack_from("=I", sq, sq_mask)[0]
            # io_uring_sqe: opcode flags ioprio fd off addr len rw_flags user_data; the rest 0
            sqe = struct.pack("=BBHiQQIIQ", opcode, 0, 0, sock.fileno(), off, addr, length, 0,
                              USER_DATA)
            sqes[idx * SQE_SIZE:(idx + 1) * SQE_SIZE] = sqe.ljust(SQE_SIZE, b"\0")
            struct.pack_into("=I", sq, sq_array + 4 * idx, idx)
            struct.pack_into("=I", sq, sq_tail, tail + 1)
            if _libc.syscall(SYS_IO_URING_ENTER, fd, 1, 1, IORING_ENTER_GETEVENTS, None, 0) < 0:
                raise Unavailable("io_uring_enter: %s" % os.strerror(ctypes.get_errno()))
            head = struct.unpack_from("=I", cq, cq_head)[0]
            if head == struct.unpack_from("=I", cq, cq_tail)[0]:
                raise Unavailable("io_uring_enter returned without a completion")
            at = cqes + CQE_SIZE * (head & struct.unpack_from("=I", cq, cq_mask)[0])
            user_data, res = struct.unpack_from("=Qi", cq, at)
            struct.pack_into("=I", cq, cq_head, head + 1)
            assert user_data == USER_DATA, hex(user_data)
            return res
        finally:
            for m in (sq, cq, sqes):
                m.close()
    finally:
        os.close(fd)


def _knows(ring_fd, opcode):
    """IORING_REGISTER_PROBE: does this kernel support the opcode?"""
    ops = 64
    # io_uring_probe: last_op u8, ops_len u8, resv u16, resv2[3] u32, then
    # io_uring_probe_op {op u8, resv u8, flags u16 (1: supported), resv2 u32}
    buf = ctypes.create_string_buffer(16 + 8 * ops)
    if _libc.syscall(SYS_IO_URING_REGISTER, ring_fd, IORING_REGISTER_PROBE, buf, ops) < 0:
        return False
    if opcode > buf.raw[0]:
        return False
    return bool(struct.unpack_from("=H", buf.raw, 16 + 8 * opcode + 2)[0] & 1)
