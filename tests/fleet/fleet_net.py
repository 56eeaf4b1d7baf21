"""Network plumbing of the test fleet: one bridge in the root namespace and,
per host, a network namespace joined to it by a veth pair.

Every function here is idempotent in the direction it works: creating what
exists fails loudly (the caller tears down first), deleting what is gone is
a no-op, so teardown also works after a partial `up`.
"""
import os
import shutil
import subprocess

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
NETNS_ETC = "/etc/netns"


def ip(*args, check=True):
    """Run `ip ARGS`; raise with ip's own message on failure when check."""
    proc = subprocess.run([IP] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if check and proc.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), proc.stderr.strip()))
    return proc


def link_exists(name):
    return os.path.exists("/sys/class/net/%s" % name)


def netns_exists(name):
    return os.path.exists("/run/netns/%s" % name)


def add_bridge(bridge, addr_cidr):
    ip("link", "add", bridge, "type", "bridge")
    ip("addr", "add", addr_cidr, "dev", bridge)
    ip("link", "set", bridge, "up")


def add_host(ns, veth, addr_cidr):
    """A namespace with `eth0` (veth peer of `veth`, enslaved to the bridge by
    the caller), loopback up, IPv6 off and no default route: the host can
    reach only the bridge and the other hosts."""
    ip("netns", "add", ns)
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    # IPv6 off before eth0 comes up, so no link-local address is ever assigned.
    ip("netns", "exec", ns, "/usr/sbin/sysctl", "-q", "-w",
       "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
       "net.ipv6.conf.eth0.disable_ipv6=1")
    ip("-n", ns, "addr", "add", addr_cidr, "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")


def attach(veth, bridge):
    ip("link", "set", veth, "master", bridge, "up")


def write_etc(ns, hostname, hosts_lines):
    """Per-namespace /etc files that `ip netns exec` bind-mounts over /etc:
    name lookups inside a host never leave the machine."""
    d = os.path.join(NETNS_ETC, ns)
    os.makedirs(d, exist_ok=True)
    files = {
        "hosts": "127.0.0.1 localhost\n" + "".join(l + "\n" for l in hosts_lines),
        # Nothing listens on 127.0.0.1:53 inside the namespace: lookups fail fast, locally.
        "resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        "hostname": hostname + "\n",
    }
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)


def delete_host(ns, veth):
    if link_exists(veth):
        ip("link", "del", veth, check=False)
    if netns_exists(ns):
        ip("netns", "del", ns, check=False)
    shutil.rmtree(os.path.join(NETNS_ETC, ns), ignore_errors=True)
    try:
        os.rmdir(NETNS_ETC)  # only when empty: other namespaces may have files there
    except OSError:
        pass


def delete_bridge(bridge):
    if link_exists(bridge):
        ip("link", "del", bridge, check=False)


def netns_pids(ns):
    """PIDs of processes whose network namespace is `ns`."""
    if not netns_exists(ns):
        return []
    out = ip("netns", "pids", ns, check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]
