"""bindtrace.ringbuf's record walk over ring layouts the bind tracer never
produces: records of different sizes, discarded records, a record still being
written (BUSY) with committed ones behind it, and records wrapping the end.

The real program only ever submits whole 112-byte records (tests/kernel/
test_ringbuf.py covers those on a real ring), so these cases use an in-memory
copy of the kernel's layout instead of a BPF map: a consumer position, a
producer position, and the data area twice in a row, as the kernel maps it."""
import struct

from bindtrace.ringbuf import BUSY, DISCARD, HDR, RingBuffer

PAGE = 4096


class FakeRing(object):
    """The kernel's side: writes records and the producer position."""

    def __init__(self, size):
        self.size = size
        self.ring = bytearray(size)
        self.prod = 0
        rb = RingBuffer.__new__(RingBuffer)   # no map fd: wire the buffers by hand
        rb.size, rb.mask, rb.page = size, size - 1, PAGE
        rb._cons = bytearray(8)
        rb._data = bytearray(PAGE + 2 * size)
        rb._cpos = memoryview(rb._cons).cast("Q")
        rb._ppos = memoryview(rb._data)[:8].cast("Q")
        self.rb = rb

    def _write(self, pos, blob):
        for i, b in enumerate(blob):
            self.ring[(pos + i) % self.size] = b
        self.rb._data[PAGE:] = self.ring + self.ring   # the double mapping

    def put(self, payload, flags=0):
        """Reserve and fill one record; returns its position (to commit it later)."""
        pos = self.prod
        self._write(pos, struct.pack("<II", len(payload) | flags, 0) + payload)
        self.prod += (len(payload) + HDR + 7) // 8 * 8
        self.rb._ppos[0] = self.prod
        return pos

    def commit(self, pos, length):
        self._write(pos, struct.pack("<I", length))


def consume(rb):
    out = []
    assert rb.consume(out) == len(out)
    return out


def test_sizes_discard_and_busy_in_order():
    fake = FakeRing(1024)
    rb = fake.rb
    fake.put(b"a" * 10)
    fake.put(b"b" * 10)
    fake.put(b"x" * 16, DISCARD)
    fake.put(b"ddd")
    busy = fake.put(b"e" * 10, BUSY)
    fake.put(b"f" * 10)
    assert consume(rb) == [b"a" * 10, b"b" * 10, b"ddd"]
    assert rb._cpos[0] == busy            # stopped at the record being written
    assert consume(rb) == []
    fake.commit(busy, 10)
    assert consume(rb) == [b"e" * 10, b"f" * 10]
    assert rb._cpos[0] == fake.prod and rb.pending_bytes() == 0


def test_records_wrapping_the_end_come_out_whole():
    fake = FakeRing(256)
    rb = fake.rb
    got, sent = [], []
    for i in range(60):   # 56-byte records (8 header + 42 + 6 padding) straddle a 256-byte end
        payload = bytes([i]) * 42
        fake.put(payload)
        sent.append(payload)
        if i % 3 == 2:    # at most 3 records (168 bytes) outstanding
            got += consume(rb)
    got += consume(rb)
    assert got == sent
    assert rb._cpos[0] == 60 * 56 == fake.prod


def test_a_long_run_of_equal_records_is_cut_at_the_first_different_header():
    fake = FakeRing(4096)
    rb = fake.rb
    for i in range(20):
        fake.put(struct.pack("<Q", i) * 14)      # 112 bytes, like a bind event
    fake.put(b"short")
    busy = fake.put(b"z" * 112, BUSY)
    out = consume(rb)
    assert [struct.unpack_from("<Q", r)[0] for r in out[:20]] == list(range(20))
    assert out[20:] == [b"short"]
    assert rb._cpos[0] == busy
