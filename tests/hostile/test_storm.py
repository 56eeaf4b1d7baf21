"""A storm of one million binds during one window, seen at the same time by the
real module in summary mode, the real module in events mode (two
ansible-playbook runs of playbooks/trace_bind.yml with the bind_report
callback) and the trace-bind CLI (summary, stopped with Ctrl-C).

Summary mode counts in the kernel: the count is exact. Events mode goes
through a ring buffer, and its reader is starved (SIGSTOP) for the whole storm
so the buffer fills: every offered bind is either delivered (kept, or dropped
past max_events) or counted lost, never silent.
"""
import json
import os
import re
import signal
import time

import pytest

from bindtrace.events import EVENT_FMT
from bindtrace.filters import TraceConfig
from hostile_util import (PORT_BASE, find_tracer, finish, no_traceback, report, start_cli,
                          start_playbook, stop_cli, storm, tracing, wait_gone)

pytestmark = pytest.mark.slow

THREADS = 2
PER_THREAD = 500000
OFFERED = THREADS * PER_THREAD          # 1 000 000 bind() calls
PORT = PORT_BASE + 1
MAX_EVENTS = 1000
RING_BYTES = TraceConfig().ringbuf_bytes


def window_for(bindstorm):
    """A window long enough for the storm on this machine right now: the rate of
    a small untraced storm, with room for tracing overhead and a loaded box.
    Sizing only: nothing asserts a duration."""
    start = time.monotonic()
    storm(bindstorm, THREADS, 50000, "einval", PORT_BASE + 99)
    rate = 100000 / max(time.monotonic() - start, 1e-3)
    return int(min(150, max(20, 8 + 4 * OFFERED / rate)))


def storm_vars(mode, window, **extra):
    v = {"bindtrace_mode": mode, "bindtrace_duration": window, "bindtrace_ports": str(PORT),
         "bindtrace_ignore_errors": False, "bindtrace_listeners": False}
    v.update(extra)
    return v


def test_one_million_binds_summary_exact_events_accounted(bindstorm, local_inventory, tmp_path):
    window = window_for(bindstorm)
    sum_dir, ev_dir = tmp_path / "summary", tmp_path / "events"
    pb_sum = start_playbook(local_inventory, sum_dir, storm_vars("summary", window))
    pb_ev = start_playbook(local_inventory, ev_dir,
                           storm_vars("events", window, bindtrace_max_events=MAX_EVENTS))
    cli = start_cli("--summary", "-i=false", "-P", str(PORT), "-o", "json")
    try:
        tracers = [find_tracer(pb_sum.pid, pb_sum), find_tracer(pb_ev.pid, pb_ev),
                   find_tracer(cli.pid)]
        # the events-mode tracer is starved (SIGSTOP) for the whole storm, as on a
        # host under attack: its ring buffer fills and the kernel counts the rest lost
        starved = tracers[1][0]
        os.kill(starved, signal.SIGSTOP)
        try:
            offered = storm(bindstorm, THREADS, PER_THREAD, "einval", PORT)
        finally:
            os.kill(starved, signal.SIGCONT)
        # the storm must have ended inside both windows, or counts would be short
        for pid, _ in tracers:
            assert tracing(pid), "the storm outlasted a %ds window" % window
        rc_cli, cli_out, cli_err = stop_cli(cli, signal.SIGINT)      # Ctrl-C
        rc_sum, out_sum = finish(pb_sum)
        rc_ev, out_ev = finish(pb_ev)
    finally:
        for p in (pb_sum, pb_ev, cli):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert offered == OFFERED
    assert (rc_sum, rc_ev, rc_cli) == (0, 0, 0), out_sum + out_ev + cli_err
    for text in (out_sum, out_ev, cli_err):
        assert no_traceback(text) == []

    # ---- summary mode: exact, in the facts and in the report
    rep = report(sum_dir)
    (host,) = rep["hosts"]
    facts = host["facts"]
    assert (host["status"], facts["mode"]) == ("ok", "summary")
    assert facts["counts"]["binds"] == OFFERED
    assert sum(b["count"] for b in facts["binds"]) == OFFERED
    # one record per storm thread (each thread's socket has its own bound port)
    assert [b["count"] for b in facts["binds"]] == [PER_THREAD] * THREADS
    assert {(b["comm"], b["requested_port"], b["error"], b["ret"]) for b in facts["binds"]} == \
        {("bindstorm", PORT, "EINVAL", -22)}
    assert (facts["lost"], facts["dropped"], facts["truncated"]) == (0, 0, False)
    assert (facts["counts"]["lost"], facts["counts"]["dropped"]) == (0, 0)
    s = rep["summary"]
    assert (s["binds"], s["bind_records"], s["lost"], s["dropped"]) == (OFFERED, THREADS, 0, 0)
    assert "binds: %d (%d records)" % (OFFERED, THREADS) in out_sum

    # ---- events mode: delivered + lost == offered, delivered = kept + dropped
    rep = report(ev_dir)
    (host,) = rep["hosts"]
    facts = host["facts"]
    assert (host["status"], facts["mode"]) == ("ok", "events")
    kept, dropped, lost = len(facts["binds"]), facts["dropped"], facts["lost"]
    print("storm of %d binds, %ds window: events mode kept %d, dropped %d, lost %d"
          % (OFFERED, window, kept, dropped, lost))
    assert kept == MAX_EVENTS
    assert kept + dropped + lost == OFFERED
    # at most a full ring buffer (4 MiB of 112-byte records + 8-byte headers) was delivered
    assert lost >= OFFERED - RING_BYTES // (EVENT_FMT.size + 8)
    assert facts["counts"] == dict(facts["counts"], binds=kept, records=kept, lost=lost,
                                   dropped=dropped)
    assert facts["truncated"] is True
    assert all((b["comm"], b["requested_port"], b["error"]) == ("bindstorm", PORT, "EINVAL")
               for b in facts["binds"])
    s = rep["summary"]
    assert (s["binds"], s["lost"], s["dropped"], s["truncated_hosts"]) == \
        (kept, lost, dropped, ["localhost"])
    assert "lost events: %d  dropped: %d  truncated on: localhost" % (lost, dropped) in out_ev
    with open(os.path.join(str(ev_dir), "report.md"), encoding="utf-8") as f:
        md = f.read()
    assert "lost %d, dropped %d, truncated" % (lost, dropped) in md

    # ---- the CLI beside them, Ctrl-C'd after the storm: exact too
    assert re.search(r"^# events: %d, lost: 0, dropped: 0$" % OFFERED, cli_err, re.M), cli_err
    assert sum(json.loads(l)["count"] for l in cli_out.splitlines()) == OFFERED

    # ---- nothing of any of the three remains loaded
    for _, ids in tracers:
        assert wait_gone(ids) == set()
