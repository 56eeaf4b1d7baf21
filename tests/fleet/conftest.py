"""Fixtures for the fleet tests: one session-wide fleet of 5 network-namespace
sshd hosts (torn down at the end of the session, also when tests fail), and
helpers that run the real `ansible` / `ansible-playbook` against it."""
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from harness import Fleet  # noqa: E402
from fleet_workload import Binder  # noqa: E402

from controller import VENV_BIN  # noqa: E402  (.venv, or the matrix row's controller)
FLEET_SIZE = 5
# Distinct from the molecule scenario's and the benchmark's fleets, so they
# can run beside this one. Several pytest sessions may run at once (several
# people, one machine): each takes a free slot, held by a lock for the whole
# session, and builds its fleet under that slot's names and /24.
SLOTS = 8
LOCK = "/tmp/bindtrace-fleet-pytest-%d.lock"


def slot_names(slot):
    """(state dir, name prefix, subnet) of a slot; slot 0 is the plain one."""
    if slot == 0:
        return "/tmp/bindtrace-fleet-pytest", "btfleet", "10.231.0"
    return "/tmp/bindtrace-fleet-pytest-%d" % slot, "btfleet%d" % slot, "10.231.%d" % slot


def ansible_env(**extra):
    """Environment for Ansible commands: the repo's venv and ansible.cfg."""
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env.pop("ANSIBLE_INVENTORY", None)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_adhoc(fleet, module, args=None, pattern="all", connection=None, forks=FLEET_SIZE,
              timeout=300, **env):
    """`ansible PATTERN -m MODULE` over the fleet; returns (proc, {host: result})
    read from the builtin `tree` callback's one JSON file per host."""
    tree = tempfile.mkdtemp(prefix="btfleet-tree-")
    try:
        cmd = [os.path.join(VENV_BIN, "ansible"), pattern, "-i", fleet.inventory_path,
               "-m", module, "-f", str(forks)]
        if args:
            cmd += ["-a", args]
        if connection:
            cmd += ["-c", connection]
        e = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS=1, ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
                        ANSIBLE_CALLBACK_TREE_DIR=tree, **env)
        proc = subprocess.run(cmd, env=e, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout)
        results = {}
        for name in os.listdir(tree):
            with open(os.path.join(tree, name)) as f:
                results[name] = json.load(f)
        return proc, results
    finally:
        shutil.rmtree(tree, ignore_errors=True)


PLAYBOOK = os.path.join(ROOT, "playbooks", "trace_bind.yml")


def run_playbook(fleet, report_dir, extra_vars=None, connection=None, playbook=PLAYBOOK,
                 forks=FLEET_SIZE, timeout=600, **env):
    """The real `ansible-playbook` over the fleet with the repo's ansible.cfg
    (bind_report callback enabled), report files written to report_dir."""
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", fleet.inventory_path, "-f", str(forks),
           playbook]
    if connection:
        cmd += ["-c", connection]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    e = ansible_env(BIND_REPORT_DIR=report_dir, **env)
    return subprocess.run(cmd, env=e, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)


@pytest.fixture(scope="session")
def fleet_slot():
    """A slot no other running pytest session holds (flock, released when
    this session ends or dies)."""
    for slot in range(SLOTS):
        lock = open(LOCK % slot, "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        try:
            yield slot
        finally:
            lock.close()
        return
    raise RuntimeError("all %d test-fleet slots are held by running pytest sessions" % SLOTS)


@pytest.fixture(scope="session")
def fleet(fleet_slot):
    state, prefix, subnet = slot_names(fleet_slot)
    f = Fleet(state)
    f.down()  # left over from an interrupted session (we hold the slot)
    try:
        f.up(FLEET_SIZE, prefix=prefix, subnet=subnet)
        yield f
    finally:
        f.down()


@pytest.fixture
def binders():
    """Start Binder workloads with `binders(fleet, host, [(addr, port)])`;
    all are stopped at the end of the test."""
    started = []

    def start(fleet, host, binds, interval=0.2):
        b = Binder(fleet, host, binds, interval).start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def restore_sshd(fleet):
    """Restart every host's sshd that a test killed."""
    yield
    for h in fleet.hosts:
        if not h["pid"]:
            fleet.start_sshd(h["name"])
