"""The bind table of the whole fleet, column by column, made once per model
and shared by the terminal, Markdown and HTML renderers.

Same rows, order and columns as the one-dict-per-row form the tests check it
against (tests/helpers/report_rows.py), but
held as one list per column (no dict per row), and each renderer escapes
every distinct value once (Cells) instead of every cell: a fleet repeats the
same host names, commands, addresses and ports over and over."""
import itertools
import operator

from . import views
from .fields import CELLS

_EMPTY = {}


def record_cell(name, rec):
    return CELLS[name](rec)


class Cells(dict):
    """raw value -> rendered cell, computed on first use."""

    def __init__(self, render):
        dict.__init__(self)
        self.render = render

    def __missing__(self, value):
        text = self[value] = self.render(value)
        return text


def _cache(model):
    cache = getattr(model, "cache", None)
    return cache if cache is not None else {}


def _port(p):
    return p if isinstance(p, int) else -1


# the fields of a bind the table reads, fetched in one pass per record
FIELDS = ("port", "proto", "addr", "pid", "comm", "verdict", "opts", "if", "if_index", "error",
          "count", "user", "k8s", "container", "requested_addr", "requested_port", "exposure",
          "listened", "backlog", "exe", "unit", "socket_unit", "package")
_GET = operator.itemgetter(*FIELDS)


def _fields(binds):
    try:
        return list(map(_GET, binds))
    except KeyError:   # facts without some keys: .get, and count defaults to 1
        return [tuple(b.get(k, 1 if k == "count" else None) for k in FIELDS) for b in binds]


def _sort_key(v):
    # as views._sort_key, after the host
    return (v[0] if isinstance(v[0], int) else -1, str(v[1]), str(v[2]),
            v[3] if isinstance(v[3], int) else -1, str(v[4]))


def _sorted_fields(model):
    """([host name per row], [FIELDS tuple per row]) sorted as
    report_rows.bind_rows: by host, then port, proto, addr, pid, comm; stable. The
    hosts are sorted by name already, so each run of same-named hosts is
    sorted on its own."""
    names, rows = [], []
    for name, group in itertools.groupby(model["hosts"], key=lambda h: h["name"]):
        values = []
        for host in group:
            values.extend(_fields((host["facts"] or _EMPTY).get("binds") or ()))
        values.sort(key=_sort_key)
        rows.extend(values)
        names.extend([name] * len(values))
    return names, rows


def _if_name(name, index):
    if name:
        return name
    # as ig's IF: empty when the socket is not bound to a device; the index when no name
    return "" if not index else str(index)


IDENTITY = ("k8s_node", "k8s_namespace", "k8s_pod", "k8s_container")
_TEXT_TYPES = {str, type(None)}


def _text_key(value):
    # identity values are any scalar: str() keeps 1 and True apart in Cells
    # exactly str (a str subclass, e.g. Ansible's unsafe text, becomes plain str)
    return value if value is None or value.__class__ is str else str(value)


class BindTable(object):
    """columns: {row key: [value per row]}, in the order of bind_rows."""

    def __init__(self, model):
        names, rows = _sorted_fields(model)
        if rows:
            (port, proto, addr, pid, comm, verdict, opts, ifname, if_index, error, count, user,
             k8s, container, req_addr, req_port, exposure, listened, backlog, exe, unit,
             socket_unit, package) = map(list, zip(*rows))
        else:
            (port, proto, addr, pid, comm, verdict, opts, ifname, if_index, error, count, user,
             k8s, container, req_addr, req_port, exposure, listened, backlog, exe, unit,
             socket_unit, package) = [[] for _field in FIELDS]
        k8s = [k or _EMPTY for k in k8s]
        containers = [c or _EMPTY for c in container]
        cols = {
            "host": names,
            "verdict": [v or "-" for v in verdict],
            "pid": pid, "comm": comm, "opts": opts, "proto": proto,
            # a failed bind shows what it asked for (record.py's ADDR/PORT cells)
            "addr": [r if e and r else a for a, e, r in zip(addr, error, req_addr)],
            "port": [r if e and r is not None else p for p, e, r in zip(port, error, req_port)],
            "exposure": exposure, "exe": exe, "package": package,
            "unit": [su or u for u, su in zip(unit, socket_unit)],
            "listened": [record_cell("listened", {"listened": li, "backlog": bl})
                         for li, bl in zip(listened, backlog)],
            "if": list(map(_if_name, ifname, if_index)),
            "error": error, "count": count, "user": user,
            "k8s_node": [k.get("node") for k in k8s],
            "k8s_namespace": [k.get("namespace") for k in k8s],
            "k8s_pod": [k.get("pod") for k in k8s],
            "k8s_container": [k.get("container") or c.get("name") for k, c in zip(k8s, containers)],
        }
        self.columns = cols
        self.unexpected = [v in ("unexpected", "expired") for v in verdict]
        self.size = len(rows)
        titles = [("HOST", "host"), ("VERDICT", "verdict")]
        if any(cols["k8s_node"]) or any(cols["k8s_namespace"]) or any(cols["k8s_pod"]):
            titles.extend(views.K8S_COLUMNS)
        if any(cols["k8s_container"]):
            titles.append(views.CONTAINER_COLUMN)
        titles.extend(views.SEED_COLUMNS)
        titles.extend(c for c in views.OPTIONAL_COLUMNS if any(cols[c[1]]))
        self.titles = titles          # = report_rows.bind_columns(report_rows.bind_rows(model))
        # each column as codes into its distinct values: renderers escape the
        # distinct values only, then index (cheaper than a lookup per cell)
        self._codes = {}

    def codes(self, key):
        """(codes, distinct values) of a column, made on first use."""
        if key not in self._codes:
            col = self.columns[key]
            index = _Index()
            codes = list(map(index.__getitem__, col))
            if key in IDENTITY and not {type(v) for v in index} <= _TEXT_TYPES:
                # mixed scalars (1 == True == 1.0): code their str() instead
                col = self.columns[key] = [_text_key(v) for v in col]
                index = _Index()
                codes = list(map(index.__getitem__, col))
            self._codes[key] = (codes, list(index))
        return self._codes[key]

    def rendered(self, key, render):
        """The column `key`, each cell render(value)."""
        codes, distinct = self.codes(key)
        texts = [render(v) for v in distinct]
        return list(map(texts.__getitem__, codes))

    def texts(self, key, render):
        """render(value) of each distinct value of the column."""
        return [render(v) for v in self.codes(key)[1]]


class _Index(dict):
    """value -> its code: 0, 1, 2... in order of first appearance."""

    def __missing__(self, value):
        code = self[value] = len(self)
        return code


def bind_table(model):
    cache = _cache(model)
    table = cache.get("bind_table")
    if table is None or table[0] is not model["hosts"]:
        table = cache["bind_table"] = (model["hosts"], BindTable(model))
    return table[1]


def listener_rows(model):
    """[views.listener_rows(host) for each host], made once per model."""
    cache = _cache(model)
    rows = cache.get("listener_rows")
    if rows is None or rows[0] is not model["hosts"]:
        rows = cache["listener_rows"] = (model["hosts"], [views.listener_rows(h) for h in model["hosts"]])
    return rows[1]


def unexpected_listeners(model):
    """{host name: [listener rows]} for hosts with unexpected listeners, from the cached rows."""
    out = []
    for host, rows in zip(model["hosts"], listener_rows(model)):
        rows = [r for r in rows if r["unexpected"]]
        if rows:
            out.append((host["name"], rows))
    return out
