"""A container that binds a port the policy forbids and exits at once (a static
bind-and-exit binary, removed by `docker run --rm` before the window closes)
cannot hide: the real module fails the task naming it, and the report shows
the bind with the container's name and id."""
import os
import re
import subprocess

import pytest

import inert
from dockerimg import docker
from hostile_util import (FIXTURES, PORT_BASE, find_tracer, finish, no_traceback, report,
                          start_playbook, tracing, wait_gone)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PORT = PORT_BASE + 70
ALLOW = [{"name": "ssh", "port": 22, "proto": "tcp"}]


def test_short_lived_container_binding_a_forbidden_port_is_named(docker_images, containers,
                                                                  local_inventory, tmp_path):
    bb_image, _ = docker_images
    binary = str(tmp_path / "bindexit")
    subprocess.run(["gcc", "-static", "-O2", "-o", binary, os.path.join(FIXTURES, "bindexit.c")],
                   check=True, timeout=120)
    name = containers("bt-hide-and-exit")
    rdir = tmp_path / "reports"
    pb = start_playbook(local_inventory, rdir, {
        "bindtrace_duration": 8, "bindtrace_ports": str(PORT), "bindtrace_listeners": False,
        "bindtrace_allow": ALLOW, "bindtrace_fail_on_unexpected": True})
    try:
        pid, ids = find_tracer(pb.pid, pb)
        run = docker("run", "--rm", "--name", name, "--network", "bridge",
                     "-v", binary + ":/bindexit:ro", bb_image, "/bindexit", str(PORT))
        assert run.returncode == 0
        # gone (exited and removed) while the window is still open
        assert docker("inspect", name, check=False).returncode != 0
        assert tracing(pid), "the container must come and go inside the window"
        rc, out = finish(pb)
    finally:
        if pb.poll() is None:
            pb.kill()
            pb.wait()
    assert rc == 2, out                                  # the task failed on the policy
    assert no_traceback(out) == []
    files = inert.check_report_dir(rdir)
    (host,) = files["report.json"]["hosts"]
    assert host["status"] == "failed"
    (bind,) = host["facts"]["binds"]
    assert (bind["comm"], bind["proto"], bind["addr"], bind["port"], bind["count"],
            bind["verdict"], bind["error"]) == ("bindexit", "TCP", "0.0.0.0", PORT, 1,
                                                "unexpected", None)
    container = bind["container"]
    assert (container["runtime"], container["name"], container["image"]) == \
        ("docker", name, bb_image)
    assert len(container["id"]) == 64
    assert bind["netns"] != os.stat("/proc/self/ns/net").st_ino   # the container's own netns
    assert host["facts"]["unexpected"]["binds"] == [bind]
    # the failure names it, with the container, in the task message and the report
    what = "TCP 0.0.0.0:%d bindexit pid %d in container %s" % (PORT, bind["pid"], name)
    assert what in host["reason"]
    # "Action failed:" (the collecting action) or "Module failed:" (a module ran it)
    assert re.search(r"(Action|Module) failed: unexpected binds on ", out) and what in out
    assert name in files["report.html"] and name in files["report.md"]
    assert any(line.split()[:2] == ["localhost", "unexpected"] and name in line
               for line in out.splitlines())             # the terminal table's row
    assert wait_gone(ids) == set()
