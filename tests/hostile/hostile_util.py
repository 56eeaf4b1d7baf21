"""Shared helpers for the hostile-conditions tests: the bind storm generator,
the real ansible-playbook on this machine (local connection) or on a fleet
host, and finding the BPF objects one tracer process owns.

Several engineers' tracers run on this machine at the same time, so "nothing
of ours remains" is always checked against the ids one process held (read
from its /proc/<pid>/fdinfo while it ran), never against "no BPF at all"."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if os.path.join(ROOT, "tests") not in sys.path:   # the shared helpers
    sys.path.append(os.path.join(ROOT, "tests"))
for sub in ("kernel", "fleet"):
    path = os.path.join(ROOT, "tests", sub)
    if path not in sys.path:
        sys.path.append(path)

from helpers.kernel import CLI, bpf_ids_of, cli_env, live_bpf_ids  # noqa: E402,F401
from helpers.procs import descendants  # noqa: E402
from helpers import report_json  # noqa: E402

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOK = os.path.join(ROOT, "playbooks", "trace_bind.yml")
FIXTURES = os.path.join(HERE, "fixtures")
BINDSTORM_SRC = os.path.join(ROOT, "tests", "bench", "bindstorm.c")
# Ports of this directory's workloads: below the ephemeral range (32768-60999), unused by other tests.
PORT_BASE = 29400


def build_bindstorm(outdir):
    """gcc -O2 -pthread tests/bench/bindstorm.c -> path of the binary."""
    out = os.path.join(str(outdir), "bindstorm")
    subprocess.run(["gcc", "-O2", "-pthread", "-o", out, BINDSTORM_SRC], check=True, timeout=120)
    return out


def storm(binary, threads, per_thread, mode, port):
    """Run a bind storm to its end; returns the number of bind() calls made."""
    out = subprocess.run([binary, str(threads), str(per_thread), mode, str(port)],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    offered = int(out.split()[0])
    assert offered == threads * per_thread
    return offered


# ------------------------------------------------------------ processes, BPF ids

def links(ids):
    return sum(1 for kind, _ in ids if kind == "link_id")


def tracing(pid):
    """The tracer process still has its program attached (the window is open)."""
    try:
        return links(bpf_ids_of(pid)) >= 1
    except OSError:
        return False


def _candidates(root_pid, tag):
    if tag is None:
        return descendants(root_pid)
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/environ" % name, "rb") as f:
                    if tag.encode() in f.read():
                        out.append(int(name))
            except OSError:
                continue
    return out


def _still_attached(pid, ids, settle=0.5):
    """The same links a moment later: a tracer that waits for the fleet's start
    time (start_at) attaches once at load as a trial and detaches; its window
    is open only when it attaches again and stays."""
    time.sleep(settle)
    try:
        again = bpf_ids_of(pid)
    except OSError:
        return False
    return {i for i in again if i[0] == "link_id"} == {i for i in ids if i[0] == "link_id"}


def find_tracer(root_pid=None, proc=None, timeout=120, tag=None, exclude=()):
    """The process that holds an attached bind tracer (a BPF link on the bind
    tracepoint) -> (pid, its prog/map/link ids). Looked for under root_pid,
    or (tag) among processes whose environment holds the tag: async_wrapper
    daemonizes, so an async module is no descendant of ansible-playbook."""
    if tag is None and proc is not None and getattr(proc, "tag", None) and root_pid == proc.pid:
        tag = proc.tag   # a playbook of start_playbook: its async module is no descendant
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in _candidates(root_pid, tag):
            if pid in exclude:
                continue
            try:
                ids = bpf_ids_of(pid)
            except OSError:
                continue
            if links(ids) >= 1 and _still_attached(pid, ids):
                return pid, ids
        if proc is not None and proc.poll() is not None:
            raise AssertionError("exited before tracing:\n%s" % (proc.stdout.read()
                                                                if proc.stdout else ""))
        time.sleep(0.03)
    raise AssertionError("no tracer attached (pid %s, tag %s)" % (root_pid, tag))


def wait_gone(ids, timeout=20):
    """Until none of these BPF ids is loaded (the kernel frees them after an
    RCU grace period); returns those still loaded at the deadline."""
    deadline = time.monotonic() + timeout
    left = ids & live_bpf_ids()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = ids & live_bpf_ids()
    return left


def wait_exit(pid, timeout=20):
    """Until pid is gone or a zombie (nothing of it runs any more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------ ansible

def write_local_inventory(path, hosts=("localhost",), hostvars=None):
    """A local-connection inventory (JSON is YAML) of host aliases of this machine."""
    inv = {"all": {"hosts": {}}}
    for h in hosts:
        v = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
        v.update((hostvars or {}).get(h, {}))
        inv["all"]["hosts"][h] = v
    with open(str(path), "w") as f:
        json.dump(inv, f)
    return str(path)


def ansible_env(report_dir=None, **extra):
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    for k in ("BIND_REPORT_DIR", "BIND_REPORT_FORMATS", "BIND_REPORT_BASELINE",
              "BIND_REPORT_TERMINAL", "AWX_ISOLATED_DATA_DIR", "ANSIBLE_INVENTORY"):
        env.pop(k, None)
    if report_dir is not None:
        env["BIND_REPORT_DIR"] = str(report_dir)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def playbook_cmd(inventory, extra_vars=None, playbook=PLAYBOOK, args=()):
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, playbook] + list(args)
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return cmd


def start_playbook(inventory, report_dir, extra_vars=None, playbook=PLAYBOOK, env=None,
                   args=(), preexec_fn=None):
    """ansible-playbook in the background (stdout+stderr together in .stdout).
    Its environment carries a tag of its own (proc.tag): the playbook launches
    the module with async, whose wrapper daemonizes, so find_tracer looks for
    the tag rather than for descendants."""
    tag = "BINDTRACE_HOSTILE_TAG_" + uuid.uuid4().hex
    proc = subprocess.Popen(playbook_cmd(inventory, extra_vars, playbook, args),
                            env=ansible_env(report_dir, **dict(env or {}, **{tag: "1"})), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=preexec_fn)
    proc.tag = tag
    return proc


def run_playbook(inventory, report_dir, extra_vars=None, playbook=PLAYBOOK, env=None, args=(),
                 timeout=600, preexec_fn=None):
    proc = start_playbook(inventory, report_dir, extra_vars, playbook, env, args, preexec_fn)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def finish(proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def read_json(path):
    with open(str(path), encoding="utf-8") as f:
        return json.load(f)


def report(report_dir):
    return report_json.load(os.path.join(str(report_dir), "report.json"))


def no_traceback(text):
    """Nothing that looks like a Python traceback or an unhandled module crash."""
    bad = ("Traceback (most recent call last)", "MODULE FAILURE", "internal error in trace_bind",
           "module_stderr", "Exception ignored")
    return [b for b in bad if b in text]


# ------------------------------------------------------------ CLI

def start_cli(*args):
    return subprocess.Popen(CLI + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env())


def stop_cli(proc, sig=signal.SIGINT, timeout=120):
    """Signal the CLI, then read to the end. Not communicate(): it reads the raw
    fds and would lose lines a readline() before already buffered (stderr is a
    line or two, so reading stdout first cannot block)."""
    proc.send_signal(sig)
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout)
    return proc.returncode, out, err


def which(name):
    path = shutil.which(name)
    assert path, "%s is not installed (.ci/run installs it)" % name
    return path
