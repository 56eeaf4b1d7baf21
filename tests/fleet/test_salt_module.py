"""modules/bindtrace.py under the real salt-call (Salt from PyPI, masterless) on
the real kernel: the workload's exact binds, the same facts as the Ansible
module for the same window, errors, and __virtual__'s reasons."""
import os
import shutil
import signal
import subprocess
import tempfile

import pytest
from bindtrace.facts import DEFAULTS

from bindtrace.record import BIND_FACT_KEYS
from module_run import EXACT, Play, Workload, assert_nothing_left, free_port, trace_task
from salt_run import (ROOT, ensure_salt, local_return, minion_config, salt_call, salt_popen,
                      traced_by_salt, wait_salt_tracer)

LIBRARY = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace",
                       "plugins", "module_utils")

FACT_KEYS = {"schema", "host", "window", "mode", "filters", "binds", "listeners", "lost",
             "dropped", "truncated", "summary_full", "unexpected", "counts", "missing_fields",
             "policy", "snapshot", "listens_full"}
SUMMARY_BIND_KEYS = set(BIND_FACT_KEYS) | {
    "schema", "timestamp", "pid", "tid", "ppid", "uid", "gid", "user", "comm", "proto", "family",
    "addr", "port", "requested_addr", "requested_port", "client", "opts", "options", "if_index",
    "if", "error", "ret", "netns", "mntns", "cgroup_id", "container", "k8s", "count",
    "first_seen", "last_seen", "port_min", "port_max", "verdict"}
SALT_ONLY = {"result", "comment"}   # Salt's words for how the trace went, beside the facts
NO_OPTIONS = {"reuseport": False, "reuseaddr": False, "bind_address_no_port": False,
              "transparent": False, "freebind": False}


@pytest.fixture(scope="module")
def salt_cfg(tmp_path_factory):
    ensure_salt()
    return minion_config(str(tmp_path_factory.mktemp("salt")))


def traced(salt_cfg, *args):
    out, info, p1, p2 = traced_by_salt(salt_cfg, *args)
    return local_return(out), info, p1, p2


def test_salt_call_returns_the_workloads_exact_binds(salt_cfg):
    # the command: salt-call --local --module-dirs=modules bindtrace.trace duration=3
    facts, w, p1, p2 = traced(salt_cfg, "duration=3")
    assert set(facts) == FACT_KEYS | SALT_ONLY
    assert facts["result"] is True
    assert facts["comment"] == "%d listener%s and %d bind%s on %s in the 3.0 s window; no allow rules" % (
        len(facts["listeners"]), "" if len(facts["listeners"]) == 1 else "s", facts["counts"]["binds"],
        "" if facts["counts"]["binds"] == 1 else "s", facts["host"]["hostname"])
    assert (facts["schema"], facts["mode"], facts["host"]["backend"]) == (1, "summary", "core")
    assert facts["window"]["duration"] == 3.0
    assert facts["filters"] == {"pid": None, "ports": "", "ignore_errors": True, "comm": None,
                                "uid": None, "netns": "all", "containername": None, "scope": "all"}
    mine = [b for b in facts["binds"] if b["pid"] == w["pid"]]
    assert all(set(b) == SUMMARY_BIND_KEYS for b in mine)
    # summary mode, failed binds ignored by default: the two successful binds, once each
    # (in first-seen order, which the kernel keeps to a clock tick: same tick, port order)
    assert sorted([(b["proto"], b["family"], b["addr"], b["port"], b["requested_addr"],
             b["requested_port"], b["error"], b["ret"], b["opts"], b["options"], b["comm"],
             b["ppid"], b["uid"], b["user"], b["netns"], b["mntns"], b["count"], b["tid"],
             b["verdict"]) for b in mine]) == [
        ("TCP", 4, "127.0.0.1", p1, "127.0.0.1", p1, None, 0, ".....", NO_OPTIONS, "python3",
         w["ppid"], 0, "root", w["netns"], w["mntns"], 1, None, None),
        ("UDP", 6, "::1", p2, "::1", p2, None, 0, ".....", NO_OPTIONS, "python3",
         w["ppid"], 0, "root", w["netns"], w["mntns"], 1, None, None)]
    listening = [(l["proto"], l["addr"], l["port"], l["state"], l["inode"])
                 for l in facts["listeners"] if l["pid"] == w["pid"]]
    assert listening == [("TCP", "127.0.0.1", p1, "LISTEN", w["inodes"][0]),
                         ("UDP", "::1", p2, "UNCONN", w["inodes"][1])]
    assert facts["policy"] == {"rules": 0}
    assert_nothing_left()


def test_salt_and_ansible_return_the_same_facts_for_one_window(salt_cfg):
    """The Ansible module and the Salt module trace the same workload at once:
    same keys everywhere, same binds field for field (each stamps its own time)."""
    p1, p2 = free_port(), free_port()
    # both windows must still be open when the workload binds, after the slower of the
    # two front-ends has attached: 8 s was too short on a loaded machine (load 20+)
    play = Play([trace_task(duration=20, mode="events", ports=[p1, p2], ignore_errors=False)])
    salt = salt_popen(salt_cfg, "bindtrace.trace", "duration=20", "mode=events",
                      "ports=%d,%d" % (p1, p2), "ignore_errors=false")
    wait_salt_tracer(salt)
    play.wait_attached()
    work = Workload(EXACT, p1, p2)
    try:
        out, err = salt.communicate(timeout=120)
        play.wait()
    finally:
        work.stop()
    assert salt.returncode == 0, err
    assert play.proc.returncode == 0, play.err
    from_salt = local_return(out)
    assert set(from_salt) - FACT_KEYS == SALT_ONLY
    from_salt = {k: v for k, v in from_salt.items() if k not in SALT_ONLY}
    from_ansible = play.results()["trace"]["ansible_facts"]["bind_trace"]
    assert set(from_salt) == set(from_ansible) == FACT_KEYS
    for key in ("schema", "mode", "filters", "lost", "dropped", "truncated", "summary_full",
                "missing_fields", "policy", "host"):
        assert from_salt[key] == from_ansible[key], key
    for key in ("window", "counts", "unexpected"):
        assert set(from_salt[key]) == set(from_ansible[key]), key
    # the workload's binds (another process may bind the same ports in one window only)
    untimed = lambda facts: [{k: v for k, v in b.items() if k != "timestamp"}  # noqa: E731
                             for b in facts["binds"] if b["pid"] == work.pid]
    assert [b["error"] for b in untimed(from_salt)] == [None, None, "EADDRINUSE"]
    assert untimed(from_salt) == untimed(from_ansible)
    mine = lambda facts: [l for l in facts["listeners"] if l["pid"] == work.pid]  # noqa
    assert mine(from_salt) == mine(from_ansible) and len(mine(from_salt)) == 2
    assert_nothing_left()


def test_allow_rules_give_verdicts(salt_cfg):
    # .format() fills the ports: braces of the YAML rule are doubled
    facts, w, p1, p2 = traced(salt_cfg, "duration=3", "mode=events", "ports={p1},{p2}",
                              "listeners=false", "allow=[{{name: tcp-here, proto: tcp, port: {p1}}}]")
    mine = lambda recs: [r for r in recs if r["pid"] == w["pid"]]  # noqa: E731
    assert [(b["proto"], b["port"], b["verdict"]) for b in mine(facts["binds"])] == [
        ("TCP", p1, "expected"), ("UDP", p2, "unexpected")]
    assert [(b["proto"], b["port"]) for b in mine(facts["unexpected"]["binds"])] == [("UDP", p2)]
    assert facts["listeners"] == [] and facts["policy"] == {"rules": 1}


def test_fail_on_unexpected_fails_the_job_and_still_returns_the_facts(salt_cfg):
    # a listener held through the window; no rule allows port 1 only
    p1, p2 = free_port(), free_port()
    work = Workload(EXACT, p1, p2)
    try:
        res = salt_call(salt_cfg, "bindtrace.trace", "duration=1", "netns=host",
                        "allow=[{port: 1}]", "fail_on_unexpected=true")
    finally:
        work.stop()
    assert res.returncode == 1, res.stderr
    facts = local_return(res.stdout)
    held = [(l["proto"], l["port"]) for l in facts["unexpected"]["listeners"] if l["pid"] == work.pid]
    assert held == [("TCP", p1), ("UDP", p2)]
    assert "bindtrace.trace: unexpected listeners on %s: " % facts["host"]["hostname"] in res.stderr
    assert facts["result"] is False
    assert facts["comment"].startswith("unexpected listeners on %s: " % facts["host"]["hostname"])
    assert "TCP 127.0.0.1:%d python3 pid %d" % (p1, work.pid) in facts["comment"]
    assert "TCP 127.0.0.1:%d python3 pid %d" % (p1, work.pid) in res.stderr


def test_sigterm_ends_the_job_with_a_message_and_nothing_stays_loaded(salt_cfg):
    proc = salt_popen(salt_cfg, "bindtrace.trace", "duration=600")
    wait_salt_tracer(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (1, "")
    assert ("Error running 'bindtrace.trace': interrupted by signal 15 before the window ended; "
            "nothing stays loaded; rerun the task") in err
    assert_nothing_left()


@pytest.mark.parametrize("args, message", [
    (("duration=3", "ports=99999"), "invalid ports entry '99999': expected port numbers 1-65535 "
                                    "or ranges like 8000-8100, comma separated"),
    (("duration=0",), "invalid duration 0: expected seconds, more than 0 and at most 3600"),
    # every option the library takes (the list grows with the library)
    (("prots=4242",), "unknown option prots: expected any of " + ", ".join(sorted(DEFAULTS))),
    (("fail_on_unexpected=true",), "fail_on_unexpected needs a policy: set allow to a list of "
                                   "rules (an empty list allows nothing)"),
    (("mode=fast",), "invalid mode 'fast': expected one of summary, events"),
])
def test_bad_options_fail_with_the_librarys_message_and_load_nothing(salt_cfg, args, message):
    res = salt_call(salt_cfg, "bindtrace.trace", *args)
    assert res.returncode == 1
    assert res.stdout == ""
    assert "Error running 'bindtrace.trace': " + message in res.stderr
    assert_nothing_left()


def test_virtual_no_btf_no_bcc_says_unsupported(salt_cfg):
    env = dict(os.environ, BINDTRACE_BTF_PATH="/nonexistent/vmlinux")
    res = salt_call(salt_cfg, "bindtrace.trace", "duration=1", env=env)
    assert res.returncode != 0 and res.stdout == ""
    assert ("'bindtrace' __virtual__ returned False: unsupported: no usable backend on this host "
            "(no kernel BTF at /nonexistent/vmlinux, bcc is not importable by this Python") in res.stderr
    assert res.stderr.count("no usable backend") == 1, res.stderr


def test_virtual_not_root(salt_cfg):
    # outside pytest's private (0700) tmp dir, so that nobody can reach its config
    home = tempfile.mkdtemp(prefix="bt-salt-nobody-")
    try:
        os.chmod(home, 0o755)
        cfg = minion_config(os.path.join(home, "salt"), user="nobody")
        subprocess.run(["chown", "-R", "nobody", home], check=True)
        res = salt_call(cfg, "bindtrace.trace", "duration=1",
                        prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    finally:
        shutil.rmtree(home)
    assert res.returncode != 0 and res.stdout == ""
    reason = ("'bindtrace' __virtual__ returned False: not root: loading eBPF programs needs "
              "root: run the salt-minion (or salt-call) as root (user: root in its config, the "
              "default)\n")
    assert reason in res.stderr
    assert res.stderr.count("not root") == 1, res.stderr   # once, and no Ansible words
    assert "become" not in res.stderr and "sudo" not in res.stderr


def test_virtual_without_the_host_library(salt_cfg, tmp_path):
    # the module alone, as if synced to a minion where the project is not installed
    lonely = tmp_path / "modules"
    lonely.mkdir()
    shutil.copy(os.path.join(ROOT, "modules", "bindtrace.py"), str(lonely))
    res = salt_call(salt_cfg, "bindtrace.trace", "duration=1", module_dirs=str(lonely))
    assert res.returncode != 0 and res.stdout == ""
    assert ("'bindtrace' __virtual__ returned False: the bindtrace host library is not importable "
            "(No module named 'bindtrace'): install the project into the minion's Python "
            "(salt-pip install bindtrace-*.whl on onedir Salt, pip install into a pip-installed "
            "Salt's environment) or run the module from a checkout (module_dirs=<checkout>/modules)"
            ) in res.stderr


def test_installed_package_is_found_when_not_deployed_from_the_checkout(salt_cfg, tmp_path):
    """The module synced alone, the host library installed in the minion's
    Python: a copy of the package on PYTHONPATH stands for site-packages."""
    site = tmp_path / "site-packages"
    shutil.copytree(os.path.join(LIBRARY, "bindtrace"), str(site / "bindtrace"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    lonely = tmp_path / "modules"
    lonely.mkdir()
    shutil.copy(os.path.join(ROOT, "modules", "bindtrace.py"), str(lonely))
    p = free_port()
    res = salt_call(salt_cfg, "bindtrace.trace", "duration=1", "ports=%d" % p, "listeners=false",
                    module_dirs=str(lonely), env=dict(os.environ, PYTHONPATH=str(site)))
    assert res.returncode == 0, res.stderr
    facts = local_return(res.stdout)
    assert set(facts) == FACT_KEYS | SALT_ONLY
    assert (facts["filters"]["ports"], facts["binds"], facts["listeners"]) == (str(p), [], [])
