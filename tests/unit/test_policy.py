"""Allow rules -> verdicts (bindtrace.policy): matching per key, validation messages."""
import pytest

from bindtrace import BindtraceError
from bindtrace.policy import apply_policy, describe, validate_rules


def rec(**kw):
    base = {"proto": "TCP", "family": 4, "addr": "0.0.0.0", "port": 8080, "requested_port": 8080,
            "comm": "nginx", "uid": 33, "user": "www-data", "pid": 100, "error": None,
            "container": None, "k8s": None}
    base.update(kw)
    return base


def verdict(rules, record):
    apply_policy(rules, [record], [])
    return record["verdict"]


@pytest.mark.parametrize("rule,record,expected", [
    ({"port": 8080}, rec(), "expected"),
    ({"port": 8081}, rec(), "unexpected"),
    ({"port": "8000-8100"}, rec(), "expected"),
    ({"port": "8000-8079"}, rec(), "unexpected"),
    ({"port": [22, "8080"]}, rec(), "expected"),
    ({"port": [22, "9000-9100"]}, rec(), "unexpected"),
    ({"proto": "tcp"}, rec(), "expected"),
    ({"proto": ["UDP"]}, rec(), "unexpected"),
    ({"proto": ["udp", "Tcp"]}, rec(), "expected"),
    ({"addr": "any"}, rec(), "expected"),
    ({"addr": "wildcard"}, rec(addr="::", family=6), "expected"),
    ({"addr": "any"}, rec(addr="127.0.0.1"), "unexpected"),
    ({"addr": "loopback"}, rec(addr="127.0.0.53"), "expected"),
    ({"addr": "loopback"}, rec(addr="::1", family=6), "expected"),
    ({"addr": "loopback"}, rec(addr="::ffff:127.0.0.1", family=6), "expected"),
    ({"addr": "loopback"}, rec(addr="10.0.0.1"), "unexpected"),
    ({"addr": "10.0.0.0/8"}, rec(addr="10.20.30.40"), "expected"),
    ({"addr": "10.0.0.0/8"}, rec(addr="::ffff:10.20.30.40", family=6), "expected"),
    ({"addr": "10.0.0.0/8"}, rec(addr="11.0.0.1"), "unexpected"),
    ({"addr": "fd00::/8"}, rec(addr="fd12::1", family=6), "expected"),
    ({"addr": "fd00::/8"}, rec(addr="10.0.0.1"), "unexpected"),
    ({"addr": "192.0.2.7"}, rec(addr="192.0.2.7"), "expected"),
    ({"addr": ["192.0.2.7", "loopback"]}, rec(addr="127.0.0.1"), "expected"),
    ({"comm": "ngin*"}, rec(), "expected"),
    ({"comm": "Nginx"}, rec(), "unexpected"),          # globs are case-sensitive, like comm
    ({"comm": ["sshd", "nginx"]}, rec(), "expected"),
    ({"user": "www-data"}, rec(), "expected"),
    ({"user": 33}, rec(), "expected"),
    ({"user": "3?"}, rec(), "expected"),
    ({"user": "root"}, rec(), "unexpected"),
    ({"user": 0}, rec(), "unexpected"),
    ({"container": "*"}, rec(), "unexpected"),         # host process: no container
    ({"container": "*"}, rec(container={"runtime": "docker", "id": "ab", "name": "web-1"}),
     "expected"),
    ({"container": "web-?"}, rec(container={"runtime": "docker", "id": "ab", "name": "web-1"}),
     "expected"),
    ({"container": "db*"}, rec(container={"runtime": "docker", "id": "ab", "name": "web-1"}),
     "unexpected"),
    ({"container": "app"}, rec(k8s={"node": "n", "namespace": "d", "pod": "p", "container": "app"}),
     "expected"),
    ({"host": True}, rec(), "expected"),
    ({"host": False}, rec(), "unexpected"),
    ({"host": True}, rec(container={"runtime": "docker", "id": "ab", "name": "web-1"}),
     "unexpected"),
    # every given key must match
    ({"port": 8080, "proto": "tcp", "comm": "nginx", "user": "www-data", "addr": "any"}, rec(),
     "expected"),
    ({"port": 8080, "proto": "udp"}, rec(), "unexpected"),
    ({"port": 8080, "comm": "apache2", "name": "web"}, rec(), "unexpected"),
])
def test_rule_matching(rule, record, expected):
    assert verdict([rule], record) == expected


def test_any_rule_suffices_and_none_means_no_policy():
    rules = [{"port": 22}, {"comm": "nginx"}]
    assert verdict(rules, rec()) == "expected"
    assert verdict([{"port": 22}], rec()) == "unexpected"
    assert verdict(None, rec()) is None
    assert verdict([], rec()) == "unexpected"     # an empty policy allows nothing


def test_failed_bind_uses_requested_port_and_is_never_listed_unexpected():
    failed = rec(port=0, requested_port=80, error="EACCES", addr="0.0.0.0")
    ok = rec(port=9999, requested_port=9999)
    listener = {"proto": "UDP", "family": 4, "addr": "0.0.0.0", "port": 53, "comm": "dnsmasq",
                "uid": 0, "user": "root", "pid": 5, "container": None, "k8s": None}
    out = apply_policy([{"port": 8080}], [failed, ok], [listener])
    assert failed["verdict"] == "unexpected"
    assert ok["verdict"] == "unexpected"
    assert listener["verdict"] == "unexpected"
    assert out == {"binds": [ok], "listeners": [listener]}
    assert apply_policy([{"port": 80}], [failed], [])["binds"] == []
    assert failed["verdict"] == "expected"


def test_no_policy_returns_nothing_unexpected():
    b, lst = rec(), rec(port=22)
    assert apply_policy(None, [b], [lst]) == {"binds": [], "listeners": []}
    assert b["verdict"] is None and lst["verdict"] is None


@pytest.mark.parametrize("rules,message", [
    ("port 22", "invalid allow ('port 22'): expected a list of rules, got text; key=value arguments "
                "(ansible -a \"allow=...\") carry only text: give the arguments as JSON instead, e.g. "
                "-a '{\"allow\": [{\"port\": 22, \"proto\": \"tcp\"}]}', or set allow in a playbook or "
                "group_vars"),
    ({"port": 22}, "invalid allow ({'port': 22}): expected a list of rules"),
    (["22"], "invalid allow rule 0 ('22'): each rule must be a mapping such as "
             "{port: 22, proto: tcp}"),
    ([{"port": 22}, {"prot": "tcp"}], "invalid allow rule 1, key 'prot' ('tcp'): unknown key; "
                                      "rule keys are port, proto, addr, comm, user, container, "
                                      "host, client, exe, unit, package, exposure, name, "
                                      "description, owner, ticket, expires"),
    ([{"port": 0}], "invalid allow rule 0, key 'port' (0): expected a port 1-65535, a range like "
                    "\"8000-8100\", or a list of those"),
    ([{"port": 70000}], "invalid allow rule 0, key 'port' (70000): expected a port 1-65535"),
    ([{"port": "abc"}], "invalid allow rule 0, key 'port' ('abc'): expected a port 1-65535"),
    ([{"port": [22, "x-y"]}], "invalid allow rule 0, key 'port' ('x-y'): expected a port"),
    ([{"port": "9000-8000"}], "invalid allow rule 0, key 'port' ('9000-8000'): the first port of "
                              "a range must not exceed the second"),
    ([{"port": True}], "invalid allow rule 0, key 'port' (True): expected a port"),
    ([{"addr": "10.0.0.0/33"}], "invalid allow rule 0, key 'addr' ('10.0.0.0/33'): expected "
                                "'loopback', 'any', an IP address or a CIDR like 10.0.0.0/8"),
    ([{"addr": "localhost"}], "invalid allow rule 0, key 'addr' ('localhost'): expected "
                              "'loopback', 'any'"),
    ([{"proto": "tcpx"}], "invalid allow rule 0, key 'proto' ('tcpx'): expected a protocol name "
                          "such as tcp or udp"),
    ([{"host": "yes"}], "invalid allow rule 0, key 'host' ('yes'): expected true (host processes "
                        "only) or false (containers only)"),
    ([{"comm": ""}], "invalid allow rule 0, key 'comm' (''): give a value or leave the key out"),
    ([{"comm": {"a": 1}}], "invalid allow rule 0, key 'comm' ({'a': 1}): expected a non-empty "
                           "text or glob"),
    ([{"name": "nothing to match"}], "invalid allow rule 0 ({'name': 'nothing to match'}): a rule "
                                     "needs at least one of port, proto"),
    ([{"port": 22, "name": 5}], "invalid allow rule 0, key 'name' (5): expected text"),
])
def test_malformed_rules_name_index_key_and_fix(rules, message):
    with pytest.raises(BindtraceError) as exc:
        validate_rules(rules)
    assert str(exc.value).startswith(message)


def test_valid_rules_compile():
    rules = [{"name": "ssh", "port": 22, "proto": "tcp", "comm": "sshd"},
             {"addr": ["loopback", "fd00::/8"], "user": [0, "svc-*"]},
             {"container": "*", "port": ["8000-8100", 9000], "description": "apps"},
             {"host": False}]
    assert len(validate_rules(rules)) == 4
    assert validate_rules(None) is None


def test_describe_names_proto_addr_port_comm_pid():
    assert describe(rec()) == "TCP 0.0.0.0:8080 nginx pid 100"
    assert describe(rec(addr="::1", proto="UDP", port=53, comm="dns", pid=7)) == \
        "UDP [::1]:53 dns pid 7"
    assert describe(rec(pid=None, comm=None, port=2024)) == \
        "TCP 0.0.0.0:2024 (no owning process visible)"
    web = {"runtime": "docker", "id": "ab12", "name": "web-1"}
    assert describe(rec(container=web)) == "TCP 0.0.0.0:8080 nginx pid 100 in container web-1"
    assert describe(rec(comm="x\x1b[2Jy")) == "TCP 0.0.0.0:8080 x\\x1b[2Jy pid 100"


def client(**kw):
    """A client bind as summary mode aggregates it: port 0 asked, key port 0."""
    base = rec(proto="UDP", addr="127.0.0.1", port=0, requested_port=0, client=True,
               comm="btcli00", count=2000, port_min=32768, port_max=60999)
    base.update(kw)
    return base


def test_client_binds_get_verdict_client_and_never_fail_unless_a_rule_asks():
    binds = [client(), rec()]
    out = apply_policy([{"port": 22}], binds, [])
    assert [b["verdict"] for b in binds] == ["client", "unexpected"]
    assert out["binds"] == [binds[1]]
    # even a rule that would match it does not judge a client bind
    assert verdict([{"addr": "loopback"}], client()) == "client"
    assert verdict([], client()) == "client"          # an empty policy allows nothing else
    assert verdict(None, client()) is None            # no policy, no verdicts


def test_a_client_rule_turns_judging_of_client_binds_on():
    rules = [{"port": 8080}, {"client": True, "comm": "java"}]
    java, other, server = client(comm="java"), client(), rec()
    out = apply_policy(rules, [java, other, server], [])
    assert [java["verdict"], other["verdict"], server["verdict"]] == [
        "expected", "unexpected", "expected"]
    assert out["binds"] == [other]
    # a client rule never allows a listener or a bind to a requested port
    assert verdict([{"client": True}], rec()) == "unexpected"
    assert verdict([{"client": True}], client()) == "expected"
    # rules without `client` never allow a client bind once clients are judged
    assert verdict([{"client": True, "comm": "java"}, {"addr": "loopback"}], client()) == \
        "unexpected"


def test_what_counts_as_a_client_bind():
    from bindtrace.policy import is_client
    assert is_client(client())
    assert is_client(rec(requested_port=0, port=41234))            # events record, no `client`
    assert not is_client(rec(requested_port=0, port=41234, proto="RAW"))  # the port is the proto
    assert not is_client(rec(requested_port=0, port=41234, listened=True))   # became a listener
    assert not is_client(client(listened=True))
    assert not is_client({"proto": "TCP", "addr": "0.0.0.0", "port": 41234, "state": "LISTEN"})
    assert not is_client(rec())


def test_client_rule_value_must_be_true():
    with pytest.raises(BindtraceError) as exc:
        validate_rules([{"client": False, "comm": "java"}])
    assert str(exc.value) == (
        "invalid allow rule 0, key 'client' (False): expected true: the rule then allows client "
        "binds (port 0) and client binds are judged; leave the key out for rules about listeners")


def test_describe_a_client_aggregate_names_count_and_ports():
    assert describe(client()) == \
        "UDP 127.0.0.1:0 client binds x2000 (ports 32768-60999) btcli00 pid 100"
    assert describe(client(count=1, port_min=40000, port_max=40000)) == \
        "UDP 127.0.0.1:0 client bind x1 (port 40000) btcli00 pid 100"
