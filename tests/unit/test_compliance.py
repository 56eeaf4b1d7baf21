"""bindtrace.compliance: the verdict, the listener set and its drift, the state
file (what Salt's bindtrace.compliant reports), on hand-made facts."""
import json
import os
import stat
import sys

import pytest

from bindtrace import BindtraceError
from bindtrace import compliance as c

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import report_facts as rf  # noqa: E402


def test_listener_names_leave_the_pid_out_and_say_the_container():
    assert c.listener_name(rf.listener(7, "nginx", 80)) == "TCP 0.0.0.0:80 nginx"
    assert c.listener_name(rf.listener(8, "dns", 53, proto="UDP", addr="::1")) == "UDP [::1]:53 dns"
    assert (c.listener_name(rf.listener(9, "redis", 6379, container={"name": "cache", "id": "ab"}))
            == "TCP 0.0.0.0:6379 redis in container cache")
    hidden = dict(rf.listener(None, None, 22), comm=None)
    assert c.listener_name(hidden) == "TCP 0.0.0.0:22 (no owning process visible)"


def test_listener_set_is_sorted_distinct_and_survives_a_restart():
    a = rf.facts("h", listeners=[rf.listener(7, "nginx", 443), rf.listener(7, "nginx", 80),
                                 rf.listener(8, "nginx", 80)])
    b = rf.facts("h", listeners=[rf.listener(99, "nginx", 80), rf.listener(99, "nginx", 443)])
    assert c.listener_set(a) == c.listener_set(b) == ["TCP 0.0.0.0:443 nginx",
                                                      "TCP 0.0.0.0:80 nginx"]


def test_a_listener_list_cut_at_max_records_is_refused():
    facts = rf.facts("h", listeners=[rf.listener(7, "nginx", 80)])
    facts["counts"]["omitted_listeners"] = 3
    with pytest.raises(BindtraceError, match="3 listeners on h were left out of the facts "
                                             r"\(max_records\): the listener set cannot be "
                                             "compared; set max_records to unlimited"):
        c.listener_set(facts)


def test_drift():
    assert c.drift(None, ["a", "b"]) == {"new": ["a", "b"], "gone": []}
    assert c.drift(["a", "b"], ["b", "a"]) == {}
    assert c.drift(["a", "b"], ["b", "c"]) == {"new": ["c"], "gone": ["a"]}
    assert c.drift([], []) == {}


def test_verdict_passes_or_names_what_no_rule_allows():
    clean = rf.facts("web1", binds=[rf.bind(7, "nginx", 80, verdict="expected")],
                     listeners=[rf.listener(7, "nginx", 80, verdict="expected")], rules=1)
    assert c.verdict(clean) == (True, "1 listener and 1 bind on web1 in the 2.0 s window, all "
                                      "allowed by the 1 allow rule")
    bad = rf.facts("web1", listeners=[rf.listener(7, "nginx", 80, verdict="expected"),
                                      rf.listener(9, "nc", 4242, verdict="unexpected")])
    ok, comment = c.verdict(bad)
    assert not ok
    assert comment.startswith("unexpected listeners on web1: TCP 0.0.0.0:4242 nc pid 9. No allow "
                              "rule matches them")


def test_verdict_fails_closed_when_binds_went_unseen():
    lossy = rf.facts("web1", mode="events", lost=5, rules=1)
    ok, comment = c.verdict(lossy)
    assert not ok
    assert comment.startswith("the allow rules could not check every bind on web1: 5 binds lost")


def test_summary_with_and_without_a_policy():
    facts = rf.facts("web1", listeners=[rf.listener(9, "nc", 4242, verdict="unexpected")])
    assert c.summary(facts, True).startswith(
        "1 listener and 0 binds on web1 in the 2.0 s window; unexpected: 1 listener, 0 binds "
        "(unexpected listeners on web1: TCP 0.0.0.0:4242 nc pid 9.")
    plain = rf.facts("web1", listeners=[rf.listener(9, "nc", 4242)], rules=0)
    assert c.summary(plain, False) == ("1 listener and 0 binds on web1 in the 2.0 s window; no "
                                       "allow rules")


def test_state_file_round_trip_private_and_atomic(tmp_path):
    path = str(tmp_path / "cache" / "bindtrace" / "listeners-x.json")
    assert c.load_listener_set(path) is None
    facts = rf.facts("web1")
    c.store_listener_set(path, ["TCP 0.0.0.0:80 nginx"], facts)
    assert c.load_listener_set(path) == ["TCP 0.0.0.0:80 nginx"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert os.listdir(os.path.dirname(path)) == ["listeners-x.json"]
    with open(path) as f:
        assert json.load(f)["kind"] == "bindtrace-listener-set"


@pytest.mark.parametrize("text", ["{not json", json.dumps({"kind": "other", "listeners": []}),
                                  json.dumps(["TCP 0.0.0.0:80 nginx"])])
def test_a_state_file_that_is_not_ours_is_an_error_not_a_baseline(tmp_path, text):
    path = tmp_path / "listeners-x.json"
    path.write_text(text)
    with pytest.raises(BindtraceError, match="remove the file; the next run records a new one"):
        c.load_listener_set(str(path))
