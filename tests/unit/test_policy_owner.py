"""Policy match keys on owner identity and exposure (exe, unit, package,
exposure) and exceptions that expire (owner, ticket, expires)."""
import datetime

import pytest

from bindtrace import BindtraceError
from bindtrace.policy import apply_policy, describe, validate_rules

NGINX = {"proto": "TCP", "family": 4, "addr": "127.0.0.1", "port": 8080, "pid": 10, "comm": "nginx",
         "uid": 0, "user": "root", "exe": "/usr/sbin/nginx", "unit": "nginx.service",
         "socket_unit": None, "package": "nginx-light", "exposure": "loopback",
         "container": None, "k8s": None}
SSH_SOCKET = dict(NGINX, port=22, comm="systemd", exe="/usr/lib/systemd/systemd",
                  unit="init.scope", socket_unit="ssh.socket", package="systemd",
                  exposure="wildcard", addr="::", family=6)
TODAY = datetime.date(2026, 12, 1)


def verdicts(rules, recs):
    recs = [dict(r) for r in recs]
    unexpected = apply_policy(rules, [], recs, today=TODAY)
    return [r["verdict"] for r in recs], unexpected["listeners"], recs


@pytest.mark.parametrize("rule,want", [
    ({"exe": "/usr/sbin/nginx"}, ["expected", "unexpected"]),
    ({"exe": "/usr/*/systemd"}, ["unexpected", "expected"]),
    ({"unit": "nginx.service"}, ["expected", "unexpected"]),
    ({"unit": "ssh.socket"}, ["unexpected", "expected"]),       # the .socket unit matches too
    ({"unit": "*.service"}, ["expected", "unexpected"]),
    ({"package": "nginx*"}, ["expected", "unexpected"]),
    ({"exposure": "loopback"}, ["expected", "unexpected"]),
    ({"exposure": ["wildcard", "address"]}, ["unexpected", "expected"]),
    ({"exposure": "loopback", "port": 22}, ["unexpected", "unexpected"]),
])
def test_owner_and_exposure_keys(rule, want):
    assert verdicts([rule], [NGINX, SSH_SOCKET])[0] == want


def test_missing_identity_never_matches():
    bare = dict(NGINX, exe=None, unit=None, package=None, exposure=None)
    for rule in ({"exe": "*"}, {"unit": "*"}, {"package": "*"}, {"exposure": "loopback"}):
        assert verdicts([rule], [bare])[0] == ["unexpected"]


def test_expired_exception_names_rule_owner_ticket():
    rules = [{"port": 22, "proto": "tcp"},
             {"name": "legacy nginx", "exe": "/usr/sbin/nginx", "owner": "alice",
              "ticket": "OPS-1234", "expires": "2026-11-30"}]
    got, failing, recs = verdicts(rules, [NGINX, SSH_SOCKET])
    assert got == ["expired", "expected"]
    assert recs[0]["rule"] == {"index": 1, "name": "legacy nginx", "owner": "alice",
                               "ticket": "OPS-1234", "expires": "2026-11-30"}
    assert recs[1]["rule"] == {"index": 0, "name": None, "owner": None, "ticket": None,
                               "expires": None}
    assert [r["port"] for r in failing] == [8080]
    assert describe(recs[0]) == ('TCP 127.0.0.1:8080 nginx pid 10 (nginx.service) [exception '
                                 'expired 2026-11-30: rule 1 "legacy nginx", owner alice, '
                                 'ticket OPS-1234]')


def test_expires_is_the_last_allowed_day_and_a_live_rule_wins():
    last_day = [{"exe": "/usr/sbin/nginx", "expires": "2026-12-01", "owner": "bob"}]
    assert verdicts(last_day, [NGINX])[0] == ["expected"]
    both = [{"exe": "/usr/sbin/nginx", "expires": datetime.date(2025, 1, 1)},
            {"port": 8080}]
    got, failing, recs = verdicts(both, [NGINX])
    assert got == ["expected"] and failing == [] and recs[0]["rule"]["index"] == 1


@pytest.mark.parametrize("rule,message", [
    ({"port": 80, "expires": "31/12/2026"},
     "invalid allow rule 0, key 'expires' ('31/12/2026'): expected a date as YYYY-MM-DD"),
    ({"port": 80, "owner": 7}, "invalid allow rule 0, key 'owner' (7): expected text"),
    ({"exposure": "public"}, "invalid allow rule 0, key 'exposure' ('public'): expected "
                             "loopback, address, wildcard"),
    ({"expires": "2027-01-01", "owner": "x"}, "invalid allow rule 0"),   # no match key at all
    ({"unit": ""}, "invalid allow rule 0, key 'unit' (''): give a value"),
])
def test_bad_new_keys(rule, message):
    with pytest.raises(BindtraceError) as exc:
        validate_rules([rule])
    assert str(exc.value).startswith(message)
