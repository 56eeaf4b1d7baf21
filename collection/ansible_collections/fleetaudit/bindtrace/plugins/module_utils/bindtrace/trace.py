"""One trace on one host: pick and load a backend, stream or summarise binds,
enrich them, and (run_window) produce the bind_trace facts of one bounded window."""
import os
import socket
import time

from . import SCHEMA, BindtraceError
from . import preflight
from .bounded import DEFAULT_MAX_RECORDS, keep_significant
from .events import Clock, decode_event, decode_summary


def select_backend(cfg):
    """-> (backend class, reason). auto: core with BTF + libbpf, else bcc, else unsupported."""
    preflight.check_linux()
    preflight.check_root()
    preflight.check_tracepoints()
    if cfg.backend == "core" or getattr(cfg, "hook", "auto") in ("fexit", "kprobe"):
        preflight.check_btf()
        preflight.check_object_arch()
        from .libbpf import load_library
        load_library()
        from .backend_core import CoreBackend
        return CoreBackend, "requested"
    if cfg.backend == "bcc":
        from .backend_bcc import BccBackend, check_bcc
        check_bcc()
        return BccBackend, "requested"
    missing = []
    if preflight.has_btf():
        try:
            preflight.check_object_arch()
            from .libbpf import load_library
            load_library()
            from .backend_core import CoreBackend
            return CoreBackend, "auto: kernel BTF and libbpf.so.1 present"
        except BindtraceError as exc:
            missing.append(str(exc))
    else:
        missing.append("no kernel BTF at %s" % preflight.btf_path())
    try:
        from .backend_bcc import BccBackend, check_bcc
        check_bcc()
        return BccBackend, "auto: %s; bcc present" % "; ".join(missing)
    except (BindtraceError, ImportError) as exc:
        missing.append(str(exc))
    raise BindtraceError("unsupported: no usable backend on this host (%s); install libbpf1 on a "
                         "kernel with BTF (CONFIG_DEBUG_INFO_BTF), or bcc with kernel headers "
                         "(bindtrace_install_bcc: true)" % "; ".join(missing))


def _make_enricher():
    try:
        from .enrich import Enricher
    except ImportError:  # enrichment is optional for the tracer itself
        return None
    return Enricher()


def _container_filter(cfg):
    try:
        from .enrich import event_selected
    except ImportError:
        return None
    if cfg.containername is None and cfg.scope == "all":
        return None
    return lambda ev: event_selected(ev, cfg.containername, cfg.scope)


class Tracer(object):
    """A loaded, attached tracer. Use as a context manager; close() unloads it."""

    def __init__(self, cfg):
        self.cfg = cfg
        backend_cls, self.backend_reason = select_backend(cfg)
        self.own_netns = os.stat("/proc/self/ns/net").st_ino
        netns = self.own_netns if cfg.netns == "host" else (
            None if cfg.netns == "all" else cfg.netns)
        self.clock = Clock()
        self.enricher = _make_enricher()
        if self.enricher is not None and hasattr(self.enricher, "prime"):
            self.enricher.prime()
        self.selected = _container_filter(cfg)
        try:
            self._load_backend(cfg, backend_cls, netns)
        except BaseException:
            self.close()   # the enricher's watch thread too: nothing stays behind a failure
            raise
        self.delivered = 0   # events handed to the caller
        self.dropped = 0     # events over max_events, counted not kept
        self.excluded = 0    # events removed by the container filter
        self._kept_raw = []
        self._kept_events = []

    def _load_backend(self, cfg, backend_cls, netns):
        try:
            self.backend = backend_cls(cfg, netns)
        except BindtraceError as exc:
            if cfg.backend != "auto" or backend_cls.name != "core" or cfg.hook != "auto":
                raise
            # auto: a kernel too old for the CO-RE program (< 5.15) may still run bcc
            try:
                from .backend_bcc import BccBackend, check_bcc
                check_bcc()
            except (BindtraceError, ImportError):
                raise exc
            self.backend = BccBackend(cfg, netns)
            self.backend_reason = "auto: the core backend failed (%s); bcc present" % exc
            self.backend.hook_reason = "core: %s" % exc

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


def run_window(cfg, duration, should_stop=None):
    """Trace for `duration` seconds (or until should_stop() is true) and return
    (binds, stats, meta) for one window. The caller adds listeners and policy."""
    binds = []
    with Tracer(cfg) as tracer:
        start = rfc3339_now()
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (should_stop is not None and should_stop()):
                break
            tracer.collect(min(100, max(1, int(left * 1000))))
        tracer.stop()
        if cfg.mode == "events":
            tracer.collect(0)
            binds = tracer.collected()
        else:
            binds = tracer.summary()
        end = rfc3339_now()
        st = tracer.stats()
        meta = {
            "hostname": socket.gethostname(), "kernel": os.uname().release,
            "backend": tracer.backend_name, "backend_reason": tracer.backend_reason,
            "missing_fields": list(getattr(tracer.backend, "missing_fields", ())),
            "hook": hook_facts(tracer.backend),
            "start": start, "end": end, "duration": duration, "own_netns": tracer.own_netns,
        }
    return binds, st, meta


def hook_facts(backend):
    """Which rung of the hook ladder carries the trace, and why not a cheaper one."""
    return {"hook": getattr(backend, "hook", None), "build": getattr(backend, "build", None),
            "where": getattr(backend, "hook_where", None),
            "sees": getattr(backend, "hook_sees", None),
            "not_used": getattr(backend, "hook_reason", "") or None}


def trust_line(hook, missing_fields, lost):
    """One line a reader of the report can weigh the host's results by."""
    if not hook or not hook.get("hook"):
        return None
    parts = ["hook %s (%s, build %s)" % (hook["hook"], hook["where"], hook["build"]),
             "sees %s" % hook["sees"]]
    if hook.get("not_used"):
        parts.append("cheaper hooks not used: %s" % hook["not_used"])
    parts.append("missing fields: %s" % (", ".join(missing_fields) or "none"))
    parts.append("lost: %d" % lost)
    return "; ".join(parts)


def build_facts(cfg, binds, st, meta, listeners=None, policy_rules=None,
                max_records=DEFAULT_MAX_RECORDS):
    """The bind_trace facts of DESIGN.md from one window's results. The policy
    judges every record; then at most max_records binds and max_records
    listeners are returned, the most significant first (bounded.py), with
    exact totals in counts (None: no cap)."""
    from .policy import apply_policy, is_client
    listeners = listeners or []
    unexpected = apply_policy(policy_rules, binds, listeners)
    total = sum(b.get("count", 1) for b in binds)
    clients = sum(b.get("count", 1) for b in binds if is_client(b))
    kept_binds, omitted_binds = keep_significant(binds, max_records)
    kept_listeners, omitted_listeners = keep_significant(listeners, max_records)
    if omitted_binds or omitted_listeners:
        kept = set(map(id, kept_binds)) | set(map(id, kept_listeners))
        shown = {kind: [r for r in recs if id(r) in kept] for kind, recs in unexpected.items()}
    else:
        shown = unexpected
    hook = meta.get("hook") or {}
    return {
        "schema": SCHEMA,
        "host": {"hostname": meta["hostname"], "kernel": meta["kernel"], "backend": meta["backend"],
                 "backend_reason": meta["backend_reason"], "node": meta["hostname"],
                 "netns": meta["own_netns"], "hook": hook.get("hook"),
                 "hook_build": hook.get("build"), "hook_where": hook.get("where"),
                 "hook_sees": hook.get("sees"), "hook_not_used": hook.get("not_used"),
                 "trust": trust_line(hook, meta["missing_fields"], st["lost"])},
        "window": {"start": meta["start"], "end": meta["end"], "duration": meta["duration"]},
        "mode": cfg.mode,
        "filters": cfg.as_filters(),
        "binds": kept_binds,
        "listeners": kept_listeners,
        "lost": st["lost"],
        "dropped": st["dropped"],
        "truncated": (st["dropped"] > 0 or st.get("summary_full", 0) > 0 or omitted_binds > 0
                      or omitted_listeners > 0),
        "summary_full": st.get("summary_full", 0),
        "unexpected": shown,
        "counts": {"binds": total, "records": len(binds), "listeners": len(listeners),
                   "client_binds": clients,
                   "unexpected_binds": len(unexpected["binds"]),
                   "unexpected_listeners": len(unexpected["listeners"]),
                   "omitted_binds": omitted_binds, "omitted_listeners": omitted_listeners,
                   "lost": st["lost"], "dropped": st["dropped"]},
        "missing_fields": meta["missing_fields"],
        "policy": {"rules": len(policy_rules or [])},
    }
