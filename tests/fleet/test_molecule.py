"""`molecule test` of molecule/default, run the way a user runs it, inside a
network namespace with only loopback: it passes offline (no galaxy, no
images), and leaves nothing behind."""
import fcntl
import os
import re
import subprocess

import pytest

from conftest import ROOT, ansible_env

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

STATE = "/tmp/bindtrace-fleet-molecule"
PREFIX = "btmol"


def test_molecule_test_passes_offline():
    env = ansible_env(NO_COLOR="1", ANSIBLE_CONFIG=None, MOLECULE_NO_LOG="false")
    # A fresh network namespace with only `lo`: any attempt to reach the
    # network fails, so a pass proves the scenario is offline. The fleet's
    # bridge and hosts are created inside it.
    # The scenario has one fleet and one ephemeral directory: concurrent
    # pytest sessions take turns.
    with open(STATE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            ["/usr/bin/unshare", "--net", "--", "/bin/sh", "-c",
             "ip link set lo up && exec molecule test"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    for step in ("destroy", "syntax", "create", "converge", "idempotence", "verify"):
        assert re.search(r"default (>|➜) %s: Executed: Successful" % step, out), step
    assert re.search(r"default\s+: actions=7\s+successful=7 .*failed=0", out), out[-2000:]
    # the converge's report table names the one unexpected listener
    assert re.search(r"btmol-h3\s+unexpected\s+\d+\s+python3\s+TCP\s+0\.0\.0\.0\s+15433", out)
    # destroy removed everything the harness made
    assert not os.path.exists(STATE)
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert [n for n in netns if n.startswith(PREFIX)] == []
    assert not os.path.exists("/etc/netns/%s-h1" % PREFIX)
    assert running_with(STATE) == []


def running_with(text):
    """Live processes whose command line mentions `text` (sshd, workloads)."""
    out = []
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open("/proc/%s/stat" % pid) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if text in cmd and not zombie:
            out.append(pid)
    return out
