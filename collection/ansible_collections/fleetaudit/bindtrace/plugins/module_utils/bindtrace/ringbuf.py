"""A stdlib-only consumer of a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF).

libbpf's ring_buffer__poll calls back into Python once per record through
ctypes (about a microsecond of CPU a record). Here the map is mmapped directly
and runs of records are sliced out in C (struct.iter_unpack), a few times cheaper.

Layout (kernel/bpf/ringbuf.c): the consumer page (consumer_pos, u64) is mapped
read-write at offset 0; the producer page (producer_pos, u64) followed by the
data area mapped twice in a row is mapped read-only at offset page_size, so a
record that wraps past the end reads as one contiguous slice. Each record has
an 8-byte header: u32 length with BUSY (still being written) and DISCARD bits,
u32 page offset; records are 8-byte aligned.

Memory ordering: the kernel commits a record with a release store of its header
and reads consumer_pos with an acquire load. Python has no barriers, so this is
only correct where plain loads and stores are already ordered that way: x86
(total store order). supported() says so; elsewhere use libbpf's consumer."""
import mmap
import operator
import platform
import select
import struct
import time

BUSY = 1 << 31
DISCARD = 1 << 30
HDR = 8
RINGBUF_MAP_TYPE = 27
# poll(): a batch this big is returned at once; a smaller one is topped up
# after LINGER seconds (bounded latency, far fewer kernel wakeups in a storm)
BATCH = 256
LINGER = 0.002
_U32 = struct.Struct("<I")
_first = operator.itemgetter(0)
_STRUCTS = {}


def _record_struct(length, stride):
    """Header skipped, body kept, padding skipped: one record per iter_unpack step."""
    key = (length, stride)
    if key not in _STRUCTS:
        _STRUCTS[key] = struct.Struct("<%dx%ds%dx" % (HDR, length, stride - HDR - length))
    return _STRUCTS[key]


def _same_header_run(chunk, stride, hdr):
    """How many leading records of `chunk` (>= 1) have exactly header `hdr`.
    Compares each header byte column with C-speed slicing, not a Python loop."""
    run = len(chunk) // stride
    for i, byte in enumerate(_U32.pack(hdr)):
        column = chunk[i:run * stride:stride]
        run = min(run, len(column) - len(column.lstrip(bytes((byte,)))))
    return max(run, 1)


def supported():
    """Plain loads/stores give the acquire/release order the ring buffer needs."""
    return platform.machine() in ("x86_64", "AMD64", "i686", "i386")


def map_info(fd):
    """{field: int} of a BPF map fd, read from /proc/self/fdinfo (no bpf() call)."""
    info = {}
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f:
            key, _sep, value = line.partition(":")
            value = value.strip()
            if key in ("map_type", "max_entries", "map_id"):
                info[key] = int(value)
    return info


class RingBuffer(object):
    """Raw records of one BPF ring buffer map, in order, in batches."""

    def __init__(self, map_fd):
        info = map_info(map_fd)
        if info.get("map_type") != RINGBUF_MAP_TYPE:
            raise ValueError("fd %d is not a BPF ring buffer map (%r)" % (map_fd, info))
        self.size = info["max_entries"]
        self.mask = self.size - 1
        self.page = mmap.PAGESIZE
        self._cpos = self._ppos = self._ep = self._data = None
        self._cons = mmap.mmap(map_fd, self.page, mmap.MAP_SHARED,
                               mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._open(map_fd)
        except BaseException:
            self.close()
            raise

    def _open(self, map_fd):
        self._data = mmap.mmap(map_fd, self.page + 2 * self.size, mmap.MAP_SHARED,
                               mmap.PROT_READ, offset=self.page)
        # consumer_pos and producer_pos are read and written through 8-byte
        # memoryviews: one aligned load or store each. struct.pack_into would
        # zero-fill the field before writing it, and the kernel, seeing
        # consumer_pos == 0 for that instant, finds the ring "full" and drops
        # records; "<Q" would also go byte by byte (torn values).
        self._cpos = memoryview(self._cons)[:8].cast("Q")
        self._ppos = memoryview(self._data)[:8].cast("Q")
        self._ep = select.epoll()
        self._ep.register(map_fd, select.EPOLLIN)

    def consume(self, out):
        """Append the committed records to `out` (bytes each); return how many.
        Stops at the first record still being written (BUSY) and at the producer
        position read on entry, so a producer faster than us cannot keep us here."""
        data, base, mask = self._data, self.page, self.mask
        u32 = _U32.unpack_from
        cpos = self._cpos[0]
        ppos = self._ppos[0]
        n = 0
        while cpos < ppos:
            off = base + (cpos & mask)
            hdr = u32(data, off)[0]
            if hdr & BUSY:
                break
            length = hdr & 0x3FFFFFFF
            stride = (length + HDR + 7) & ~7
            if hdr & DISCARD:
                cpos += stride
                continue
            # records usually all have one size: take the run of equal, committed
            # headers in one go (the data area is mapped twice, so it is contiguous)
            k = _same_header_run(data[off:off + (ppos - cpos) // stride * stride], stride, hdr)
            # copy the bodies only now, after their committed headers were read
            body = data[off:off + k * stride]
            out.extend(map(_first, _record_struct(length, stride).iter_unpack(body)))
            n += k
            cpos += k * stride
            self._cpos[0] = cpos  # hand the space back to the producer
        self._cpos[0] = cpos
        return n

    def poll(self, out, timeout_ms):
        """Append committed records to `out`, waiting up to timeout_ms for the
        first one; return how many. A small batch is topped up after a short
        linger: the kernel wakes the consumer (an irq_work, paid inside the
        traced bind() call) each time it has caught up, so a consumer that
        always catches up makes every bind pay for a wakeup."""
        n = self.consume(out)
        if n >= BATCH or timeout_ms == 0:
            return n
        started = time.monotonic()
        if n == 0:
            self._ep.poll(timeout_ms / 1000.0 if timeout_ms > 0 else -1)
        left = LINGER if timeout_ms < 0 else min(
            LINGER, timeout_ms / 1000.0 - (time.monotonic() - started))
        if left > 0 and self.pending_bytes():
            time.sleep(left)
        return n + self.consume(out)

    def pending_bytes(self):
        return self._ppos[0] - self._cpos[0]

    def close(self):
        for res in ("_cpos", "_ppos", "_ep", "_data", "_cons"):
            obj = getattr(self, res, None)
            if obj is not None:
                # the views first: an mmap with live exports refuses to close
                obj.release() if isinstance(obj, memoryview) else obj.close()
                setattr(self, res, None)
