"""trace_bind with real Docker containers: binds and listeners carry the
container's identity, listeners inside container network namespaces are found
(netns all), and `container:` allow rules decide the verdicts."""
import os
import sys

import pytest

from module_run import Play, assert_nothing_left, trace_task

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "kernel"))
from dockerimg import ensure_images, inspect, remove  # noqa: E402

pytestmark = pytest.mark.docker

WEB, DB = "bt-module-web", "bt-module-db"


@pytest.fixture
def containers():
    bb, _ = ensure_images()
    remove(WEB, DB)
    yield bb
    remove(WEB, DB)


def run_nc(name, image, port):
    from dockerimg import docker
    docker("run", "-d", "--name", name, image, "nc", "-l", "-p", str(port))
    pid = int(inspect(name, "{{.State.Pid}}"))
    cid = inspect(name, "{{.Id}}")
    return pid, cid, os.stat("/proc/%d/ns/net" % pid).st_ino


def wait_listening(pid, port, timeout=20):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for table in ("tcp", "tcp6"):
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                if any(":%04X " % port in line and line.split()[3] == "0A" for line in f):
                    return table
        time.sleep(0.05)
    raise AssertionError("pid %d never listened on %d" % (pid, port))


def test_container_binds_and_listeners_with_container_rules(containers):
    bb = containers
    web_pid, web_id, web_ns = run_nc(WEB, bb, 4242)     # listening before the window
    web_table = wait_listening(web_pid, 4242)
    allow = [{"name": "web app", "container": "bt-module-w*", "port": 4242, "proto": "tcp"},
             {"name": "everything on the host", "host": True}]
    play = Play([trace_task(duration=6, ports=[4242, 5432], allow=allow)])
    play.wait_attached()
    db_pid, db_id, db_ns = run_nc(DB, bb, 5432)          # binds during the window
    db_table = wait_listening(db_pid, 5432)
    play.wait()
    assert play.proc.returncode == 0, play.out[-3000:]
    facts = play.results()["trace"]["ansible_facts"]["bind_trace"]
    family = {"tcp": (4, "0.0.0.0"), "tcp6": (6, "::")}
    # the one bind in the window: the db container's nc
    assert [(b["pid"], b["comm"], b["proto"], b["family"], b["addr"], b["port"], b["opts"],
             b["netns"], b["count"], b["container"]["runtime"], b["container"]["id"],
             b["container"]["name"], b["verdict"]) for b in facts["binds"]] == [
        (db_pid, "nc", "TCP") + family[db_table] + (5432, ".R...", db_ns, 1, "docker", db_id, DB,
                                                    "unexpected")]
    # both containers' listeners, each in its own network namespace, with their identity
    mine = sorted((l for l in facts["listeners"] if l["netns"] in (web_ns, db_ns)),
                  key=lambda l: l["port"])
    assert [(l["proto"], l["family"], l["addr"], l["port"], l["state"], l["pid"], l["comm"],
             l["netns"], l["container"]["id"], l["container"]["name"], l["verdict"])
            for l in mine] == [
        ("TCP",) + family[web_table] + (4242, "LISTEN", web_pid, "nc", web_ns, web_id, WEB,
                                        "expected"),
        ("TCP",) + family[db_table] + (5432, "LISTEN", db_pid, "nc", db_ns, db_id, DB,
                                       "unexpected")]
    assert [(l["pid"], l["port"]) for l in facts["unexpected"]["listeners"]] == [(db_pid, 5432)]
    assert [(b["pid"], b["port"]) for b in facts["unexpected"]["binds"]] == [(db_pid, 5432)]
    # host processes are all allowed by the `host: true` rule
    assert all(l["verdict"] == "expected" for l in facts["listeners"] if l["container"] is None)
    assert_nothing_left(play)
