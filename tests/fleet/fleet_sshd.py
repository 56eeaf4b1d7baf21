"""The sshd of each test host: keys, config, start inside the host's namespace,
stop by PID, and closing the controller's ControlPersist masters.

Why these settings:
- One ed25519 host key for every host, generated once per fleet, so the
  known_hosts file the harness writes has one line per address.
- `SetEnv HOME=<state>/home`: the login shell of root is bash, and bash run by
  sshd sources ~/.bashrc, which on these machines runs `pyenv init` (about
  85 ms of CPU per remote command, and it breaks interpreter discovery).
  sshd applies SetEnv after it sets HOME, so bash looks for the (absent)
  <state>/home/.bashrc instead; Ansible's remote_tmp lands there too.
- `StrictModes no`: the state directory may live under /tmp.
- `UsePAM no`, key-only root login, no DNS: nothing leaves the machine.
"""
import os
import socket
import subprocess
import time

import fleet_net

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
SSH = "/usr/bin/ssh"
UNSHARE = "/usr/bin/unshare"

CONFIG = """\
# bindtrace test fleet host {name} (generated; removed by `harness.py down`)
ListenAddress {addr}:22
AddressFamily inet
HostKey {state}/ssh_host_ed25519_key
PidFile {hostdir}/sshd.pid
AuthorizedKeysFile {state}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
PermitUserEnvironment no
{setenv}
MaxStartups 200
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
"""


# Runs inside the host's namespaces: $1 hostname, $2 sshd, $3 config, $4 log.
BOOT = """\
set -e
hostname "$1"
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || true
exec "$2" -f "$3" -E "$4"
"""


def make_keys(state):
    """Host key and client key, each generated once per state directory."""
    for name in ("ssh_host_ed25519_key", "id_ed25519"):
        path = os.path.join(state, name)
        if not os.path.exists(path):
            subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "bindtrace-fleet",
                            "-f", path], check=True)
    pub = open(os.path.join(state, "id_ed25519.pub")).read()
    _write(os.path.join(state, "authorized_keys"), pub, 0o600)
    os.makedirs(os.path.join(state, "home"), mode=0o700, exist_ok=True)
    # sshd refuses to start without its privilege separation directory.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)


def host_public_key(state):
    """`ssh-ed25519 AAAA...` of the shared host key (comment dropped)."""
    text = open(os.path.join(state, "ssh_host_ed25519_key.pub")).read().split()
    return " ".join(text[:2])


def write_config(state, hostdir, name, addr, own_home=True):
    """own_home=False keeps root's real HOME (and its .bashrc): only for
    measuring what the SetEnv saves (tests/bench/bench_fleet.py)."""
    path = os.path.join(hostdir, "sshd_config")
    setenv = "SetEnv HOME=%s/home" % state if own_home else "# SetEnv HOME: off (bench)"
    _write(path, CONFIG.format(name=name, addr=addr, state=state, hostdir=hostdir, setenv=setenv),
           0o600)
    return path


def start(ns, hostname, hostdir, addr, timeout=10.0):
    """Start sshd inside namespace `ns` with its own UTS namespace (hostname).

    sshd daemonizes; its PID comes from the PidFile. Returns (pid, start_time)
    once the port accepts connections.
    """
    from helpers.procs import start_time

    cfg = os.path.join(hostdir, "sshd_config")
    pidfile = os.path.join(hostdir, "sshd.pid")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    log = os.path.join(hostdir, "sshd.log")
    # `ip netns exec` also gives the process a mount namespace in which the
    # host's /etc/netns/<ns>/{hosts,resolv.conf,hostname} cover /etc's and a
    # fresh sysfs shows the namespace's own interfaces. That fresh /sys has
    # no tracefs (or bpffs) on it: mount them, as a booting host would.
    subprocess.run(
        [fleet_net.IP, "netns", "exec", ns, UNSHARE, "--uts", "--", "/bin/sh", "-c", BOOT,
         "sh", hostname, SSHD, cfg, log],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    pid = None
    while time.monotonic() < deadline:
        if pid is None:
            try:
                pid = int(open(pidfile).read().strip())
            except (OSError, ValueError):
                pid = None
        if pid is not None and _accepts(addr):
            return pid, start_time(pid)
        time.sleep(0.02)
    raise RuntimeError("sshd for %s did not come up on %s:22 within %ss; see %s"
                       % (ns, addr, timeout, log))


def _accepts(addr):
    try:
        with socket.create_connection((addr, 22), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def close_masters(control_dir, match=None):
    """Close the ssh ControlPersist masters whose sockets live in control_dir
    (all of them, or those whose file name `match` accepts). A master keeps a
    session open on its host even after that host's sshd is killed."""
    if not os.path.isdir(control_dir):
        return
    paths = [os.path.join(control_dir, n) for n in sorted(os.listdir(control_dir))
             if match is None or match(n)]
    procs = [subprocess.Popen([SSH, "-o", "ControlPath=" + p, "-O", "exit", "fleet-master"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for p in paths]
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)


def _write(path, text, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
