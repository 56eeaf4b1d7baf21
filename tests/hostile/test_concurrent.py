"""Three traces at once on one host, with different filters: two
ansible-playbook runs of playbooks/trace_bind.yml (summary with failures,
events of successful binds only) and the trace-bind CLI (summary, comm
filter). Each has its own BPF objects and sees every bind of its window."""
import json

import pytest

from hostile_util import (PORT_BASE, find_tracer, finish, no_traceback, report, start_cli,
                          start_playbook, stop_cli, storm, tracing, wait_gone)

pytestmark = pytest.mark.slow

PORT = PORT_BASE + 20
WINDOW = 10
OK_BINDS = 2 * 1000        # successful binds (bindstorm ok mode)
FAILED_BINDS = 2 * 1500    # EINVAL binds (bindstorm einval mode)


def test_two_playbooks_and_the_cli_at_once_each_see_every_bind(bindstorm, local_inventory,
                                                               tmp_path):
    common = {"bindtrace_duration": WINDOW, "bindtrace_ports": str(PORT),
              "bindtrace_listeners": False}
    pb_sum = start_playbook(local_inventory, tmp_path / "a",
                            dict(common, bindtrace_mode="summary", bindtrace_ignore_errors=False))
    pb_ev = start_playbook(local_inventory, tmp_path / "b",
                           dict(common, bindtrace_mode="events", bindtrace_comm="bindstorm",
                                bindtrace_max_events="unlimited"))   # no cap, asked explicitly
    cli = start_cli("--summary", "-i=false", "--comm", "bindstorm", "-P", str(PORT), "-o", "json")
    try:
        tracers = [find_tracer(pb_sum.pid, pb_sum), find_tracer(pb_ev.pid, pb_ev),
                   find_tracer(cli.pid)]
        # three tracers, nothing shared between them
        all_ids = [ids for _, ids in tracers]
        assert not (all_ids[0] & all_ids[1] or all_ids[0] & all_ids[2] or all_ids[1] & all_ids[2])
        ok = storm(bindstorm, 2, OK_BINDS // 2, "ok", PORT)
        failed = storm(bindstorm, 2, FAILED_BINDS // 2, "einval", PORT)
        for pid, _ in tracers:
            assert tracing(pid), "the binds must fall inside every window"
        rc_cli, cli_out, cli_err = stop_cli(cli)
        rc_a, out_a = finish(pb_sum)
        rc_b, out_b = finish(pb_ev)
    finally:
        for p in (pb_sum, pb_ev, cli):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert (ok, failed) == (OK_BINDS, FAILED_BINDS)
    assert (rc_a, rc_b, rc_cli) == (0, 0, 0), out_a + out_b + cli_err
    for text in (out_a, out_b, cli_err):
        assert no_traceback(text) == []

    # playbook A: summary, failures included -> every bind, exactly
    (host,) = report(tmp_path / "a")["hosts"]
    facts = host["facts"]
    assert facts["counts"]["binds"] == OK_BINDS + FAILED_BINDS
    by_error = {}
    for b in facts["binds"]:
        by_error[b["error"]] = by_error.get(b["error"], 0) + b["count"]
    assert by_error == {None: OK_BINDS, "EINVAL": FAILED_BINDS}
    assert (facts["lost"], facts["dropped"]) == (0, 0)

    # playbook B: one event per successful bind, none lost, none dropped
    (host,) = report(tmp_path / "b")["hosts"]
    facts = host["facts"]
    assert len(facts["binds"]) == facts["counts"]["binds"] == OK_BINDS
    assert {(b["comm"], b["port"], b["error"], b["opts"]) for b in facts["binds"]} == \
        {("bindstorm", PORT, None, "rR...")}
    assert (facts["lost"], facts["dropped"], facts["truncated"]) == (0, 0, False)

    # the CLI: the same totals as playbook A
    records = [json.loads(l) for l in cli_out.splitlines()]
    assert sum(r["count"] for r in records) == OK_BINDS + FAILED_BINDS
    assert err_line(cli_err) == "# events: %d, lost: 0, dropped: 0" % (OK_BINDS + FAILED_BINDS)
    for _, ids in tracers:
        assert wait_gone(ids) == set()


def err_line(err):
    return err.strip().splitlines()[-1]
