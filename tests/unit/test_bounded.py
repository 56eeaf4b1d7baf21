"""The cap on records a host returns (bindtrace.bounded, trace.build_facts):
the most significant records kept, exact totals, nothing hidden from the policy."""
from bindtrace.bounded import keep_significant, rank
from bindtrace.facts import unexpected_failure
from bindtrace.filters import make_config
from bindtrace.facts import build_facts

META = {"hostname": "h1", "kernel": "6.18", "backend": "core", "backend_reason": "test",
        "missing_fields": [], "start": None, "end": None, "duration": 1, "own_netns": 1}
STATS = {"lost": 0, "dropped": 0, "summary_full": 0}


def bind(port, req=None, comm="app", count=1, error=None, **kw):
    rec = {"proto": "UDP" if req == 0 else "TCP", "family": 4, "addr": "127.0.0.1", "port": port,
           "requested_port": port if req is None else req, "client": req == 0, "comm": comm,
           "pid": 10 + port, "uid": 0, "user": "root", "error": error, "count": count,
           "container": None, "k8s": None}
    rec.update(kw)
    return rec


def listener(port, comm="srv"):
    return {"proto": "TCP", "family": 4, "addr": "0.0.0.0", "port": port, "state": "LISTEN",
            "pid": port, "comm": comm, "uid": 0, "user": "root", "container": None, "k8s": None}


def test_unexpected_then_listeners_then_binds_then_failures_then_clients():
    recs = [bind(0, req=0, count=9), bind(0, error="EADDRINUSE", req=80), bind(443),
            bind(444, listened=True), bind(8080, verdict="unexpected")]
    assert [rank(r) for r in recs] == [4, 3, 2, 1, 0]
    kept, omitted = keep_significant(recs, 2)
    assert (kept, omitted) == ([recs[3], recs[4]], 3)          # original order kept
    assert keep_significant(recs, None) == (recs, 0)
    assert keep_significant(recs, 5) == (recs, 0)


def test_within_a_rank_the_most_frequent_first():
    recs = [bind(0, req=0, comm="a", count=1), bind(0, req=0, comm="b", count=50),
            bind(0, req=0, comm="c", count=7)]
    assert [r["comm"] for r in keep_significant(recs, 2)[0]] == ["b", "c"]


def test_facts_keep_exact_totals_and_the_forbidden_listener_under_the_cap():
    clients = [bind(0, req=0, comm="cli%03d" % i, count=2000) for i in range(30)]
    servers = [bind(20000 + i) for i in range(10)]
    listeners = [listener(2000 + i) for i in range(5)] + [listener(6666, comm="evil")]
    allow = [{"port": "20000-20009"}, {"port": "2000-2004", "comm": "srv"}]
    facts = build_facts(make_config(mode="summary"), clients + servers, STATS, META, listeners,
                        allow, max_records=4)
    assert facts["counts"] == {
        "binds": 60010, "records": 40, "listeners": 6, "client_binds": 60000,
        "unexpected_binds": 0, "unexpected_listeners": 1, "omitted_binds": 36,
        "omitted_listeners": 2, "lost": 0, "dropped": 0}
    assert facts["truncated"] is True
    assert [b["port"] for b in facts["binds"]] == [20000, 20001, 20002, 20003]
    assert [lst["port"] for lst in facts["listeners"]] == [2000, 2001, 2002, 6666]
    assert [lst["port"] for lst in facts["unexpected"]["listeners"]] == [6666]
    # the policy saw everything: the task fails for the listener, not for the cap
    assert unexpected_failure(facts, True) == (
        "unexpected listeners on h1: TCP 0.0.0.0:6666 evil pid 6666. No allow rule matches them: "
        "stop them, or add a rule to allow (e.g. {port: N, proto: tcp, comm: NAME})")


def test_no_cap_returns_everything():
    recs = [bind(20000 + i) for i in range(600)]
    facts = build_facts(make_config(mode="summary"), recs, STATS, META, [], None, max_records=None)
    assert len(facts["binds"]) == 600 and facts["truncated"] is False
    assert facts["counts"]["omitted_binds"] == 0
    # the default cap: 500
    facts = build_facts(make_config(mode="summary"), recs, STATS, META, [], None)
    assert len(facts["binds"]) == 500 and facts["counts"]["omitted_binds"] == 100


def test_caps_defaults_and_explicit_events():
    from bindtrace.facts import caps
    assert caps("summary", None, None) == (10000, 500)
    assert caps("events", None, None) == (10000, 500)
    assert caps("summary", None, "unlimited") == (10000, None)
    assert caps("events", 2000, None) == (2000, 2000)      # the events asked for come back
    assert caps("events", "unlimited", None) == ("unlimited", None)
    assert caps("events", 100, None) == (100, 500)
    assert caps("events", 2000, 300) == (2000, 300)        # unless capped too
    assert caps("summary", 2000, None) == (2000, 500)      # summary: max_events plays no part
