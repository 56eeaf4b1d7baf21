"""start_at on the real kernel (issue 20): the tracer loads first, attaches at
the fleet's start time, and the window holds exactly the binds made from then
on. Binds made while it was loaded but waiting, including any the hook ladder's
trial attach caught, are not in it; the window ends at start_at + duration."""
import os
import socket
import threading
import time

import pytest

from bindtrace import BindtraceError
from bindtrace.facts import collect_facts
from bindtrace.filters import parse_start_at
from bindreport.window import rfc3339_ns
from helpers.kernel import bpf_ids_of

LEAD = 4.0      # seconds between the call and start_at: enough to load on a loaded machine
WINDOW = 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bind_loop(port, until):
    """Bind 127.0.0.1:port (SO_REUSEADDR) again and again until `until`; -> count."""
    n = 0
    while time.time() < until:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.close()
        n += 1
    return n


@pytest.mark.parametrize("mode", ["summary", "events"])
def test_only_binds_from_the_start_time_on_are_in_the_window(mode):
    before, after = free_port(), free_port()
    start_at = time.time() + LEAD
    result = {}

    def trace():
        try:
            result["facts"] = collect_facts(duration=WINDOW, start_at=start_at, mode=mode,
                                            max_events="unlimited", max_records="unlimited",
                                            pid=os.getpid(),
                                            ports=[before, after], listeners=False)
        except BaseException as exc:   # reported by the main thread
            result["error"] = exc

    t = threading.Thread(target=trace)
    t.start()
    # binds on `before` all through the load (the ladder's trial attach
    # included) until just before the start time
    early = bind_loop(before, start_at - 0.3)
    loaded = bpf_ids_of(os.getpid())
    assert any(kind == "prog_id" for kind, _ in loaded), "not loaded %.1f s after the call" % LEAD
    assert not any(kind == "link_id" for kind, _ in loaded), "attached before the start time"
    while time.time() < start_at + 0.2:
        time.sleep(0.01)
    late = bind_loop(after, start_at + 0.7)
    t.join(60)
    assert "error" not in result, result.get("error")
    facts = result["facts"]
    ports = {}
    for b in facts["binds"]:
        ports[b["port"]] = ports.get(b["port"], 0) + b.get("count", 1)
    assert early > 0 and ports == {after: late}, (early, ports)
    assert (facts["lost"], facts["dropped"], facts["summary_full"]) == (0, 0, 0)
    start, end = rfc3339_ns(facts["window"]["start"]), rfc3339_ns(facts["window"]["end"])
    assert 0 <= start - start_at * 1e9 < 0.5e9          # attached at the start time
    assert abs(end - (start_at + WINDOW) * 1e9) < 0.5e9  # and ended with the fleet
    assert facts["window"]["duration"] == WINDOW
    assert not bpf_ids_of(os.getpid())                   # nothing held after the window


def test_launched_late_attaches_at_once_and_ends_with_the_fleet():
    start_at = time.time() - 1.0
    t0 = time.time()
    facts = collect_facts(duration=3, start_at=start_at, pid=os.getpid(), listeners=False)
    start, end = rfc3339_ns(facts["window"]["start"]), rfc3339_ns(facts["window"]["end"])
    assert start >= t0 * 1e9 and abs(end - (start_at + 3) * 1e9) < 0.5e9
    # launched after the fleet's end: a whole window from now, which the report flags
    t0 = time.time()
    facts = collect_facts(duration=1, start_at=t0 - 5, pid=os.getpid(), listeners=False)
    start, end = rfc3339_ns(facts["window"]["start"]), rfc3339_ns(facts["window"]["end"])
    assert start >= t0 * 1e9 and end - start >= 0.95e9


def test_start_at_values():
    now = 1800000000.0
    assert parse_start_at(None, now) is None and parse_start_at("", now) is None
    assert parse_start_at("1800000010.25", now) == 1800000010.25
    assert parse_start_at(now - 100, now) == now - 100   # past: start at once
    for bad in ("soon", True, float("nan"), float("inf"), [1]):
        with pytest.raises(BindtraceError) as e:
            parse_start_at(bad, now)
        assert str(e.value) == ("invalid start_at %r: expected the fleet's start time as epoch "
                                "seconds, e.g. {{ now().timestamp() + 10 }}" % (bad,))
    with pytest.raises(BindtraceError) as e:
        parse_start_at(now + 3601, now)
    assert str(e.value) == (
        "invalid start_at %r: it is 3601 s after this host's clock, more than 3600; give a time a "
        "few seconds after the launch, and check that the host's clock is synchronised (NTP)"
        % (now + 3601,))
