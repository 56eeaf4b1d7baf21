"""Parsers of enrich: cgroup paths, /proc/<pid>/cgroup, mountinfo, Kubernetes labels,
and the ig-style container filter. Inputs are the files captured from real
runs in data/enrich (see its README); systemd-driver paths cannot occur here (no
systemd as PID 1), so those strings follow the runtimes' documented naming."""
import os

import pytest

from bindtrace.cli import has_container
from bindtrace.cgroups import cgroup2_mount, parse_cgroup_path, parse_proc_cgroup
from bindtrace.runtimes import k8s_identity
from bindtrace.filters import container_names, event_selected, select_events

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "enrich")
DOCKER_ID = "0a1b8332df8bacd3b57c40ef91751d885b74c097f6f4289f1e132d14772ba82b"
KUBE_DOCKER_ID = "c2f5d797a360f168474fa00537ac3e2014ec0690b566c24ec521e8d07e8c60aa"
CRI_ID = "324d970214d7ed3dd790e99a2c45852738270f760827d89510549f62cf0f6d52"
PODMAN_ID = "06ce567988c91344eecd4ec62bd1c3e0c0a726341affed8c647e188148083204"
PODMAN_KUBE_ID = "9170bf4894a28212023fa0b6d6986e8d22554345b26363ed8277a9ae7f49ceeb"


def read(rel):
    with open(os.path.join(DATA, rel)) as f:
        return f.read()


def unified(pid):
    return parse_proc_cgroup(read("proc/%d/cgroup" % pid))[0]


def test_proc_cgroup_unified_line_first():
    paths = parse_proc_cgroup(read("proc/5401/cgroup"))
    assert paths == ["/docker/" + DOCKER_ID]          # every v1 line is the same path
    host = parse_proc_cgroup(read("proc/4242/cgroup"))
    assert host[0] == "/"
    assert "/process_api/ef632b1859636bd634b56b615eece7b8" in host


@pytest.mark.parametrize("pid,expect", [
    (5401, {"id": DOCKER_ID, "runtime": "docker", "namespace": None, "pod_uid": None,
            "kubepods": False, "weak": False}),
    (5466, {"id": KUBE_DOCKER_ID, "runtime": None, "namespace": None, "pod_uid": "1111-2222",
            "kubepods": True, "weak": False}),
    (5779, {"id": CRI_ID, "runtime": None, "namespace": None, "pod_uid": "5555-6666",
            "kubepods": True, "weak": False}),
    (5862, {"id": "bt-nc1", "runtime": None, "namespace": "default", "pod_uid": None,
            "kubepods": False, "weak": True}),
    (6789, {"id": PODMAN_ID, "runtime": "podman", "namespace": None, "pod_uid": None,
            "kubepods": False, "weak": False}),
    (6853, {"id": PODMAN_KUBE_ID, "runtime": "podman", "namespace": None, "pod_uid": "3333-4444",
            "kubepods": True, "weak": False}),
])
def test_cgroup_paths_of_real_containers(pid, expect):
    assert parse_cgroup_path(unified(pid)) == expect


def test_host_cgroups_are_not_containers():
    assert parse_cgroup_path("/") is None
    assert parse_cgroup_path("/docker") is None
    # two levels might be containerd's /<ns>/<id>: only a weak guess, a bundle must confirm it
    assert parse_cgroup_path("/process_api/ef632b1859636bd634b56b615eece7b8")["weak"] is True


@pytest.mark.parametrize("path,cid,runtime,uid", [
    ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12ab_34cd.slice/"
     "cri-containerd-%s.scope" % CRI_ID, CRI_ID, "containerd", "12ab-34cd"),
    ("/kubepods.slice/kubepods-pod99ff_00aa.slice/docker-%s.scope" % DOCKER_ID, DOCKER_ID, "docker",
     "99ff-00aa"),
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/crio-%s.scope" % CRI_ID,
     CRI_ID, "cri-o", "1-2"),
    ("/machine.slice/libpod-%s.scope" % PODMAN_ID, PODMAN_ID, "podman", None),
    ("/system.slice/docker-%s.scope" % DOCKER_ID, DOCKER_ID, "docker", None),
    ("/libpod_parent/4f1c0de/libpod-%s" % PODMAN_ID, PODMAN_ID, "podman", None),
    ("/kubepods/burstable/pod5-6/crio-%s" % CRI_ID, CRI_ID, "cri-o", "5-6"),   # CRI-O, cgroupfs
])
def test_systemd_and_pod_forms(path, cid, runtime, uid):
    got = parse_cgroup_path(path)
    assert (got["id"], got["runtime"], got["pod_uid"], got["weak"]) == (cid, runtime, uid, False)


def test_sub_cgroup_inside_a_container_names_it():
    got = parse_cgroup_path("/docker/%s/init.scope" % DOCKER_ID)
    assert (got["id"], got["runtime"]) == (DOCKER_ID, "docker")


def test_cgroup2_mount_hybrid_and_pure_v2():
    assert cgroup2_mount(read("proc/self/mountinfo")) == "/sys/fs/cgroup/unified"
    # a pure cgroup v2 host (not available here): the kernel's mountinfo line format
    pure = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroup2_mount(pure) == "/sys/fs/cgroup"
    assert cgroup2_mount("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n") is None


def test_k8s_identity_from_labels_cri_annotations_and_names():
    labels = {"io.kubernetes.pod.name": "mypod", "io.kubernetes.pod.namespace": "myns",
              "io.kubernetes.container.name": "web"}
    assert k8s_identity(labels, "k8s_web_mypod_myns_1111-2222_0", "n1") == \
        {"node": "n1", "namespace": "myns", "pod": "mypod", "container": "web"}
    cri = {"io.kubernetes.cri.sandbox-name": "db-0", "io.kubernetes.cri.sandbox-namespace": "data",
           "io.kubernetes.cri.container-name": "postgres"}
    assert k8s_identity(cri, "postgres", "n1") == \
        {"node": "n1", "namespace": "data", "pod": "db-0", "container": "postgres"}
    assert k8s_identity({}, "k8s_app_web2_shop_uid2_0", "n1") == \
        {"node": "n1", "namespace": "shop", "pod": "web2", "container": "app"}
    # outside Kubernetes: like ig, K8S.CONTAINERNAME is the container's own name
    assert k8s_identity({}, "test-trace-bind", "n1") == \
        {"node": "n1", "namespace": None, "pod": None, "container": "test-trace-bind"}


def ev(name=None, k8s_container=None, pid=1):
    if name is None:
        return {"pid": pid, "container": None, "k8s": None}
    return {"pid": pid, "container": {"runtime": "docker", "id": "x" * 64, "name": name, "image": None},
            "k8s": {"node": "n", "namespace": None, "pod": None, "container": k8s_container or name}}


def test_scope_and_containername_filter():
    host, ctr, kube = ev(pid=1), ev("test-trace-bind", pid=2), ev("k8s_web_p_ns_u_0", "web", pid=3)
    events = [host, ctr, kube]
    assert select_events(events) == events
    assert select_events(events, scope="host") == [host]
    assert select_events(events, scope="containers") == [ctr, kube]
    assert select_events(events, "test-trace-bind") == [ctr]
    assert select_events(events, "/test-trace-bind") == [ctr]      # docker's own spelling
    assert select_events(events, "web") == [kube]                   # Kubernetes container name
    assert select_events(events, "test-trace-bind,web") == [ctr, kube]
    assert select_events(events, ["web"]) == [kube]
    assert select_events(events, "test-trace") == []                # exact, not a prefix
    assert select_events(events, "test-trace-bind", scope="host") == []
    assert event_selected(host, None, "all") is True
    assert container_names(" a, b ,") == frozenset({"a", "b"})
    assert has_container(events) is True and has_container([host]) is False
