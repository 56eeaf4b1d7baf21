"""One trace on one host: load the backend backends.select_backend picks,
stream or summarise binds, enrich them, and (run_window) return the binds and
counters of one bounded window (facts.py makes the bind_trace facts of them)."""
import os
import socket
import time

from . import BindtraceError
from .backends import Deferred, check_host, select_backend
from .events import Clock, decode_event, decode_summary
from .filters import event_selected


def _make_enricher():
    try:
        from .enrich import Enricher
    except ImportError:  # enrichment is optional for the tracer itself
        return None
    return Enricher()


def _container_filter(cfg):
    if cfg.containername is None and cfg.scope == "all":
        return None
    return lambda ev: event_selected(ev, cfg.containername, cfg.scope)


class Tracer(object):
    """A loaded, attached tracer. Use as a context manager; close() unloads it."""

    def __init__(self, cfg, attach=True):
        """attach=False: load now, start tracing at attach() (a fleet's common
        start time): the core backend loads now, finding the hook this kernel
        takes; bcc, which attaches as it compiles, is built by attach()."""
        self.cfg = cfg
        self.backend = self.enricher = None
        self.own_netns = os.stat("/proc/self/ns/net").st_ino
        netns = self.own_netns if cfg.netns == "host" else (
            None if cfg.netns == "all" else cfg.netns)
        self.clock = Clock()
        self.selected = _container_filter(cfg)
        check_host()   # before the enricher starts watching: a plain message if it cannot run
        try:
            self.enricher = _make_enricher()
            if self.enricher is not None and hasattr(self.enricher, "prime"):
                self.enricher.prime()
            self.backend, self.backend_reason = select_backend(cfg, netns, attach=attach)
        except BaseException:
            self.close()   # the enricher's watch thread too: nothing stays behind a failure
            raise
        self.delivered = 0   # events handed to the caller
        self.dropped = 0     # events over max_events, counted not kept
        self.excluded = 0    # events removed by the container filter
        self._kept_raw = []
        self._kept_events = []

    def attach(self):
        """Start tracing (a Tracer made with attach=False)."""
        if isinstance(self.backend, Deferred):
            self.backend = self.backend.build()
        else:
            self.backend.attach()

    @property
    def backend_name(self):
        return self.backend.name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _finish(self, ev):
        # fields the backend cannot read on this kernel (bcc) are null, never a guess
        for field in getattr(self.backend, "missing_fields", ()):
            ev[field] = None
        if self.enricher is not None:
            self.enricher.enrich(ev)
        if ev["if"] is None and ev["if_index"] is not None and ev["netns"] == self.own_netns:
            ev["if"] = _ifname_here(ev["if_index"])
        if self.selected is not None and not self.selected(ev):
            self.excluded += 1
            return None
        return ev

    def poll(self, timeout_ms=100):
        """Events mode: the events delivered since the last call, decoded and enriched."""
        return self.poll_decoded(self.backend.poll(timeout_ms))

    def poll_decoded(self, raws):
        out = []
        for raw in raws:
            ev = self._finish(decode_event(raw, self.clock))
            if ev is None:
                continue
            if self.cfg.max_events is not None and self.delivered >= self.cfg.max_events:
                self.dropped += 1
                continue
            self.delivered += 1
            out.append(ev)
        return out

    def collect(self, timeout_ms=100):
        """Window mode: keep raw records and decode them at the end (decoding is
        the expensive part), so the window loop keeps up with bind storms. Only
        the first max_events are kept; the rest are counted as dropped."""
        raws = self.backend.poll(timeout_ms)
        if self.selected is not None:  # a container filter needs each event decoded now
            kept = self._kept_events
            for ev in self.poll_decoded(raws):
                kept.append(ev)
            return
        room = len(raws) if self.cfg.max_events is None else max(
            0, self.cfg.max_events - self.delivered)
        self._kept_raw.extend(raws[:room])
        self.delivered += min(room, len(raws))
        self.dropped += len(raws) - min(room, len(raws))

    def collected(self):
        """Everything collect() kept, decoded and enriched, in arrival order."""
        out = self._kept_events
        for raw in self._kept_raw:
            ev = self._finish(decode_event(raw, self.clock))
            if ev is not None:
                out.append(ev)
        self._kept_raw = []
        return out

    def stop(self):
        """Close the window: detach, then drain what the kernel already produced."""
        self.backend.detach()

    def summary(self):
        records = []
        for raw_key, raw_stats in self.backend.summary():
            rec = self._finish(decode_summary(raw_key, raw_stats, self.clock))
            if rec is not None:
                records.append(rec)
        records.sort(key=lambda r: (r["first_seen"] or "", r["port"], r["pid"]))
        return records

    def listens(self):
        """Every socket that listened during the window (listens.py), or None
        when this backend does not trace listen() (bcc)."""
        if not hasattr(self.backend, "listens"):
            return None
        from .listens import decode_listen
        return [decode_listen(k, v, self.clock) for k, v in self.backend.listens()]

    def stats(self):
        st = self.backend.stats()
        st["dropped"] = self.dropped
        st["excluded"] = self.excluded
        return st

    def close(self):
        if getattr(self, "backend", None) is not None:
            self.backend.close()
            self.backend = None
        if getattr(self, "enricher", None) is not None and hasattr(self.enricher, "close"):
            self.enricher.close()   # stops its cgroup watch thread


def _ifname_here(index):
    """ifindex -> name in the tracer's own netns; None (index kept) if it is gone."""
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


def rfc3339_now():
    return Clock().rfc3339(time.clock_gettime_ns(time.CLOCK_BOOTTIME))


def wait_until(start_at, should_stop=None):
    """Sleep until the wall-clock time start_at (epoch seconds), in steps short
    enough to notice should_stop (a signal, the controller hanging up)."""
    while True:
        left = start_at - time.time()
        if left <= 0 or (should_stop is not None and should_stop()):
            return
        time.sleep(min(0.1, left))


def run_window(cfg, duration, should_stop=None, start_at=None):
    """Trace for `duration` seconds (or until should_stop() is true) and return
    (binds, stats, meta) for one window. The caller adds listeners and policy.

    start_at: the fleet's common start (epoch seconds). The tracer is loaded
    first, then attached at start_at, so every host of a fleet starts its
    window at the same second however long its launch and load took, and every
    window ends at start_at + duration. A host launched after start_at attaches
    at once and still ends with the fleet (a shorter window, and its facts say
    so), so its window overlaps every other's; launched after the fleet's
    end, it traces `duration` seconds from now."""
    binds = []
    with Tracer(cfg, attach=start_at is None) as tracer:
        if start_at is not None:
            wait_until(start_at, should_stop)
            if should_stop is not None and should_stop():
                raise BindtraceError("interrupted by signal %s before the window started; nothing "
                                     "stays loaded; rerun the task"
                                     % getattr(should_stop, "signum", "?"))
            tracer.attach()
        start = rfc3339_now()
        length = duration
        if start_at is not None and start_at + duration > time.time():
            length = start_at + duration - time.time()   # end with the fleet
        deadline = time.monotonic() + length
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (should_stop is not None and should_stop()):
                break
            tracer.collect(min(100, max(1, int(left * 1000))))
        tracer.stop()
        end = rfc3339_now()   # detached: no bind after this is seen
        if cfg.mode == "events":
            tracer.collect(0)
            binds = tracer.collected()
        else:
            binds = tracer.summary()
        st = tracer.stats()
        listens = tracer.listens()
        meta = {
            "hostname": socket.gethostname(), "kernel": os.uname().release,
            "backend": tracer.backend_name, "backend_reason": tracer.backend_reason,
            "missing_fields": list(getattr(tracer.backend, "missing_fields", ())),
            "hook": hook_facts(tracer.backend),
            "start": start, "end": end, "duration": duration, "own_netns": tracer.own_netns,
            "listens": listens,
        }
    return binds, st, meta


def hook_facts(backend):
    """Which rung of the hook ladder carries the trace, and why not a cheaper one."""
    return {"hook": getattr(backend, "hook", None), "build": getattr(backend, "build", None),
            "where": getattr(backend, "hook_where", None),
            "sees": getattr(backend, "hook_sees", None),
            "not_used": getattr(backend, "hook_reason", "") or None}
