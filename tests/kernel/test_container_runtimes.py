"""containerd and podman containers, real ones: containerd through `ctr` on the
containerd that dockerd runs for itself (no second daemon), podman (daemonless,
runc, --network none). Kubelet's CRI layout is emulated exactly with ctr: a
64-hex id, a kubepods cgroup parent and containerd's io.kubernetes.cri.* annotations."""
import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest

from bindtrace.cgroups import cgroup2_mount
from bindtrace.enrich import Enricher
from bindtrace.filters import make_config
from bindtrace.trace import Tracer
from dockerimg import BB_IMAGE, ensure_images, remove_empty_cgroups, rootfs_tar

pytestmark = pytest.mark.docker

NODE = socket.gethostname()
CTR = ["ctr", "--address", "/run/docker/containerd/containerd.sock", "-n", "bindtrace-test"]
CTR_IMAGE = "docker.io/library/" + BB_IMAGE
PODMAN_IMAGE = "localhost/" + BB_IMAGE


def ids_of(pid):
    with open("/proc/self/mountinfo") as f:
        mount = cgroup2_mount(f.read())
    with open("/proc/%d/cgroup" % pid) as f:
        path = [l for l in f.read().splitlines() if l.startswith("0::")][0][3:]
    return os.stat(mount + path).st_ino, os.stat("/proc/%d/ns/mnt" % pid).st_ino, path


def sh(cmd, env=None, check=True, input=None):
    return subprocess.run(cmd, capture_output=True, check=check, env=env, input=input, timeout=120,
                          text=input is None)


# ---------------------------------------------------------------- containerd

@pytest.fixture(scope="module")
def ctr_image():
    ensure_images()
    save = subprocess.run(["docker", "save", BB_IMAGE], capture_output=True, check=True, timeout=120)
    sh(CTR + ["image", "import", "-"], input=save.stdout)
    yield CTR_IMAGE
    sh(CTR + ["image", "rm", CTR_IMAGE], check=False)
    for _ in range(50):   # containerd's GC drops the snapshots shortly after the image
        if sh(CTR[:-2] + ["namespaces", "rm", "bindtrace-test"], check=False).returncode == 0:
            break
        time.sleep(0.1)
    remove_empty_cgroups("kubepods/burstable/pod9999-0000", "kubepods/burstable", "kubepods",
                         "bindtrace-test")


@pytest.fixture
def ctr_tasks():
    ids = []
    yield ids
    for cid in ids:
        sh(CTR + ["task", "kill", "-s", "KILL", cid], check=False)
        sh(CTR + ["task", "delete", "--force", cid], check=False)
        sh(CTR + ["container", "delete", cid], check=False)


def ctr_run(ids, image, cid, *args):
    ids.append(cid)
    sh(CTR + ["run", "-d", "--null-io"] + list(args) + [image, cid, "nc", "-l", "-p", "4251"])
    for line in sh(CTR + ["task", "ls"]).stdout.splitlines()[1:]:
        fields = line.split()
        if fields[0] == cid:
            return int(fields[1])
    raise AssertionError("no task " + cid)


def test_containerd_cri_container(ctr_image, ctr_tasks):
    cid = secrets.token_hex(32)
    pid = ctr_run(ctr_tasks, ctr_image, cid, "--cgroup", "/kubepods/burstable/pod9999-0000/" + cid,
                  "--annotation", "io.kubernetes.cri.container-type=container",
                  "--annotation", "io.kubernetes.cri.sandbox-name=db-0",
                  "--annotation", "io.kubernetes.cri.sandbox-namespace=data",
                  "--annotation", "io.kubernetes.cri.container-name=postgres",
                  "--annotation", "io.kubernetes.cri.image-name=" + CTR_IMAGE)
    cgid, mntns, path = ids_of(pid)
    assert path == "/kubepods/burstable/pod9999-0000/" + cid
    with Enricher(watch=False) as en:
        en.prime()
        ident = en.by_cgid[cgid]
        assert ident is en.lookup(pid, cgid, mntns)
    assert ident.container == {"runtime": "containerd", "id": cid, "name": "postgres", "image": CTR_IMAGE}
    assert ident.k8s == {"node": NODE, "namespace": "data", "pod": "db-0", "container": "postgres"}


def test_containerd_plain_ctr_container(ctr_image, ctr_tasks):
    pid = ctr_run(ctr_tasks, ctr_image, "bt-ctr-plain")
    cgid, mntns, path = ids_of(pid)
    assert path == "/bindtrace-test/bt-ctr-plain"          # ctr's /<namespace>/<id>
    with Enricher(watch=False) as en:
        ident = en.lookup(pid, cgid, mntns)
    assert ident.container == {"runtime": "containerd", "id": "bt-ctr-plain", "name": "bt-ctr-plain",
                               "image": None}
    assert ident.k8s == {"node": NODE, "namespace": None, "pod": None, "container": "bt-ctr-plain"}


# ---------------------------------------------------------------- podman

@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """podman with runc and explicit rlimits: crun refuses hybrid cgroups here and
    the default rlimits exceed what this machine may raise (see the reference)."""
    assert shutil.which("podman"), "podman is not installed (.ci/run installs it)"
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                    '[engine]\nruntime = "runc"\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    if sh(["podman", "image", "exists", PODMAN_IMAGE], env=env, check=False).returncode != 0:
        tar = tmp_path_factory.mktemp("podman") / "rootfs.tar"
        tar.write_bytes(rootfs_tar(False))
        sh(["podman", "import", "--change", "CMD [\"/bin/sh\"]", str(tar), PODMAN_IMAGE], env=env)
    names = []

    def run(name, *args):
        sh(["podman", "rm", "-f", "-t", "0", name], env=env, check=False)
        names.append(name)
        cid = sh(["podman", "run", "-d", "--network", "none", "--name", name] + list(args),
                 env=env).stdout.strip()
        pid = int(sh(["podman", "inspect", "-f", "{{.State.Pid}}", name], env=env).stdout)
        return pid, cid
    yield run
    for name in names:
        sh(["podman", "rm", "-f", "-t", "0", name], env=env, check=False)
    remove_empty_cgroups("kubepods/burstable/pod3333-4444", "kubepods/burstable", "kubepods",
                         "libpod_parent")


def test_podman_container_with_kubernetes_annotations(podman):
    pid, cid = podman("bt-podman-k8s", "--annotation", "io.kubernetes.pod.name=mypod",
                      "--annotation", "io.kubernetes.pod.namespace=myns",
                      "--annotation", "io.kubernetes.container.name=mycontainer",
                      "--cgroup-parent", "/kubepods/burstable/pod3333-4444",
                      PODMAN_IMAGE, "nc", "-l", "-p", "4252")
    cgid, mntns, path = ids_of(pid)
    assert path == "/kubepods/burstable/pod3333-4444/libpod-" + cid
    with Enricher(watch=False) as en:
        ident = en.lookup(pid, cgid, mntns)
    assert ident.container == {"runtime": "podman", "id": cid, "name": "bt-podman-k8s",
                               "image": PODMAN_IMAGE}
    assert ident.k8s == {"node": NODE, "namespace": "myns", "pod": "mypod", "container": "mycontainer"}


def test_podman_bind_traced_with_containername(podman):
    with Tracer(make_config(ports="4253", containername="bt-podman-nc")) as t:
        pid, cid = podman("bt-podman-nc", PODMAN_IMAGE, "nc", "-l", "-p", "4253")
        events = []
        for _ in range(200):
            events.extend(t.poll(50))
            if events:
                break
        t.stop()
        events.extend(t.poll(0))
    assert len(events) == 1
    ev = events[0]
    assert (ev["pid"], ev["comm"], ev["proto"], ev["addr"], ev["port"], ev["opts"]) == \
        (pid, "nc", "TCP", "::", 4253, ".R...")
    assert ev["container"] == {"runtime": "podman", "id": cid, "name": "bt-podman-nc", "image": PODMAN_IMAGE}
