"""Compliance depth through the real `ansible-playbook` on localhost: Debian's
nginx started by the test on loopback ports in a systemd-like service cgroup
(helpers/owner_layout.py: systemd cannot run here) is named by unit, exe and package in
the facts, and an allow rule for it whose `expires` is past gives the verdict
`expired`: the task fails under fail_on_unexpected naming the owner and ticket."""
import socket

from helpers.net import free_port
from helpers.owner_layout import CgroupTree, Nginx
from module_run import Play, assert_nothing_left, trace_task


def test_expired_exception_fails_the_task_naming_owner_and_ticket():
    tree = CgroupTree("compliance")
    path, rel = tree.make("system.slice/nginx.service")
    p4, p6 = free_port(), free_port(family=socket.AF_INET6)
    nginx = Nginx(path, p4, p6)
    lo, hi = sorted((p4, p6))
    # the expired exception for nginx, and every other port of the host allowed
    allow = [{"name": "legacy nginx", "exe": "/usr/sbin/nginx", "unit": "nginx.service",
              "package": "nginx*", "exposure": "loopback", "owner": "alice",
              "ticket": "OPS-16", "expires": "2020-01-31"},
             {"port": "1-%d" % (lo - 1)}, {"port": "%d-%d" % (lo + 1, hi - 1)},
             {"port": "%d-65535" % (hi + 1)}]
    play = Play([trace_task(duration=2, ports=[p4, p6], allow=allow, fail_on_unexpected=True),
                 {"name": "after", "debug": {"msg": "not reached"}}])
    try:
        play.wait()
    finally:
        nginx_pid = nginx.pid
        nginx.stop()
        tree.remove()
    assert play.proc.returncode == 2, play.out[-3000:]
    res = play.results()["trace"]
    facts = res["ansible_facts"]["bind_trace"]
    mine = sorted((l for l in facts["listeners"] if l["port"] in (p4, p6)),
                  key=lambda l: l["family"])
    assert [(l["addr"], l["port"], l["pid"], l["exe"], l["unit"], l["package"], l["cgroup"],
             l["exposure"], l["exposure_families"], l["verdict"], l["rule"]) for l in mine] == [
        (addr, port, nginx_pid, "/usr/sbin/nginx", "nginx.service", "nginx", rel, "loopback",
         [fam], "expired", {"index": 0, "name": "legacy nginx", "owner": "alice",
                            "ticket": "OPS-16", "expires": "2020-01-31"})
        for addr, port, fam in (("127.0.0.1", p4, 4), ("::1", p6, 6))]
    host = facts["host"]["hostname"]
    named = ["TCP %s:%d nginx pid %d (nginx.service) [exception expired 2020-01-31: rule 0 "
             "\"legacy nginx\", owner alice, ticket OPS-16]" % (a, p, nginx_pid)
             for a, p in (("127.0.0.1", p4), ("[::1]", p6))]
    assert res["msg"].startswith("unexpected listeners on %s: %s. No allow rule matches them" % (
        host, ", ".join(named)))
    assert [l["port"] for l in facts["unexpected"]["listeners"]] == [p4, p6]
    assert "after" not in play.results()
    assert_nothing_left(play)
