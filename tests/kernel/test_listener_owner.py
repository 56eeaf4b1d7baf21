"""Owner identity of listeners on the real kernel: Debian's nginx in a
systemd-like cgroup (unit, exe, package), a socket held by the "service
manager" named by its .socket unit (socket activation), and the owner lookup
reading only the socket's cgroup. systemd cannot run on this machine, so the
layout is built by helpers/owner_layout.py (cgroups, activation fd): see there."""
import os
import socket

import pytest

from bindtrace import cgroupfs, owner
from bindtrace.listeners import take
from bindtrace.policy import apply_policy
from helpers.net import free_port
from helpers.owner_layout import CgroupTree, Manager, Nginx

pytestmark = pytest.mark.skipif(cgroupfs.v2_root() is None, reason="needs a cgroup v2 hierarchy")


def nginx_pids(master):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        kids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


@pytest.fixture
def tree():
    t = CgroupTree("owner")
    yield t
    t.remove()


def test_nginx_in_a_service_cgroup_named_by_unit_exe_and_package(tree):
    path, rel = tree.make("system.slice/nginx.service")
    p4, p6 = free_port(), free_port(family=socket.AF_INET6)
    nginx = Nginx(path, p4, p6)
    try:
        listeners, info = take("host")
        mine = sorted((l for l in listeners if l["port"] in (p4, p6) and l["proto"] == "TCP"),
                      key=lambda l: l["family"])
        workers = nginx_pids(nginx.pid)
        assert len(workers) == 2
        assert [(l["family"], l["addr"], l["port"], l["pid"], l["comm"], l["exe"],
                 l["exe_state"], l["unit"], l["socket_unit"], l["package"], l["cgroup"],
                 l["exposure"], l["exposure_families"], l["v6only"]) for l in mine] == [
            (4, "127.0.0.1", p4, nginx.pid, "nginx", "/usr/sbin/nginx", "ok", "nginx.service",
             None, "nginx", rel, "loopback", [4], None),
            (6, "::1", p6, nginx.pid, "nginx", "/usr/sbin/nginx", "ok", "nginx.service",
             None, "nginx", rel, "loopback", [6], True)]
        assert mine[0]["cmdline"].startswith("'nginx: master process /usr/sbin/nginx -c ")
        assert mine[0]["cgroup_id"] == os.stat(path).st_ino
        assert info["source"] == "sock_diag"
        # the rule the issue asks for: nginx from its package, in its unit
        rules = [{"exe": "/usr/sbin/nginx", "unit": "nginx.service", "package": "nginx*",
                  "exposure": "loopback"}]
        apply_policy(rules, [], mine)
        assert [l["verdict"] for l in mine] == ["expected", "expected"]
        # the lookup read the nginx cgroup's three processes only, not every fd on the host
        scan = owner.OwnerScan()
        owners, holders = owner.socket_owners([(l["inode"], l["cgroup_id"]) for l in mine],
                                              [], scan=scan)
        assert {i: o[0] for i, o in owners.items()} == {l["inode"]: nginx.pid for l in mine}
        assert scan.method == "cgroup" and scan.processes == 3
        assert sorted(p for p, _ in holders[mine[0]["inode"]]) == sorted([nginx.pid] + workers)
    finally:
        nginx.stop()


UNIT = """[Unit]
Description=bindtrace test socket

[Socket]
ListenStream=127.0.0.1:{port}
Accept=no

[Install]
WantedBy=sockets.target
"""


def test_socket_held_by_the_service_manager_named_by_its_socket_unit_file(tree):
    scope, _ = tree.make("init.scope")
    port = free_port()
    name = "bindtrace-test-%d.socket" % os.getpid()
    unit_path = os.path.join("/etc/systemd/system", name)
    os.makedirs("/etc/systemd/system", exist_ok=True)
    with open(unit_path, "w") as f:
        f.write(UNIT.format(port=port))
    manager = Manager(scope, port)
    try:
        rec = [l for l in take("host")[0] if l["inode"] == manager.inode][0]
        assert (rec["pid"], rec["unit"], rec["socket_unit"]) == (manager.pid, "init.scope", name)
        apply_policy([{"unit": name}], [], [rec])
        assert rec["verdict"] == "expected"
    finally:
        manager.stop()
        os.unlink(unit_path)


def test_activated_service_names_the_socket_unit_by_listen_fdnames(tree):
    """No unit file matches: the name comes from the activated service's
    LISTEN_FDNAMES (fd 3 = the first name), as systemd sets it."""
    scope, _ = tree.make("init.scope")
    service, service_rel = tree.make("system.slice/bt-echo.service")
    port = free_port()
    manager = Manager(scope, port, service, "bt-echo.socket")
    try:
        listeners, info = take("host")
        rec = [l for l in listeners if l["inode"] == manager.inode][0]
        # the manager created it and holds it; the service holds it too (fd 3)
        assert (rec["pid"], rec["unit"], rec["socket_unit"]) == (
            manager.pid, "init.scope", "bt-echo.socket")
        with open("/proc/%d/cgroup" % manager.service) as f:
            assert service_rel in f.read()
    finally:
        manager.stop()
