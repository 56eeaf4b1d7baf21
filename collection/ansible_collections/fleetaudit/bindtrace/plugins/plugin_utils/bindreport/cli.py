"""bind-report: the fleet report from saved per-host results, outside Ansible.

    salt '*' bindtrace.trace duration=10 --out=json --static > run.json
    bind-report run.json -o reports --baseline reports-yesterday/report.json

Same model, templates and files as the Ansible callback bind_report; the
inputs are read by inputs.py (Salt output or an earlier report.json).
"""
import argparse
import os
import sys

from .inputs import load_results
from .model import BindReportError, build_report, load_baseline
from .terminal import render_terminal
from .writer import DEFAULT_FORMATS, parse_formats, write_reports

GENERATOR = "bind-report"
EXIT_INPUT = 2


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


def run(argv=None, out=sys.stdout, err=sys.stderr):
    args = build_parser().parse_args(argv)
    try:
        formats = parse_formats(args.formats)
        hosts = load_results(args.inputs)
        baseline, baseline_path = _baseline(args.baseline, err)
        model = build_report(hosts, baseline=baseline, baseline_path=baseline_path,
                             generator=GENERATOR)
        paths = write_reports(model, os.path.abspath(args.output_dir), formats)
    except BindReportError as e:
        err.write("bind-report: %s\n" % e)
        return EXIT_INPUT
    if args.terminal:
        out.write(render_terminal(model))
    out.write("bind-report: wrote %s\n" % ", ".join(paths.values()))
    return 0


def main(argv=None):
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
