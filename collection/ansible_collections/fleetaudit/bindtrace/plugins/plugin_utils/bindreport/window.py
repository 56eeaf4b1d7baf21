"""The fleet's window: when the traced hosts' windows started and ended, how
simultaneous they were (start spread), and which hosts traced at another time.

A host window is its facts' window.start / window.end (RFC 3339 with
nanoseconds, UTC, as the module writes them). The fleet window is the stretch
of time in which the most hosts were tracing at once; a host whose window does
not overlap it traced other seconds than the rest of the fleet (e.g. a host
launched after the fleet's start time by more than the window), and its binds
cannot be compared with theirs as "the same moment"."""
import calendar
import re
import time

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def rfc3339_ns(text):
    """'2026-11-25T12:00:00.000000001Z' -> integer ns since the epoch, or None."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text)
    if not m:
        return None
    try:
        secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    return secs * 1000000000 + int((m.group(2) or "0").ljust(9, "0"))


def _windows(hosts):
    """[(name, start ns, end ns, start text, end text)] of the hosts with a
    readable window (a failed host may still have facts, e.g. policy failures)."""
    out = []
    for h in hosts:
        window = (h.get("facts") or {}).get("window") or {}
        start, end = rfc3339_ns(window.get("start")), rfc3339_ns(window.get("end"))
        if start is not None and end is not None and start <= end:
            out.append((h["name"], start, end, window["start"], window["end"]))
    return out


def _busiest(windows):
    """(start, end) of the first longest stretch covered by the most windows."""
    edges = sorted([(w[1], 1) for w in windows] + [(w[2], -1) for w in windows],
                   key=lambda e: (e[0], e[1]))   # an end before a start at the same instant
    best, best_len, best_span, depth = -1, -1, None, 0
    for (t, step), nxt in zip(edges, edges[1:] + [(None, 0)]):
        depth += step
        if nxt[0] is None or nxt[0] <= t:
            continue
        length = nxt[0] - t
        if depth > best or (depth == best and length > best_len):
            best, best_len, best_span = depth, length, (t, nxt[0])
    return best_span


def fleet_window(hosts):
    """The summary's "window": None without any host window, else
    {start, end (earliest start, latest end), start_spread (s), common (the
    seconds every host traced, or None), hosts, not_overlapping [names]}."""
    windows = _windows(hosts)
    if not windows:
        return None
    first = min(windows, key=lambda w: w[1])
    last = max(windows, key=lambda w: w[2])
    latest_start = max(windows, key=lambda w: w[1])
    earliest_end = min(windows, key=lambda w: w[2])
    span = _busiest(windows)
    if span is None:   # every window is an instant at one time
        outside = []
    else:
        outside = sorted(w[0] for w in windows if w[2] <= span[0] or w[1] >= span[1])
    common = None
    if latest_start[1] < earliest_end[2]:
        common = {"start": latest_start[3], "end": earliest_end[4],
                  "seconds": round((earliest_end[2] - latest_start[1]) / 1e9, 6)}
    return {"start": first[3], "end": last[4],
            "start_spread": round((latest_start[1] - first[1]) / 1e9, 6),
            "common": common, "hosts": len(windows), "not_overlapping": outside}


def window_line(window):
    """One line for the terminal and Markdown summaries."""
    if window is None:
        return "fleet window: no host traced"
    text = "fleet window: %s .. %s, start spread %.3f s over %d host%s" % (
        window["start"], window["end"], window["start_spread"], window["hosts"],
        "" if window["hosts"] == 1 else "s")
    if window["common"] is not None:
        text += "; all traced %.3f s together" % window["common"]["seconds"]
    return text


def overlap_line(window, cell=str):
    """The hosts that traced other seconds than the fleet, or None; cell()
    makes a host name safe for the format."""
    if not window or not window["not_overlapping"]:
        return None
    return ("window did not overlap the fleet's on %d host%s: %s (launched late: raise "
            "bindtrace_launch_host_seconds, or forks)" % (
                len(window["not_overlapping"]), "" if len(window["not_overlapping"]) == 1 else "s",
                ", ".join(cell(n) for n in window["not_overlapping"])))
