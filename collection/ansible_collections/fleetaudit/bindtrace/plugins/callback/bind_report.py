# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: bind_report
type: aggregate
short_description: Fleet-wide report of the fleetaudit.bindtrace.trace_bind results
description:
  - Collects every host's result of the C(fleetaudit.bindtrace.trace_bind) task (facts
    C(bind_trace), or the failure / unreachable reason), and at the end of the playbook prints a
    table sorted by host then port with a summary, and writes report.json, report.md,
    report.html and junit.xml.
  - A trace_bind task launched with O(fleetaudit.bindtrace.trace_bind#module:detach=true) (as the
    collection's playbook does) or with C(async) and C(poll=0) returns a job; the host's result
    is then read from the C(fleetaudit.bindtrace.trace_bind_collect) or C(async_status) task
    that collects it. A job launched but never collected is reported as failed, saying so.
  - The summary states the fleet window (earliest start, latest end, start spread) and names
    any host whose window did not overlap the fleet's.
  - Does nothing in a playbook that runs no trace_bind task.
  - Files are written atomically with mode 0640.
requirements:
  - jinja2 (controller)
  - enable in ansible.cfg, e.g. C(callbacks_enabled = fleetaudit.bindtrace.bind_report)
options:
  output_dir:
    description:
      - Directory for the report files, created (mode 0750) when missing.
      - When unset, the ansible-runner artifacts directory when running under ansible-runner
        (it sets C(AWX_ISOLATED_DATA_DIR)), else C(./reports) in the current directory.
    type: path
    ini:
      - section: bind_report
        key: output_dir
    env:
      - name: BIND_REPORT_DIR
  formats:
    description: Report files to write (C(all) for every one).
    type: list
    elements: str
    default: [json, md, html, junit]
    ini:
      - section: bind_report
        key: formats
    env:
      - name: BIND_REPORT_FORMATS
  baseline:
    description:
      - A report.json of an earlier run; the report then lists, per host, listeners new since
        and gone since that baseline. A missing or unreadable baseline is a warning, not an error.
      - A run never overwrites its baseline. When the baseline is the report.json this run would
        write, the callback says so when the trace starts, and writes no report files.
    type: path
    ini:
      - section: bind_report
        key: baseline
    env:
      - name: BIND_REPORT_BASELINE
  history:
    description:
      - A history store to append every run to, and to read the across-runs view from (first and
        last seen of each listener, new and gone since the previous run, the trend of unexpected
        listeners per host).
      - A SQLite file path (created when missing) or a C(postgresql://) DSN (needs psycopg 3 on the
        controller). Query it with C(bind-report history).
    type: str
    ini:
      - section: bind_report
        key: history
    env:
      - name: BIND_REPORT_HISTORY
  outlier_threshold:
    description:
      - Within each inventory group of 3 or more traced hosts, a listener (protocol and port) that at
        most this share of the group's hosts have is flagged as a fleet outlier.
    type: str
    default: "0.2"
    ini:
      - section: bind_report
        key: outlier_threshold
    env:
      - name: BIND_REPORT_OUTLIER_THRESHOLD
  fail_on_outlier:
    description: A host with a fleet outlier fails its junit.xml test case (for CI).
    type: bool
    default: false
    ini:
      - section: bind_report
        key: fail_on_outlier
    env:
      - name: BIND_REPORT_FAIL_ON_OUTLIER
  terminal:
    description: Print the table and summary at the end of the playbook.
    type: bool
    default: true
    ini:
      - section: bind_report
        key: terminal
    env:
      - name: BIND_REPORT_TERMINAL
"""

import os

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

from ansible_collections.fleetaudit.bindtrace.plugins.plugin_utils.bindreport import (
    BindReportError, build_report, classify_result, load_baseline, parse_formats,
    terminal_lines, write_reports)
from ansible_collections.fleetaudit.bindtrace.plugins.plugin_utils.bindreport.annotate import (
    annotate_report, host_groups)
from ansible_collections.fleetaudit.bindtrace.plugins.plugin_utils.bindreport.guard import (
    baseline_overwrite_error)

TRACE_MODULE = "trace_bind"
COLLECT_MODULE = "trace_bind_collect"   # collects a detached trace_bind window
RUNNER_ARTIFACTS_ENV = "AWX_ISOLATED_DATA_DIR"
# line style of bindreport.terminal_lines -> Ansible's colour settings
COLOURS = {"unexpected": C.COLOR_ERROR, "failed": C.COLOR_ERROR, "gone": C.COLOR_WARN,
           "new": C.COLOR_CHANGED}


def _attr(obj, name):
    """ansible-core 2.19 names (result.task, .host, .result); older: leading underscore."""
    value = getattr(obj, name, None)
    return value if value is not None else getattr(obj, "_" + name, None)


def _runs(task, module):
    names = (getattr(task, "resolved_action", None), getattr(task, "action", None))
    return any(n and n.rsplit(".", 1)[-1] == module for n in names)


def _is_trace_task(task):
    return _runs(task, TRACE_MODULE)


def _is_collect_task(task):
    return _runs(task, COLLECT_MODULE)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleetaudit.bindtrace.bind_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._traced = False
        self._results = {}      # host -> the trace_bind task's result
        self._fallback = {}     # host -> a failure / unreachable before trace_bind ran
        self._groups = {}       # host -> its inventory groups (for fleet outliers)
        self._jobs = {}         # host -> async job id of its launched trace_bind

    # -- collect ---------------------------------------------------------
    def v2_playbook_on_task_start(self, task, is_conditional):
        if _is_trace_task(task) and not self._traced:
            self._traced = True
            # say it before the trace window, not after it
            problem = self._overwrite_problem()
            if problem:
                self._display.error("bind_report: %s; this run will write no report files" % problem)

    def _record(self, result, outcome):
        task, host = _attr(result, "task"), _attr(result, "host")
        name = host.get_name()
        self._groups[name] = [g.get_name() for g in host.get_groups()]
        raw = dict(_attr(result, "result") or {})
        jid = raw.get("ansible_job_id")
        detached = (raw.get("bindtrace_job") or {}).get("jid") if _is_trace_task(task) else None
        if _is_trace_task(task) and (detached or jid and not raw.get("finished")) \
                and outcome == "ok":
            # launched detached (or async + poll 0): the result comes with the collecting task
            self._traced = True
            self._jobs[name] = detached or jid
            self._results[name] = {
                "status": "failed", "facts": None, "pending": True,
                "msg": "the trace was launched as job %s but its result was never collected "
                       "(the play ended before its collecting task); the job stops by itself at "
                       "the end of its window" % (detached or jid)}
            return
        entry = classify_result(raw, outcome)
        if _is_collect_task(task) and name in self._jobs:   # trace_bind_collect
            self._results[name] = entry
        elif jid and self._jobs.get(name) == jid:   # the collecting task (async_status)
            if not raw.get("finished") and entry["status"] != "unreachable":
                entry = {"status": "failed", "facts": None,
                         "msg": "async job %s did not finish in time: %s" % (jid, entry["msg"])}
            self._results[name] = entry
        elif _is_trace_task(task):
            self._traced = True
            self._results[name] = entry
        elif entry["status"] != "ok" and self._results.get(name, {}).get("pending"):
            # lost before its job was collected (e.g. unreachable at async_status)
            entry["msg"] = "task %r: %s" % (task.get_name(), entry["msg"])
            self._results[name] = entry
        elif entry["status"] != "ok" and name not in self._results:
            # the host never got to trace_bind: keep why, naming the task
            entry["msg"] = "task %r: %s" % (task.get_name(), entry["msg"])
            entry["facts"] = None
            self._fallback[name] = entry

    def v2_runner_on_ok(self, result):
        task = _attr(result, "task")
        if _is_trace_task(task) or _is_collect_task(task) or self._collects(result):
            self._record(result, "ok")

    def _collects(self, result):
        """An async_status result of a launched trace_bind job."""
        raw = _attr(result, "result") or {}
        return bool(self._jobs) and self._jobs.get(_attr(result, "host").get_name()) == raw.get(
            "ansible_job_id")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    # -- report ----------------------------------------------------------
    def _output_dir(self):
        configured = self.get_option("output_dir")
        if configured:
            return configured
        if os.environ.get(RUNNER_ARTIFACTS_ENV):
            return os.environ[RUNNER_ARTIFACTS_ENV]
        return os.path.abspath("reports")

    def _overwrite_problem(self):
        try:
            formats = parse_formats(self.get_option("formats"))
        except BindReportError:
            return None   # reported where the files are written
        return baseline_overwrite_error(self.get_option("baseline"), self._output_dir(), formats)

    def _baseline(self):
        path = self.get_option("baseline")
        if not path:
            return None, None
        try:
            return load_baseline(path), path
        except BindReportError as e:
            self._display.warning("bind_report: %s; the report has no drift section" % e)
            return None, None

    def v2_playbook_on_stats(self, stats):
        if not self._traced:
            return
        hosts = dict(self._fallback)
        hosts.update(self._results)
        baseline, baseline_path = self._baseline()
        model = build_report(hosts, baseline=baseline, baseline_path=baseline_path,
                             generator="fleetaudit.bindtrace.bind_report")
        try:
            annotate_report(model, groups=host_groups(self._groups),
                            history_target=self.get_option("history"),
                            outlier_threshold=self.get_option("outlier_threshold"),
                            fail_on_outlier=self.get_option("fail_on_outlier"))
        except BindReportError as e:
            self._display.error("bind_report: %s" % e)
        if self.get_option("terminal"):
            for text, style in terminal_lines(model):
                self._display.display(text, color=COLOURS.get(style))
        problem = self._overwrite_problem()
        if problem:
            self._display.error("bind_report: no report files written: %s" % problem)
            return
        outdir = self._output_dir()
        try:
            paths = write_reports(model, outdir, parse_formats(self.get_option("formats")))
        except BindReportError as e:
            self._display.error("bind_report: %s" % e)
            return
        self._display.display("bind_report: wrote %s" % ", ".join(paths.values()))
