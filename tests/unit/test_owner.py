"""Owner identity on real processes: command line redaction (secrets never
reach the facts by default), bounding and escaping, exe deleted / replaced,
package (dpkg) or none, unit names from cgroup paths, .socket unit files."""
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from bindtrace import owner, units
from bindtrace.listeners import take
from bindtrace.packages import PackageIndex

HOLD = ("import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); "
        "print(s.getsockname()[1], flush=True); sys.stdin.read()")


@pytest.mark.parametrize("args,want", [
    (["app", "--password=hunter2", "-v"], ["app", "--password=REDACTED", "-v"]),
    (["app", "--token", "abc123", "--port", "80"], ["app", "--token", "REDACTED", "--port", "80"]),
    (["env", "API_KEY=k-1", "DB_SECRET=s", "HOME=/root"],
     ["env", "API_KEY=REDACTED", "DB_SECRET=REDACTED", "HOME=/root"]),
    (["psql", "postgres://bob:pw0rd@db:5432/x"], ["psql", "postgres://bob:REDACTED@db:5432/x"]),
    (["ssh-keygen", "--key", "id", "--monkey", "1"], ["ssh-keygen", "--key", "REDACTED",
                                                    "--monkey", "1"]),
    (["x", "--passphrase"], ["x", "--passphrase"]),        # nothing after it: nothing to hide
])
def test_redact_args(args, want):
    assert owner.redact_args(args) == want


def test_format_cmdline_escapes_and_bounds():
    raw = b"prog\0a b\0\x1b[31mred\0" + b"x" * 3000 + b"\0"
    line = owner.format_cmdline(raw, "full")
    assert line.startswith("prog 'a b' \\x1b[31mred xxx")
    assert line.endswith("...[truncated]") and len(line) == owner.CMDLINE_MAX + len("...[truncated]")
    assert owner.format_cmdline(raw, "none") is None
    assert owner.format_cmdline(b"", "redacted") is None


@pytest.mark.parametrize("mode,shown", [("redacted", "--password=REDACTED"),
                                        ("full", "--password=hunter2-canary"), ("none", None)])
def test_listener_cmdline_is_redacted_by_default(mode, shown):
    proc = subprocess.Popen(["/usr/bin/python3", "-c", HOLD, "--password=hunter2-canary"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        rec = [l for l in take("host", cmdline=mode)[0] if l["port"] == port][0]
        assert rec["pid"] == proc.pid
        if shown is None:
            assert rec["cmdline"] is None
        else:
            assert rec["cmdline"].endswith(" " + shown)
        if mode != "full":
            assert "hunter2" not in repr(rec)
    finally:
        proc.stdin.close()
        proc.wait(10)


def test_exe_deleted_replaced_and_unpackaged():
    tmp = tempfile.mkdtemp(prefix="bt-exe-")
    exe = os.path.join(tmp, "python3-copy")
    shutil.copy2(os.path.realpath("/usr/bin/python3"), exe)
    procs = []
    try:
        for _ in range(3):
            procs.append(subprocess.Popen([exe, "-c", "import sys; sys.stdin.read()"],
                                          stdin=subprocess.PIPE))
        idents = owner.Identities()
        assert idents.exe(procs[0].pid) == (exe, "ok")
        assert idents.of(procs[0].pid)["package"] is None      # no package ships it
        os.unlink(exe)
        assert owner.Identities().exe(procs[1].pid) == (exe, "deleted")
        shutil.copy2(os.path.realpath("/usr/bin/python3"), exe)   # an "upgrade" put a new file
        assert owner.Identities().exe(procs[2].pid) == (exe, "replaced")
        packaged = owner.Identities().of(os.getpid())
        assert packaged["exe"] == os.path.realpath("/proc/self/exe")
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(10)
        shutil.rmtree(tmp)


def test_dpkg_index_names_packages_and_merged_usr():
    idx = PackageIndex("/")
    assert idx.owner("/usr/sbin/nginx") == "nginx"
    assert idx.owner(os.path.realpath("/usr/bin/python3")).startswith("python3")
    assert idx.owner("/usr/bin/no-such-binary-bindtrace") is None
    # dpkg lists /bin/sh (dash), the kernel may report /usr/bin/sh on merged-/usr
    assert idx.owner("/usr/bin/sh") == idx.owner("/bin/sh") == "dash"


@pytest.mark.parametrize("path,unit", [
    ("/system.slice/nginx.service", "nginx.service"),
    ("/system.slice/nginx.service/worker", "nginx.service"),
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", "foo.service"),
    ("/init.scope", "init.scope"),
    ("/system.slice/docker-0123abcd.scope", "docker-0123abcd.scope"),
    ("/bindtrace-test-x-1/system.slice/a.service", "a.service"),
    ("/", None), ("/kubepods/besteffort/pod1/abc", None), (None, None),
])
def test_unit_of_cgroup(path, unit):
    assert units.unit_of_cgroup(path) == unit


def test_socket_unit_files():
    text = ("[Unit]\nDescription=x\n[Socket]\nListenStream=22\nListenStream=[::1]:8443\n"
            "ListenDatagram=127.0.0.1:53\nListenStream=/run/x.sock\nBindIPv6Only=both\n"
            "[Install]\nListenStream=9\n")
    assert units.parse_socket_unit(text) == [("TCP", None, 22, False), ("TCP", "::1", 8443, False),
                                             ("UDP", "127.0.0.1", 53, False)]
    tmp = tempfile.mkdtemp(prefix="bt-units-")
    try:
        os.makedirs(os.path.join(tmp, "etc/systemd/system"))
        with open(os.path.join(tmp, "etc/systemd/system/ssh.socket"), "w") as f:
            f.write(text)
        su = units.SocketUnits(tmp)
        assert su.match("TCP", "::", 22) == "ssh.socket"
        assert su.match("TCP", "0.0.0.0", 22) == "ssh.socket"
        assert su.match("TCP", "::1", 8443) == "ssh.socket"
        assert su.match("UDP", "127.0.0.1", 53) == "ssh.socket"
        assert su.match("TCP", "127.0.0.1", 22) is None     # port-only means the wildcard
        assert su.match("UDP", "::", 22) is None
    finally:
        shutil.rmtree(tmp)


@pytest.mark.parametrize("v6only,families", [(0, [4, 6]), (1, [6])])
def test_v6_wildcard_exposure_follows_ipv6_v6only(v6only, families):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind(("::", 0))
    s.listen(1)
    v4 = socket.socket()
    v4.bind(("127.0.0.1", 0))
    v4.listen(1)
    try:
        recs = {l["port"]: l for l in take("host")[0] if l["pid"] == os.getpid()}
        rec = recs[s.getsockname()[1]]
        assert (rec["addr"], rec["v6only"], rec["exposure"], rec["exposure_families"]) == (
            "::", bool(v6only), "wildcard", families)
        rec = recs[v4.getsockname()[1]]
        assert (rec["addr"], rec["exposure"], rec["exposure_families"]) == (
            "127.0.0.1", "loopback", [4])
        if v6only == 0:   # and it really is reachable over IPv4
            socket.create_connection(("127.0.0.1", s.getsockname()[1]), timeout=5).close()
    finally:
        s.close()
        v4.close()
