"""Trace options: one validated configuration shared by the CLI, the Ansible
module and the Salt module. Every bad value raises BindtraceError naming the
option, the value and what is accepted."""
import math
import re

from . import BindtraceError

MODES = ("summary", "events")
BACKENDS = ("auto", "core", "bcc")
HOOKS = ("auto", "fexit", "kprobe", "tracepoint")  # the hook ladder (hooks.py), cheapest first
SCOPES = ("all", "host", "containers")
MAX_DURATION = 3600
COMM_LEN = 15  # TASK_COMM_LEN - 1


class TraceConfig(object):
    """What to trace. Plain attributes; build with make_config() to validate."""

    def __init__(self, mode="events", pid=None, ports=(), ignore_errors=True, comm=None, uid=None,
                 netns="all", containername=None, scope="all", max_events=None, backend="auto",
                 ringbuf_bytes=1 << 22, summary_entries=65536, hook="auto"):
        self.mode = mode
        self.pid = pid
        self.ports = list(ports)          # [(lo, hi), ...] inclusive ranges
        self.ignore_errors = ignore_errors
        self.comm = comm
        self.uid = uid
        self.netns = netns                # "all", "host" or an inode number
        self.containername = containername
        self.scope = scope
        self.max_events = max_events
        self.backend = backend
        self.hook = hook
        self.ringbuf_bytes = ringbuf_bytes
        self.summary_entries = summary_entries

    def as_filters(self):
        """The filters as reported in facts (ports back in their text form)."""
        return {
            "pid": self.pid, "ports": format_ports(self.ports), "ignore_errors": self.ignore_errors,
            "comm": self.comm, "uid": self.uid, "netns": self.netns,
            "containername": self.containername, "scope": self.scope,
        }


def _int(name, value, lo, hi, what):
    if isinstance(value, bool):
        raise BindtraceError("invalid %s %r: expected %s" % (name, value, what))
    try:
        number = int(str(value).strip(), 10)
    except (TypeError, ValueError):
        raise BindtraceError("invalid %s %r: expected %s" % (name, value, what))
    if not lo <= number <= hi:
        raise BindtraceError("invalid %s %r: expected %s" % (name, value, what))
    return number


def parse_port(value, name="port"):
    return _int(name, value, 1, 65535, "a port number 1-65535")


def parse_ports(value):
    """'4242,4343,8000-8100' or a list of ints/strings -> sorted [(lo, hi)]."""
    if value is None or value == "" or value == []:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    ranges = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        m = re.match(r"^(\d+)\s*-\s*(\d+)$", text)
        if m:
            lo, hi = parse_port(m.group(1), "ports"), parse_port(m.group(2), "ports")
            if lo > hi:
                raise BindtraceError("invalid ports range %r: the first port must not exceed the "
                                     "second (e.g. 8000-8100)" % text)
            ranges.append((lo, hi))
        else:
            try:
                port = parse_port(text, "ports")
            except BindtraceError:
                raise BindtraceError("invalid ports entry %r: expected port numbers 1-65535 or "
                                     "ranges like 8000-8100, comma separated" % text)
            ranges.append((port, port))
    return sorted(ranges)


def format_ports(ranges):
    return ",".join(str(lo) if lo == hi else "%d-%d" % (lo, hi) for lo, hi in ranges)


def port_in(ranges, port):
    return any(lo <= port <= hi for lo, hi in ranges)


def parse_bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "t", "y"):
        return True
    if text in ("0", "false", "no", "off", "f", "n"):
        return False
    raise BindtraceError("invalid %s %r: expected true or false" % (name, value))


def parse_choice(value, name, choices):
    text = str(value).strip().lower()
    if text not in choices:
        raise BindtraceError("invalid %s %r: expected one of %s" % (name, value, ", ".join(choices)))
    return text


def parse_duration(value):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float
        number = None
    if isinstance(value, bool) or number is None or math.isnan(number) or \
            not 0 < number <= MAX_DURATION:
        raise BindtraceError("invalid duration %r: expected seconds, more than 0 and at most %d "
                             "(use async for long windows)" % (value, MAX_DURATION))
    return number


def parse_start_at(value, now):
    """The fleet's barrier start (wall-clock epoch seconds) -> float, or None.
    At most MAX_DURATION seconds ahead of `now` (this host's clock): a value
    further out is a typo or a clock problem, not a start to wait for. A time
    already past is accepted: the host was launched late and starts at once,
    and the report shows how late."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if isinstance(value, bool) or number is None or math.isnan(number) or math.isinf(number):
        raise BindtraceError("invalid start_at %r: expected the fleet's start time as epoch "
                             "seconds, e.g. {{ now().timestamp() + 10 }}" % (value,))
    if number - now > MAX_DURATION:
        raise BindtraceError("invalid start_at %r: it is %.0f s after this host's clock, more than "
                             "%d; give a time a few seconds after the launch, and check that the "
                             "host's clock is synchronised (NTP)" % (value, number - now, MAX_DURATION))
    return number


def parse_netns(value):
    if value is None:
        return "all"
    text = str(value).strip().lower()
    if text in ("all", "host"):
        return text
    return _int("netns", value, 1, 0xFFFFFFFF, "'all', 'host' or a network namespace inode number")


def parse_comm(value):
    if value is None or value == "":
        return None
    text = str(value)
    if len(text.encode("utf-8")) > COMM_LEN:
        raise BindtraceError("invalid comm %r: the kernel keeps at most %d bytes of a process name; "
                             "give the first %d" % (value, COMM_LEN, COMM_LEN))
    return text


def parse_containername(value):
    """A name, a comma-separated string of names, or a list of names."""
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise BindtraceError("invalid containername %r: expected a container name, or a list of "
                             "names" % (value,))
    return value


def parse_limit(value, name, what):
    """A cap: a positive number, or 'unlimited' (or 0) for none -> the number or None.
    Unset values are the caller's to default (facts.py)."""
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return None
    if value in (0, "0"):
        return None
    return _int(name, value, 1, 10 ** 9, "a positive number of %s, or unlimited" % what)


def make_config(mode="events", pid=None, ports=None, ignore_errors=True, comm=None, uid=None,
                netns="all", containername=None, scope="all", max_events=None, backend="auto",
                hook="auto"):
    """Validate raw option values (strings from a CLI, YAML values from Ansible)."""
    backend = parse_choice(backend, "backend", BACKENDS)
    hook = parse_choice(hook, "hook", HOOKS)
    if backend == "bcc" and hook not in ("auto", "tracepoint"):
        raise BindtraceError("hook %s needs backend core (or auto): backend bcc attaches to the "
                             "syscall tracepoints only" % hook)
    return TraceConfig(
        mode=parse_choice(mode, "mode", MODES),
        pid=None if pid in (None, "", 0, "0") else _int("pid", pid, 1, 4194304,
                                                        "a process id 1-4194304"),
        ports=parse_ports(ports),
        ignore_errors=parse_bool(ignore_errors, "ignore_errors"),
        comm=parse_comm(comm),
        uid=None if uid in (None, "") else _int("uid", uid, 0, 0xFFFFFFFE, "a user id"),
        netns=parse_netns(netns),
        containername=parse_containername(containername),
        scope=parse_choice(scope, "scope", SCOPES),
        max_events=None if max_events in (None, "") else parse_limit(
            max_events, "max_events", "events"),
        backend=backend, hook=hook,
    )


# ---------------------------------------------------------------- selection
# (binds that only the enriched record can tell apart: the container filter)

def event_selected(ev, containername=None, scope="all"):
    """ig-style container selection over an enriched event.

    scope: "all", "host" (host processes only) or "containers" (containers only).
    containername: exact name (or a list / comma list of names); matches the
    container's own name (docker name without its '/') or its Kubernetes
    container name, like ig -c. Giving a name implies containers only."""
    container = ev.get("container")
    if scope == "host" and container is not None:
        return False
    if scope == "containers" and container is None:
        return False
    names = container_names(containername)
    if not names:
        return True
    if container is None:
        return False
    k8s_name = (ev.get("k8s") or {}).get("container")
    return container.get("name") in names or (k8s_name is not None and k8s_name in names)


def container_names(containername):
    if not containername:
        return ()
    if isinstance(containername, (list, tuple, set, frozenset)):
        items = containername
    else:
        items = str(containername).split(",")
    return frozenset(n.strip().lstrip("/") for n in items if n and n.strip())


def select_events(events, containername=None, scope="all"):
    return [ev for ev in events if event_selected(ev, containername, scope)]
