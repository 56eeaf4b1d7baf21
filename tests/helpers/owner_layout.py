"""A systemd-like layout on this machine, where systemd cannot run (no systemd
as pid 1 here): a private cgroup v2 subtree shaped like systemd's
(<test root>/system.slice/NAME.service, <test root>/init.scope for the
"service manager"), Debian's nginx started into it with the test's own config
and pid file, and a socket-activation fd passed the way systemd passes it
(LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES, the socket as fd 3). Everything is
stopped by the PIDs the test started and the cgroups removed afterwards."""
import json
import os
import signal
import subprocess
import tempfile
import time

from bindtrace import cgroupfs


class CgroupTree(object):
    def __init__(self, tag):
        root = cgroupfs.v2_root()
        if root is None:
            raise RuntimeError("no cgroup v2 hierarchy mounted")
        self.base = os.path.join(root, "bindtrace-test-%s-%d" % (tag, os.getpid()))
        self.root = root
        self.made = []

    def make(self, rel):
        """mkdir -p base/rel; -> (absolute path, path as /proc/PID/cgroup shows it)."""
        path = self.base
        for part in [""] + rel.split("/"):
            path = os.path.join(path, part) if part else path
            if not os.path.isdir(path):
                os.mkdir(path)
                self.made.append(path)
        return path, "/" + os.path.relpath(path, self.root)

    def remove(self):
        for path in reversed(self.made):
            for _ in range(50):   # a just-killed process leaves its cgroup a moment later
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)


def move_self_to(path):
    """preexec_fn: the child enters the cgroup before exec, so everything it
    creates (sockets included) belongs to that cgroup."""
    def enter():
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    return enter


NGINX_CONF = """
daemon on;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{ listen 127.0.0.1:{p4}; listen [::1]:{p6}; return 204; }}
}}
"""


class Nginx(object):
    """/usr/sbin/nginx (Debian package) on two loopback ports, in cgroup `path`."""

    def __init__(self, path, p4, p6):
        self.dir = tempfile.mkdtemp(prefix="bt-nginx-")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, p4=p4, p6=p6))
        subprocess.run(["/usr/sbin/nginx", "-c", conf, "-p", self.dir],
                       preexec_fn=move_self_to(path), check=True, timeout=30)
        self.pid = None
        for _ in range(100):
            try:
                with open(os.path.join(self.dir, "nginx.pid")) as f:
                    self.pid = int(f.read())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        assert self.pid, "nginx wrote no pid file"

    def stop(self):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)   # the master stops its workers
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not os.path.exists("/proc/%d" % self.pid):
                break
            time.sleep(0.05)
        self.pid = None


# The "service manager": creates the listening socket in its own cgroup
# (init.scope, as systemd's), and, when asked, starts the activated service as
# systemd does: fork, enter the service's cgroup, socket as fd 3, LISTEN_FDS=1,
# LISTEN_PID=<the service's pid>, LISTEN_FDNAMES=<name>, exec.
MANAGER = r"""
import json, os, socket, sys
port, service_cgroup, fdname = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
child = None
if service_cgroup != "-":
    child = os.fork()
    if child == 0:
        with open(os.path.join(service_cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        if s.fileno() != 3:
            os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)   # as systemd: fd 3 survives exec
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES=fdname)
        os.execve("/usr/bin/python3", ["python3", "-c", "import sys; sys.stdin.read()"], env)
print(json.dumps({"pid": os.getpid(), "service": child, "inode": os.fstat(s.fileno()).st_ino}),
      flush=True)
sys.stdin.read()
if child:
    os.kill(child, 15); os.waitpid(child, 0)
"""


class Manager(object):
    def __init__(self, scope_path, port, service_path=None, fdname=""):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-c", MANAGER, str(port), service_path or "-", fdname],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True,
            preexec_fn=move_self_to(scope_path))
        info = json.loads(self.proc.stdout.readline())
        self.pid, self.service, self.inode = info["pid"], info["service"], info["inode"]
        if self.service:
            for _ in range(100):   # until the service has exec'd with its environment
                try:
                    with open("/proc/%d/environ" % self.service, "rb") as f:
                        if b"LISTEN_PID=%d" % self.service in f.read():
                            break
                except OSError:
                    pass
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)

