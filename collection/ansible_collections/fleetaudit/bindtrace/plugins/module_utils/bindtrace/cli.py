"""trace-bind: the single-host, live `ig trace bind` experience."""
import argparse
import json
import signal
import sys
import time

from . import BindtraceError
from .filters import make_config, parse_duration
from .record import BY_NAME, FIELDS
from .trace import Tracer

K8S_COLUMNS = (("K8S.NODE", 16, lambda e: (e.get("k8s") or {}).get("node")),
               ("K8S.NAMESPACE", 16, lambda e: (e.get("k8s") or {}).get("namespace")),
               ("K8S.PODNAME", 16, lambda e: (e.get("k8s") or {}).get("pod")),
               ("K8S.CONTAINERNAME", 17, lambda e: (e.get("k8s") or {}).get("container")
                or (e.get("container") or {}).get("name")))


# the record's columns (record.py): always shown; ERROR with -i=false, COUNT with
# --summary; the unpadded one (IF) last, as in ig
def _column(f):
    return (f.title, f.width, f.cell)


BASE_COLUMNS = tuple(sorted((_column(f) for f in FIELDS if "C" in f.show), key=lambda c: c[1] == 0))
ERROR_COLUMN, COUNT_COLUMN = _column(BY_NAME["error"]), _column(BY_NAME["count"])


def printable(value):
    """Process names are chosen by whoever runs the process: no control characters."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class Table(object):
    def __init__(self, out, containers, errors, summary):
        self.out, self.errors, self.summary = out, errors, summary
        self.set_columns(containers)

    def set_columns(self, containers):
        """The seed's K8S columns only when containers are in play (-c, --scope
        containers) or some event came from a container."""
        cols = list(K8S_COLUMNS) if containers else []
        cols += list(BASE_COLUMNS[:-1])
        if self.errors:
            cols.append(ERROR_COLUMN)
        if self.summary:
            cols.append(COUNT_COLUMN)
        cols.append(BASE_COLUMNS[-1])
        self.cols, self.containers = cols, containers

    def line(self, cells):
        parts = []
        for (_title, width, _get), cell in zip(self.cols, cells):
            parts.append(cell.ljust(width) if width else cell)
        self.out.write(" ".join(parts).rstrip() + "\n")

    def header(self):
        self.line([c[0] for c in self.cols])
        self.out.flush()

    def row(self, ev):
        if not self.containers and ev.get("container") is not None:
            self.set_columns(True)   # first container event: K8S columns, header again
            self.header()
        self.line([printable(get(ev)) for _title, _width, get in self.cols])
        self.out.flush()


def build_parser():
    p = argparse.ArgumentParser(
        prog="trace-bind", description="Trace socket bind() calls (eBPF), like `ig trace bind`.")
    p.add_argument("--pid", default=None, help="only binds by this process id")
    p.add_argument("-P", "--ports", default=None,
                   help="only binds on these ports: list and ranges, e.g. 4242,4343,8000-8100")
    p.add_argument("-i", "--ignore-errors", nargs="?", const="true", default="true",
                   help="show only successful binds (default true; -i=false shows failures)")
    p.add_argument("--comm", default=None, help="only binds by processes with this name")
    p.add_argument("--uid", default=None, help="only binds by this user id")
    p.add_argument("--netns", default="all",
                   help="'all' (default), 'host' (this tracer's network namespace) or an inode")
    p.add_argument("-c", "--containername", default=None, help="only binds in this container")
    p.add_argument("--scope", default="all", help="all (default), host or containers")
    p.add_argument("-o", "--output", default="columns", choices=("columns", "json"),
                   help="columns (default) or json (one object per line)")
    p.add_argument("--timeout", default=None, help="stop after this many seconds")
    p.add_argument("--summary", action="store_true",
                   help="count binds in the kernel; print one line per distinct bind at the end")
    p.add_argument("--max-events", default=None, help="stop keeping events after this many")
    p.add_argument("--backend", default="auto", help="auto (default), core or bcc")
    p.add_argument("--hook", default="auto",
                   help="auto (default: the cheapest hook the kernel accepts), fexit, kprobe or "
                        "tracepoint")
    return p


class _Stop(object):
    def __init__(self):
        self.flag = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handler)

    def handler(self, *_):
        self.flag = True


def run(args, out=sys.stdout, err=sys.stderr):
    cfg = make_config(mode="summary" if args.summary else "events", pid=args.pid, ports=args.ports,
                      ignore_errors=args.ignore_errors, comm=args.comm, uid=args.uid,
                      netns=args.netns, containername=args.containername, scope=args.scope,
                      max_events=args.max_events, backend=args.backend, hook=args.hook)
    timeout = parse_duration(args.timeout) if args.timeout is not None else None
    stop = _Stop()
    as_json = args.output == "json"
    containers = bool(args.containername) or args.scope == "containers"
    table = Table(out, containers, not cfg.ignore_errors, args.summary)
    with Tracer(cfg) as tracer:
        if not as_json and not args.summary:
            table.header()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not stop.flag and (deadline is None or time.monotonic() < deadline):
            for ev in tracer.poll(100):
                emit(ev, as_json, table, out)
        tracer.stop()
        events = tracer.poll(0)
        if args.summary:
            events = tracer.summary()
            if not as_json:
                table.set_columns(containers or has_container(events))
                table.header()
        for ev in events:
            emit(ev, as_json, table, out)
        st = tracer.stats()
    total = sum(e.get("count", 1) for e in events) if args.summary else tracer.delivered
    err.write("# events: %d, lost: %d, dropped: %d\n" % (total, st["lost"], st["dropped"]))
    return 0


def has_container(events):
    """True when any event came from a container: the table then shows K8S columns."""
    return any(ev.get("container") is not None for ev in events)


def emit(ev, as_json, table, out):
    if as_json:
        out.write(json.dumps(ev, sort_keys=False) + "\n")
        out.flush()
    else:
        table.row(ev)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except BindtraceError as exc:
        sys.stderr.write("trace-bind: %s\n" % exc)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())   # the console script does the same with main()'s status
