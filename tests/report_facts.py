"""Generated `bind_trace` facts in the exact shape the trace_bind module
returns (brief: "Facts returned by the Ansible module"), for the report tests.

These are test inputs for the controller-side report, which only ever sees
facts; the real module's facts are covered by the end-to-end test.
"""
import copy

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(1)>'
HOSTILE_ANSI = "\x1b[31mred\x1b[0m"
HOSTILE_NEWLINE = "two\nlines"
# what the host library makes of invalid UTF-8 in comm (decode "replace")
HOSTILE_UTF8 = b"bad\xff\xfename".decode("utf-8", "replace")
HOSTILE_NAMES = (HOSTILE_SCRIPT, HOSTILE_ATTR, HOSTILE_ANSI, HOSTILE_NEWLINE, HOSTILE_UTF8)

OPTS = {".....": {}, ".R...": {"reuseaddr": True}, "rR...": {"reuseport": True, "reuseaddr": True}}


def bind(pid, comm, port, proto="TCP", addr="0.0.0.0", opts=".R...", verdict=None, count=None,
         error=None, container=None, k8s=None, uid=0, family=None):
    family = family or (6 if ":" in addr else 4)
    options = dict.fromkeys(("reuseport", "reuseaddr", "bind_address_no_port", "transparent",
                             "freebind"), False)
    options.update(OPTS.get(opts, {}))
    rec = {
        "schema": 1, "timestamp": "2026-11-25T12:00:00.000000001Z", "pid": pid,
        "tid": None if count else pid, "ppid": 1, "uid": uid, "gid": uid,
        "user": "root" if uid == 0 else str(uid), "comm": comm, "proto": proto, "family": family,
        "addr": addr, "port": port, "requested_addr": addr, "requested_port": port, "opts": opts,
        "options": options, "if_index": 0, "if": "", "error": error, "ret": -98 if error else 0,
        "netns": 4026531840, "mntns": 4026531841, "cgroup_id": 1, "container": container,
        "k8s": k8s, "verdict": verdict,
    }
    if count:
        rec.update(count=count, first_seen=rec["timestamp"], last_seen="2026-11-25T12:00:01.5Z")
    return rec


def listener(pid, comm, port, proto="TCP", addr="0.0.0.0", verdict=None, container=None, k8s=None):
    return {"proto": proto, "family": 6 if ":" in addr else 4, "addr": addr, "port": port,
            "state": "LISTEN" if proto == "TCP" else "UNCONN", "inode": 1000 + port, "uid": 0,
            "user": "root", "pid": pid, "comm": comm, "netns": 4026531840, "container": container,
            "k8s": k8s, "verdict": verdict}


def facts(hostname, binds=(), listeners=(), mode="summary", lost=0, dropped=0, rules=2):
    binds, listeners = list(binds), list(listeners)
    ub = [b for b in binds if b.get("verdict") == "unexpected"]
    ul = [l for l in listeners if l.get("verdict") == "unexpected"]
    return {
        "schema": 1,
        "host": {"hostname": hostname, "kernel": "6.1.0-test", "backend": "core",
                 "backend_reason": "kernel BTF and libbpf.so.1 present", "node": hostname},
        "window": {"start": "2026-11-25T12:00:00Z", "end": "2026-11-25T12:00:02Z", "duration": 2.0},
        "mode": mode,
        "filters": {"pid": None, "ports": [], "ignore_errors": True, "comm": None, "uid": None,
                    "netns": None, "containername": None},
        "binds": binds, "listeners": listeners, "lost": lost, "dropped": dropped, "truncated": False,
        "unexpected": {"binds": copy.deepcopy(ub), "listeners": copy.deepcopy(ul)},
        "counts": {"binds": sum(b.get("count") or 1 for b in binds), "records": len(binds),
                   "listeners": len(listeners), "unexpected_binds": len(ub),
                   "unexpected_listeners": len(ul), "lost": lost, "dropped": dropped},
        "missing_fields": [], "policy": {"rules": rules},
    }


def fleet():
    """A small fleet: two clean web hosts, one with unexpected listeners, one
    with hostile process names, one failed, one unsupported, one unreachable."""
    web = lambda name, pid: facts(name, binds=[  # noqa: E731
        bind(pid, "nginx", 443, verdict="expected", count=2),
        bind(pid, "nginx", 80, verdict="expected", count=2),
    ], listeners=[
        listener(pid, "nginx", 80, verdict="expected"), listener(pid, "nginx", 443, verdict="expected"),
        listener(300, "sshd", 22, verdict="expected"),
    ])
    db = facts("db1", binds=[
        bind(500, "postgres", 5432, verdict="expected", count=1),
        bind(666, "nc", 4444, verdict="unexpected", count=3),
        bind(667, "python3", 8000, proto="UDP", addr="::", opts=".....", verdict="unexpected", count=1),
        bind(668, "busy", 5432, verdict="unexpected", error="EADDRINUSE", count=1),
    ], listeners=[
        listener(300, "sshd", 22, verdict="expected"), listener(500, "postgres", 5432, verdict="expected"),
        listener(666, "nc", 4444, verdict="unexpected"),
        listener(667, "python3", 8000, proto="UDP", addr="::", verdict="unexpected"),
    ])
    evil_binds = [bind(900 + i, name, 7000 + i, verdict="unexpected", count=1)
                  for i, name in enumerate(HOSTILE_NAMES)]
    evil_listeners = [listener(900 + i, name, 7000 + i, verdict="unexpected")
                      for i, name in enumerate(HOSTILE_NAMES)]
    evil_binds.append(bind(950, "app", 9090, verdict="expected", count=1,
                           container={"runtime": "docker", "id": "c0ffee", "name": HOSTILE_ATTR,
                                      "image": "busybox"}))
    return {
        "web1": {"status": "ok", "facts": web("web1", 101), "msg": None},
        "web2": {"status": "ok", "facts": web("web2", 102), "msg": None},
        "db1": {"status": "ok", "facts": db, "msg": None},
        "evil": {"status": "ok", "facts": facts("evil", evil_binds, evil_listeners), "msg": None},
        "broken": {"status": "failed", "facts": None,
                   "msg": "tracefs is not mounted at /sys/kernel/tracing: mount -t tracefs nodev "
                          "/sys/kernel/tracing"},
        "legacy": {"status": "unsupported", "facts": None,
                   "msg": "unsupported: no kernel BTF (/sys/kernel/btf/vmlinux) and no bcc: "
                          "install python3-bpfcc and kernel headers"},
        "gone": {"status": "unreachable", "facts": None,
                 "msg": "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 9: "
                        "Connection refused"},
    }
