"""Helpers for the trace_bind module tests: run the real `ansible-playbook`,
read its results (callback_plugins/results_json.py), find the tracer a run loaded (by a
tag in its environment), and check that no BPF program of ours stays loaded."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
from controller import DEFAULT_VENV, VENV_BIN  # noqa: E402  (.venv, or the matrix row's controller)
PYTHON = "/usr/bin/python3"
# the kernel keeps 15 characters of a program name: bind_exit_compat -> bind_exit_compa
# (one program per hook rung and build: tracepoint, kretprobe, fexit on inet_bind/inet6_bind)
PROG_NAMES = ("bind_enter", "bind_exit", "bind_exit_compa", "bind_kret", "bind_kret_compa",
              "listen_exit", "listen_exit_com", "listen_kret", "listen_kret_com", "listen_fexit",
              "listen_fexit_co",
              "bind_fexit4", "bind_fexit4_com", "bind_fexit6", "bind_fexit6_com")

sys.path.insert(0, os.path.dirname(HERE))   # tests/: the shared helpers
from helpers.kernel import bpf_ids_of  # noqa: E402,F401  (one reader of /proc/<pid>/fdinfo)
from helpers.net import free_port  # noqa: E402,F401


def ansible_env(tag, **extra):
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_STDOUT_CALLBACK"] = "results_json"      # tests/fleet/callback_plugins
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.path.join(HERE, "callback_plugins")
    env["ANSIBLE_CALLBACKS_ENABLED"] = "results_json"   # not the fleet report: its own tests
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_DEPRECATION_WARNINGS"] = "0"
    env["BINDTRACE_TEST_TAG"] = tag                # inherited by the module process (local)
    env.pop("ANSIBLE_INVENTORY", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Play(object):
    """One `ansible-playbook` run in the background over a playbook built from tasks."""

    def __init__(self, tasks, hosts="localhost", inventory="localhost,", connection="local",
                 extra_args=(), gather_facts=False, interpreter=PYTHON, **env):
        self.tag = uuid.uuid4().hex
        self.dir = tempfile.mkdtemp(prefix="bt-module-")
        self.playbook = os.path.join(self.dir, "play.yml")
        with open(self.playbook, "w") as f:
            json.dump([{"hosts": hosts, "gather_facts": gather_facts, "tasks": tasks}], f)
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, self.playbook]
        if interpreter:
            cmd += ["-e", "ansible_python_interpreter=%s" % interpreter]
        if connection:
            cmd += ["-c", connection]
        cmd += list(extra_args)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=ansible_env(self.tag, **env),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True)
        self.seen_ids = set()
        self.out = self.err = None

    def wait_attached(self, timeout=120, candidates=None):
        """Block until this run's tracer has attached its programs; -> its pid."""
        return wait_attached(self.tag, self.proc, self.seen_ids, timeout, candidates)

    def wait(self, timeout=600):
        self.out, self.err = self.proc.communicate(timeout=timeout)
        return self

    def results(self):
        """{task name: result dict of the one host} from the json callback."""
        data = json.loads(self.out[self.out.index("{"):])
        out = {}
        for play in data["plays"]:
            for task in play["tasks"]:
                for host, res in task["hosts"].items():
                    out[task["task"]["name"]] = res
        return out

    def results_by_host(self):
        """{task name: {host: result}}."""
        data = json.loads(self.out[self.out.index("{"):])
        return {task["task"]["name"]: task["hosts"]
                for play in data["plays"] for task in play["tasks"]}

    def stats(self):
        return json.loads(self.out[self.out.index("{"):])["stats"]


def run(tasks, timeout=600, **kw):
    return Play(tasks, **kw).wait(timeout)


def trace_task(name="trace", register=None, **args):
    task = {"name": name, "fleetaudit.bindtrace.trace_bind": args}
    if register:
        task["register"] = register
    return task


def wait_attached(tag, proc, seen_ids, timeout=120, candidates=None):
    """Wait until a process tagged `tag` (or one listed by candidates()) holds a
    BPF link (its program is attached; the kernel side may have one or two
    programs); collect every BPF id it holds into seen_ids; -> its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in (candidates() if candidates is not None else tagged_pids(tag)):
            ids = bpf_ids_of(pid)
            if any(kind == "link_id" for kind, _ in ids):
                time.sleep(0.2)   # events mode opens its ring buffer right after attach
                seen_ids |= ids | bpf_ids_of(pid)
                return pid
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError("ended before the tracer attached:\n%s\n%s"
                                 % (out[-3000:], err[-3000:]))
        time.sleep(0.05)
    raise AssertionError("tracer tagged %s never attached" % tag)


def pids_in_netns(inode):
    """Processes living in the network namespace with this inode."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat("/proc/%s/ns/net" % d).st_ino == inode:
                    out.append(int(d))
            except OSError:
                continue
    return out


def tagged_pids(tag):
    needle = ("BINDTRACE_TEST_TAG=%s" % tag).encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(d))
        except OSError:
            continue
    return pids


def loaded_ids():
    """Every prog/map/link id loaded in the kernel now, and the ids of our programs."""
    ids, ours = set(), set()
    for kind, key in (("prog", "prog_id"), ("map", "map_id"), ("link", "link_id")):
        out = subprocess.run(["bpftool", "-j", kind, "show"], stdout=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout
        for item in json.loads(out or "[]"):
            ids.add((key, item["id"]))
            if kind == "prog" and item.get("name") in PROG_NAMES:
                ours.add((key, item["id"]))
    return ids, ours


def held_ids():
    held = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            held |= bpf_ids_of(int(d))
    return held


def assert_nothing_left(play=None):
    """No BPF object this run loaded is still in the kernel, and no bind_enter /
    bind_exit program is loaded without a live process holding it (tests of
    other engineers may run tracers at the same time: those are held)."""
    deadline = time.monotonic() + 10
    while True:
        ids, ours = loaded_ids()
        leaked = (play.seen_ids & ids) if play is not None else set()
        orphans = ours - held_ids()
        if not leaked and not orphans:
            return
        if time.monotonic() > deadline:   # the kernel frees objects asynchronously
            raise AssertionError("left loaded: %s, orphan programs: %s" % (leaked, orphans))
        time.sleep(0.2)


class Workload(object):
    """A Python child that runs CODE (with argv), prints a JSON line when done,
    then holds its sockets until stopped. Attributes: pid, info (the JSON)."""

    def __init__(self, code, *args, prefix=()):
        self.proc = subprocess.Popen(list(prefix) + [PYTHON, "-c", code] + [str(a) for a in args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     universal_newlines=True)
        line = self.proc.stdout.readline()
        assert line, "workload failed"
        self.info = json.loads(line)
        self.pid = self.info["pid"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)


HOLD = "\nprint(json.dumps(out), flush=True)\nsys.stdin.read()\n"

# binds: TCP 127.0.0.1:P1 (listens), UDP [ADDR]:P2 (default ::1), then TCP
# 127.0.0.1:P1 again (EADDRINUSE)
EXACT = r"""
import errno, json, os, socket, sys
p1, p2 = int(sys.argv[1]), int(sys.argv[2])
uaddr = sys.argv[3] if len(sys.argv) > 3 else "::1"
t = socket.socket(); t.bind(("127.0.0.1", p1)); t.listen(4)
u = socket.socket(socket.AF_INET6 if ":" in uaddr else socket.AF_INET, socket.SOCK_DGRAM)
u.bind((uaddr, p2))
f = socket.socket()
try:
    f.bind(("127.0.0.1", p1)); err = None
except OSError as e:
    err = errno.errorcode[e.errno]
out = {"pid": os.getpid(), "ppid": os.getppid(), "err": err,
       "inodes": [os.fstat(t.fileno()).st_ino, os.fstat(u.fileno()).st_ino],
       "netns": os.stat("/proc/self/ns/net").st_ino, "mntns": os.stat("/proc/self/ns/mnt").st_ino,
       "exe": os.readlink("/proc/self/exe")}
""" + HOLD

# N x (socket, SO_REUSEADDR, bind to one fixed port, close)
LOOP = r"""
import json, os, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.close()
out = {"pid": os.getpid()}
""" + HOLD

# one TCP listener on 127.0.0.1:P, held
LISTEN = r"""
import json, os, socket, sys
t = socket.socket(); t.bind(("127.0.0.1", int(sys.argv[1]))); t.listen(4)
out = {"pid": os.getpid(), "inode": os.fstat(t.fileno()).st_ino}
""" + HOLD


def trace_bind_cli(tag, *args):
    """The trace-bind CLI (JSON lines), tagged like a play so it can be awaited."""
    env = dict(os.environ, BINDTRACE_TEST_TAG=tag)
    # the project's CLI, installed in .venv whichever controller the test drives
    return subprocess.Popen([os.path.join(DEFAULT_VENV, "bin", "trace-bind"), "-o", "json"] + list(args),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)

