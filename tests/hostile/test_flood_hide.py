"""Hiding a forbidden bind by flooding first: a process makes more distinct
binds than the kernel's summary table holds, then binds a port the policy
forbids, which the full table can no longer record. The audit must fail
closed: every distinct bind is recorded or counted (summary_full), the facts
and the report mark the host truncated, and fail_on_unexpected fails naming
why the policy could not see everything.

The real kernel and the host library's own window (run_window, build_facts,
facts.unexpected_failure: what the module runs); the table is made small
(64 entries instead of 16384) so the flood stays small: 16384 records through
ansible-playbook take most of a minute here."""
import os
import subprocess
import threading

from bindreport import build_report, classify_result, render_terminal
from bindtrace.facts import unexpected_failure
from bindtrace.filters import make_config
from bindtrace.facts import build_facts
from bindtrace.trace import run_window
from hostile_util import PORT_BASE, find_tracer, tracing

FORBIDDEN = PORT_BASE + 90
TABLE = 64
FLOOD = 100                  # distinct binds, more than the table holds
COMM = "bthide"
ALLOW = [{"name": "the flood's ports", "port": "30000-30999"}]
FLOOD_CODE = """
import socket, sys
open('/proc/self/comm', 'w').write(sys.argv[1])
ok = 0
for port in range(30000, 30000 + int(sys.argv[2])):
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', port))
        ok += 1
    except OSError:
        pass              # a port some other process holds: not an event (ignore_errors)
    s.close()
f = socket.socket()
f.bind(('0.0.0.0', int(sys.argv[3])))  # the one that matters, after the flood
print(ok)
"""


def window_with_flood(cfg, duration=4):
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=run_window(cfg, duration)))
    worker.start()
    try:
        pid, ids = find_tracer(os.getpid(), timeout=60)
        flood = subprocess.run(["/usr/bin/python3", "-c", FLOOD_CODE, COMM, str(FLOOD),
                                str(FORBIDDEN)], capture_output=True, text=True, check=True)
        assert tracing(pid), "the flood must fall inside the window"
    finally:
        worker.join(120)
    return int(flood.stdout), result["out"]


def test_flooding_the_summary_table_cannot_hide_a_forbidden_bind():
    cfg = make_config(mode="summary", comm=COMM)
    cfg.summary_entries = TABLE
    flooded, (binds, stats, meta) = window_with_flood(cfg)
    facts = build_facts(cfg, binds, stats, meta, [], ALLOW)
    distinct = flooded + 1                               # and the forbidden one
    # every distinct bind is either recorded or counted as not recorded
    assert len(facts["binds"]) == TABLE
    assert facts["summary_full"] == distinct - TABLE
    assert facts["truncated"] is True
    assert FORBIDDEN not in {b["port"] for b in facts["binds"]}    # no room left for it
    assert facts["unexpected"]["binds"] == []                      # so no rule saw it...
    # ...and the task fails closed all the same, saying why
    msg = unexpected_failure(facts, True)
    assert msg == ("the allow rules could not check every bind on %s: %d distinct binds not "
                   "recorded (summary table full); rerun the task (trace a shorter window or "
                   "fewer ports)" % (meta["hostname"], distinct - TABLE))
    assert unexpected_failure(facts, False) is None
    # the report marks the host truncated, in the summary and on the terminal
    model = build_report({"h1": classify_result(
        {"failed": True, "msg": msg, "ansible_facts": {"bind_trace": facts}}, "failed")})
    assert model["summary"]["truncated_hosts"] == ["h1"]
    assert model["hosts"][0]["reason"] == msg
    assert "truncated on: h1" in render_terminal(model)


def test_events_past_max_events_or_lost_also_fail_closed():
    facts = {"host": {"hostname": "h"}, "unexpected": {"binds": [], "listeners": []},
             "lost": 7, "dropped": 5, "summary_full": 0}
    assert unexpected_failure(facts, True) == (
        "the allow rules could not check every bind on h: 7 binds lost (ring buffer full), "
        "5 binds dropped past max_events; rerun the task (use mode: summary, which counts "
        "every bind; raise max_events or use mode: summary)")
