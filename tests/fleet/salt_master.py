"""A real salt-master and salt-minion on loopback for the Salt tests (Salt from
PyPI, scripts/salt-venv.sh): throw-away config and state dirs, free ports,
both daemons started in their own session and stopped by their PID (other
people run other things on this machine: nothing is found or killed by name).

The minion's Python sees an empty private site dir (PYTHONPATH) that stands
for its site-packages: the README's install route puts the project there.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/
from helpers.net import free_port  # noqa: E402

SALT_VENV = os.environ.get("BINDTRACE_SALT_VENV", "/opt/bindtrace-salt")
SALT_BIN = os.path.join(SALT_VENV, "bin")


class SaltPair(object):
    """salt-master + salt-minion (id bt-<random>) under one temporary dir."""

    def __init__(self):
        # short: Salt's unix sockets live under sock_dir (108-byte path limit)
        self.dir = tempfile.mkdtemp(prefix="bts-")
        os.chmod(self.dir, 0o755)
        self.id = "bt-" + uuid.uuid4().hex[:8]
        self.file_root = os.path.join(self.dir, "srv", "salt")
        self.pillar_root = os.path.join(self.dir, "srv", "pillar")
        self.site = os.path.join(self.dir, "minion-site")
        for d in (self.file_root, self.pillar_root, self.site):
            os.makedirs(d)
        self.publish_port, self.ret_port = free_port(), free_port()
        self.master_cfg = os.path.join(self.dir, "master.d")
        self.minion_cfg = os.path.join(self.dir, "minion.d")
        self._write_configs()
        self.procs = {}

    def _common(self, role):
        base = os.path.join(self.dir, role)
        return ["root_dir: %s" % base, "pki_dir: %s/pki" % base, "cachedir: %s/cache" % base,
                "sock_dir: %s/s" % base, "pidfile: %s/%s.pid" % (base, role),
                "log_file: %s/%s.log" % (self.dir, role), "log_level_logfile: info", "user: root",
                "publish_port: %d" % self.publish_port]

    def _write_configs(self):
        master = self._common("master") + [
            "interface: 127.0.0.1", "ret_port: %d" % self.ret_port, "auto_accept: True",
            "worker_threads: 2", "file_roots: {base: [%s]}" % self.file_root,
            "pillar_roots: {base: [%s]}" % self.pillar_root, "keep_jobs_seconds: 86400"]
        minion = self._common("minion") + [
            "id: %s" % self.id, "master: 127.0.0.1", "master_port: %d" % self.ret_port,
            "acceptance_wait_time: 1", "random_reauth_delay: 0", "loop_interval: 1"]
        self.minion_cachedir = os.path.join(self.dir, "minion", "cache")
        self.master_cachedir = os.path.join(self.dir, "master", "cache")
        for cfg, lines, name in ((self.master_cfg, master, "master"),
                                 (self.minion_cfg, minion, "minion")):
            os.makedirs(cfg)
            with open(os.path.join(cfg, name), "w") as f:
                f.write("\n".join(lines) + "\n")

    def start(self, timeout=180):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        self._spawn("master", [os.path.join(SALT_BIN, "salt-master"), "-c", self.master_cfg,
                               "-l", "quiet"], env)
        minion_env = dict(env, PYTHONPATH=self.site)
        self._spawn("minion", [os.path.join(SALT_BIN, "salt-minion"), "-c", self.minion_cfg,
                               "-l", "quiet"], minion_env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for role, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError("salt-%s exited (%s): see %s/%s.log"
                                         % (role, proc.returncode, self.dir, role))
            res = self.salt("test.ping", timeout=5, check=False)
            try:
                answer = json.loads(res.stdout)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get(self.id) is True:
                return self
            time.sleep(1)
        raise AssertionError("the minion never answered test.ping: see %s/*.log" % self.dir)

    def _spawn(self, role, cmd, env):
        log = open(os.path.join(self.dir, "%s.out" % role), "w")
        self.procs[role] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def stop(self):
        """SIGTERM to each daemon we started, by PID; its own session's leftovers
        (Salt's worker processes) are then killed by that session's group id."""
        for role in ("minion", "master"):
            proc = self.procs.pop(role, None)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
            try:
                os.killpg(proc.pid, signal.SIGKILL)   # the group is this daemon's own session
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, tool, args, cfg, timeout, check):
        cmd = [os.path.join(SALT_BIN, tool), "-c", cfg] + list(args)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(cmd), res.returncode, res.stdout, res.stderr))
        return res

    def salt(self, function, *args, timeout=60, out="json", extra=(), check=True):
        """salt <this minion> FUNCTION ARGS --out=json [-t T] -> CompletedProcess."""
        argv = list(extra) + ["--out=%s" % out, "-t", str(timeout), self.id, function] + list(args)
        return self._run("salt", argv, self.master_cfg, timeout + 120, check)

    def salt_json(self, function, *args, **kw):
        """The minion's return of one call (salt --out=json --static)."""
        res = self.salt(function, *args, extra=("--static",), **kw)
        data = json.loads(res.stdout)
        assert list(data) == [self.id], data
        return data[self.id]

    def run(self, function, *args, timeout=120, check=True):
        """salt-run FUNCTION ARGS --out=json -> CompletedProcess."""
        return self._run("salt-run", ["--out=json", function] + list(args), self.master_cfg,
                         timeout, check)

    def run_popen(self, path, function, *args):
        """salt-run FUNCTION ARGS in the background, its output (unbuffered) to path."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        with open(path, "w") as out:
            return subprocess.Popen([os.path.join(SALT_BIN, "salt-run"), "-c", self.master_cfg,
                                     function] + list(args), env=env, stdout=out,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    @staticmethod
    def stop_popen(proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)

    def put(self, relpath, text_or_src, root=None):
        """Write a file under the master's file_roots (or pillar_roots)."""
        path = os.path.join(root or self.file_root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.isfile(str(text_or_src)):
            shutil.copy(text_or_src, path)
        else:
            with open(path, "w") as f:
                f.write(text_or_src)
        return path

    def pillar(self, relpath, text):
        return self.put(relpath, text, root=self.pillar_root)


SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "reports", "__pycache__",
                              "*.egg-info", ".pytest_cache", "*.pyc")


def build_wheel(root, dest):
    """The project's wheel, built (as `pip wheel` does) from a copy of the checkout
    so that no build/ dir is left in it -> the wheel's path."""
    src = os.path.join(dest, "src")
    shutil.copytree(root, src, ignore=SKIP)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    subprocess.run([os.path.join(SALT_BIN, "python"), "-m", "pip", "wheel", "-q", "--no-deps",
                    src, "-w", dest], check=True, env=env, timeout=600,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    shutil.rmtree(src)
    return os.path.join(dest, [n for n in os.listdir(dest) if n.endswith(".whl")][0])


class NetNS(object):
    """A named network namespace with lo up, for a workload whose listeners are
    the only ones a trace filtered on it (netns=INODE) can see."""

    def __init__(self):
        self.name = "bt-salt-" + uuid.uuid4().hex[:8]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"],
                       check=True)
        self.inode = os.stat("/run/netns/%s" % self.name).st_ino
        self.prefix = ("ip", "netns", "exec", self.name)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)
