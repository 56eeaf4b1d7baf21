"""Shape check of one host's bind_trace facts before they enter the report.

Facts come from the hosts, and a broken or compromised host can return any
JSON. One such host must not crash the fleet report (an exception in the
callback loses every host's result): its facts are refused with a reason that
names the first bad field, and the host shows as failed.
"""
from .columns import Records
from .fields import BOOL_FIELDS, INT_FIELDS, LIST_FIELDS, MAP_FIELDS, TEXT_FIELDS

TOP_INTS = ("schema", "lost", "dropped", "summary_full")
TOP_MAPS = ("host", "window", "filters", "counts", "unexpected", "policy")
SCALARS = (str, int, float, bool, type(None))


def _kind(value):
    return "null" if value is None else type(value).__name__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flat_map(where, value):
    if value is None:
        return None
    if not isinstance(value, dict):
        return "%s: expected a mapping or null, got %s" % (where, _kind(value))
    for k, v in value.items():
        if not isinstance(v, SCALARS):
            return "%s.%s: expected a plain value, got %s" % (where, k, _kind(v))
    return None


def _record_problem(where, rec):
    if not isinstance(rec, dict):
        return "%s: expected a mapping, got %s" % (where, _kind(rec))
    for key in INT_FIELDS:
        v = rec.get(key)
        if v is not None and not _is_int(v):
            return "%s.%s: expected an integer or null, got %s" % (where, key, _kind(v))
    for key in TEXT_FIELDS:
        v = rec.get(key)
        if v is not None and not isinstance(v, str):
            return "%s.%s: expected text or null, got %s" % (where, key, _kind(v))
    for key in BOOL_FIELDS:
        v = rec.get(key)
        if v is not None and not isinstance(v, bool):
            return "%s.%s: expected true, false or null, got %s" % (where, key, _kind(v))
    for key in MAP_FIELDS:
        problem = _flat_map("%s.%s" % (where, key), rec.get(key))
        if problem:
            return problem
    for key in LIST_FIELDS:
        v = rec.get(key)
        if v is None:
            continue
        if not isinstance(v, list):
            return "%s.%s: expected a list or null, got %s" % (where, key, _kind(v))
        for i, item in enumerate(v):
            problem = (_flat_map("%s.%s[%d]" % (where, key, i), item) if isinstance(item, dict)
                       else None if isinstance(item, SCALARS) else
                       "%s.%s[%d]: expected a plain value or mapping, got %s" % (
                           where, key, i, _kind(item)))
            if problem:
                return problem
    return None


_NONE = type(None)
_INT_TYPES = {int, _NONE}
_TEXT_TYPES = {str, _NONE}
_MAP_TYPES = {dict, _NONE}
_BOOL_TYPES = {bool, _NONE}
_SCALAR_TYPES = {str, int, float, bool, _NONE}


def _values_look_fine(values_of):
    """values_of(field) -> the field's values (None where absent). True
    means none has a problem; False means some value is not of the common
    exact types (a bool, a subclass, a bad value), and the per-record check
    decides and names it."""
    for fields, allowed in ((INT_FIELDS, _INT_TYPES), (TEXT_FIELDS, _TEXT_TYPES),
                            (BOOL_FIELDS, _BOOL_TYPES)):
        for key in fields:
            if not {type(v) for v in values_of(key)} <= allowed:
                return False
    for key in MAP_FIELDS:
        maps = values_of(key)
        if not {type(m) for m in maps} <= _MAP_TYPES:
            return False
        if not {type(v) for m in maps if m for v in m.values()} <= _SCALAR_TYPES:
            return False
    for key in LIST_FIELDS:
        lists = values_of(key)
        if not {type(v) for v in lists} <= {list, _NONE}:
            return False
        items = [i for v in lists if v for i in v]
        if not {type(i) for i in items} <= _SCALAR_TYPES | {dict}:
            return False
        if not {type(x) for i in items if i.__class__ is dict for x in i.values()} <= _SCALAR_TYPES:
            return False
    return True


def _records_look_fine(records):
    """Fast path over a whole list: the exact type of every checked field,
    one column at a time (a table's distinct values, once per table)."""
    if isinstance(records, Records):
        table = records.table
        fine = table.derived.get(("fine", table.rows))
        if fine is None:
            fine = table.derived[("fine", table.rows)] = _values_look_fine(
                lambda key: table.used(key) + [None])
        return fine
    if not {type(r) for r in records} <= {dict}:
        return False
    return _values_look_fine(lambda key: [r.get(key) for r in records])


def facts_problem(facts, values_checked=False):
    """None when the report can use these facts, else what is wrong (one line).

    values_checked: the caller checks the records' values itself, on the
    distinct values its columns hold (new_values_fine); here only that each
    record list is a list of mappings."""
    if not isinstance(facts, dict):
        return "bind_trace: expected a mapping, got %s" % _kind(facts)
    for key in TOP_INTS:
        v = facts.get(key)
        if v is not None and not _is_int(v):
            return "%s: expected an integer or null, got %s" % (key, _kind(v))
    if facts.get("truncated") is not None and not isinstance(facts["truncated"], bool):
        return "truncated: expected true, false or null, got %s" % _kind(facts["truncated"])
    for key in TOP_MAPS:
        v = facts.get(key)
        if v is not None and not isinstance(v, dict):
            return "%s: expected a mapping or null, got %s" % (key, _kind(v))
    for key in ("host", "window"):
        problem = _flat_map(key, facts.get(key))
        if problem:
            return problem
    duration = (facts.get("window") or {}).get("duration")
    if duration is not None and not _is_number(duration):
        return "window.duration: expected a number or null, got %s" % _kind(duration)
    missing = facts.get("missing_fields")
    if missing is not None and not (isinstance(missing, list)
                                    and all(isinstance(m, str) for m in missing)):
        return "missing_fields: expected a list of names or null"
    for key in ("binds", "listeners"):
        records = facts.get(key)
        if records is None:
            continue
        if not isinstance(records, (list, Records)):
            return "%s: expected a list or null, got %s" % (key, _kind(records))
        if values_checked and (isinstance(records, Records) or {type(r) for r in records} <= {dict}):
            continue
        if _records_look_fine(records):
            continue
        for i, rec in enumerate(records):
            problem = _record_problem("%s[%d]" % (key, i), rec)
            if problem:
                return problem
    return None


def new_values_fine(values):
    """values: {field: distinct values} (new in a table since a host's records
    went in) -> True when none can be a problem (False: run facts_problem)."""
    return _values_look_fine(lambda key: values.get(key, ()))


def baseline_problem(report):
    """None when a loaded baseline report.json can be compared against, else
    what is wrong: a corrupt or tampered baseline must not break the report."""
    hosts = report.get("hosts")
    if not isinstance(hosts, list):
        return "hosts: expected a list, got %s" % _kind(hosts)
    for i, host in enumerate(hosts):
        if not isinstance(host, dict):
            return "hosts[%d]: expected a mapping, got %s" % (i, _kind(host))
        if not isinstance(host.get("name"), str):
            return "hosts[%d].name: expected text, got %s" % (i, _kind(host.get("name")))
        if host.get("facts") is not None:
            problem = facts_problem(host["facts"])
            if problem:
                return "hosts[%d].facts.%s" % (i, problem)
    return None
