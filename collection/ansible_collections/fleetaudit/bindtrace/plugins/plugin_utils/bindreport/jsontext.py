"""report.json, both ways: readable, diffable JSON text of the model, and the
model's hosts back from a report.json of schema 2 (this writer) or schema 1
(earlier versions: one object per record).

Schema 2 (see README, "report.json") keeps every host's facts where they were
(hosts[].facts), except its record lists - facts.binds, facts.listeners,
facts.unexpected.binds, facts.unexpected.listeners - which point into one
table per list kind at the end of the file:

    "binds": {"table": "binds", "start": 0, "count": 200}
    "unexpected": {"binds": {"table": "binds", "rows": [0, 7, 9]}, ...}
    "tables": {"binds": {"rows": N, "columns": {
        "port": {"values": [22, 80, ...], "codes": [1, 0, 0, ...]}, ...}}}

Record i of a table is {field: values[codes[i]]} over its columns, a null code
meaning the record has no such key. No key is repeated per record, and a value
a fleet repeats (a port, a command, a container) is written once per column.
"""
import json

from .columns import Records, Table, Unencodable

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
compact = _ENCODER.encode

SCHEMA = 2
# the record lists of a host's facts that go to tables: (path in facts, table name)
RECORD_LISTS = ((("binds",), "binds"), (("listeners",), "listeners"),
                (("unexpected", "binds"), "unexpected.binds"),
                (("unexpected", "listeners"), "unexpected.listeners"))
REF_KEYS = ("table", "start", "count")   # a host's records: rows start .. start + count - 1
PICK_KEYS = ("table", "rows")            # chosen rows (a host's unexpected binds among its binds)


def pretty(value, level=0, cached=None, depth=None):
    """value -> JSON text; continuation lines indented to `level` steps.
    cached: {id(obj): (obj, text)} of subtrees whose text is known (at the
    level where they appear), used when the very same object is met.
    depth: objects deeper than this many levels are on one line (None: all
    expanded), except one holding a cached subtree."""
    if cached:
        hit = cached.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
    pad = "  " * (level + 1)
    if isinstance(value, dict) and value and (depth is None or depth > 0 or (
            cached and any(id(v) in cached for v in value.values()))):
        deeper = None if depth is None else depth - 1
        items = [pad + compact(k) + ": " + pretty(v, level + 1, cached, deeper) for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, Records):
        value = list(value)
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value) and (depth is None or depth > 0):
        return "[\n" + pad + (",\n" + pad).join(map(compact, value)) + "\n" + "  " * level + "]"
    return compact(value)


HOST_DEPTH = 2   # report.json: a host's keys and its facts' keys one per line, their values on it


def get_path(facts, path):
    """facts[path[0]][path[1]]..., or None."""
    value = facts
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def set_path(facts, path, value):
    for key in path[:-1]:
        facts = facts[key]
    facts[path[-1]] = value


def is_record_list(value):
    return isinstance(value, Records) or (
        isinstance(value, list) and bool(value) and {type(r) for r in value} <= {dict})


def _tables(hosts):
    """-> ({table name: Table}, {id(records): (records, reference text)}): the
    model's own tables when every host's list of a kind is a slice of one
    table, else a table built here from the hosts' lists. Chosen rows of a
    table written here (a host's unexpected binds among its binds) are
    written as those rows."""
    tables, refs, written = {}, {}, {}
    for path, name in RECORD_LISTS:
        lists = [get_path(h.get("facts"), path) for h in hosts]
        lists = [r for r in lists if is_record_list(r) and len(r)]   # [] stays []
        picked = [r for r in lists if isinstance(r, Records) and not r.contiguous and id(r.table) in written]
        for r in picked:
            refs[id(r)] = (r, compact({"table": written[id(r.table)], "rows": list(r.rows)}))
        lists = [r for r in lists if id(r) not in refs]
        if not lists:
            continue
        owners = {id(r.table) for r in lists if isinstance(r, Records)}
        if len(owners) == 1 and all(isinstance(r, Records) and r.contiguous for r in lists) \
                and id(lists[0].table) not in written:
            table = lists[0].table
            placed = lists
        else:
            table = Table(name)
            placed = [table.add(r) for r in lists]
        tables[name], written[id(table)] = table, name
        for r, where in zip(lists, placed):
            refs[id(r)] = (r, compact({"table": name, "start": where.start, "count": len(where)}))
    return tables, refs


def report_text(model):
    """The whole report.json."""
    return "".join(report_parts(model))


def report_parts(model):
    """report.json as str pieces, made as the writer takes them (the text of
    a big fleet is never whole in memory)."""
    hosts = model["hosts"]
    tables, refs = _tables(hosts)
    yield "{\n"
    yield '  "schema": %s,\n' % compact(SCHEMA)
    for key in ("kind", "generated", "generator"):
        yield '  "%s": %s,\n' % (key, compact(model[key]))
    yield '  "baseline": %s,\n' % pretty(model["baseline"], 1)
    yield '  "summary": %s,\n' % pretty(model["summary"], 1)
    yield '  "hosts": [\n'
    for i, host in enumerate(hosts):
        end = ",\n" if i < len(hosts) - 1 else "\n"
        yield "    " + pretty(host, 2, refs, HOST_DEPTH) + end
    yield '  ],\n  "tables": {'
    for i, (name, table) in enumerate(tables.items()):
        yield '\n    %s: ' % compact(name) if i == 0 else ',\n    %s: ' % compact(name)
        yield from table.to_json_parts(4)
    yield "\n  }\n}\n" if tables else "}\n}\n"


def expand(doc):
    """A report.json document (schema 1 or 2) -> the same document with the
    hosts' record lists in place (Records of the file's tables for schema 2;
    schema 1 has them inline). The hosts that change are copies: the
    caller's document stays as it was apart from "tables", which goes. A
    malformed schema-2 document raises ValueError naming the bad part; the
    caller says which file."""
    if doc.get("schema") == 1:
        return doc
    if doc.get("schema") != SCHEMA:
        raise ValueError("report schema %r: this version reads schemas 1 and 2" % (doc.get("schema"),))
    specs = doc.get("tables", {})   # none: every record list is inline, as in schema 1
    if not isinstance(specs, dict):
        raise ValueError("tables: expected a mapping of record tables")
    tables = {name: Table.from_json(name, spec, "tables.%s" % name) for name, spec in specs.items()}
    hosts = doc.get("hosts")
    if isinstance(hosts, list):
        doc["hosts"] = [_expand_host(i, host, tables) for i, host in enumerate(hosts)]
    doc.pop("tables", None)
    return doc


def _expand_host(i, host, tables):
    facts = host.get("facts") if isinstance(host, dict) else None
    if not isinstance(facts, dict):
        return host
    facts = dict(facts)
    if isinstance(facts.get("unexpected"), dict):
        facts["unexpected"] = dict(facts["unexpected"])
    for path, _name in RECORD_LISTS:
        ref = get_path(facts, path)
        if not isinstance(ref, dict):
            continue
        here = "hosts[%d].facts.%s" % (i, ".".join(path))
        table = tables.get(ref.get("table")) if isinstance(ref.get("table"), str) else None
        if set(ref) == set(PICK_KEYS):
            rows = ref["rows"]
            if table is None or not isinstance(rows, list) or not all(
                    isinstance(n, int) and not isinstance(n, bool) and 0 <= n < table.rows for n in rows):
                raise ValueError("%s: %s is not a list of rows of a table of this file" % (here, compact(ref)))
            set_path(facts, path, Records(table, None, rows=rows))
            continue
        if set(ref) != set(REF_KEYS):
            raise ValueError("%s: expected a list of records, {\"table\", \"start\", \"count\"} or "
                             "{\"table\", \"rows\"}" % here)
        start, count = ref["start"], ref["count"]
        if table is None or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                    for n in (start, count)) or start + count > table.rows:
            raise ValueError("%s: %s is not a row range of a table of this file" % (here, compact(ref)))
        set_path(facts, path, Records(table, start, start + count))
    return dict(host, facts=facts)


def loads(text):
    """report.json text (schema 1 or 2) -> the document with every host's
    record lists in place, as the model holds them (== the model that wrote it)."""
    return expand(json.loads(text))


def plain(doc):
    """A report document with its Records as plain lists of dicts (for json.dumps, jq-like code)."""
    if isinstance(doc, Records):
        return list(doc)
    if isinstance(doc, dict):
        return {k: plain(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [plain(v) for v in doc]
    return doc


def encodable(value):
    """True when value (a facts tree without its record lists) can go into a
    UTF-8 JSON file as it is."""
    try:
        compact(value).encode("utf-8")
        return True
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return False


__all__ = ["pretty", "compact", "report_text", "report_parts", "expand", "loads", "plain", "encodable",
           "Unencodable"]
