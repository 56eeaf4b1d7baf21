"""The report as Prometheus / OpenMetrics text (report.prom), for
node_exporter's textfile collector or a push gateway.

Built with prometheus-client (the controller extra), so the exposition format
and its escaping are the library's, not ours. Gauges only: every value is the
state of the last run.
"""
from .columns import count_sum
from .model import STATUSES, BindReportError

PREFIX = "bindtrace_"


def _families(model):
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name, doc, labels=()):
        return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))

    s = model["summary"]
    run = gauge("report_generated_timestamp_seconds", "When the fleet report was generated (Unix time).")
    run.add_metric([], _unix(model["generated"]))
    hosts = gauge("hosts", "Hosts in the report, by trace status.", ["status"])
    for status in STATUSES:
        hosts.add_metric([status], s[{"ok": "traced"}.get(status, status)])
    per_host = {
        "host_up": gauge("host_up", "1 when the host was traced (status ok), else 0.", ["host"]),
        "status": gauge("host_status", "1 for the host's trace status.", ["host", "status"]),
        "unexpected_listeners": gauge("host_unexpected_listeners", "Listeners no allow rule covers.", ["host"]),
        "unexpected_binds": gauge("host_unexpected_binds", "Bind records no allow rule covers.", ["host"]),
        "binds": gauge("host_binds", "Binds seen in the window (summary counts added up).", ["host"]),
        "listeners": gauge("host_listeners", "Listening sockets at the end of the window.", ["host"]),
        "lost": gauge("host_lost_events", "Events the kernel could not deliver (ring buffer full).", ["host"]),
        "truncated": gauge("host_truncated", "1 when the host's records were capped or its table filled.",
                           ["host"]),
        "outliers": gauge("host_outlier_listeners", "Listeners only a few hosts of a group have.", ["host"]),
        "outside": gauge("host_window_outside_fleet", "1 when the host's trace window did not overlap "
                         "the fleet's (it traced other seconds).", ["host"]),
    }
    window = s.get("window") or {}
    outside = set(window.get("not_overlapping") or ())
    spread = gauge("fleet_window_start_spread_seconds", "Seconds between the first and the last host's "
                   "window start.")
    if window:
        spread.add_metric([], window["start_spread"])
    for h in model["hosts"]:
        name = h["name"]
        facts = h.get("facts") or {}
        binds = facts.get("binds") or []
        per_host["host_up"].add_metric([name], 1 if h["status"] == "ok" else 0)
        per_host["status"].add_metric([name, h["status"]], 1)
        per_host["unexpected_listeners"].add_metric([name], h["unexpected"]["listeners"])
        per_host["unexpected_binds"].add_metric([name], h["unexpected"]["binds"])
        per_host["binds"].add_metric([name], count_sum(binds))
        per_host["listeners"].add_metric([name], len(facts.get("listeners") or []))
        per_host["lost"].add_metric([name], facts.get("lost") or 0)
        per_host["truncated"].add_metric([name], 1 if facts.get("truncated") else 0)
        per_host["outliers"].add_metric([name], len(h.get("outliers") or []))
        if (facts.get("window") or {}).get("start"):
            per_host["outside"].add_metric([name], 1 if name in outside else 0)
    ports = gauge("port_hosts", "Hosts with a listener on this protocol and port.", ["proto", "port"])
    seen = {}
    for h in model["hosts"]:
        for l in (h.get("facts") or {}).get("listeners") or []:
            if isinstance(l.get("port"), int):
                seen.setdefault((str(l.get("proto")), l["port"]), set()).add(h["name"])
    for (proto, port), names in sorted(seen.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ports.add_metric([proto, str(port)], len(names))
    return [run, hosts, spread] + list(per_host.values()) + [ports]


def _unix(rfc3339):
    import datetime
    text = rfc3339.replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


class _Collector(object):
    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def render_metrics(model):
    """model -> Prometheus text exposition (version 0.0.4), as node_exporter's
    textfile collector reads it."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError:
        raise BindReportError("the metrics format needs prometheus-client on the controller: "
                              "pip install prometheus-client (or the bindtrace[controller] extra), "
                              "or leave 'prom' out of the formats")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(_families(model)))
    return generate_latest(registry).decode("utf-8")
