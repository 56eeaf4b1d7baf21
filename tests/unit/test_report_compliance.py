"""The fleet report shows the compliance fields (exposure, listened, exe,
unit, package, expired verdicts with their rule) with minimal additions: extra
listener columns and bind columns only when some record has a value."""
import report_facts as rf
from bindreport import build_report, render, render_terminal

RULE = {"index": 0, "name": "legacy nginx", "owner": "alice", "ticket": "OPS-16",
        "expires": "2020-01-31"}


def nginx_listener():
    rec = rf.listener(4242, "nginx", 8080, addr="127.0.0.1", verdict="expired")
    rec.update(exposure="loopback", exposure_families=[4], exe="/usr/sbin/nginx", unit="nginx.service",
               socket_unit=None, package="nginx", listened=True, backlog=511, seen="snapshot",
               rule=RULE)
    return rec


def came_and_went():
    rec = rf.listener(77, "pyserver", 9099, addr="::", verdict="unexpected")
    rec.update(exposure="wildcard", exposure_families=[4, 6], exe=None, unit=None,
               socket_unit=None, package=None, listened=True, backlog=5, seen="window", rule=None)
    return rec


def model():
    bind = rf.bind(4242, "nginx", 8080, addr="127.0.0.1", verdict="expired", count=1)
    bind.update(exposure="loopback", exposure_families=[4], exe="/usr/sbin/nginx",
                unit="nginx.service", socket_unit=None, package="nginx", listened=True,
                backlog=511, rule=RULE)
    host = rf.facts("web1", binds=[bind], listeners=[nginx_listener(), came_and_went()])
    return build_report({"web1": {"status": "ok", "facts": host, "msg": None}},
                        generated="2026-12-01T15:00:00Z")


def test_expired_counts_as_unexpected_and_columns_appear():
    m = model()
    host = m["hosts"][0]
    assert host["unexpected"] == {"binds": 1, "listeners": 2}
    md = render(m, "md")
    for text in ("EXPOSURE", "LISTENED", "SEEN", "EXE", "UNIT", "PACKAGE", "RULE",
                 "loopback v4", "wildcard v4+v6", "yes (511)", "yes (5)", "/usr/sbin/nginx",
                 "nginx.service", 'rule 0 "legacy nginx" (owner alice, ticket OPS-16, '
                 'expires 2020-01-31)', "**expired**", "window"):
        assert text in md, text
    html = render(m, "html")
    assert "wildcard v4+v6" in html and "/usr/sbin/nginx" in html and "OPS-16" in html
    term = render_terminal(m)
    assert "expired" in term


def test_old_facts_show_no_new_columns():
    plain = rf.facts("old", listeners=[rf.listener(1, "sshd", 22, verdict="expected")])
    md = render(build_report({"old": {"status": "ok", "facts": plain, "msg": None}},
                             generated="2026-12-01T15:00:00Z"), "md")
    for title in ("EXPOSURE", "LISTENED", "EXE", "UNIT", "PACKAGE", "RULE"):
        assert title not in md, title
