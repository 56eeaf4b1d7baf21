"""bindreport: the controller-side fleet report (model, renderers, files).

Front-end neutral: the Ansible callback `fleetaudit.bindtrace.bind_report`
uses it, and any other front-end can call the same three functions:

    model = build_report({host: {"status", "facts", "msg"}}, baseline=load_baseline(path))
    print(render_terminal(model))
    write_reports(model, outdir, ["json", "md", "html", "junit"])
"""
from .model import (REPORT_KIND, REPORT_SCHEMA, STATUSES, BindReportError, build_report,
                    classify_result, listener_key, load_baseline)
from .render import FORMATS, junit_cases, render
from .terminal import render_terminal, terminal_lines
from .writer import DEFAULT_FORMATS, parse_formats, write_atomic, write_reports

__all__ = ["REPORT_KIND", "REPORT_SCHEMA", "STATUSES", "BindReportError", "build_report",
           "classify_result", "listener_key", "load_baseline", "FORMATS", "junit_cases", "render",
           "render_terminal", "terminal_lines", "DEFAULT_FORMATS", "parse_formats", "write_atomic",
           "write_reports"]
