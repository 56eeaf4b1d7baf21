#!/usr/bin/env python3
"""bindtrace's local test fleet: N SSH hosts on this machine, one network
namespace each.

    python tests/fleet/harness.py up N [--state DIR] [--prefix P] [--subnet 10.231.0]
    python tests/fleet/harness.py down [--state DIR]
    python tests/fleet/harness.py inventory [--state DIR]   # print the inventory path
    python tests/fleet/harness.py bind HOST [ADDR:]PORT... [--state DIR]  # workload, detached
    python tests/fleet/harness.py unbind [HOST] [--state DIR]

Topology: a bridge `<prefix>br0` (default `btfleetbr0`) in the root namespace
holds <subnet>.1/24; host i is namespace `<prefix>-h<i>` with `eth0` at
<subnet>.(10+i), joined to the bridge by the veth `<prefix>v<i>`. Inside: no
default route, IPv6 off, its own /etc/netns/<ns>/{hosts,resolv.conf,hostname},
its own hostname (`unshare --uts`) and its own sshd listening only on its
address (see fleet_sshd.py for the config). Traffic goes only between the
root namespace and the hosts.

Auditing one network namespace: the hosts share this machine's kernel, so an
eBPF tracer started on any host sees every bind on the machine. Run the module
with `netns: host` (fleetaudit.bindtrace.trace_bind keeps only binds made in
the tracer's own network namespace): each fleet host then reports exactly the
binds made inside its namespace. This is the way to audit one network
namespace of any machine: run the tracer inside it with `netns: host`.

Everything `up` creates is recorded in <state>/fleet.json *before* it is
created, so `down` (idempotent) removes it also after a failed or partial run.
`down` stops only the sshd processes the harness started (PID + start time),
their children, and any process left inside the fleet's own namespaces; it
closes the controller's ssh ControlPersist masters first.
"""
import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (HERE, os.path.dirname(HERE)):   # this folder, and tests/ (the shared helpers)
    if _path not in sys.path:
        sys.path.insert(0, _path)

import fleet_net  # noqa: E402
from helpers import procs as fleet_procs  # noqa: E402
import fleet_sshd  # noqa: E402

DEFAULT_STATE = "/tmp/bindtrace-fleet"
DEFAULT_PREFIX = "btfleet"
DEFAULT_SUBNET = "10.231.0"
DEFAULT_GROUPS = ("web", "db")
MAX_HOSTS = 200
PYTHON = "/usr/bin/python3"


class Fleet(object):
    """A fleet described by its state directory (fleet.json)."""

    def __init__(self, state=DEFAULT_STATE):
        self.state = os.path.abspath(state)
        self.data = self._load()

    # -- state -------------------------------------------------------------
    @property
    def state_file(self):
        return os.path.join(self.state, "fleet.json")

    def _load(self):
        try:
            with open(self.state_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _save(self):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    @property
    def hosts(self):
        return self.data["hosts"] if self.data else []

    def host(self, name):
        for h in self.hosts:
            if name in (h["name"], h["short"]):
                return h
        raise KeyError(name)

    @property
    def inventory_path(self):
        return os.path.join(self.state, "inventory.yml")

    @property
    def known_hosts(self):
        return os.path.join(self.state, "known_hosts")

    @property
    def control_dir(self):
        return os.path.join(self.state, "cp")

    @property
    def private_key(self):
        return os.path.join(self.state, "id_ed25519")

    # -- up ----------------------------------------------------------------
    def up(self, n, prefix=DEFAULT_PREFIX, subnet=DEFAULT_SUBNET, groups=DEFAULT_GROUPS,
           own_home=True):
        if not 1 <= n <= MAX_HOSTS:
            raise ValueError("fleet size must be 1..%d, got %d" % (MAX_HOSTS, n))
        if os.geteuid() != 0:
            raise RuntimeError("the test fleet needs root (network namespaces, sshd)")
        if self.data:
            self.down()  # a previous (maybe failed) fleet in this state dir
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        os.chmod(self.state, 0o700)
        os.makedirs(self.control_dir, mode=0o700, exist_ok=True)
        bridge = prefix + "br0"
        hosts = []
        for i in range(1, n + 1):
            hosts.append({
                "index": i, "short": "h%d" % i, "name": "%s-h%d" % (prefix, i),
                "ns": "%s-h%d" % (prefix, i), "veth": "%sv%d" % (prefix, i),
                "addr": "%s.%d" % (subnet, 10 + i), "group": groups[(i - 1) % len(groups)],
                "dir": os.path.join(self.state, "h%d" % i), "pid": None, "started": None,
            })
        # Refuse names that exist already (another fleet with this prefix):
        # down() must delete only what this `up` created.
        taken = [x for x in [bridge] + [h["veth"] for h in hosts] if fleet_net.link_exists(x)]
        taken += [h["ns"] for h in hosts if fleet_net.netns_exists(h["ns"])]
        if taken:
            raise RuntimeError("%s exist already: another fleet with prefix %r? tear it down "
                               "with `harness.py down --state ITS_DIR` or pick another --prefix"
                               % (", ".join(taken), prefix))
        # Record intent first: down() cleans whatever of this got created.
        self.data = {"prefix": prefix, "subnet": subnet, "bridge": bridge,
                     "bridge_addr": subnet + ".1", "hosts": hosts, "groups": list(groups)}
        self._save()
        try:
            fleet_sshd.make_keys(self.state)
            fleet_net.add_bridge(bridge, subnet + ".1/24")
            hosts_lines = ["%s %s %s" % (h["addr"], h["name"], h["short"]) for h in hosts]
            for h in hosts:
                os.makedirs(h["dir"], mode=0o700, exist_ok=True)
                fleet_net.write_etc(h["ns"], h["name"], hosts_lines)
                fleet_net.add_host(h["ns"], h["veth"], h["addr"] + "/24")
                fleet_net.attach(h["veth"], bridge)
                fleet_sshd.write_config(self.state, h["dir"], h["name"], h["addr"], own_home)
            for h in hosts:
                self.start_sshd(h["name"])
            self._write_known_hosts()
            self._write_inventory()
        except BaseException:
            self.down()
            raise
        return self

    def start_sshd(self, name):
        h = self.host(name)
        pid, started = fleet_sshd.start(h["ns"], h["name"], h["dir"], h["addr"])
        with self._locked():
            h = self.host(name)
            h["pid"], h["started"] = pid, started
        return pid

    def kill_sshd(self, name):
        """Stop one host's sshd (and its sessions) the hard way, as a crashed
        host: closes the controller's master to it first, which would
        otherwise keep a working session open (see the test-fleet notes)."""
        h = self.host(name)
        fleet_sshd.close_masters(self.control_dir, lambda f: f.startswith(h["addr"] + "-"))
        if h["pid"]:
            fleet_procs.stop_tree(h["pid"], h["started"])
        with self._locked():
            h = self.host(name)
            h["pid"], h["started"] = None, None

    def _write_known_hosts(self):
        key = fleet_sshd.host_public_key(self.state)
        lines = ["%s %s\n" % (h["addr"], key) for h in self.hosts]
        with open(self.known_hosts, "w") as f:
            f.writelines(lines)

    def _write_inventory(self):
        """YAML inventory (JSON is YAML; no PyYAML needed to write it)."""
        ssh_args = ("-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null "
                    "-o IdentitiesOnly=yes -o ConnectTimeout=5" % self.known_hosts)
        allvars = {
            "ansible_user": "root",
            "ansible_python_interpreter": PYTHON,
            "ansible_ssh_private_key_file": self.private_key,
            "ansible_ssh_common_args": ssh_args,
            # ssh is pointed at the fleet's own pre-filled known_hosts; paramiko
            # reads only ~/.ssh/known_hosts, which must stay untouched, so key
            # checking is off for this throw-away fleet (nothing is recorded).
            "ansible_host_key_checking": False,
            "ansible_ssh_pipelining": True,
            "ansible_pipelining": True,
            "ansible_control_path_dir": self.control_dir,
            # one master socket per address, so one host's can be closed alone
            "ansible_control_path": os.path.join(self.control_dir, "%%h-%%r"),
            "ansible_ssh_timeout": 10,
            # async jobs (the playbook's launch + async_status): one absolute
            # directory, as `~` differs between the sshd's SetEnv HOME above
            # and become's HOME; removed with the state directory
            "ansible_async_dir": os.path.join(self.state, "async"),
            "fleet_state": self.state,
        }
        groups = {}
        for g in self.data["groups"]:
            groups[g] = {"hosts": {}}
        for h in self.hosts:
            groups[h["group"]]["hosts"][h["name"]] = {
                "ansible_host": h["addr"], "fleet_netns": h["ns"], "fleet_short": h["short"]}
        inv = {"all": {"vars": allvars, "children": groups}}
        with open(self.inventory_path, "w") as f:
            f.write("# bindtrace test fleet inventory (generated by tests/fleet/harness.py)\n")
            json.dump(inv, f, indent=2, sort_keys=True)
            f.write("\n")

    def write_group_vars(self, group, variables):
        """<state>/group_vars/<group>.yml next to the inventory, e.g. each
        group's `bindtrace_allow` policy (JSON is YAML)."""
        d = os.path.join(self.state, "group_vars")
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(os.path.join(d, group + ".yml"), "w") as f:
            json.dump(variables, f, indent=2, sort_keys=True)
            f.write("\n")

    def bind(self, name, binds, interval=0.2):
        """Start a detached bind workload (fleet_workload.Binder) inside host
        `name` that runs until `unbind`/`down`; returns its PID."""
        from fleet_workload import Binder

        h = self.host(name)
        b = Binder(self, name, binds, interval, log=os.path.join(h["dir"], "workload.log")).start()
        with self._locked():
            self.data.setdefault("workloads", []).append(
                {"host": h["name"], "pid": b.pid, "started": fleet_procs.start_time(b.pid),
                 "binds": [list(x) for x in b.binds]})
        return b.pid

    def unbind(self, name=None):
        """Stop the detached workloads (of one host, or all)."""
        if not self.data:
            return
        with self._locked():
            keep, stop = [], []
            for w in self.data.get("workloads", []):
                if name is None or name in (w["host"], self.host(w["host"])["short"]):
                    stop.append((w["pid"], w["started"]))
                else:
                    keep.append(w)
            self.data["workloads"] = keep
        fleet_procs.stop(stop)

    @contextlib.contextmanager
    def _locked(self):
        """Read-modify-write of fleet.json under a lock: `bind`/`unbind` run
        concurrently (one per host, e.g. from Ansible forks)."""
        with open(os.path.join(self.state, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.data = self._load()
            yield
            self._save()

    # -- down --------------------------------------------------------------
    def down(self):
        """Remove everything this state dir records; safe to repeat."""
        if not self.data:
            self._remove_state()
            return
        try:
            fleet_sshd.close_masters(self.control_dir)
        except Exception as e:  # keep tearing down whatever happens
            print("fleet down: closing ssh masters: %s" % e, file=sys.stderr)
        # The sshd trees, plus whatever still runs inside our own namespaces:
        # it was started there through this fleet (sessions orphaned by a
        # killed sshd, test workloads). One stop() for all: one wait.
        victims = [(w["pid"], w["started"]) for w in self.data.get("workloads", [])]
        for h in self.hosts:
            if h.get("pid"):
                victims.extend(fleet_procs.tree(h["pid"], h["started"]))
            for pid in fleet_net.netns_pids(h["ns"]):
                st = fleet_procs.start_time(pid)
                if st is not None:
                    victims.append((pid, st))
        fleet_procs.stop(sorted(set(victims)))
        for h in self.hosts:
            fleet_net.delete_host(h["ns"], h["veth"])
        fleet_net.delete_bridge(self.data["bridge"])
        self.data = None
        self._remove_state()

    def _remove_state(self):
        if os.path.isdir(self.state):
            shutil.rmtree(self.state, ignore_errors=True)

    # -- helpers for tests -------------------------------------------------
    def exec_argv(self, name, argv):
        """argv that runs `argv` inside host `name`'s network namespace."""
        return [fleet_net.IP, "netns", "exec", self.host(name)["ns"]] + list(argv)

    def run_in(self, name, argv, **kw):
        """Run a command inside host `name`'s namespace (subprocess.run)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("universal_newlines", True)
        return subprocess.run(self.exec_argv(name, argv), **kw)

    def netns_inode(self, name):
        return os.stat("/run/netns/%s" % self.host(name)["ns"]).st_ino


def main(argv=None):
    p = argparse.ArgumentParser(description="bindtrace local test fleet")
    p.add_argument("--state", default=os.environ.get("BTFLEET_STATE", DEFAULT_STATE),
                   help="state directory (default %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="create N hosts (tears down an earlier fleet in --state)")
    up.add_argument("n", type=int)
    up.add_argument("--prefix", default=DEFAULT_PREFIX)
    up.add_argument("--subnet", default=DEFAULT_SUBNET, help="first three octets of the /24")
    up.add_argument("--groups", default=",".join(DEFAULT_GROUPS),
                    help="comma-separated groups, hosts assigned round-robin")
    for name in ("down", "inventory", "status"):
        sub.add_parser(name)
    bind = sub.add_parser("bind", help="start a TCP bind workload inside a host (until unbind/down)")
    bind.add_argument("host")
    bind.add_argument("binds", nargs="+", metavar="[ADDR:]PORT")
    unbind = sub.add_parser("unbind", help="stop the bind workloads (of one host, or all)")
    unbind.add_argument("host", nargs="?")
    # --state is also accepted after the sub-command
    for sp in sub.choices.values():
        sp.add_argument("--state", dest="state_sub", default=None)
    args = p.parse_args(argv)
    fleet = Fleet(args.state_sub or args.state)
    if args.cmd == "up":
        fleet.up(args.n, args.prefix, args.subnet, tuple(args.groups.split(",")))
        print(fleet.inventory_path)
    elif args.cmd == "down":
        fleet.down()
    elif args.cmd == "bind":
        binds = [b.rsplit(":", 1) if ":" in b else ("0.0.0.0", b) for b in args.binds]
        print(fleet.bind(args.host, [(a, int(p)) for a, p in binds]))
    elif args.cmd == "unbind":
        fleet.unbind(args.host)
    elif args.cmd == "inventory":
        if not fleet.data:
            sys.exit("no fleet in %s" % fleet.state)
        print(fleet.inventory_path)
    else:
        print(json.dumps(fleet.data, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
