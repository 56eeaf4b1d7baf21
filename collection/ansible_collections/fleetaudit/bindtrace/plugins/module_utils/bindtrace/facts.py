"""Options in, bind_trace facts out: the one entry point every front-end calls
(the Ansible module trace_bind, the Salt execution module modules/bindtrace.py),
so option handling, listeners, policy and the facts shape live here only."""
import signal
import time
import traceback

import sys

from . import SCHEMA, BindtraceError
from . import detach, owner, preflight
from .backends import select_backend
from .bounded import DEFAULT_MAX_EVENTS, DEFAULT_MAX_RECORDS, keep_significant
from .cgroupfs import CgroupIndex
from .exposure import annotate
from .filters import make_config, parse_bool, parse_duration, parse_limit, parse_start_at
from .listeners import default_enricher, from_listen, take
from .listens import mark_binds, window_listeners
from .policy import apply_policy, describe, is_client, validate_rules
from .trace import run_window

MAX_NAMED = 20  # failure messages name at most this many records per kind

# Every option a front-end may pass, with its default (the Ansible module's
# argument_spec gives the same defaults; Salt passes only what the user typed).
DEFAULTS = {
    "duration": 10, "mode": "summary", "max_events": None, "pid": None, "ports": None,
    "ignore_errors": True, "comm": None, "uid": None, "netns": "all", "containername": None,
    "scope": "all", "backend": "auto", "hook": "auto", "listeners": True, "allow": None,
    "fail_on_unexpected": False, "max_records": None, "start_at": None, "cmdline": "redacted",
}
# max_events and max_records unset (None) take these; "unlimited" (or 0) is no cap
LIMIT_DEFAULTS = {"max_events": DEFAULT_MAX_EVENTS, "max_records": DEFAULT_MAX_RECORDS}


class SignalStop(object):
    """SIGTERM / SIGINT close the window early; collect_facts then fails cleanly.
    Outside the main thread (a threaded Salt minion) signals cannot be caught
    here: the window then simply runs to its end."""

    def __init__(self):
        self.signum = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, self.handler)
            except ValueError:  # not the main thread
                pass

    def handler(self, signum, _frame):
        self.signum = signum

    def __call__(self):
        return self.signum is not None


def options_with_defaults(options):
    """Reject unknown option names (a typo must not trace everything silently)."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise BindtraceError("unknown option%s %s: expected any of %s" % (
            "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    merged = dict(DEFAULTS)
    merged.update(options)
    return merged


def _unset(value):
    return value is None or value == ""


def caps(mode, max_events, max_records):
    """-> (max_events as given or its default, max_records: a number or None for
    no cap). In events mode a max_events above the records' default, with
    max_records unset, is the records' cap too: the events asked for come back."""
    events = LIMIT_DEFAULTS["max_events"] if _unset(max_events) else max_events
    records = parse_limit(LIMIT_DEFAULTS["max_records"] if _unset(max_records) else max_records,
                          "max_records", "records")
    if _unset(max_records) and not _unset(max_events) and str(mode).strip().lower() == "events":
        asked = parse_limit(max_events, "max_events", "events")
        if asked is None or asked > records:
            records = asked
    return events, records


class Plan(object):
    """One window's validated options (prepare), ready to trace (trace)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def prepare(**options):
    """Validate every option (nothing loads on a bad argument) -> a Plan."""
    o = options_with_defaults(options)
    o["max_events"], max_records = caps(o["mode"], o["max_events"], o["max_records"])
    cfg = make_config(mode=o["mode"], pid=o["pid"], ports=o["ports"],
                      ignore_errors=o["ignore_errors"], comm=o["comm"], uid=o["uid"],
                      netns=o["netns"], containername=o["containername"], scope=o["scope"],
                      max_events=o["max_events"], backend=o["backend"], hook=o["hook"])
    duration = parse_duration(o["duration"])
    start_at = parse_start_at(o["start_at"], time.time())
    rules = validate_rules(o["allow"])
    want_listeners = parse_bool(o["listeners"], "listeners")
    fail = parse_bool(o["fail_on_unexpected"], "fail_on_unexpected")
    if fail and rules is None:
        raise BindtraceError("fail_on_unexpected needs a policy: set allow to a list of rules "
                             "(an empty list allows nothing)")
    cmdline = str(o["cmdline"])
    if cmdline not in owner.CMDLINE_MODES:
        raise BindtraceError("invalid cmdline (%r): expected %s (redacted hides the values of "
                             "password/token/secret/key options)" % (
                                 o["cmdline"], ", ".join(owner.CMDLINE_MODES)))
    return Plan(cfg=cfg, duration=duration, start_at=start_at, allow=o["allow"],
                listeners=want_listeners, fail_on_unexpected=fail, cmdline=cmdline,
                max_records=max_records)


def collect_facts(should_stop=None, **options):
    """Validate everything first (nothing loads on a bad argument), trace one
    window, snapshot listeners, apply the allow rules -> the bind_trace dict.

    should_stop: a callable (e.g. SignalStop()) that ends the window early;
    an early end is an error, since the window is then shorter than asked.
    """
    return trace(prepare(**options), should_stop)


def trace(plan, should_stop=None):
    """Trace one prepared window -> the bind_trace dict (see collect_facts)."""
    cfg, cmdline = plan.cfg, plan.cmdline
    binds, stats, meta = run_window(cfg, plan.duration, should_stop=should_stop,
                                    start_at=plan.start_at)
    if should_stop is not None and should_stop():
        raise BindtraceError("interrupted by signal %s before the window ended; nothing stays "
                             "loaded; rerun the task" % getattr(should_stop, "signum", "?"))
    enricher = default_enricher()
    listeners, info = take(cfg.netns, enricher, cmdline=cmdline) if plan.listeners else (
        [], {"source": None, "why": "listeners: false", "owner_lookup": None})
    idents = owner.Identities(cmdline=cmdline)
    index = CgroupIndex()
    owner.annotate_binds(binds, idents, index)
    for rec in binds:
        annotate(rec)
    listens = meta.get("listens")
    mark_binds(binds, listens)
    # listeners seen during the window and gone at its end are judged too
    if plan.listeners:
        listeners += window_listeners(listeners, listens, lambda l: from_listen(
            l, idents, index, enricher))
    facts = build_facts(cfg, binds, stats, meta, listeners, plan.allow, plan.max_records)
    facts["snapshot"] = info
    facts["listens_full"] = stats.get("listens_full", 0)
    return facts


def failure_of(exc):
    """A front-end's failed result for an exception: a BindtraceError's own
    message (cause and fix), or an internal error (a bug: say so, trace in -vvv)."""
    if isinstance(exc, BindtraceError):
        return {"failed": True, "msg": str(exc)}
    return {"failed": True, "exception": traceback.format_exc(),
            "msg": "internal error in trace_bind: %s: %s; please report it"
                   % (type(exc).__name__, exc)}


def module_result(plan, should_stop=None):
    """A front-end's whole result for one window, as the Ansible module returns
    it (run in the module, or in a detached process whose result is collected
    later: detach.py): facts, or failed + msg naming the cause."""
    try:
        facts = trace(plan, should_stop)
    except Exception as exc:
        return failure_of(exc)
    result = {"changed": False, "ansible_facts": {"bind_trace": facts}}
    failure = unexpected_failure(facts, plan.fail_on_unexpected)
    if failure:
        result.update(failed=True, msg=failure)
    return result


def launch_detached(plan, library=None):
    """Start the plan's window in a detached process (detach.py) and return
    at once -> the job its collecting step reads. Checks what can be checked
    without loading (Linux, root) first, so those errors come at the launch.
    library: the zip this code runs from, kept until the window ends (the
    fast launch); None: an AnsiballZ payload, removed when the module exits,
    so every module is imported first."""
    preflight.check_linux()
    preflight.check_root()
    if library is None:
        detach.preimport(sys.modules[__package__])
    deadline = max(plan.start_at or 0, time.time()) + plan.duration + detach.SLACK_SECONDS
    return detach.launch(lambda: module_result(plan, SignalStop()), deadline, library=library)


def trust_line(hook, missing_fields, lost):
    """One line a reader of the report can weigh the host's results by."""
    if not hook or not hook.get("hook"):
        return None
    parts = ["hook %s (%s, build %s)" % (hook["hook"], hook["where"], hook["build"]),
             "sees %s" % hook["sees"]]
    if hook.get("not_used"):
        parts.append("cheaper hooks not used: %s" % hook["not_used"])
    parts.append("missing fields: %s" % (", ".join(missing_fields) or "none"))
    parts.append("lost: %d" % lost)
    return "; ".join(parts)


def build_facts(cfg, binds, st, meta, listeners=None, policy_rules=None,
                max_records=DEFAULT_MAX_RECORDS):
    """The bind_trace facts of DESIGN.md from one window's results. The policy
    judges every record; then at most max_records binds and max_records
    listeners are returned, the most significant first (bounded.py), with
    exact totals in counts (None: no cap)."""
    listeners = listeners or []
    unexpected = apply_policy(policy_rules, binds, listeners)
    total = sum(b.get("count", 1) for b in binds)
    clients = sum(b.get("count", 1) for b in binds if is_client(b))
    kept_binds, omitted_binds = keep_significant(binds, max_records)
    kept_listeners, omitted_listeners = keep_significant(listeners, max_records)
    if omitted_binds or omitted_listeners:
        kept = set(map(id, kept_binds)) | set(map(id, kept_listeners))
        shown = {kind: [r for r in recs if id(r) in kept] for kind, recs in unexpected.items()}
    else:
        shown = unexpected
    hook = meta.get("hook") or {}
    return {
        "schema": SCHEMA,
        "host": {"hostname": meta["hostname"], "kernel": meta["kernel"], "backend": meta["backend"],
                 "backend_reason": meta["backend_reason"], "node": meta["hostname"],
                 "netns": meta["own_netns"], "hook": hook.get("hook"),
                 "hook_build": hook.get("build"), "hook_where": hook.get("where"),
                 "hook_sees": hook.get("sees"), "hook_not_used": hook.get("not_used"),
                 "trust": trust_line(hook, meta["missing_fields"], st["lost"])},
        "window": {"start": meta["start"], "end": meta["end"], "duration": meta["duration"]},
        "mode": cfg.mode,
        "filters": cfg.as_filters(),
        "binds": kept_binds,
        "listeners": kept_listeners,
        "lost": st["lost"],
        "dropped": st["dropped"],
        "truncated": (st["dropped"] > 0 or st.get("summary_full", 0) > 0 or omitted_binds > 0
                      or omitted_listeners > 0),
        "summary_full": st.get("summary_full", 0),
        "unexpected": shown,
        "counts": {"binds": total, "records": len(binds), "listeners": len(listeners),
                   "client_binds": clients,
                   "unexpected_binds": len(unexpected["binds"]),
                   "unexpected_listeners": len(unexpected["listeners"]),
                   "omitted_binds": omitted_binds, "omitted_listeners": omitted_listeners,
                   "lost": st["lost"], "dropped": st["dropped"]},
        "missing_fields": meta["missing_fields"],
        "policy": {"rules": len(policy_rules or [])},
    }


def unexpected_failure(facts, fail_on_unexpected):
    """The failure message when fail_on_unexpected is set and something is
    unexpected, else None: 'unexpected listeners on web1: TCP 0.0.0.0:8080 nc
    pid 77; ...' (cause and fix)."""
    if fail_on_unexpected is None or not parse_bool(fail_on_unexpected, "fail_on_unexpected"):
        return None
    parts = []
    for kind in ("listeners", "binds"):
        recs = facts["unexpected"][kind]
        if not recs:
            continue
        names = [describe(r) for r in recs[:MAX_NAMED]]
        more = " and %d more" % (len(recs) - MAX_NAMED) if len(recs) > MAX_NAMED else ""
        host = facts["host"]["hostname"]
        parts.append("unexpected %s on %s: %s%s" % (kind, host, ", ".join(names), more))
    unchecked = incomplete_message(facts)
    if not parts:
        return unchecked
    return ("; ".join(parts) + ". No allow rule matches them: stop them, or add a rule to allow "
            "(e.g. {port: N, proto: tcp, comm: NAME})" + ("; " + unchecked if unchecked else ""))


# counter -> (what happened to those binds, the fix)
INCOMPLETE = (
    ("summary_full", "distinct binds not recorded (summary table full)",
     "trace a shorter window or fewer ports"),
    ("lost", "binds lost (ring buffer full)", "use mode: summary, which counts every bind"),
    ("dropped", "binds dropped past max_events", "raise max_events or use mode: summary"),
    ("listens_full", "listening sockets not recorded (listen table full)",
     "trace a shorter window or fewer ports"),
)


def incomplete_message(facts):
    """Binds the policy never saw (a flood can push a forbidden bind out of a
    full table): with fail_on_unexpected that fails the task, closed, else None."""
    missed = [(facts.get(key) or 0, what, fix) for key, what, fix in INCOMPLETE]
    missed = [m for m in missed if m[0]]
    if not missed:
        return None
    return ("the allow rules could not check every bind on %s: %s; rerun the task (%s)" % (
        facts["host"]["hostname"], ", ".join("%d %s" % (m[0], m[1]) for m in missed),
        "; ".join(m[2] for m in missed)))


def host_support(backend="auto"):
    """-> (True, why this backend) or (False, the cause and the fix), loading
    nothing: for a front-end that must say up front whether it can trace here
    (Salt's __virtual__)."""
    try:
        _cls, reason = select_backend(make_config(backend=backend), load=False)
    except (BindtraceError, ImportError, OSError) as exc:
        return False, str(exc)
    return True, reason
