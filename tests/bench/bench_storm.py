"""Bind storms: millions of binds from bindstorm, each tracer filtered on the
storm's pid and port so every count can be checked exactly.

- summary mode: every bind counted in the kernel (offered == counted, 0 lost),
  for failed re-binds (the cheapest bind), for successful binds, and for
  ephemeral client binds (UDP to 127.0.0.1:0: every bind gets another port,
  all counted under one client record, none left uncounted by a full table).
- events mode: every bind delivered to userspace or counted lost, never
  silently missing (delivered + lost == offered), for three consumers: the
  window loop (Tracer.collect: raw records, decoded at the end) reading the
  ring with bindtrace.ringbuf, the same with libbpf's ctypes callback, and the
  live path (Tracer.poll: each event decoded and enriched as it arrives).
  The highest rate delivered with 0 loss is reported per consumer; a paced
  sweep of the live path finds where its loss starts.

    .venv/bin/python tests/bench/bench_storm.py"""
import time

from bench_common import Storm, fmt_rate, free_port, table

from bindtrace import ringbuf
from bindtrace.filters import make_config
from bindtrace.trace import Tracer


def untraced(threads, binds, mode="einval"):
    storm = Storm(threads, binds, free_port(), mode)
    storm.go()
    return storm.wait()


def summary_storm(threads, binds, mode="einval"):
    storm = Storm(threads, binds, free_port(), mode)
    client = mode == "client"    # port 0 asked: no port to filter on, the pid suffices
    cfg = make_config(mode="summary", pid=storm.pid, ports=None if client else str(storm.port),
                      ignore_errors=False)
    with Tracer(cfg) as tracer:
        storm.go()
        res = storm.wait()
        tracer.stop()
        recs = tracer.summary()
        st = tracer.stats()
    mine = [r for r in recs if (r["client"] if client else r["requested_port"] == storm.port)]
    res.update(counted=sum(r["count"] for r in mine), records=len(mine),
               ports=(min(r["port_min"] for r in mine), max(r["port_max"] for r in mine))
               if mine else None, lost=st["lost"] + st.get("summary_full", 0))
    return res


def events_storm(threads, binds, consumer="collect", rate=0):
    """consumer: "collect" (window loop), "libbpf" (same, libbpf's callback), "poll" (live)."""
    storm = Storm(threads, binds, free_port(), rate=rate)
    cfg = make_config(mode="events", pid=storm.pid, ports=str(storm.port), ignore_errors=False)
    supported = ringbuf.supported
    if consumer == "libbpf":
        ringbuf.supported = lambda: False   # the backend falls back to libbpf's ring_buffer
    try:
        tracer = Tracer(cfg)
    finally:
        ringbuf.supported = supported
    with tracer:
        delivered = 0
        c0 = time.process_time()
        storm.go()
        while storm.running():
            if consumer == "poll":
                delivered += len(tracer.poll(100))
            else:
                tracer.collect(100)
        tracer.stop()
        if consumer == "poll":
            delivered += len(tracer.poll(0))
        else:
            tracer.collect(0)
            delivered = tracer.delivered
        cpu = time.process_time() - c0
        res = storm.wait()
        st = tracer.stats()
    res.update(delivered=delivered, lost=st["lost"], consumer_cpu=cpu)
    return res


def measure(scale=1.0):
    n = lambda x: int(x * scale)  # noqa: E731
    rows = []
    base = untraced(2, n(4000000))
    rows.append(("untraced", "einval x2", base, None))
    rows.append(("summary", "einval x2", summary_storm(2, n(4000000)), base))
    base_ok = untraced(2, n(400000), "ok")
    rows.append(("untraced", "ok x2", base_ok, None))
    rows.append(("summary", "ok x2", summary_storm(2, n(400000), "ok"), base_ok))
    base_client = untraced(2, n(200000), "client")
    rows.append(("untraced", "client x2", base_client, None))
    rows.append(("summary", "client x2", summary_storm(2, n(200000), "client"), base_client))
    for threads in (1, 2):
        for consumer in ("collect", "libbpf"):
            rows.append(("events/" + consumer, "einval x%d" % threads,
                         events_storm(threads, n(1500000), consumer), None))
    rows.append(("events/poll", "einval x1", events_storm(1, n(300000), "poll"), None))
    for rate in (25000, 50000, 100000):
        rows.append(("events/poll", "paced %s" % fmt_rate(rate),
                     events_storm(1, max(n(rate * 2), 1000), "poll", rate=rate), None))
    return rows


def accounted(res):
    if "counted" in res:
        return res["counted"] == res["offered"] and res["lost"] == 0
    if "delivered" in res:
        return res["delivered"] + res["lost"] == res["offered"]
    return None


def best_lossless(rows):
    """{consumer: highest offered rate delivered with 0 loss}."""
    best = {}
    for name, _, res, _ in rows:
        if name.startswith("events") and res["lost"] == 0 and accounted(res):
            best[name] = max(best.get(name, 0), res["rate"])
    return best


def report(rows):
    out = []
    for name, load, res, base in rows:
        got = res.get("counted", res.get("delivered"))
        check = accounted(res)
        note = ""
        if base is not None:
            note = "%.2fx untraced rate" % (res["rate"] / base["rate"])
        if "consumer_cpu" in res and res.get("delivered"):
            note = "consumer %.0f ns/event" % (res["consumer_cpu"] / res["delivered"] * 1e9)
        out.append((name, load, res["offered"], fmt_rate(res["rate"]),
                    "-" if got is None else got, res.get("lost", "-"),
                    "-" if check is None else ("yes" if check else "NO"), note))
    return table(("TRACER", "LOAD", "OFFERED", "RATE", "COUNTED/DELIVERED", "LOST",
                  "ALL ACCOUNTED", "NOTE"), out)


if __name__ == "__main__":
    rows = measure()
    print(report(rows))
    for name, rate in sorted(best_lossless(rows).items()):
        print("highest rate with 0 loss, %s: %s" % (name, fmt_rate(rate)))
