"""Enricher over the runtimes' real on-disk files captured in data/enrich, and its
caches. The cgroup tree here is a plain directory tree in tmp standing in for the
cgroup2 mount (only the inode -> path walk and inotify are used, which behave the
same on any filesystem); tests/kernel/test_containers.py covers the real one."""
import os
import shutil
import time

import pytest

from bindtrace.cgroups import parse_cgroup_path
from bindtrace.enrich import Enricher
from bindtrace.runtimes import Runtimes

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "enrich")
DOCKER_ID = "0a1b8332df8bacd3b57c40ef91751d885b74c097f6f4289f1e132d14772ba82b"
KUBE_DOCKER_ID = "c2f5d797a360f168474fa00537ac3e2014ec0690b566c24ec521e8d07e8c60aa"
CRI_ID = "324d970214d7ed3dd790e99a2c45852738270f760827d89510549f62cf0f6d52"
CRI_ONLY_ID = "52939c77598c3072a385c6bcac4aaaea0878125b149148bd0bc98dc421f169c8"
PODMAN_ID = "06ce567988c91344eecd4ec62bd1c3e0c0a726341affed8c647e188148083204"
PODMAN_PLAIN_ID = "ed411317b84d9cb9b64c4cc9a4562cf348cfcfcdeee3224be6b1f06f6ecdc1d3"
PODMAN_KUBE_ID = "9170bf4894a28212023fa0b6d6986e8d22554345b26363ed8277a9ae7f49ceeb"


def plain(name, node="n1"):
    return {"node": node, "namespace": None, "pod": None, "container": name}


# pid in data/enrich/proc -> (container, k8s) as captured
EXPECTED = {
    5401: ({"runtime": "docker", "id": DOCKER_ID, "name": "bt7-probe", "image": "bt7probe:latest"},
           plain("bt7-probe")),
    5466: ({"runtime": "docker", "id": KUBE_DOCKER_ID, "name": "k8s_web_mypod_myns_1111-2222_0",
            "image": "bt7probe:latest"},
           {"node": "n1", "namespace": "myns", "pod": "mypod", "container": "web"}),
    5779: ({"runtime": "containerd", "id": CRI_ID, "name": "api",
            "image": "docker.io/library/bt7probe:latest"},
           {"node": "n1", "namespace": "shop", "pod": "api-7f9c", "container": "api"}),
    6064: ({"runtime": "containerd", "id": CRI_ONLY_ID, "name": "postgres",
            "image": "docker.io/library/bt7probe:latest"},
           {"node": "n1", "namespace": "data", "pod": "db-0", "container": "postgres"}),
    5862: ({"runtime": "containerd", "id": "bt-nc1", "name": "bt-nc1", "image": None}, plain("bt-nc1")),
    6789: ({"runtime": "podman", "id": PODMAN_ID, "name": "bt-pod-nc", "image": "localhost/bt7probe:latest"},
           {"node": "n1", "namespace": "myns", "pod": "mypod", "container": "mycontainer"}),
    6821: ({"runtime": "podman", "id": PODMAN_PLAIN_ID, "name": "bt-plain",
            "image": "localhost/bt7probe:latest"}, plain("bt-plain")),
    6853: ({"runtime": "podman", "id": PODMAN_KUBE_ID, "name": "bt-kp", "image": "localhost/bt7probe:latest"},
           plain("bt-kp")),
}


@pytest.mark.parametrize("pid", sorted(EXPECTED))
def test_each_runtime_from_its_files(pid):
    en = Enricher(node="n1", root=DATA, watch=False)
    assert en.for_pid(pid) == EXPECTED[pid]


def test_host_process_is_no_container():
    en = Enricher(node="n1", root=DATA, watch=False)
    assert en.for_pid(4242) == (None, None)
    ev = {"pid": 4242, "cgroup_id": 1, "mntns": None, "if_index": 0, "if": ""}
    en.enrich(ev)
    assert (ev["container"], ev["k8s"], ev["if"]) == (None, None, "")


def test_unknown_ids_resolve_to_none():
    rt = Runtimes(DATA, "n1")
    assert rt.lookup(parse_cgroup_path("/docker/" + "e" * 64)) is None
    assert rt.lookup(parse_cgroup_path("/process_api/ef632b1859636bd634b56b615eece7b8")) is None
    # a CRI container's id found in any containerd namespace, whatever the cgroup parent says
    assert rt.lookup(parse_cgroup_path("/other/" + CRI_ID)).container["name"] == "api"


def make_root(tmp_path):
    """A root with proc/self/mountinfo naming <root>/cg as the cgroup2 mount and
    docker's captured config.v2.json files."""
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "proc/self"))
    with open(os.path.join(root, "proc/self/mountinfo"), "w") as f:
        f.write("41 31 0:38 / /cg rw,relatime - cgroup2 cgroup2 rw\n")
    os.makedirs(os.path.join(root, "cg/docker"))
    shutil.copytree(os.path.join(DATA, "var/lib/docker"), os.path.join(root, "var/lib/docker"))
    return root


def add_cgroup(root, rel):
    path = os.path.join(root, "cg", rel)
    os.makedirs(path)
    return os.stat(path).st_ino


def test_cgroup_id_to_path_walk_for_a_process_already_gone(tmp_path):
    root = make_root(tmp_path)
    cgid = add_cgroup(root, "docker/" + DOCKER_ID)
    en = Enricher(node="n1", root=root, watch=False)
    assert en.cgroup2 == os.path.join(root, "cg")
    ident = en.lookup(777, cgid, 4026532999)       # no /proc/777 here: only the walk can answer
    assert ident.container["name"] == "bt7-probe"
    assert en.paths[cgid] == "/docker/" + DOCKER_ID


def test_resolved_once_then_cached_after_the_container_is_gone(tmp_path):
    root = make_root(tmp_path)
    cgid = add_cgroup(root, "docker/" + DOCKER_ID)
    kube = add_cgroup(root, "kubepods/besteffort/pod1111-2222/" + KUBE_DOCKER_ID)
    en = Enricher(node="n1", root=root, watch=False).prime()
    assert en.by_cgid[kube].k8s == EXPECTED[5466][1]
    shutil.rmtree(os.path.join(root, "cg"))
    shutil.rmtree(os.path.join(root, "var/lib/docker"))
    assert en.lookup(None, cgid, None).container == EXPECTED[5401][0]
    assert en.lookup(None, kube, None).container == EXPECTED[5466][0]
    # a fresh enricher, primed after the container left, cannot know it: the cache answered
    assert Enricher(node="n1", root=root, watch=False).lookup(None, cgid, None) is None


def test_mntns_cache_and_pid_reuse_guard(tmp_path):
    root = make_root(tmp_path)
    proc = os.path.join(root, "proc/300")
    os.makedirs(os.path.join(proc, "ns"))
    shutil.copy(os.path.join(DATA, "proc/5401/cgroup"), os.path.join(proc, "cgroup"))
    with open(os.path.join(proc, "ns/mnt"), "w"):
        pass
    mntns = os.stat(os.path.join(proc, "ns/mnt")).st_ino    # stands in for the nsfs inode
    en = Enricher(node="n1", root=root, watch=False)
    assert en.lookup(300, None, mntns + 1) is None           # pid now someone else's: not trusted
    assert en.lookup(300, None, mntns).container["name"] == "bt7-probe"
    shutil.rmtree(proc)
    assert en.lookup(300, None, mntns).container["name"] == "bt7-probe"   # gone: mntns cache


def test_watch_resolves_a_cgroup_created_after_prime(tmp_path):
    root = make_root(tmp_path)
    with Enricher(node="n1", root=root, watch=True) as en:
        en.prime()
        parent = os.path.join(root, "cg/kubepods/besteffort/pod1111-2222")
        os.makedirs(parent + "/" + KUBE_DOCKER_ID)           # nested mkdir -p, as runc does
        cgid = os.stat(parent + "/" + KUBE_DOCKER_ID).st_ino
        deadline = time.monotonic() + 10
        while cgid not in en.by_cgid and time.monotonic() < deadline:
            time.sleep(0.01)
        shutil.rmtree(os.path.join(root, "cg/kubepods"))
        ident = en.lookup(None, cgid, None)
        assert ident is not None and ident.k8s == EXPECTED[5466][1]
    assert en._thread is None and en._ino_fd == -1


def test_enrich_fills_event_in_place_and_keeps_unknown_interfaces(tmp_path):
    root = make_root(tmp_path)
    cgid = add_cgroup(root, "docker/" + DOCKER_ID)
    en = Enricher(node="n1", root=root, watch=False)
    ev = {"pid": 1, "cgroup_id": cgid, "mntns": 5, "netns": None, "if_index": 0, "if": ""}
    assert en.enrich(ev) is ev
    assert ev["container"] == EXPECTED[5401][0] and ev["k8s"] == plain("bt7-probe")
    ev2 = dict(ev, if_index=2 ** 31 - 1, **{"if": None})
    en.enrich(ev2)
    assert (ev2["if_index"], ev2["if"]) == (2 ** 31 - 1, None)
    ev2["container"]["name"] = "changed"                          # events do not share dicts
    assert en.lookup(1, cgid, 5).container["name"] == "bt7-probe"


def test_ifname_never_guessed_when_the_netns_is_unknown(tmp_path):
    from bindtrace.ifnames import IfNames
    names = IfNames(str(tmp_path))          # an empty root: no /proc/<pid> to find a netns from
    assert names.name(1, pid=12345, netns=None) is None
    assert names.name(0, pid=12345, netns=None) == ""
    real = IfNames()
    assert real.name(1, pid=os.getpid(), netns=None) == "lo"   # this live process's netns
    assert real.name(1) == "lo"                                 # no binder given: this netns


def test_cgroup_id_shared_by_host_and_containers(tmp_path):
    """A runtime that leaves cgroup2 alone (cgroup v1 only): host and container tasks
    all carry cgroup id 1; the container is still named from its v1 paths and mntns,
    and the host answer cached for id 1 never hides it."""
    root = make_root(tmp_path)

    def task(name, cgroup_text):
        d = os.path.join(root, "proc", name)
        os.makedirs(os.path.join(d, "ns"), exist_ok=True)
        if cgroup_text is not None:
            with open(os.path.join(d, "cgroup"), "w") as f:
                f.write(cgroup_text)
        with open(os.path.join(d, "ns/mnt"), "w"):
            pass
        return os.stat(os.path.join(d, "ns/mnt")).st_ino
    host_mntns = task("self", None)
    task("10", "4:memory:/\n0::/\n")
    hybrid = task("20", "4:memory:/docker/%s\n1:cpu:/docker/%s\n0::/\n" % (DOCKER_ID, DOCKER_ID))
    pure_v1 = task("30", "4:memory:/docker/%s\n1:cpu:/docker/%s\n" % (KUBE_DOCKER_ID, KUBE_DOCKER_ID))
    en = Enricher(node="n1", root=root, watch=False)
    assert en.host_mntns == host_mntns
    assert en.lookup(10, 1, host_mntns) is None
    assert en.lookup(20, 1, hybrid).container["name"] == "bt7-probe"
    assert en.lookup(30, 1, pure_v1).k8s == EXPECTED[5466][1]
    assert en.by_cgid[1] is None                 # id 1 stays the host's
    shutil.rmtree(os.path.join(root, "proc/20"))
    assert en.lookup(20, 1, hybrid).container["name"] == "bt7-probe"   # remembered per task
    assert en.lookup(10, 1, host_mntns) is None


def test_container_named_once_its_metadata_appears(tmp_path):
    """A container cgroup seen before its runtime's file was readable is cached as
    unknown, and named as soon as the file is there; a name never turns back to None."""
    root = make_root(tmp_path)
    saved = os.path.join(str(tmp_path), "saved")
    shutil.move(os.path.join(root, "var/lib/docker/containers", DOCKER_ID), saved)
    cgid = add_cgroup(root, "docker/" + DOCKER_ID)
    en = Enricher(node="n1", root=root, watch=False).prime()
    assert en.by_cgid[cgid] is None
    assert en.lookup(None, cgid, 99) is None
    shutil.move(saved, os.path.join(root, "var/lib/docker/containers", DOCKER_ID))
    assert en.lookup(None, cgid, 99).container["name"] == "bt7-probe"
    shutil.rmtree(os.path.join(root, "var/lib/docker"))
    en.refresh()
    assert en.lookup(None, cgid, 99).container["name"] == "bt7-probe"
    assert en.lookup(None, cgid, None).container["name"] == "bt7-probe"


def test_crio_reads_the_shared_containers_storage():
    """CRI-O is not installable here; it keeps containers in the same
    containers/storage layout podman does, so podman's captured files stand in."""
    ident = Runtimes(DATA, "n1").lookup(parse_cgroup_path(
        "/kubepods/besteffort/pod1-2/crio-%s.scope" % PODMAN_ID))
    assert ident.container == {"runtime": "cri-o", "id": PODMAN_ID, "name": "mycontainer",
                               "image": "localhost/bt7probe:latest"}
    assert ident.k8s == {"node": "n1", "namespace": "myns", "pod": "mypod", "container": "mycontainer"}
