"""The real module through the real ansible-playbook, called with weird and
hostile arguments: each call fails with one clear message naming the option
(no traceback, no crash), and odd-but-valid values are understood."""
import json
import os

import pytest

from hostile_util import (FIXTURES, PORT_BASE, no_traceback, read_json, run_playbook,
                          write_local_inventory)

pytestmark = pytest.mark.slow

WEIRD = [
    # (name, args, the failure message starts with)
    ("duration text", {"duration": "abc"}, "invalid duration 'abc'"),
    ("duration huge", {"duration": 10 ** 30}, "invalid duration 1000000000000000000000000000000"),
    ("duration ansi", {"duration": "\x1b[31m5"}, "invalid duration '\\x1b[31m5'"),
    ("ports range", {"ports": "0-99999"}, "invalid ports '0'"),
    ("ports markup", {"ports": "80,<script>"}, "invalid ports entry '<script>'"),
    ("pid markup", {"pid": "<script>alert(1)</script>"}, "invalid pid '<script>alert(1)</script>'"),
    ("comm long", {"comm": "x" * 100}, "invalid comm '%s'" % ("x" * 100)),
    ("netns word", {"netns": "nope"}, "invalid netns 'nope'"),
    ("mode", {"mode": "everything"}, "value of mode must be one of: summary, events"),
    ("ignore_errors", {"ignore_errors": "maybe"}, "argument 'ignore_errors' is of type str"),
    ("unknown option", {"bogus": 1}, "Unsupported parameters for (fleetaudit.bindtrace.trace_bind)"),
    ("allow text", {"allow": "notalist"}, "invalid allow ('notalist'): expected a list of rules"),
    ("allow empty rule", {"allow": [{}]}, "invalid allow rule 0 ({}): a rule needs at least one"),
    ("allow unknown key", {"allow": [{"port": 22, "bogus": 1}]},
     "invalid allow rule 0, key 'bogus' (1): unknown key"),
    ("allow not a mapping", {"allow": [5]}, "invalid allow rule 0 (5): each rule must be a mapping"),
    ("allow proto", {"allow": [{"proto": "<img src=x onerror=1>"}]},
     "invalid allow rule 0, key 'proto' ('<img src=x onerror=1>')"),
    ("fail_on_unexpected alone", {"fail_on_unexpected": True}, "fail_on_unexpected needs a policy"),
]
PORT = PORT_BASE + 40
# odd but valid: spaces in the port list, a fraction of a second, a UTF-8 comm
VALID = ("valid oddities", {"duration": "0.5", "ports": " %d , %d-%d " % (PORT, PORT + 1, PORT + 2),
                            "comm": "日本語", "listeners": False})


def test_weird_arguments_give_one_clear_message_each(tmp_path):
    """One host alias per argument set, run in parallel (forks)."""
    cases = [(n, a) for n, a, _ in WEIRD] + [VALID]
    hosts = ["w%02d" % i for i in range(len(cases))]
    inventory = write_local_inventory(tmp_path / "inventory.json", hosts,
                                      {h: {"weird_args": a} for h, (_, a) in zip(hosts, cases)})
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    rc, out = run_playbook(inventory, tmp_path / "reports", {"results_dir": str(results_dir)},
                           playbook=os.path.join(FIXTURES, "weird_args.yml"), args=["-f", "8"])
    assert rc == 0, out                                  # every failure was an ignored error
    assert no_traceback(out) == []
    results = [read_json(results_dir / (h + ".json")) for h in hosts]
    for (name, _, start), r in zip(WEIRD, results):
        assert r["failed"] is True, name
        msg = r["msg"]
        assert msg.startswith(start), (name, msg)
        assert "\n" not in msg and "\x1b" not in msg, (name, msg)
        assert "Traceback" not in json.dumps(r) and "internal error" not in msg, (name, r)
        assert "ansible_facts" not in r, name            # nothing traced on a bad argument
    ok = results[-1]
    assert ok.get("failed") is False, ok
    facts = ok["ansible_facts"]["bind_trace"]
    assert facts["filters"]["ports"] == "%d,%d-%d" % (PORT, PORT + 1, PORT + 2)
    assert facts["filters"]["comm"] == "日本語"
    assert facts["window"]["duration"] == 0.5
