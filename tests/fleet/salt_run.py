"""Helpers for the Salt tests: real salt-call from PyPI (its own venv, made by
scripts/salt-venv.sh), masterless (file_client: local) with a throw-away
config dir, running the repo's modules/bindtrace.py."""
import json
import os
import subprocess
import time

from module_run import EXACT, Workload, bpf_ids_of, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SALT_VENV = os.environ.get("BINDTRACE_SALT_VENV", "/opt/bindtrace-salt")
SALT_CALL = os.path.join(SALT_VENV, "bin", "salt-call")
BIND_REPORT = os.path.join(ROOT, ".venv", "bin", "bind-report")


def ensure_salt():
    """Salt's venv, made when missing (.ci/run makes it first; ~3 min from PyPI)."""
    subprocess.run([os.path.join(ROOT, "scripts", "salt-venv.sh")], check=True, timeout=1200,
                   env=dict(os.environ, BINDTRACE_SALT_VENV=SALT_VENV))


def minion_config(directory, user="root"):
    """A masterless minion config whose every state dir is inside `directory`."""
    os.makedirs(directory, exist_ok=True)
    lines = ["id: local", "file_client: local", "user: %s" % user]
    for key in ("root_dir", "cachedir", "pki_dir", "sock_dir"):
        lines.append("%s: %s" % (key, os.path.join(directory, key)))
    lines.append("log_file: %s" % os.path.join(directory, "minion.log"))
    with open(os.path.join(directory, "minion"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return directory


def salt_call_cmd(config_dir, function, *args, module_dirs="modules", prefix=()):
    """The issue's command line: salt-call --local --module-dirs=modules F ARGS --out=json."""
    return list(prefix) + [SALT_CALL, "--local", "--config-dir=%s" % config_dir,
                           "--module-dirs=%s" % module_dirs, function] + list(args) + ["--out=json"]


def salt_call(config_dir, function, *args, env=None, **kw):
    """Run salt-call in the repo (module_dirs=modules is relative to it) -> CompletedProcess."""
    return subprocess.run(salt_call_cmd(config_dir, function, *args, **kw), cwd=ROOT,
                          env=env or dict(os.environ), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def salt_popen(config_dir, function, *args):
    """salt-call in the background; the tracer runs in this very process."""
    return subprocess.Popen(salt_call_cmd(config_dir, function, *args), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)


def wait_salt_tracer(proc, timeout=120):
    """Block until salt-call's tracer is attached: it holds a BPF link (found by
    pid: Salt's setproctitle overwrites /proc/PID/environ, so a tag there is lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for kind, _ in bpf_ids_of(proc.pid) if kind == "link_id") >= 1:
            time.sleep(0.2)
            return
        if proc.poll() is not None:
            raise AssertionError("salt-call ended before its tracer attached:\n%s\n%s"
                                 % proc.communicate())
        time.sleep(0.05)
    raise AssertionError("salt-call's tracer never attached")


def traced_by_salt(config_dir, *args):
    """salt-call bindtrace.trace ARGS ("{p1}"/"{p2}" filled with two free ports);
    once its tracer is attached, the EXACT workload binds (two listeners and one
    EADDRINUSE) -> (salt-call's stdout, workload info, p1, p2)."""
    p1, p2 = free_port(), free_port()
    proc = salt_popen(config_dir, "bindtrace.trace", *[a.format(p1=p1, p2=p2) for a in args])
    wait_salt_tracer(proc)
    work = Workload(EXACT, p1, p2)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        work.stop()
    assert proc.returncode == 0, err
    return out, work.info, p1, p2


def local_return(stdout):
    """salt-call --out=json prints {"local": <return>}."""
    data = json.loads(stdout)
    assert list(data) == ["local"], data
    return data["local"]


def bind_report(*args, cwd=None):
    return subprocess.run([BIND_REPORT] + list(args), cwd=cwd or ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
