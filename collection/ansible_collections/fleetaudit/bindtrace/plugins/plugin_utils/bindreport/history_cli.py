"""`bind-report history` (query the history store) and `bind-report prune`
(retention of dated report directories and of history runs)."""
import argparse
import json
import os
import re
import shutil

from .history import open_store
from .model import BindReportError
from .terminal import table

COMMANDS = ("history", "prune")
EXIT_INPUT = 2
# the scheduled runs' report directories: UTC time of the run, e.g. 20261201T143000Z
DATED_DIR = re.compile(r"^\d{8}T\d{6}Z$")
LATEST = "latest"
COLUMNS = [("HOST", "host"), ("PROTO", "proto"), ("ADDR", "addr"), ("PORT", "port"), ("COMM", "comm"),
           ("EXE", "exe"), ("UNIT", "unit"), ("CONTAINER", "container"), ("FIRST SEEN", "first_seen"),
           ("LAST SEEN", "last_seen"), ("RUNS", "runs"), ("VERDICT", "verdict")]
RUN_COLUMNS = [("RUN", "id"), ("GENERATED", "generated"), ("GENERATOR", "generator"), ("HOSTS", "hosts"),
               ("TRACED", "traced"), ("FAILED", "failed"), ("UNREACHABLE", "unreachable"),
               ("UNEXPECTED LISTENERS", "unexpected_listeners")]


def _parser(command, description):
    """A sub-command's parser, with the store argument every one takes."""
    p = argparse.ArgumentParser(prog="bind-report " + command, description=description)
    p.add_argument("--history", default=os.environ.get("BIND_REPORT_HISTORY"),
                   help="the history store: SQLite file path or postgresql:// DSN "
                        "(default $BIND_REPORT_HISTORY)")
    return p


def history_parser():
    p = _parser("history", "Listeners recorded in the history store, one line per listener "
                           "identity, with first/last seen and the number of runs; filters combine.")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--proto", help="TCP, UDP, ...")
    p.add_argument("--comm", help="process name")
    p.add_argument("--exe", help="executable path")
    p.add_argument("--unit", help="systemd unit")
    p.add_argument("--container", help="container name or id")
    p.add_argument("--since", help="runs generated at or after this RFC 3339 time (e.g. 2026-11-01)")
    p.add_argument("--until", help="runs generated at or before this RFC 3339 time")
    p.add_argument("--runs", action="store_true", help="list the recorded runs instead")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    return p


def prune_parser():
    p = _parser("prune", "Retention: keep the newest N dated report directories "
                         "(YYYYMMDDTHHMMSSZ) under --reports, never the one 'latest' points to, "
                         "and the newest N runs in the history store.")
    p.add_argument("--reports", help="the directory holding one dated directory per run")
    p.add_argument("--keep", type=int, required=True, help="runs to keep (at least 1)")
    return p


def _need_store(args):
    if not args.history:
        raise BindReportError("no history store: give --history PATH|DSN or set BIND_REPORT_HISTORY")


def _until(value):
    """A bare date as --until means the whole of that day."""
    return value + "T23:59:59.999999Z" if value and re.match(r"^\d{4}-\d{2}-\d{2}$", value) else value


def run_history(argv, out):
    args = history_parser().parse_args(argv)
    _need_store(args)
    with open_store(args.history) as store:
        if args.runs:
            rows, columns = store.runs(), RUN_COLUMNS
        else:
            rows, columns = store.search(host=args.host, port=args.port, proto=args.proto, comm=args.comm,
                                         exe=args.exe, unit=args.unit, container=args.container,
                                         since=args.since, until=_until(args.until)), COLUMNS
    if args.output == "json":
        out.write(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    else:
        out.write("\n".join(table(columns, [{k: ("" if r.get(k) is None else r.get(k)) for _title, k in columns}
                                            for r in rows])) + "\n")
    return 0


def dated_dirs(reports):
    try:
        names = os.listdir(reports)
    except OSError as e:
        raise BindReportError("cannot read reports directory %s (%s)" % (reports, e.strerror))
    return sorted(n for n in names if DATED_DIR.match(n) and os.path.isdir(os.path.join(reports, n))
                  and not os.path.islink(os.path.join(reports, n)))


def prune_reports(reports, keep):
    """Delete all but the newest `keep` dated directories -> names deleted."""
    if keep < 1:
        raise BindReportError("--keep must be at least 1")
    latest = os.path.join(reports, LATEST)
    protected = os.path.basename(os.path.realpath(latest)) if os.path.islink(latest) else None
    old = [n for n in dated_dirs(reports)[:-keep] if n != protected]
    for name in old:
        shutil.rmtree(os.path.join(reports, name))
    return old


def run_prune(argv, out):
    args = prune_parser().parse_args(argv)
    if not args.reports and not args.history:
        raise BindReportError("nothing to prune: give --reports DIR and/or --history PATH|DSN")
    if args.keep < 1:
        raise BindReportError("--keep must be at least 1")
    if args.reports:
        removed = prune_reports(args.reports, args.keep)
        out.write("bind-report prune: removed %d report directorie(s)%s\n"
                  % (len(removed), (": " + ", ".join(removed)) if removed else ""))
    if args.history:
        with open_store(args.history) as store:
            ids = store.prune(args.keep)
        out.write("bind-report prune: removed %d history run(s)%s\n"
                  % (len(ids), (": " + ", ".join(map(str, ids))) if ids else ""))
    return 0


def run(argv, out, err):
    command, rest = argv[0], argv[1:]
    try:
        return (run_history if command == "history" else run_prune)(rest, out)
    except BindReportError as e:
        err.write("bind-report %s: %s\n" % (command, e))
        return EXIT_INPUT
