"""Fleet-window numbers shared by the window test and the fleet benchmark:
every host's window from a report.json (facts only), the start spread, and
the launch lead derived from a measured `ansible -m ping`."""
import math

from bindreport.window import rfc3339_ns

# An async launch (module + async_wrapper copied, no pipelining) costs about
# 1.5 pings per host here (bench_fleet.py's launch column); 2 leaves a margin.
LAUNCH_PER_PING = 2.0


def launch_host_seconds(ping_seconds, hosts, forks):
    """bindtrace_launch_host_seconds from a ping of the same fleet with the
    same forks: the ping's time per host in one fork, times LAUNCH_PER_PING."""
    return round(LAUNCH_PER_PING * ping_seconds / math.ceil(hosts / float(forks)), 3)


def windows_of(report):
    """host -> (start ns, end ns) from each traced host's facts."""
    out = {}
    for h in report["hosts"]:
        window = (h.get("facts") or {}).get("window") or {}
        if window.get("start"):
            out[h["name"]] = (rfc3339_ns(window["start"]), rfc3339_ns(window["end"]))
    return out


def spread_of(report):
    """Seconds between the first and the last window start (facts)."""
    starts = [s for s, _ in windows_of(report).values()]
    return (max(starts) - min(starts)) / 1e9 if starts else None
