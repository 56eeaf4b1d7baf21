"""The fleet report model: one JSON-serialisable dict, fleet -> hosts -> facts.

Every renderer reads only this dict (plus the derived rows of views.py), and
report.json is this dict, so a previous report.json is the baseline of the
next run.
"""
import copy
import json
import operator
import tempfile
import time

from . import parallel
from .parallel import gc_paused
from .factcheck import baseline_problem, facts_problem
from .jsontext import Segment, facts_text, spill_texts
from .sanitize import clean_text, clean_walk
from .window import fleet_window

REPORT_SCHEMA = 1
REPORT_KIND = "bindtrace-fleet-report"
STATUSES = ("ok", "failed", "unreachable", "unsupported")
TOP_PORTS = 10


class ReportModel(dict):
    """The model (a plain dict to every reader, json.dumps and ==) with a
    private cache of derived data: each host's facts as report.json text
    and the table rows, computed once for all renderers. The model is read
    only once built; the caches are keyed by the identity of what they
    were derived from."""

    def __init__(self, *args, **kw):
        dict.__init__(self, *args, **kw)
        self.cache = {}

    def __reduce__(self):   # copies and pickles are plain dicts: no cache, no spill file
        return (dict, (dict(self),))

    def __deepcopy__(self, memo):
        return copy.deepcopy(dict(self), memo)


class BindReportError(Exception):
    """A report input the user can fix (bad baseline, bad output dir): the
    message names the cause and the fix."""


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def classify_result(result, outcome="ok"):
    """One task result dict -> {"status", "facts", "msg"} for build_report.

    outcome is how the task ended ("ok", "failed", "unreachable"; a result
    with failed=true counts as failed): ok -> facts from
    ansible_facts.bind_trace; failed -> msg ("unsupported:" prefix ->
    unsupported); unreachable -> its msg as the reason.
    """
    result = result or {}
    msg = result.get("msg")
    if msg is not None and not isinstance(msg, str):
        msg = json.dumps(msg)
    if msg and msg.startswith("Task failed: "):
        msg = msg[len("Task failed: "):]   # ansible-core 2.19 prefix, says nothing here
    facts = (result.get("ansible_facts") or {}).get("bind_trace")
    facts = facts if isinstance(facts, dict) else None
    if outcome == "unreachable" or result.get("unreachable"):
        return {"status": "unreachable", "facts": None, "msg": msg or "host unreachable"}
    if outcome == "failed" or result.get("failed"):
        status = "unsupported" if (msg or "").startswith("unsupported:") else "failed"
        return {"status": status, "facts": facts, "msg": msg or "task failed without a message"}
    if facts is None:
        return {"status": "failed", "facts": None,
                "msg": "the task returned no ansible_facts.bind_trace"}
    return {"status": "ok", "facts": facts, "msg": None}


_get_count = operator.methodcaller("get", "count")


def _count(record):
    count = record.get("count")
    return count if isinstance(count, int) else 1


def listener_key(listener):
    """Identity of a listener across runs: a restart (new pid) is the same
    listener; another program on the same port is not."""
    return (listener.get("proto"), listener.get("family"), listener.get("addr"),
            listener.get("port"), listener.get("comm"))


def _sort_listeners(listeners):
    return sorted(listeners, key=lambda l: (l.get("port") or 0, str(l.get("proto")),
                                            str(l.get("addr")), str(l.get("comm"))))


def _raw_facts(raw):
    facts = raw.get("facts")
    return facts if isinstance(facts, dict) else None


def _encode_and_check(facts):
    """facts -> (report.json text or None, shape problem or None)."""
    if facts is None:
        return None, None
    text = facts_text(facts)
    # unclean facts are checked again once cleaned (tuples become lists)
    return text, (facts_problem(facts) if text is not None else None)


def _host_entry(name, raw, facts, text_problem, texts):
    """text_problem: _encode_and_check(facts) (text None: the facts need
    cleaning first); texts collects {id(facts): (facts, text)} of the facts
    kept."""
    status = raw.get("status")
    if status not in STATUSES:
        raise BindReportError("host %r: status %r is not one of %s" % (name, status, ", ".join(STATUSES)))
    text, problem = text_problem
    if facts is not None and text is None:
        # lone surrogates (undecodable bytes) or values JSON cannot encode
        facts = clean_walk(facts)
        text = facts_text(facts)
        problem = facts_problem(facts)
    msg = raw.get("msg")
    if problem:  # one broken or hostile host must not break the fleet's report
        status, facts = "failed", None
        msg = ("the host returned malformed bind_trace facts (%s); check that it runs this "
               "collection's trace_bind module" % problem)
    if facts is not None and text is not None:
        texts[id(facts)] = (facts, text)
    binds = (facts or {}).get("binds") or []
    listeners = (facts or {}).get("listeners") or []
    return {
        "name": clean_text(name),
        "status": status,
        "reason": clean_text(msg) if msg and status != "ok" else None,
        "facts": facts,
        "unexpected": {
            # an expired exception allows nothing: counted with the unexpected
            "binds": sum(1 for b in binds if b.get("verdict") in ("unexpected", "expired")),
            "listeners": sum(1 for l in listeners if l.get("verdict") in ("unexpected",
                                                                          "expired")),
        },
        "drift": None,
    }


def load_baseline(path):
    """A previous report.json, checked enough to compute drift from."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise BindReportError("baseline %s does not exist: give the report.json of an earlier run, "
                              "or unset the baseline option" % path)
    except (OSError, ValueError) as e:
        raise BindReportError("baseline %s is not a readable JSON report (%s): give the report.json "
                              "of an earlier run" % (path, e))
    if not isinstance(data, dict) or data.get("kind") != REPORT_KIND:
        raise BindReportError("baseline %s is not a bindtrace fleet report.json" % path)
    if data.get("schema") != REPORT_SCHEMA:
        raise BindReportError("baseline %s has report schema %r, this version reads schema %d: "
                              "use a baseline written by this version" % (path, data.get("schema"),
                                                                          REPORT_SCHEMA))
    problem = baseline_problem(data)
    if problem:
        raise BindReportError("baseline %s is not a usable report (%s): give the report.json of "
                              "an earlier run" % (path, problem))
    return data


def _drift(host, base_host):
    """new / gone listeners of one host against its baseline entry."""
    if host["facts"] is None:
        return {"compared": False, "why": "no trace in this run", "new": [], "gone": []}
    current = host["facts"].get("listeners") or []
    if base_host is None:
        return {"compared": True, "why": "host not in baseline", "new": _sort_listeners(current),
                "gone": []}
    base_facts = base_host.get("facts")
    if not isinstance(base_facts, dict):
        return {"compared": False, "why": "no trace in baseline (%s)" % base_host.get("status"),
                "new": [], "gone": []}
    before = base_facts.get("listeners") or []
    before_keys = {listener_key(l) for l in before}
    now_keys = {listener_key(l) for l in current}
    new, gone, seen = [], [], set()
    for l in current:
        k = listener_key(l)
        if k not in before_keys and k not in seen:
            seen.add(k)
            new.append(l)
    for l in before:
        k = listener_key(l)
        if k not in now_keys and k not in seen:
            seen.add(k)
            gone.append(l)
    return {"compared": True, "why": None, "new": _sort_listeners(new), "gone": _sort_listeners(gone)}


def _top_ports(hosts):
    ports = {}
    for h in hosts:
        facts = h["facts"] or {}
        for kind, records in (("binds", facts.get("binds") or []),
                              ("listeners", facts.get("listeners") or [])):
            for r in records:
                port = r.get("port")
                if not port or r.get("error"):
                    continue
                key = (r.get("proto"), port)
                entry = ports.get(key)
                if entry is None:
                    entry = ports[key] = {"proto": key[0], "port": port, "hosts": set(), "binds": 0,
                                          "listeners": 0}
                entry["hosts"].add(h["name"])
                entry[kind] += _count(r) if kind == "binds" else 1
    ranked = sorted(ports.values(), key=lambda e: (-len(e["hosts"]), -e["listeners"], -e["binds"],
                                                   e["port"], str(e["proto"])))
    return [dict(e, hosts=len(e["hosts"])) for e in ranked[:TOP_PORTS]]


def _summary(hosts, baseline_hosts):
    by_status = {s: sum(1 for h in hosts if h["status"] == s) for s in STATUSES}
    unique = set()
    binds = records = listeners = lost = dropped = 0
    for h in hosts:
        facts = h["facts"] or {}
        records += len(facts.get("binds") or [])
        binds += sum(c if isinstance(c, int) else 1 for c in map(_get_count, facts.get("binds") or []))
        listeners += len(facts.get("listeners") or [])
        lost += facts.get("lost") or 0
        dropped += facts.get("dropped") or 0
        for l in facts.get("listeners") or []:
            unique.add((h["name"], l.get("proto"), l.get("family"), l.get("addr"), l.get("port")))
    summary = {
        "hosts": len(hosts),
        "traced": by_status["ok"], "failed": by_status["failed"],
        "unreachable": by_status["unreachable"], "unsupported": by_status["unsupported"],
        "binds": binds, "bind_records": records, "listeners": listeners,
        "unique_listeners": len(unique),
        "unexpected_listeners": {h["name"]: h["unexpected"]["listeners"] for h in hosts
                                 if h["unexpected"]["listeners"]},
        "unexpected_binds": {h["name"]: h["unexpected"]["binds"] for h in hosts
                             if h["unexpected"]["binds"]},
        "top_ports": _top_ports(hosts),
        "lost": lost, "dropped": dropped,
        "truncated_hosts": [h["name"] for h in hosts if (h["facts"] or {}).get("truncated")],
        "window": fleet_window(hosts),
        "drift": None,
    }
    if baseline_hosts is not None:
        names = {h["name"] for h in hosts}
        summary["drift"] = {
            "new": sum(len(h["drift"]["new"]) for h in hosts),
            "gone": sum(len(h["drift"]["gone"]) for h in hosts),
            "hosts_missing": sorted(n for n in baseline_hosts if n not in names),
        }
    return summary


def _assemble(items, raw_facts, checked, baseline, baseline_path, generated, generator):
    """The model from the hosts' results and their (text, problem) pairs."""
    texts = {}
    hosts = [_host_entry(name, raw, facts, text_problem, texts)
             for (name, raw), facts, text_problem in zip(items, raw_facts, checked)]
    hosts.sort(key=lambda h: h["name"])
    baseline_hosts = None
    baseline_info = None
    if baseline is not None:
        baseline_hosts = {h.get("name"): h for h in baseline.get("hosts") or [] if isinstance(h, dict)}
        baseline_info = {"path": clean_text(baseline_path) if baseline_path else None,
                         "generated": baseline.get("generated"), "hosts": len(baseline_hosts)}
        for h in hosts:
            h["drift"] = _drift(h, baseline_hosts.get(h["name"]))
    model = ReportModel({
        "schema": REPORT_SCHEMA,
        "kind": REPORT_KIND,
        "generated": generated or now_rfc3339(),
        "generator": generator or "bindreport",
        "baseline": baseline_info,
        "summary": _summary(hosts, baseline_hosts),
        "hosts": hosts,
    })
    model.cache["facts_text"] = texts
    return model


# share of the hosts this process encodes when a forked child encodes the
# rest: this process also checks every host, builds the model and its tables
PARENT_SHARE = 0.3
_PENDING = ""    # the child's text, not known yet: assumed encodable


@gc_paused()
def build_report(host_results, baseline=None, baseline_path=None, generated=None, generator=None):
    """host_results: {inventory hostname: {"status", "facts", "msg"}} -> the report model.

    baseline: a loaded earlier report (load_baseline) or None; baseline_path
    only labels it.
    """
    items = list(host_results.items())
    raw_facts = [_raw_facts(raw) if isinstance(raw, dict) else None for _name, raw in items]
    args = (baseline, baseline_path, generated, generator)
    # Encoding the facts is both their UTF-8 check and report.json's text,
    # done once. With a second core, a forked child encodes most hosts while
    # this process encodes the others, checks every host's shape, and builds
    # the model and its tables assuming the child's hosts encode as they are;
    # if one does not (it needs cleaning), the model is built again.
    cut = len(raw_facts)
    child = None
    spill = None
    if len(raw_facts) >= parallel.MIN_ITEMS and parallel.can_fork():
        try:
            spill = tempfile.TemporaryFile(prefix="bindreport-")   # unlinked, mode 0600
        except OSError:   # no usable temporary directory: all in this process
            spill = None
    if spill is not None:
        cut = int(len(raw_facts) * PARENT_SHARE)
        child = parallel.Forked(lambda: spill_texts(raw_facts[cut:], spill))
    try:
        checked = [_encode_and_check(f) for f in raw_facts[:cut]]
        if child is None:
            return _assemble(items, raw_facts, checked, *args)
        pending = [(None, None) if f is None else (_PENDING, facts_problem(f)) for f in raw_facts[cut:]]
        model = _assemble(items, raw_facts, checked + pending, *args)
        from .table import bind_table, listener_rows   # the renderers' tables, while the child works
        bind_table(model)
        listener_rows(model)
    except BaseException:
        if child is not None:
            child.wait()
        raise
    ok, spilled = child.wait()
    if ok:
        rest = [None if where is None else Segment(spill, where[0], where[1]) for where in spilled]
    else:   # the child failed (a full temporary directory...): encode them here
        rest = [None if f is None else facts_text(f) for f in raw_facts[cut:]]
    if any(text is None and f is not None for f, text in zip(raw_facts[cut:], rest)):
        checked += [(text, None if text is None else problem)
                    for text, (_host, problem) in zip(rest, pending)]
        model = _assemble(items, raw_facts, checked, *args)
    else:
        texts = model.cache["facts_text"]
        for f, text in zip(raw_facts[cut:], rest):
            if f is not None and id(f) in texts:
                texts[id(f)] = (f, text)
    model.cache["spill"] = spill   # lives as long as the model
    return model
