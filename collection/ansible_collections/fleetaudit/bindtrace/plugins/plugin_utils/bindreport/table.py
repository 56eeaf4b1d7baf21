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
from .columns import Records, matching
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
    if isinstance(binds, Records):
        return list(zip(*[binds.values(k, 1 if k == "count" else None) for k in FIELDS]))
    try:
        return list(map(_GET, binds))
    except KeyError:   # facts without some keys: .get, and count defaults to 1
        return [tuple(b.get(k, 1 if k == "count" else None) for k in FIELDS) for b in binds]


def _sort_key(v):
    # as views._sort_key, after the host
    return (v[0] if isinstance(v[0], int) else -1, str(v[1]), str(v[2]),
            v[3] if isinstance(v[3], int) else -1, str(v[4]))


def _candidates(binds, wanted):
    """Indexes of the records passing one of the wanted tests."""
    if isinstance(binds, Records):
        masks = [binds.per_record(field, fn) for _test, field, fn in wanted]
    else:
        masks = [[fn(b.get(field)) for b in binds] for _test, field, fn in wanted]
    return [i for i, flags in enumerate(zip(*masks)) if any(flags)]


def _groups(model, wanted=()):
    """(host name, [FIELDS tuple per row]) per run of same-named hosts, in
    the order of report_rows.bind_rows: by host, then port, proto, addr,
    pid, comm; stable. The hosts are sorted by name already, so each run of
    same-named hosts is sorted on its own. Lazy, and with wanted tests only
    the rows passing one (found on the columns first): a selection that
    fills its budget early reads only the hosts before."""
    for name, group in itertools.groupby(model["hosts"], key=lambda h: h["name"]):
        values = []
        for host in group:
            binds = (host["facts"] or _EMPTY).get("binds") or ()
            if not wanted:
                values.extend(_fields(binds))
                continue
            keep = _candidates(binds, wanted)
            if keep:
                rows = _fields(binds)
                values.extend(rows if len(keep) == len(rows) else [rows[i] for i in keep])
        values.sort(key=_sort_key)
        yield name, values


def _failing(verdict):
    return verdict in ("unexpected", "expired")


def _is_unexpected(row):
    return _failing(row[5])


def _is_failed(row):
    return bool(row[9])


def _sorted_fields(model, wanted=(), limit=None):
    """([host name per row], [FIELDS tuple per row]) in table order: every
    row, or (wanted: (row test, field, value test), in order of preference)
    the rows passing the first test, then those passing the next..., up to
    limit rows in all."""
    names, rows = [], []
    if not wanted:
        for name, values in _groups(model):
            rows.extend(values)
            names.extend([name] * len(values))
        return names, rows
    walked, more = [], _groups(model, wanted)

    def walk():
        for g in itertools.count():
            if g == len(walked):
                nxt = next(more, None)
                if nxt is None:
                    return
                walked.append(nxt)
            yield g, walked[g]
    picked, room = set(), limit
    for test, _field, _fn in wanted:
        for g, (_name, values) in walk():
            if not room:
                break
            for i, row in enumerate(values):
                if (g, i) not in picked and test(row):
                    picked.add((g, i))
                    room -= 1
                    if not room:
                        break
    for g, (name, values) in enumerate(walked):
        for i, row in enumerate(values):
            if (g, i) in picked:
                rows.append(row)
                names.append(name)
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

    def __init__(self, model, wanted=(), limit=None):
        names, rows = _sorted_fields(model, wanted, limit)
        self.total = _record_count(model)   # the whole fleet's bind records
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
        # the columns shown: from every row of the fleet, also when only some are in this table
        present = cols if self.size == self.total else _present(model)
        titles = [("HOST", "host"), ("VERDICT", "verdict")]
        if any(present["k8s_node"]) or any(present["k8s_namespace"]) or any(present["k8s_pod"]):
            titles.extend(views.K8S_COLUMNS)
        if any(present["k8s_container"]):
            titles.append(views.CONTAINER_COLUMN)
        titles.extend(views.SEED_COLUMNS)
        titles.extend(c for c in views.OPTIONAL_COLUMNS if any(present[c[1]]))
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


def _record_count(model):
    return sum(len((h["facts"] or _EMPTY).get("binds") or ()) for h in model["hosts"])


def bind_table_total(model):
    """The fleet's bind records (every row of the full table)."""
    return _record_count(model)


def _binds_lists(model):
    return [(h["facts"] or _EMPTY).get("binds") or () for h in model["hosts"]]


def _distinct(model, key):
    """The values of one bind field over the fleet (each once where the
    records are columns)."""
    out = []
    for binds in _binds_lists(model):
        if isinstance(binds, Records):
            return list(binds.table.used(key)) + out    # one table holds every host's
        out.extend(b.get(key) for b in binds)
    return out


def _present(model):
    """For the optional columns' titles: per row key, values whose
    truthiness tells whether some bind of the fleet has one."""
    k8s = [k for k in _distinct(model, "k8s") if isinstance(k, dict)]
    containers = [c for c in _distinct(model, "container") if isinstance(c, dict)]
    out = {key: _distinct(model, key) for _title, key in views.OPTIONAL_COLUMNS
           if key not in ("unit", "listened")}
    out["unit"] = _distinct(model, "unit") + _distinct(model, "socket_unit")
    out["listened"] = _distinct(model, "listened")    # its cell is "" unless listened is true
    out.update(k8s_node=[k.get("node") for k in k8s], k8s_namespace=[k.get("namespace") for k in k8s],
               k8s_pod=[k.get("pod") for k in k8s],
               k8s_container=[k.get("container") for k in k8s] + [c.get("name") for c in containers])
    return out


# row selections of bind_table: (tests in order of preference, row budget)
SELECTIONS = {}


def bind_table(model, selection=None):
    """The bind table of every row (selection None), or of a selection
    registered in SELECTIONS (name -> (row tests, limit)), made once per
    model."""
    cache = _cache(model)
    key = ("bind_table", selection)
    table = cache.get(key)
    if table is None or table[0] is not model["hosts"]:
        wanted, limit = SELECTIONS[selection] if selection else ((), None)
        table = cache[key] = (model["hosts"], BindTable(model, wanted, limit))
    return table[1]


def findings(limit):
    """A selection: the unexpected binds first, then the failed ones, up to limit rows."""
    return (((_is_unexpected, "verdict", _failing), (_is_failed, "error", bool)), limit)


class _HostRows(object):
    """views.listener_rows of each host, made when first asked for: a page
    details only some hosts, and only the unexpected rows of the others are
    needed (unexpected_rows)."""

    def __init__(self, hosts):
        self.hosts, self.made = hosts, {}

    def __len__(self):
        return len(self.hosts)

    def __getitem__(self, i):
        rows = self.made.get(i)
        if rows is None:
            rows = self.made[i] = views.listener_rows(self.hosts[i])
        return rows

    def __iter__(self):
        return (self[i] for i in range(len(self.hosts)))


def listener_rows(model):
    """[views.listener_rows(host) for each host], each made once per model."""
    cache = _cache(model)
    rows = cache.get("listener_rows")
    if rows is None or rows[0] is not model["hosts"]:
        rows = cache["listener_rows"] = (model["hosts"], _HostRows(model["hosts"]))
    return rows[1]


def unexpected_rows(model):
    """[the listener rows of each host's unexpected listeners], found on the
    columns: rows (dicts) are made for those only."""
    cache = _cache(model)
    rows = cache.get("unexpected_rows")
    if rows is None or rows[0] is not model["hosts"]:
        out = []
        for host in model["hosts"]:
            listeners = (host["facts"] or _EMPTY).get("listeners") or []
            failing = matching(listeners, "verdict", _failing)
            out.append(views.listener_rows(dict(host, facts={"listeners": failing})) if failing else [])
        rows = cache["unexpected_rows"] = (model["hosts"], out)
    return rows[1]


def unexpected_listeners(model):
    """[(host name, [listener rows])] for hosts with unexpected listeners."""
    return [(host["name"], rows) for host, rows in zip(model["hosts"], unexpected_rows(model)) if rows]
