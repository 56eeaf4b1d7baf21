"""bind-report: the fleet report from saved per-host results, outside Ansible.

    salt '*' bindtrace.trace duration=10 --out=json --static > run.json
    bind-report run.json -o reports --baseline reports-yesterday/report.json
    bind-report slice1/report.json slice2/report.json --history fleet.db   # job slices -> one run
    bind-report history --history fleet.db --port 6379                    # since when? where?
    bind-report prune --reports /var/lib/bindtrace/reports --keep 30 --history fleet.db

Same model, templates and files as the Ansible callback bind_report; the
inputs are read by inputs.py (Salt output or an earlier report.json).
"""
import argparse
import os
import sys

from . import history_cli
from .annotate import annotate_report
from .guard import baseline_overwrite_error
from .inputs import load_groups, load_results
from .model import BindReportError, build_report, load_baseline
from .terminal import render_terminal
from .writer import DEFAULT_FORMATS, parse_formats, write_reports

GENERATOR = "bind-report"
EXIT_INPUT = 2
EXIT_VERDICT = 1


def build_parser():
    p = argparse.ArgumentParser(
        prog="bind-report",
        description="Render the bindtrace fleet report (terminal table, report.json, report.md, "
                    "report.html, junit.xml, drift against a baseline) from saved results: the "
                    "JSON of `salt ... bindtrace.trace --out=json` / `salt-call ... --out=json`, "
                    "or an earlier report.json.")
    p.add_argument("inputs", nargs="+", metavar="RESULTS",
                   help="saved results file(s); - reads standard input")
    p.add_argument("-o", "--output-dir", default=os.environ.get("BIND_REPORT_DIR") or "reports",
                   help="directory for the report files (default: $BIND_REPORT_DIR or ./reports)")
    p.add_argument("-f", "--formats", default=os.environ.get("BIND_REPORT_FORMATS"),
                   help="comma-separated files to write: %s or all (default: all)"
                        % ",".join(DEFAULT_FORMATS))
    p.add_argument("-b", "--baseline", default=os.environ.get("BIND_REPORT_BASELINE"),
                   help="a report.json of an earlier run: list listeners new and gone since")
    p.add_argument("--no-terminal", dest="terminal", action="store_false",
                   help="do not print the table and summary")
    p.add_argument("--history", default=os.environ.get("BIND_REPORT_HISTORY"),
                   help="append this run to a history store (SQLite file path or postgresql:// DSN; "
                        "default $BIND_REPORT_HISTORY) and show first/last seen, new/gone since the "
                        "previous run and the trend of unexpected listeners")
    p.add_argument("--groups", metavar="FILE",
                   help="inventory groups of the hosts: `ansible-inventory --list` JSON or "
                        "{group: [host, ...]} (a report.json input carries its hosts' groups)")
    p.add_argument("--outlier-threshold", default=os.environ.get("BIND_REPORT_OUTLIER_THRESHOLD"),
                   help="flag listeners on at most this share of a group's traced hosts (default 0.2)")
    p.add_argument("--fail-on-outlier", action="store_true",
                   help="exit 1 (and fail the host's JUnit case) when a fleet outlier is flagged")
    p.add_argument("--fail-on-unexpected", action="store_true",
                   help="exit 1 when any host has an unexpected listener or bind")
    return p


def _baseline(path, err):
    """Like the callback: an unusable baseline is a warning, the report is still written."""
    if not path:
        return None, None
    try:
        return load_baseline(path), path
    except BindReportError as e:
        err.write("bind-report: warning: %s; the report has no drift section\n" % e)
        return None, None


def _verdict_exit(model, args, err):
    s = model["summary"]
    if args.fail_on_outlier and s["outliers"]["flags"]:
        err.write("bind-report: %d fleet outlier(s) on %s\n"
                  % (s["outliers"]["flags"], ", ".join(s["outliers"]["hosts"])))
        return EXIT_VERDICT
    if args.fail_on_unexpected and (s["unexpected_listeners"] or s["unexpected_binds"]):
        err.write("bind-report: unexpected listeners or binds on %s\n" % ", ".join(
            sorted(set(s["unexpected_listeners"]) | set(s["unexpected_binds"]))))
        return EXIT_VERDICT
    return 0


def run(argv=None, out=sys.stdout, err=sys.stderr):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in history_cli.COMMANDS:
        return history_cli.run(argv, out, err)
    args = build_parser().parse_args(argv)
    try:
        formats = parse_formats(args.formats)
        problem = baseline_overwrite_error(args.baseline, os.path.abspath(args.output_dir), formats)
        if problem:
            raise BindReportError(problem)
        hosts = load_results(args.inputs)
        groups = load_groups(args.groups) if args.groups else {}
        # a report.json input carries its hosts' groups
        groups.update({name: raw["groups"] for name, raw in hosts.items()
                       if name not in groups and raw.get("groups") is not None})
        baseline, baseline_path = _baseline(args.baseline, err)
        model = build_report(hosts, baseline=baseline, baseline_path=baseline_path,
                             generator=GENERATOR)
        del hosts   # the inputs (their report.json tables): the model holds what it needs
        annotate_report(model, groups=groups, history_target=args.history,
                        outlier_threshold=args.outlier_threshold, fail_on_outlier=args.fail_on_outlier)
        paths = write_reports(model, os.path.abspath(args.output_dir), formats)
    except BindReportError as e:
        err.write("bind-report: %s\n" % e)
        return EXIT_INPUT
    if args.terminal:
        out.write(render_terminal(model))
    out.write("bind-report: wrote %s\n" % ", ".join(paths.values()))
    return _verdict_exit(model, args, err)


def main(argv=None):
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
