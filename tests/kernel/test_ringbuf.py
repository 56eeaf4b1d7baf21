"""The stdlib ring buffer consumer (bindtrace.ringbuf) on a real BPF ring buffer
filled by the real bind tracer: exact record counts, contents and order, records
that wrap past the end of a one-page ring, overflow accounting, clean close."""
import os
import socket
import threading

from bindtrace.backend_core import CoreBackend
from bindtrace.events import EVENT_FMT, Clock, decode_event
from bindtrace.filters import make_config
from bindtrace.ringbuf import RingBuffer, map_info

from helpers.kernel import bpf_ids_of
from helpers.net import free_port

ME = os.getpid()
PAGE = os.sysconf("SC_PAGE_SIZE")
RECORD = (EVENT_FMT.size + 8 + 7) // 8 * 8   # 8-byte header, 8-byte aligned


class Binder(object):
    """One bound socket re-bound to `port`: each call is one failed bind (EINVAL)."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))

    def bind(self, times):
        for _ in range(times):
            try:
                self.sock.bind(("127.0.0.1", self.port))
            except OSError:
                pass

    def close(self):
        self.sock.close()


def open_tracer(port, ring_bytes):
    """The core backend in events mode with a ring of ring_bytes, seeing only
    this test's re-binds to `port`; the test reads the ring itself."""
    cfg = make_config(mode="events", pid=ME, ports=str(port), ignore_errors=False)
    cfg.ringbuf_bytes = ring_bytes
    backend = CoreBackend(cfg)
    return backend, RingBuffer(backend.lib.bpf_map__fd(backend._map("events")))


def check_records(raws, port):
    clock = Clock()
    for raw in raws:
        assert len(raw) == EVENT_FMT.size
        ev = decode_event(raw, clock)
        assert (ev["pid"], ev["tid"], ev["requested_port"], ev["error"], ev["proto"]) == (
            ME, threading.get_native_id(), port, "EINVAL", "TCP")
    stamps = [EVENT_FMT.unpack(raw)[1] for raw in raws]
    assert stamps == sorted(stamps)   # arrival order is bind order


def test_exact_counts_and_wraparound_on_a_one_page_ring():
    port = free_port()
    backend, rb = open_tracer(port, PAGE)
    binder = Binder(port)
    try:
        assert rb.size == PAGE and map_info(backend.lib.bpf_map__fd(backend._map("events")))[
            "max_entries"] == PAGE
        # 120-byte records do not divide a page: records straddle the end of the
        # ring and must come out whole (the data area is mapped twice)
        assert PAGE % RECORD != 0
        total = 0
        for round_size in [7, 10, 1, 33, 12, 34, 5] * 6:
            binder.bind(round_size)
            out = []
            assert rb.consume(out) == round_size
            assert len(out) == round_size
            check_records(out, port)
            total += round_size
            assert rb.pending_bytes() == 0
        assert total * RECORD > 15 * PAGE   # wrapped around many times
        assert rb._cpos[0] == total * RECORD
        assert rb.consume([]) == 0
        assert backend.stats()["lost"] == 0
    finally:
        binder.close()
        rb.close()
        backend.close()


def test_overflow_delivered_plus_lost_is_offered_and_space_comes_back():
    port = free_port()
    backend, rb = open_tracer(port, PAGE)
    binder = Binder(port)
    try:
        binder.bind(100)   # nobody reads: the ring holds what fits, the rest is lost
        fits = (PAGE - 1) // RECORD
        out = []
        assert rb.consume(out) == fits
        check_records(out, port)
        assert backend.stats()["lost"] == 100 - fits
        binder.bind(fits)   # consuming gave the space back to the producer
        out = []
        assert rb.poll(out, 1000) == fits
        check_records(out, port)
        assert backend.stats()["lost"] == 100 - fits
    finally:
        binder.close()
        rb.close()
        backend.close()


def test_poll_waits_for_the_first_record_and_batches_in_order():
    port = free_port()
    backend, rb = open_tracer(port, 1 << 16)
    binder = Binder(port)
    try:
        out = []
        assert rb.poll(out, 0) == 0 and rb.poll(out, 20) == 0
        # a bind from another thread wakes a poll that is already waiting
        waker = threading.Thread(target=lambda: (threading.Event().wait(0.05), binder.bind(3)))
        waker.start()
        got = 0
        while got < 3:
            got += rb.poll(out, 5000)
        waker.join()
        assert got == 3 and len(out) == 3
        assert {decode_event(r, Clock())["tid"] for r in out} == {waker.native_id}
        binder.bind(300)   # more than a batch: handed over without lingering, in order
        out = []
        while len(out) < 300:
            rb.poll(out, 1000)
        assert len(out) == 300
        check_records(out, port)
        assert backend.stats()["lost"] == 0
    finally:
        binder.close()
        rb.close()
        backend.close()


def test_close_unmaps_and_the_map_goes_with_the_backend():
    port = free_port()
    before = set(os.listdir("/proc/self/fd"))
    backend, rb = open_tracer(port, PAGE)
    rb.close()
    rb.close()   # idempotent
    held = {i for i in bpf_ids_of(ME) if i[0] == "map_id"}
    assert held   # the backend still holds its maps
    backend.close()
    assert not {i for i in bpf_ids_of(ME) if i[0] == "map_id"} & held
    assert set(os.listdir("/proc/self/fd")) == before
