"""Container and Kubernetes identity with a real Docker engine (docker.io, started by
scripts/dockerd-up.sh) and images built offline from busybox-static; the tracer on
the real kernel for the end-to-end cases."""
import json
import os
import re
import socket
import subprocess
import time

import pytest

from bindtrace.cgroups import cgroup2_mount
from bindtrace.enrich import Enricher
from bindtrace.filters import make_config
from bindtrace.ifnames import IfNames
from bindtrace.trace import Tracer
from dockerimg import USR_RO, docker, ensure_images, inspect, remove, remove_empty_cgroups
from helpers.docker import container_names
from helpers.kernel import CLI, bpf_ids_of, cli_env, nc_binary

pytestmark = pytest.mark.docker

NODE = socket.gethostname()
SO_BINDTODEVICE, SO_BINDTOIFINDEX = 25, 62
POD_UID = "0b1c2d3e-1111-2222-3333-444455556666"
KUBE_NAME = "k8s_listener_web_shop_%s_0" % POD_UID
KUBE_LABELS = ["--label", "io.kubernetes.pod.name=web", "--label", "io.kubernetes.pod.namespace=shop",
               "--label", "io.kubernetes.container.name=listener",
               "--label", "io.kubernetes.pod.uid=" + POD_UID,
               "--label", "io.kubernetes.docker.type=container"]
KUBE_PARENT = ["--cgroup-parent", "/kubepods/besteffort/pod" + POD_UID]


@pytest.fixture(scope="module")
def images():
    yield ensure_images()
    remove_empty_cgroups("kubepods/besteffort/pod" + POD_UID, "kubepods/besteffort", "kubepods")


@pytest.fixture
def names():
    """Container names used by a test, removed afterwards (also before, if a run was cut short)."""
    yield from container_names(remove)


def cgroup2():
    with open("/proc/self/mountinfo") as f:
        return cgroup2_mount(f.read())


def cgroup_dir(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        line = [l for l in f.read().splitlines() if l.startswith("0::")][0]
    return cgroup2() + line[3:]


def ids_of(pid):
    """(cgroup id, mntns, netns) of a live process, read independently of enrich."""
    return (os.stat(cgroup_dir(pid)).st_ino, os.stat("/proc/%d/ns/mnt" % pid).st_ino,
            os.stat("/proc/%d/ns/net" % pid).st_ino)


def run_d(name, image, *cmd, extra=()):
    docker("run", "-d", "--name", name, *extra, image, *cmd)
    return int(inspect(name, "{{.State.Pid}}")), inspect(name, "{{.Id}}")


def wait_listening(name, port, timeout=20):
    """Until the container's nc listens (its /proc/net/tcp6 shows the port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = docker("exec", name, "cat", "/proc/net/tcp6", "/proc/net/tcp", check=False).stdout
        if ":%04X " % port in out:
            return
        time.sleep(0.05)
    raise AssertionError("%s never listened on %d" % (name, port))


# ---------------------------------------------------------------- enrichment alone

def test_running_container_by_pid_and_by_cgroup_id(images, names):
    bb, _ = images
    pid, cid = run_d(names("test-trace-bind"), bb, "nc", "-l", "-p", "4242")
    assert re.match(r"^[0-9a-f]{64}$", cid)
    cgid, mntns, _ = ids_of(pid)
    assert cgroup_dir(pid) == cgroup2() + "/docker/" + cid
    want = ({"runtime": "docker", "id": cid, "name": "test-trace-bind", "image": "bindtrace-bb:latest"},
            {"node": NODE, "namespace": None, "pod": None, "container": "test-trace-bind"})
    with Enricher() as fresh:                       # not primed: the live /proc path
        ident = fresh.lookup(pid, cgid, mntns)
        assert (ident.container, ident.k8s) == want
    with Enricher(watch=False) as primed:
        primed.prime()
        assert (primed.by_cgid[cgid].container, primed.by_cgid[cgid].k8s) == want
        assert primed.by_mntns[mntns].container == want[0]
        assert primed.for_pid(pid) == want
        assert primed.for_pid(os.getpid()) == (None, None)   # this test process: host


def test_kubelet_style_container(images, names):
    bb, _ = images
    pid, cid = run_d(names(KUBE_NAME), bb, "nc", "-l", "-p", "4243",
                     extra=KUBE_LABELS + KUBE_PARENT)
    assert cgroup_dir(pid) == "%s/kubepods/besteffort/pod%s/%s" % (cgroup2(), POD_UID, cid)
    cgid, mntns, _ = ids_of(pid)
    with Enricher(watch=False) as en:
        ident = en.lookup(pid, cgid, mntns)
    assert ident.container == {"runtime": "docker", "id": cid, "name": KUBE_NAME,
                               "image": "bindtrace-bb:latest"}
    assert ident.k8s == {"node": NODE, "namespace": "shop", "pod": "web", "container": "listener"}


def test_container_exiting_at_once_resolved_from_the_watch_cache(images, names):
    bb, _ = images
    name = names("bt-short-lived")
    cid = docker("create", "--name", name, bb, "sleep", "0.1").stdout.strip()
    path = cgroup2() + "/docker/" + cid
    with Enricher() as en:
        en.prime()                                   # watching before the container starts
        start = subprocess.Popen(["docker", "start", "-a", name], stdout=subprocess.DEVNULL)
        cgid = None
        while start.poll() is None and cgid is None:
            try:
                cgid = os.stat(path).st_ino          # the test's own look, while it exists
            except FileNotFoundError:
                pass
        assert start.wait(60) == 0 and cgid is not None
        assert not os.path.exists(path)              # the container and its cgroup are gone
        ident = en.lookup(None, cgid, None)
        assert ident is not None and ident.container["name"] == name
        assert ident.container["id"] == cid
    with Enricher(watch=False) as late:              # started after it left: cannot know it
        assert late.lookup(None, cgid, None) is None


def test_primed_container_named_after_it_is_removed(images, names):
    bb, _ = images
    name = names("bt-primed")
    pid, cid = run_d(name, bb, "nc", "-l", "-p", "4244")
    cgid, mntns, _ = ids_of(pid)
    with Enricher(watch=False) as en:
        en.prime()
        remove(name)
        assert not os.path.exists("/proc/%d" % pid)
        assert en.lookup(pid, cgid, mntns).container["name"] == name       # by cgroup id
        assert en.lookup(pid, 0, mntns).container["name"] == name          # by mntns alone


def test_ifname_lo_in_this_netns():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, b"lo")
    index = s.getsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX)
    s.close()
    own = os.stat("/proc/self/ns/net").st_ino
    assert index == 1
    assert IfNames().name(index, pid=os.getpid(), netns=own) == "lo"
    assert IfNames().name(0, pid=os.getpid(), netns=own) == ""


def test_ifname_inside_the_container_netns(images, names):
    bb, _ = images
    name = names("bt-ifname")
    pid, _ = run_d(name, bb, "nc", "-l", "-p", "4245")
    index = int(docker("exec", name, "cat", "/sys/class/net/eth0/ifindex").stdout)
    _, _, netns = ids_of(pid)
    names_ = IfNames()
    assert names_.name(index, pid=pid, netns=netns) == "eth0"
    try:
        host_name = socket.if_indextoname(index)
    except OSError:
        host_name = None
    assert host_name != "eth0"                       # the host's index means something else
    remove(name)
    # gone now, but that netns was listed once: still answered from the cache
    assert names_.name(index, pid=pid, netns=netns) == "eth0"
    # never seen and gone: no name, and no exception (the event keeps its index)
    assert IfNames().name(index, pid=pid, netns=netns) is None


# ---------------------------------------------------------------- with the tracer

def poll_until(tracers, pred, timeout=20):
    """Poll every tracer until pred(events per tracer) holds; returns the lists."""
    got = [[] for _ in tracers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, t in enumerate(tracers):
            got[i].extend(t.poll(50))
        if pred(got):
            break
    for i, t in enumerate(tracers):
        t.stop()
        got[i].extend(t.poll(0))
    return got


def wait_attached(proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for k, _ in bpf_ids_of(proc.pid) if k == "link_id") >= 1:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("trace-bind did not attach")


def test_seed_ig_example_with_containername(images, names, tmp_path):
    """`trace-bind -c test-trace-bind` while the seed's container and a host nc bind
    4242 at the same time: -c keeps exactly the container's bind, no -c shows both."""
    bb, _ = images
    name = names("test-trace-bind")
    cli = subprocess.Popen(CLI + ["-c", "test-trace-bind", "-o", "json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=cli_env())
    host_nc = None
    try:
        wait_attached(cli)
        with Tracer(make_config(ports="4242")) as everything:
            docker("run", "-d", "--name", name, bb, "nc", "-l", "-p", "4242")
            host_nc = subprocess.Popen([nc_binary(tmp_path), "-l", "-p", "4242"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            (seen,) = poll_until([everything], lambda g: len(g[0]) >= 2)
        wait_listening(name, 4242)
        time.sleep(0.3)   # the CLI's own poll loop delivers within 100 ms
        cli.send_signal(2)
        out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
        if host_nc is not None:
            host_nc.kill()
            host_nc.wait()
    assert cli.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 1, events
    ev = events[0]
    cid = inspect(name, "{{.Id}}")
    assert ev["container"] == {"runtime": "docker", "id": cid, "name": "test-trace-bind",
                               "image": "bindtrace-bb:latest"}
    assert ev["k8s"] == {"node": NODE, "namespace": None, "pod": None, "container": "test-trace-bind"}
    assert (ev["comm"], ev["proto"], ev["addr"], ev["port"], ev["opts"], ev["if"]) == \
        ("nc", "TCP", "::", 4242, ".R...", "")
    assert ev["pid"] == int(inspect(name, "{{.State.Pid}}"))
    # without -c: the same container bind and the host's nc
    by_pid = {e["pid"]: e for e in seen}
    assert sorted((e["container"] or {}).get("name", "host") for e in seen) == ["host", "test-trace-bind"]
    assert by_pid[host_nc.pid]["container"] is None and by_pid[host_nc.pid]["k8s"] is None
    assert by_pid[ev["pid"]]["container"]["id"] == cid


def test_container_that_binds_and_exits_within_100ms_is_named(images, names):
    """python3 in a container binds and exits; `docker run --rm` has removed the
    container before the summary is read: both modes still name it."""
    _, py = images
    name = names("bt-bind-exit")
    code = "import socket; s=socket.socket(); s.bind(('0.0.0.0', 4246))"   # and exit at once
    with Tracer(make_config(ports="4246")) as events_t, \
            Tracer(make_config(ports="4246", mode="summary")) as summary_t:
        docker("run", "--rm", "--name", name, *USR_RO, py, "/usr/bin/python3", "-c", code)
        assert docker("inspect", name, check=False).returncode != 0      # removed already
        (evs,) = poll_until([events_t], lambda g: len(g[0]) >= 1, timeout=5)
        summary_t.stop()
        records = summary_t.summary()
    assert len(evs) == 1 and len(records) == 1
    for rec in (evs[0], records[0]):
        assert rec["container"]["name"] == name and rec["container"]["runtime"] == "docker"
        assert (rec["comm"], rec["proto"], rec["addr"], rec["port"]) == ("python3", "TCP", "0.0.0.0", 4246)
    assert records[0]["count"] == 1


def test_bound_device_named_inside_the_container_netns(images, names):
    """SO_BINDTODEVICE eth0 inside a container: IF is that netns's eth0, with its index."""
    _, py = images
    name = names("bt-bind-eth0")
    code = ("import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, 25, b'eth0');"
            "s.bind(('0.0.0.0', 4247)); s.listen(); print(socket.if_nametoindex('eth0'), flush=True);"
            "time.sleep(3600)")
    with Tracer(make_config(ports="4247")) as t:
        docker("run", "-d", "--name", name, *USR_RO, py, "/usr/bin/python3", "-c", code)
        (evs,) = poll_until([t], lambda g: len(g[0]) >= 1)
    deadline = time.monotonic() + 20
    logs = ""
    while not logs.strip() and time.monotonic() < deadline:
        logs = docker("logs", name).stdout
        time.sleep(0.05)
    index = int(logs)
    assert len(evs) == 1
    ev = evs[0]
    assert (ev["if_index"], ev["if"]) == (index, "eth0")
    assert ev["container"]["name"] == name


def test_cli_shows_k8s_columns_once_a_container_binds(images, names, tmp_path):
    """The kubectl-gadget view: a host bind first (plain header), then a kubelet-style
    container's bind brings the K8S.* columns, as in the seed."""
    bb, _ = images
    name = names(KUBE_NAME)
    cli = subprocess.Popen(CLI + ["-P", "4243"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=cli_env())
    host_nc = None
    try:
        assert cli.stdout.readline().split() == ["PID", "COMM", "PROTO", "ADDR", "PORT", "OPTS", "IF"]
        wait_attached(cli)
        host_nc = subprocess.Popen([nc_binary(tmp_path), "-l", "-p", "4243"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        host_row = cli.stdout.readline().split()
        pid, _ = run_d(name, bb, "nc", "-l", "-p", "4243", extra=KUBE_LABELS + KUBE_PARENT)
        header = cli.stdout.readline()
        row = cli.stdout.readline()
        cli.send_signal(2)
        cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
        if host_nc is not None:
            host_nc.kill()
            host_nc.wait()
    assert host_row == [str(host_nc.pid), "nc", "TCP", "::", "4243", ".R..."]
    assert header.rstrip("\n") == ("K8S.NODE         K8S.NAMESPACE    K8S.PODNAME      "
                                   "K8S.CONTAINERNAME PID     COMM             PROTO  ADDR"
                                   "             PORT   OPTS   IF")
    assert row.split() == [NODE, "shop", "web", "listener", str(pid), "nc", "TCP", "::", "4243", ".R..."]


def test_cli_summary_with_containername(images, names):
    bb, _ = images
    name = names("test-trace-bind")
    cli = subprocess.Popen(CLI + ["--summary", "-c", "test-trace-bind", "-P", "4242"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        wait_attached(cli)
        pid, _ = run_d(name, bb, "nc", "-l", "-p", "4242")
        wait_listening(name, 4242)
        remove(name)                        # gone before the summary is read
        cli.send_signal(2)
        out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    lines = out.splitlines()
    assert lines[0].split() == ["K8S.NODE", "K8S.NAMESPACE", "K8S.PODNAME", "K8S.CONTAINERNAME", "PID",
                                "COMM", "PROTO", "ADDR", "PORT", "OPTS", "COUNT", "IF"]
    assert [l.split() for l in lines[1:]] == [
        [NODE, "test-trace-bind", str(pid), "nc", "TCP", "::", "4242", ".R...", "1"]]
    assert err.strip().splitlines()[-1] == "# events: 1, lost: 0, dropped: 0"


def test_facts_binds_and_listeners_carry_container_and_k8s(images, names):
    """The module's path (run_window -> build_facts, listeners snapshot): a kubelet-style
    container's bind and its listening socket both carry container and k8s."""
    from bindtrace.listeners import default_enricher, snapshot
    from bindtrace.facts import build_facts
    from bindtrace.trace import run_window
    bb, _ = images
    name = names(KUBE_NAME)
    state = {"pid": None, "polls": 0}

    def should_stop():   # first called once the tracer is attached: start the container then
        if state["pid"] is None:
            state["pid"], _ = run_d(name, bb, "nc", "-l", "-p", "4248", extra=KUBE_LABELS + KUBE_PARENT)
            wait_listening(name, 4248)
        state["polls"] += 1
        return state["polls"] > 3
    cfg = make_config(mode="summary", ports="4248")
    binds, st, meta = run_window(cfg, 120, should_stop=should_stop)
    facts = build_facts(cfg, binds, st, meta, snapshot("all", default_enricher()), None)
    cid = inspect(name, "{{.Id}}")
    want_ctr = {"runtime": "docker", "id": cid, "name": KUBE_NAME, "image": "bindtrace-bb:latest"}
    want_k8s = {"node": NODE, "namespace": "shop", "pod": "web", "container": "listener"}
    (bind,) = facts["binds"]
    assert (bind["pid"], bind["port"], bind["count"]) == (state["pid"], 4248, 1)
    assert (bind["container"], bind["k8s"]) == (want_ctr, want_k8s)
    mine = [l for l in facts["listeners"] if l["pid"] == state["pid"]]
    assert [(l["proto"], l["addr"], l["port"], l["state"]) for l in mine] == [("TCP", "::", 4248, "LISTEN")]
    assert (mine[0]["container"], mine[0]["k8s"]) == (want_ctr, want_k8s)
    assert json.loads(json.dumps(facts))["binds"][0]["k8s"] == want_k8s
