"""The fleet report model: one JSON-serialisable dict, fleet -> hosts -> facts.

Every renderer reads only this dict (plus the derived rows of views.py), and
report.json is this dict, so a previous report.json is the baseline of the
next run.
"""
import collections
import copy
import itertools
import json
import operator
import time
from array import array

from .columns import Records, Table, Unencodable, count_sum, fields
from .factcheck import baseline_problem, facts_problem, new_values_fine
from .jsontext import RECORD_LISTS, SCHEMA, encodable, expand, get_path, is_record_list, set_path
from .gcpause import gc_paused
from .sanitize import clean_text, clean_walk
from .window import fleet_window

REPORT_SCHEMA = SCHEMA    # report.json: 2 (columns); load_baseline and inputs read 1 too
READ_SCHEMAS = (1, SCHEMA)
REPORT_KIND = "bindtrace-fleet-report"
STATUSES = ("ok", "failed", "unreachable", "unsupported")
TOP_PORTS = 10


class ReportModel(dict):
    """The model (a plain dict to every reader and ==) with the fleet's
    record tables (columns.py: each host's facts.binds, .listeners,
    .unexpected.binds/.listeners are Records, slices of these) and a private
    cache of derived data (the table rows), computed once for all renderers.
    The model is read only once built; the caches are keyed by the identity
    of what they were derived from."""

    def __init__(self, *args, **kw):
        dict.__init__(self, *args, **kw)
        self.cache = {}
        self.tables = {}

    def __reduce__(self):   # copies and pickles are plain dicts (records as lists): no cache
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


def _count_value(count):
    return count if isinstance(count, int) else 1


def _count(record):
    return _count_value(record.get("count"))


def _failing(verdict):
    # an expired exception allows nothing: counted with the unexpected
    return verdict in ("unexpected", "expired")


def _count_failing(records):
    if isinstance(records, Records):
        return records.count("verdict", _failing)
    return sum(1 for r in records if _failing(r.get("verdict")))


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


def plain_facts(facts):
    """facts with Records as plain lists of dicts (to clean or copy them)."""
    out = dict(facts)
    if isinstance(out.get("unexpected"), dict):
        out["unexpected"] = dict(out["unexpected"])
    for path, _name in RECORD_LISTS:
        value = get_path(out, path)
        if isinstance(value, Records):
            set_path(out, path, list(value))
    return out


def _ingest(facts, tables):
    """Checked facts -> a copy whose record lists are Records of the model's
    tables. Raises Unencodable (tables left as they were) when some value
    cannot go into report.json as it is."""
    out = dict(facts)
    unexpected = out.get("unexpected")
    if isinstance(unexpected, dict):
        unexpected = out["unexpected"] = dict(unexpected)
    lists = [(path, name, get_path(out, path)) for path, name in RECORD_LISTS]
    lists = [(path, name, value) for path, name, value in lists if is_record_list(value)]
    rest = {k: v for k, v in out.items() if k not in ("binds", "listeners", "unexpected")}
    if isinstance(unexpected, dict):
        rest["unexpected"] = {k: v for k, v in unexpected.items()
                              if not any(path == ("unexpected", k) for path, _n, _v in lists)}
    elif unexpected is not None:
        rest["unexpected"] = unexpected
    for key in ("binds", "listeners"):
        if key in out and not any(path == (key,) for path, _n, _v in lists):
            rest[key] = out[key]
    if not encodable(rest):
        raise Unencodable("facts")
    marks = [(tables[name], tables[name]._mark()) for _path, name, _value in lists]
    added = {}
    try:
        for path, name, value in lists:
            # a host's unexpected binds (listeners) are some of its binds
            # (listeners): rows of that table, not copies
            among = PICKED_FROM.get(path)
            rows = _picked_rows(value, get_path(facts, among), added[among]) if among in added else None
            if rows is not None:
                set_path(out, path, Records(added[among].table, None, rows=rows))
                continue
            added[path] = tables[name].add(value)
            set_path(out, path, added[path])
    except BaseException:
        for table, mark in reversed(marks):
            table._rollback(mark)
        raise
    return out


CHECKED_TABLES = ("binds", "listeners")   # the record lists facts_problem checks
PICKED_FROM = {("unexpected", "binds"): ("binds",), ("unexpected", "listeners"): ("listeners",)}


def _picked_rows(sub, full, placed):
    """Rows of placed (where full's records went) holding sub's records, when
    sub is a subsequence of full (by ==), else None."""
    if isinstance(sub, Records) and isinstance(full, Records) and sub.table is full.table \
            and full.contiguous:
        if sub.rows and (min(sub.rows) < full.start or max(sub.rows) >= full.stop):
            return None
        return list(map((placed.start - full.start).__add__, sub.rows))
    if isinstance(sub, Records) or isinstance(full, Records):
        return None   # a report.json input that kept them apart: they are not copies
    rows, j, n = [], 0, len(full)
    for item in sub:
        while j < n and full[j] != item:
            j += 1
        if j == n:
            return None
        rows.append(placed.start + j)
        j += 1
    return rows


def _checked_facts(facts, tables):
    """-> (facts in the model or None, shape problem or None). The records'
    values are checked on the distinct values they add to the columns (a
    fleet repeats them); only when one looks wrong are the records checked
    one by one, to name the first bad one."""
    if facts is None:
        return None, None
    # records read from a schema-2 report.json are checked on their source
    # table's distinct values (once per table), not on what they add here
    from_table = any(isinstance(facts.get(key), Records) for key in CHECKED_TABLES)
    problem = facts_problem(facts, values_checked=not from_table)
    if problem:
        return None, problem
    marks = {name: table._mark() for name, table in tables.items()}
    try:
        out = _ingest(facts, tables)
    except Unencodable:
        # lone surrogates (undecodable bytes) or values JSON cannot encode
        facts = clean_walk(plain_facts(facts))
        problem = facts_problem(facts)
        if problem:
            return None, problem
        try:
            return _ingest(facts, tables), None
        except Unencodable as e:
            return None, "a value report.json cannot hold (%s)" % e
    if from_table or all(new_values_fine(tables[name].values_since(marks[name])) for name in CHECKED_TABLES):
        return out, None
    problem = facts_problem(facts)
    if problem:
        for name, table in tables.items():
            table._rollback(marks[name])
        return None, problem
    return out, None


def _host_entry(name, raw, tables):
    status = raw.get("status")
    if status not in STATUSES:
        raise BindReportError("host %r: status %r is not one of %s" % (name, status, ", ".join(STATUSES)))
    facts, problem = _checked_facts(_raw_facts(raw), tables)
    msg = raw.get("msg")
    if problem:  # one broken or hostile host must not break the fleet's report
        status, facts = "failed", None
        msg = ("the host returned malformed bind_trace facts (%s); check that it runs this "
               "collection's trace_bind module" % problem)
    binds = (facts or {}).get("binds") or []
    listeners = (facts or {}).get("listeners") or []
    return {
        "name": clean_text(name),
        "status": status,
        "reason": clean_text(msg) if msg and status != "ok" else None,
        "facts": facts,
        "unexpected": {
            # an expired exception allows nothing: counted with the unexpected
            "binds": _count_failing(binds),
            "listeners": _count_failing(listeners),
        },
        "drift": None,
    }


def expand_checked(doc, source, schema_fix, unusable, unusable_fix):
    """A report.json's tables expanded in place (jsontext.expand), once its
    schema is one this version reads; else one BindReportError: "<source> has
    report schema X..." + schema_fix, or "<unusable> (<fault>)" + unusable_fix."""
    if doc.get("schema") not in READ_SCHEMAS:
        raise BindReportError("%s has report schema %r, this version reads schemas 1 and 2%s"
                              % (source, doc.get("schema"), schema_fix))
    try:
        expand(doc)
    except ValueError as e:
        raise BindReportError("%s (%s)%s" % (unusable, e, unusable_fix))


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
    expand_checked(data, "baseline %s" % path, ": use a baseline written by this version or an "
                   "earlier one", "baseline %s is not a usable report" % path,
                   ": give the report.json of an earlier run")
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


def _port_key(port):
    return bool(port)


def _rows_by_table(hosts, key):
    """(table, [(host name, Records)]) when every host's list `key` is a
    contiguous slice of one table (a model's own), else None."""
    table, out = None, []
    for h in hosts:
        records = (h["facts"] or {}).get(key) or []
        if not records:
            continue
        if not isinstance(records, Records) or not records.contiguous or (table is not None
                                                                          and records.table is not table):
            return None
        table = records.table
        out.append((h["name"], records))
    return table, out


def _port_counts_columns(hosts, key, host_ids):
    """{(proto, port): [host ids set, records, count sum]} of the records
    `key` with a port and no error, counted on the columns: each row's
    (proto, port, error) codes as one int, then per distinct (key, count)
    and (key, host), never per record. host_ids: {host name: id}."""
    found = _rows_by_table(hosts, key)
    if found is None:
        return None
    table, slices = found
    if not slices:
        return {}
    hosts_col = array("I")
    for name, records in slices:
        hosts_col.extend(array("I", [host_ids[name]]) * len(records))
    if all(a.stop == b.start for (_n, a), (_m, b) in zip(slices, slices[1:])):
        whole = range(slices[0][1].start, slices[-1][1].stop)   # the hosts' rows, back to back
    else:
        whole = [r for _name, records in slices for r in records.rows]
    proto, port, error, counts = (table.codes_of(f, whole) for f in ("proto", "port", "error", "count"))
    proto_v, port_v = table._padded("proto", None), table._padded("port", None)
    port_ok, failed = table.mapped("port", _port_key), table.mapped("error", bool)
    count_v = table.mapped("count", _count_value)
    n_port, n_error, n_count, n_hosts = len(port_v), len(failed), len(count_v), len(host_ids)
    mul, add = operator.mul, operator.add
    combos = list(map(add, map(mul, map(add, map(mul, proto, itertools.repeat(n_port)), port),
                               itertools.repeat(n_error)), error))
    keys, index, kid_of = [], {}, {}
    for combo in set(combos):
        p, rest = divmod(combo, n_port * n_error)
        q, e = divmod(rest, n_error)
        if port_ok[q] and not failed[e]:
            k = (proto_v[p], port_v[q])
            if k not in index:
                index[k] = len(keys)
                keys.append(k)
            kid_of[combo] = index[k]
    drop = len(keys)   # rows without a port, or failed
    kids = list(map(kid_of.get, combos, itertools.repeat(drop)))
    out = {k: [set(), 0, 0] for k in keys}
    for x, n in collections.Counter(map(add, map(mul, kids, itertools.repeat(n_count)), counts)).items():
        kid, c = divmod(x, n_count)
        if kid != drop:
            entry = out[keys[kid]]
            entry[1] += n
            entry[2] += n * count_v[c]
    for x in set(map(add, map(mul, kids, itertools.repeat(n_hosts)), hosts_col)):
        kid, h = divmod(x, n_hosts)
        if kid != drop:
            out[keys[kid]][0].add(h)
    return out


def _top_ports(hosts):
    host_ids = {}
    for h in hosts:
        host_ids.setdefault(h["name"], len(host_ids))
    binds = _port_counts_columns(hosts, "binds", host_ids)
    listeners = _port_counts_columns(hosts, "listeners", host_ids)
    if binds is None or listeners is None:
        return _top_ports_rows(hosts)
    ports = {}
    for kind, found in (("binds", binds), ("listeners", listeners)):
        for key, (ids, records, total) in found.items():
            entry = ports.get(key)
            if entry is None:
                entry = ports[key] = {"proto": key[0], "port": key[1], "hosts": set(), "binds": 0,
                                      "listeners": 0}
            entry["hosts"] |= ids
            entry[kind] += total if kind == "binds" else records
    return _ranked_ports(ports)


def _ranked_ports(ports):
    ranked = sorted(ports.values(), key=lambda e: (-len(e["hosts"]), -e["listeners"], -e["binds"],
                                                   e["port"], str(e["proto"])))
    return [dict(e, hosts=len(e["hosts"])) for e in ranked[:TOP_PORTS]]


def _top_ports_rows(hosts):
    """_top_ports record by record (hosts whose records are plain lists)."""
    ports = {}
    for h in hosts:
        facts = h["facts"] or {}
        for kind, rows in (("binds", fields(facts.get("binds") or [], "proto", "port", "error", "count")),
                           ("listeners", fields(facts.get("listeners") or [], "proto", "port", "error"))):
            for row in rows:
                proto, port, error = row[:3]
                if not port or error:
                    continue
                key = (proto, port)
                entry = ports.get(key)
                if entry is None:
                    entry = ports[key] = {"proto": key[0], "port": port, "hosts": set(), "binds": 0,
                                          "listeners": 0}
                entry["hosts"].add(h["name"])
                entry[kind] += _count_value(row[3]) if kind == "binds" else 1
    return _ranked_ports(ports)


def _summary(hosts, baseline_hosts):
    by_status = {s: sum(1 for h in hosts if h["status"] == s) for s in STATUSES}
    unique = set()
    binds = records = listeners = lost = dropped = 0
    for h in hosts:
        facts = h["facts"] or {}
        records += len(facts.get("binds") or [])
        binds += count_sum(facts.get("binds") or [])
        listeners += len(facts.get("listeners") or [])
        lost += facts.get("lost") or 0
        dropped += facts.get("dropped") or 0
        for proto, family, addr, port in fields(facts.get("listeners") or [], "proto", "family", "addr", "port"):
            unique.add((h["name"], proto, family, addr, port))
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


def new_tables():
    """The model's record tables, one per record list of the facts."""
    return {name: Table(name) for _path, name in RECORD_LISTS}


@gc_paused()
def build_report(host_results, baseline=None, baseline_path=None, generated=None, generator=None):
    """host_results: {inventory hostname: {"status", "facts", "msg"}} -> the report model.

    baseline: a loaded earlier report (load_baseline) or None; baseline_path
    only labels it. Each host's records go into the model's tables (columns),
    in the order of the hosts (by name); a record list that is already
    Records (a schema-2 report.json input) is copied column by column.
    """
    items = sorted(host_results.items(), key=lambda kv: clean_text(kv[0]))
    tables = new_tables()
    hosts = [_host_entry(name, raw if isinstance(raw, dict) else {}, tables) for name, raw in items]
    hosts.sort(key=lambda h: h["name"])
    for table in tables.values():
        table.vacuum()
    baseline_hosts = None
    baseline_info = None
    if baseline is not None:
        if "tables" in baseline:   # a schema-2 report.json as json.load gives it
            try:
                baseline = expand(dict(baseline))
            except ValueError as e:
                raise BindReportError("baseline is not a usable report (%s): give the report.json of "
                                      "an earlier run" % e)
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
    model.tables = tables
    return model
