"""The hook ladder on the real kernel: which rung loads, the same exact record
from every rung this kernel offers, the rung named in the facts with why the
cheaper ones were not used, and one clear message (nothing left loaded) for a
pinned rung the kernel refuses. Here (6.18 dev host) only the tracepoint rung
loads: kprobes are compiled out and fexit is refused; the VM matrix (tests/vm)
runs this same file in guests that offer all three."""
import os
import socket
import subprocess
import threading

import pytest

from bindtrace import BindtraceError, hooks
from bindtrace.facts import collect_facts
from bindtrace.filters import make_config
from bindtrace.trace import Tracer
from helpers.kernel import CLI, bpf_ids_of, cli_env, trace_around

ME = os.getpid()
IP_FREEBIND = 15
RUNGS = [r.name for r in hooks.RUNGS]
_offered = {}


def offered(rung):
    """None if the rung loads here, else the message pinning it gives."""
    if rung not in _offered:
        try:
            with Tracer(make_config(mode="summary", pid=ME, hook=rung)):
                _offered[rung] = None
        except BindtraceError as exc:
            _offered[rung] = str(exc)
    return _offered[rung]


def skip_unless_offered(rung):
    if offered(rung) is not None:
        pytest.skip("this kernel does not offer %s: %s" % (rung, offered(rung)))


def work():
    """Four binds with distinct fields; returns what the kernel gave each."""
    out, socks = [], []
    a = socket.socket()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    a.bind(("127.0.0.1", 0))
    socks.append(a)
    b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    b.bind(("::1", 0))
    socks.append(b)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    c.bind(("192.0.2.7", 0))
    socks.append(c)
    d = socket.socket()
    try:
        d.bind(("127.0.0.1", a.getsockname()[1]))  # EADDRINUSE (a is not listening: no reuse)
    except OSError:
        pass
    a.listen()
    d.close()
    out = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return out


def fields(ev):
    return (ev["proto"], ev["family"], ev["addr"], ev["port"], ev["requested_addr"],
            ev["requested_port"], ev["opts"], ev["error"], ev["pid"], ev["uid"], ev["comm"],
            ev["if_index"], ev["netns"], ev["mntns"], ev["cgroup_id"])


@pytest.mark.parametrize("rung", RUNGS)
def test_every_rung_offered_gives_the_exact_record(rung):
    skip_unless_offered(rung)
    ports, events, stats = trace_around(make_config(pid=ME, ignore_errors=False, hook=rung), work,
                                        until=lambda _r, evs: len(evs) >= 4)
    comm = open("/proc/self/comm").read().strip()[:15]
    netns = os.stat("/proc/self/ns/net").st_ino
    mntns = os.stat("/proc/self/ns/mnt").st_ino
    got = [fields(e) for e in events]
    cg = events[0]["cgroup_id"]
    assert got == [
        ("TCP", 4, "127.0.0.1", ports[0], "127.0.0.1", 0, ".R...", None, ME, 0, comm, 0, netns,
         mntns, cg),
        ("UDP", 6, "::1", ports[1], "::1", 0, ".....", None, ME, 0, comm, 0, netns, mntns, cg),
        ("UDP", 4, "192.0.2.7", ports[2], "192.0.2.7", 0, "....F", None, ME, 0, comm, 0, netns,
         mntns, cg),
        ("TCP", 4, "0.0.0.0", 0, "127.0.0.1", ports[0], ".....", "EADDRINUSE", ME, 0, comm, 0,
         netns, mntns, cg),
    ]
    assert stats["lost"] == 0




def uring_work():
    """Three binds through io_uring, never through bind(2) (TCP v4 port 0, UDP
    v6 port 0, TCP v4 on the first one's port: EADDRINUSE), then one bind(2)
    as the control every rung sees. Returns (io_uring results, ports)."""
    from uring import uring_bind
    a = socket.socket()
    b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    c = socket.socket()
    d = socket.socket()
    try:
        res = [uring_bind(a, ("127.0.0.1", 0)), uring_bind(b, ("::1", 0))]
        res.append(uring_bind(c, ("127.0.0.1", a.getsockname()[1])))
        d.bind(("127.0.0.1", 0))
        return res, [s.getsockname()[1] for s in (a, b, d)]
    finally:
        for s in (a, b, c, d):
            s.close()


@pytest.mark.parametrize("rung", RUNGS)
def test_io_uring_binds_are_seen_by_fexit_and_only_by_it(rung):
    """IORING_OP_BIND (Linux 6.11+) reaches inet_bind/inet6_bind without the
    bind(2) syscall: fexit records those binds exactly, the syscall rungs
    (kretprobe, tracepoint) see only the bind(2) control (what the facts' "sees"
    says of each rung)."""
    from uring import Unavailable, uring_bind
    skip_unless_offered(rung)
    try:
        with socket.socket() as probe:
            uring_bind(probe, ("127.0.0.1", 0))
    except Unavailable as exc:
        pytest.skip(str(exc))
    want = 4 if rung == "fexit" else 1
    (res, ports), events, stats = trace_around(
        make_config(pid=ME, ignore_errors=False, hook=rung), uring_work,
        until=lambda _r, evs: len(evs) >= want)
    assert res == [0, 0, -98]   # EADDRINUSE, as bind(2) would fail
    comm = open("/proc/self/comm").read().strip()[:15]
    netns = os.stat("/proc/self/ns/net").st_ino
    mntns = os.stat("/proc/self/ns/mnt").st_ino
    cg = events[0]["cgroup_id"] if events else None
    control = ("TCP", 4, "127.0.0.1", ports[2], "127.0.0.1", 0, ".....", None, ME, 0, comm, 0,
               netns, mntns, cg)
    if rung == "fexit":
        assert [fields(e) for e in events] == [
            ("TCP", 4, "127.0.0.1", ports[0], "127.0.0.1", 0, ".....", None, ME, 0, comm, 0,
             netns, mntns, cg),
            ("UDP", 6, "::1", ports[1], "::1", 0, ".....", None, ME, 0, comm, 0, netns, mntns,
             cg),
            ("TCP", 4, "0.0.0.0", 0, "127.0.0.1", ports[0], ".....", "EADDRINUSE", ME, 0, comm, 0,
             netns, mntns, cg),
            control]
    else:
        assert [fields(e) for e in events] == [control]
    assert stats["lost"] == 0


@pytest.mark.parametrize("rung", RUNGS)
def test_io_uring_listens_are_seen_by_fexit_and_only_by_it(rung):
    """IORING_OP_LISTEN reaches inet_listen without listen(2): fexit counts
    that listener with its exact backlog, the syscall rungs only the listen(2)
    control."""
    from uring import Unavailable, uring_listen
    skip_unless_offered(rung)
    a, b = socket.socket(), socket.socket()
    try:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        with Tracer(make_config(pid=ME, hook=rung)) as tracer:
            try:
                res = uring_listen(a, 5)
            except Unavailable as exc:
                pytest.skip(str(exc))
            b.listen(3)
            tracer.stop()
            listens = tracer.listens()
        assert res == 0
        got = sorted((l["port"], l["backlog"], l["count"], l["pid"], l["addr"])
                     for l in listens)
        control = (b.getsockname()[1], 3, 1, ME, "127.0.0.1")
        if rung == "fexit":
            assert got == sorted([(a.getsockname()[1], 5, 1, ME, "127.0.0.1"), control])
        else:
            assert got == [control]
    finally:
        a.close()
        b.close()

# thread names around the fast build's 8-byte word boundaries of task->comm;
# the last is cut to 15 characters by the kernel
COMM_NAMES = ["a", "seven77", "eight888", "nine99999", "fifteen15fiftee", "sixteen16sixteen-more"]


def named_binds():
    """One UDP bind to 127.0.0.1:0 from a thread of each name (PR_SET_NAME)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    ports = {}

    def bind_as(name):
        assert libc.prctl(15, name.encode(), 0, 0, 0) == 0   # PR_SET_NAME
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        ports[s.getsockname()[1]] = open("/proc/thread-self/comm").read().rstrip("\n")
        s.close()
    for name in COMM_NAMES:
        t = threading.Thread(target=bind_as, args=(name,))
        t.start()
        t.join()
    return ports


@pytest.mark.parametrize("build", ["fast", "compat"])
@pytest.mark.parametrize("rung", RUNGS)
def test_comm_exact_at_every_length_from_every_rung_and_build(rung, build, monkeypatch):
    """comm as the kernel keeps it (what /proc/thread-self/comm says), whatever
    its length: the fast build reads it as two words and cuts at the first NUL."""
    skip_unless_offered(rung)
    if build == "compat":
        monkeypatch.setenv("BINDTRACE_CORE_PROGRAM", "compat")
    ports, events, _ = trace_around(make_config(pid=ME, hook=rung), named_binds,
                                    until=lambda r, evs: len(evs) >= len(r))
    assert sorted(ports.values()) == sorted(n[:15] for n in COMM_NAMES)
    assert sorted((e["port"], e["comm"]) for e in events) == sorted(ports.items())

def test_auto_takes_the_cheapest_rung_offered_and_the_facts_say_why():
    first = next(r for r in RUNGS if offered(r) is None)
    facts = collect_facts(duration=0.2, pid=ME, listeners=False)
    host = facts["host"]
    assert host["hook"] == first
    detail = {k: host["hook_" + k] for k in ("build", "where", "sees", "not_used")}
    detail["hook"] = host["hook"]
    rung = [r for r in hooks.RUNGS if r.name == first][0]
    assert (detail["hook"], detail["where"], detail["sees"]) == (first, rung.where, rung.sees)
    assert detail["build"] in ("fast", "compat")
    skipped = RUNGS[:RUNGS.index(first)]
    # each cheaper rung is named with the kernel's reason, the same one pinning it gives
    for name in skipped:
        assert "%s: %s" % (name, offered(name).split(" is not available on this host: ")[1]
                           .rsplit("; use hook auto", 1)[0]) in detail["not_used"]
    assert (detail["not_used"] is None) == (not skipped)
    assert host["trust"] == "; ".join(
        ["hook %s (%s, build %s)" % (first, rung.where, detail["build"]), "sees " + rung.sees]
        + (["cheaper hooks not used: " + detail["not_used"]] if skipped else [])
        + ["missing fields: none", "lost: 0"])


KPROBE_MESSAGE = (
    "hook kprobe (kretprobe on the bind syscall, set by hook option) is not available on this "
    "host: kprobes are not available: this kernel has no kprobe PMU "
    "(/sys/bus/event_source/devices/kprobe) and no kprobe_events (built without CONFIG_KPROBES); "
    "use hook auto, which takes the cheapest hook that loads")
FEXIT_EPERM_MESSAGE = (
    "hook fexit (fexit on inet_bind/inet6_bind, set by hook option) is not available on this "
    "host: the kernel refused bind_fexit4, bind_fexit6, listen_fexit (fexit on "
    "inet_bind/inet6_bind): Operation not permitted (EPERM); this kernel refuses fexit programs "
    "even to root, before verifying them (a security policy or a kernel without that program "
    "type); use hook auto, which takes the cheapest hook that loads")


@pytest.mark.parametrize("rung", ["fexit", "kprobe"])
def test_a_pinned_rung_the_kernel_refuses_one_message_nothing_loaded(rung):
    if offered(rung) is None:
        pytest.skip("this kernel offers %s (its records are checked above)" % rung)
    before, threads = bpf_ids_of(ME), threading.active_count()
    with pytest.raises(BindtraceError) as exc:
        Tracer(make_config(mode="summary", pid=ME, hook=rung))
    assert bpf_ids_of(ME) == before   # the refused programs and their maps are all closed
    assert threading.active_count() == threads   # and the enricher's watch thread stopped
    msg = str(exc.value)
    if rung == "kprobe" and hooks.unavailable(hooks.ladder("kprobe")[0]):
        assert msg == KPROBE_MESSAGE
    elif rung == "fexit" and "(EPERM)" in msg:
        assert msg == FEXIT_EPERM_MESSAGE
    else:   # another kernel, another cause: still one message naming the hook and the fix
        assert msg.startswith("hook %s (" % rung) and msg.endswith(
            "use hook auto, which takes the cheapest hook that loads")
    # the CLI and BINDTRACE_HOOK (the VM matrix's switch) give the same message
    env = cli_env()
    proc = subprocess.run(CLI + ["--hook", rung, "--timeout", "1"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", "trace-bind: %s\n" % msg)
    env["BINDTRACE_HOOK"] = rung
    proc = subprocess.run(CLI + ["--timeout", "1"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr == "trace-bind: %s\n" % msg.replace(
        "set by hook option", "set by BINDTRACE_HOOK")


def test_bcc_cannot_take_a_bpf_only_hook():
    with pytest.raises(BindtraceError) as exc:
        make_config(backend="bcc", hook="fexit")
    assert str(exc.value) == ("hook fexit needs backend core (or auto): backend bcc attaches to "
                              "the syscall tracepoints only")


def test_auto_remembers_a_boot_long_refusal_and_loads_once_after_it(monkeypatch):
    # a rung the kernel refuses to root before verifying (EPERM, ENOTSUPP) is
    # refused until the next boot: auto skips it then, with the refusal's own words
    from bindtrace import backend_core
    loads = []
    real = backend_core.CoreBackend._open_and_load

    def counted(self, cfg, netns_inode, rung, programs):
        loads.append(rung.name)
        return real(self, cfg, netns_inode, rung, programs)
    monkeypatch.setattr(backend_core.CoreBackend, "_open_and_load", counted)
    with Tracer(make_config(mode="summary", pid=ME)) as first:
        skipped = list(first.backend.hook_skipped)
        chosen = first.backend.hook
    refused = [(name, why) for name, why in skipped if name not in ("kprobe",) and
               why.startswith("the kernel refused")]
    if not refused:
        pytest.skip("every rung this kernel offers loads: nothing to remember")
    for name, why in refused:
        assert hooks.refused_this_boot([r for r in hooks.RUNGS if r.name == name][0]) == why
    del loads[:]
    with Tracer(make_config(mode="summary", pid=ME)) as second:
        assert (second.backend.hook, second.backend.hook_skipped) == (chosen, skipped)
    assert loads == [chosen]   # the refused rungs were not loaded again
