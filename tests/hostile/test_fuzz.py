"""Fuzzing (hypothesis) of everything that reads outside input: the kernel
record decoder, the allow rules, the trace options, the fleet report over any
facts a broken or hostile host could return, and the CLI table. Only clear
messages may come out (BindtraceError naming the input); never a crash."""
import json

from hypothesis import HealthCheck, given, settings, strategies as st

import inert
from bindreport import (REPORT_KIND, REPORT_SCHEMA, BindReportError, build_report, load_baseline,
                        render, render_terminal)
from bindtrace import BindtraceError
from bindtrace import cli, events, filters, policy
from bindtrace.events import EVENT_FMT, EVENT_KEYS, KEY_FMT, STATS_FMT

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLOCK = events.Clock()

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "\x1b[31mred\x1b[0m",
           "a\nb\rc", "\x00nul", "\u202egnp.exe", "| x | `y` [z](javascript:alert(1))",
           "\ud800lone", "'; DROP TABLE binds; --", "{{ 7*7 }}", "${jndi:ldap://x}"]
text = st.one_of(st.text(max_size=24), st.sampled_from(HOSTILE),
                 st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12))
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text,
                   st.integers(min_value=-2, max_value=70000))
json_value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)), max_leaves=8)


def one_clear_line(exc, *starts):
    msg = str(exc)
    assert msg and "Traceback" not in msg
    assert msg.startswith(starts), msg
    return msg


# ---------------------------------------------------------------- decoder

@SETTINGS
@given(st.one_of(st.binary(max_size=300), st.binary(min_size=EVENT_FMT.size,
                                                     max_size=EVENT_FMT.size)))
def test_event_decoder_any_bytes(raw):
    try:
        ev = events.decode_event(raw, CLOCK)
    except BindtraceError as exc:
        assert len(raw) != EVENT_FMT.size
        one_clear_line(exc, "malformed bind event record: %d bytes, expected %d"
                       % (len(raw), EVENT_FMT.size))
        return
    assert len(raw) == EVENT_FMT.size
    assert tuple(ev) == EVENT_KEYS
    assert isinstance(ev["comm"], str) and len(ev["comm"]) <= 16
    assert ev["family"] in (4, 6) or isinstance(ev["addr"], str)
    json.dumps(ev, allow_nan=False)               # JSON-safe whatever the bytes were
    assert ev["tid"] == EVENT_FMT.unpack(raw)[2]


@SETTINGS
@given(st.one_of(st.binary(max_size=200), st.binary(min_size=KEY_FMT.size, max_size=KEY_FMT.size)),
       st.one_of(st.binary(max_size=60), st.binary(min_size=STATS_FMT.size,
                                                   max_size=STATS_FMT.size)))
def test_summary_decoder_any_bytes(raw_key, raw_stats):
    good = len(raw_key) == KEY_FMT.size and len(raw_stats) == STATS_FMT.size
    try:
        rec = events.decode_summary(raw_key, raw_stats, CLOCK)
    except BindtraceError as exc:
        assert not good
        one_clear_line(exc, "malformed summary key record", "malformed summary stats record")
        return
    assert good
    assert rec["count"] == STATS_FMT.unpack(raw_stats)[0]
    json.dumps(rec, allow_nan=False)


@SETTINGS
@given(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers())))
def test_decoder_not_bytes_at_all(raw):
    try:
        events.decode_event(raw, CLOCK)
    except BindtraceError as exc:
        one_clear_line(exc, "malformed bind event record")
    else:
        raise AssertionError("decoded %r" % (raw,))


# ---------------------------------------------------------------- policy

RULE_WORDS = st.sampled_from(["80", "1-100", "tcp", "udp", "loopback", "any", "10.0.0.0/8", "::1",
                              "*", "nginx*", "0", "65536", "9-1", " 22 ", "0x16", "1e2", "١٢"])
rule_value = st.one_of(json_value, RULE_WORDS, st.lists(RULE_WORDS, max_size=3))
rule_key = st.one_of(st.sampled_from(policy.MATCH_KEYS + policy.INFO_KEYS), text, st.integers())
rules = st.one_of(json_value, st.lists(st.one_of(st.dictionaries(rule_key, rule_value, max_size=4),
                                                 json_value), max_size=4))


def record():
    return st.fixed_dictionaries({
        "pid": st.integers(1, 4194304), "uid": st.integers(0, 2 ** 32 - 2),
        "user": st.one_of(st.none(), text), "comm": text,
        "proto": st.sampled_from(["TCP", "UDP", "IP", "SCTP", "RAW"]),
        "family": st.sampled_from([4, 6]),
        "addr": st.sampled_from(["0.0.0.0", "127.0.0.1", "::", "::1", "10.1.2.3",
                                 "::ffff:10.0.0.1", "fe80::1"]),
        "port": st.integers(0, 65535), "requested_port": st.integers(0, 65535),
        "error": st.one_of(st.none(), st.sampled_from(["EADDRINUSE", "EACCES"])),
        "container": st.one_of(st.none(), st.fixed_dictionaries(
            {"runtime": st.just("docker"), "id": text, "name": text, "image": text})),
        "k8s": st.one_of(st.none(), st.fixed_dictionaries(
            {"node": text, "namespace": text, "pod": text, "container": text})),
    })


@SETTINGS
@given(rules, st.lists(record(), max_size=4), st.lists(record(), max_size=3))
def test_policy_any_rules(raw_rules, binds, listeners):
    try:
        compiled = policy.validate_rules(raw_rules)
    except BindtraceError as exc:
        msg = one_clear_line(exc, "invalid allow")
        assert "\n" not in msg.split(": ", 1)[0]
        return
    unexpected = policy.apply_policy(raw_rules, binds, listeners)
    want = {None} if compiled is None else {"expected", "unexpected"}
    # a bind that asked for port 0 is a client bind: not judged unless a client rule asks
    assert {r["verdict"] for r in binds} <= want | ({"client"} if compiled is not None else set())
    assert {r["verdict"] for r in listeners} <= want
    assert [id(r) for r in unexpected["binds"]] == [
        id(r) for r in binds if r["verdict"] == "unexpected" and not r["error"]]
    assert [id(r) for r in unexpected["listeners"]] == [
        id(r) for r in listeners if r["verdict"] == "unexpected"]


@SETTINGS
@given(record(), st.integers(1, 65535))
def test_policy_a_port_rule_allows_that_port(rec, port):
    rec = dict(rec, port=port, requested_port=port, error=None)   # a client bind has its own rules
    assert policy.verdict(policy.validate_rules([{"port": port}]), rec) == "expected"
    other = port % 65535 + 1
    assert policy.verdict(policy.validate_rules([{"port": other}]), rec) == "unexpected"


# ---------------------------------------------------------------- options

OPTION_WORDS = st.sampled_from(["", "0", "-1", "1e3", "all", "host", "4242,4343", "8000-8100",
                                "\n", "日本語", "summary", "events", "core", "true", "nan", "inf",
                                " 5 ", "65535", "65536", "1-", "-5", "2" * 400])
option = st.one_of(json_value, OPTION_WORDS, st.integers(-2 ** 70, 2 ** 70))
OPTIONS = ("mode", "pid", "ports", "ignore_errors", "comm", "uid", "netns", "containername",
           "scope", "max_events", "backend")


@SETTINGS
@given(st.fixed_dictionaries({}, optional={k: option for k in OPTIONS}))
def test_make_config_any_options(kw):
    try:
        cfg = filters.make_config(**kw)
    except BindtraceError as exc:
        one_clear_line(exc, *("invalid %s" % k for k in OPTIONS))
        return
    assert cfg.mode in filters.MODES and cfg.backend in filters.BACKENDS
    assert all(1 <= lo <= hi <= 65535 for lo, hi in cfg.ports)
    assert cfg.pid is None or 1 <= cfg.pid <= 4194304
    assert cfg.comm is None or len(cfg.comm.encode("utf-8")) <= 15
    json.dumps(cfg.as_filters())


@SETTINGS
@given(option)
def test_duration_and_ports_any_value(value):
    try:
        d = filters.parse_duration(value)
    except BindtraceError as exc:
        one_clear_line(exc, "invalid duration")
    else:
        assert 0 < d <= filters.MAX_DURATION
    try:
        ranges = filters.parse_ports(value)
    except BindtraceError as exc:
        one_clear_line(exc, "invalid ports")
    else:
        assert filters.parse_ports(filters.format_ports(ranges)) == ranges


# ---------------------------------------------------------------- the fleet report

fact_key = st.sampled_from(list(EVENT_KEYS) + ["verdict", "count", "first_seen", "last_seen",
                                               "state", "inode"])
any_record = st.one_of(st.dictionaries(fact_key, json_value, max_size=12), json_value)
any_facts = st.one_of(json_value, st.fixed_dictionaries({}, optional={
    "binds": st.one_of(st.lists(any_record, max_size=4), json_value),
    "listeners": st.one_of(st.lists(any_record, max_size=4), json_value),
    "lost": json_value, "dropped": json_value, "truncated": json_value, "host": json_value,
    "window": json_value, "mode": json_value, "counts": json_value, "schema": json_value,
    "missing_fields": json_value}))
statuses = st.sampled_from(["ok", "failed", "unreachable", "unsupported"])


def render_everything(model):
    data = inert.check_json(render(model, "json"))
    inert.check_junit(render(model, "junit"))
    inert.check_html(render(model, "html"))
    inert.check_markdown(render(model, "md"))
    inert.check_terminal(render_terminal(model))
    return data


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(text, st.fixed_dictionaries({"status": statuses, "facts": any_facts,
                                                     "msg": st.one_of(st.none(), text)}),
                       min_size=1, max_size=3))
def test_report_any_facts_from_any_host(hosts):
    """Whatever a host returns: the report renders, valid and inert, and a host
    whose facts it cannot use is failed with a reason naming the bad field."""
    model = build_report(hosts)
    data = render_everything(model)
    assert len(data["hosts"]) == len(model["hosts"])
    for h in model["hosts"]:
        if h["reason"] and h["reason"].startswith("the host returned malformed bind_trace facts"):
            assert (h["status"], h["facts"]) == ("failed", None)


@SETTINGS
@given(st.lists(record(), min_size=1, max_size=4), text)
def test_report_well_formed_facts_with_hostile_names_stay_ok(binds, host):
    for b in binds:
        b.update(verdict="unexpected", count=1)
    facts = {"schema": 1, "binds": binds, "listeners": binds[:1], "lost": 0, "dropped": 0,
             "truncated": False, "window": {"duration": 2.0}, "host": {"hostname": host}}
    model = build_report({host: {"status": "ok", "facts": facts, "msg": None}})
    assert model["hosts"][0]["status"] == "ok"
    render_everything(model)


base_host = st.one_of(json_value, st.fixed_dictionaries(
    {"name": st.one_of(st.just("h"), json_value), "facts": any_facts}))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(json_value, st.lists(base_host, max_size=3)))
def test_report_any_baseline_file(tmp_path_factory, hosts):
    """A corrupt or tampered baseline report.json: one clear BindReportError (the
    callback then warns and reports without drift), or a usable baseline."""
    path = str(tmp_path_factory.mktemp("baseline") / "report.json")
    with open(path, "w") as f:
        json.dump({"kind": REPORT_KIND, "schema": REPORT_SCHEMA, "hosts": hosts}, f)
    try:
        baseline = load_baseline(path)
    except BindReportError as exc:
        one_clear_line(exc, "baseline %s is not a usable report (" % path)
        return
    facts = {"schema": 1, "listeners": [{"proto": "TCP", "family": 4, "addr": "0.0.0.0",
                                         "port": 22, "comm": "sshd", "verdict": "expected"}]}
    model = build_report({"h": {"status": "ok", "facts": facts, "msg": None}},
                         baseline=baseline, baseline_path=path)
    render_everything(model)
    assert model["hosts"][0]["drift"]["compared"] in (True, False)


# ---------------------------------------------------------------- the CLI table

@SETTINGS
@given(st.lists(record(), min_size=1, max_size=3), st.booleans(), st.booleans())
def test_cli_table_any_names(recs, errors, summary):
    import io
    out = io.StringIO()
    table = cli.Table(out, containers=False, errors=errors, summary=summary)
    table.header()
    for r in recs:
        r.update(opts=".R...", **{"if": "", "if_index": 0, "count": 3})
        table.row(r)
    lines = inert.check_terminal(out.getvalue()).splitlines()
    # a newline in a name never adds a row (the first container row repeats the header)
    assert len(lines) == 1 + len(recs) + any(r["container"] is not None for r in recs)
