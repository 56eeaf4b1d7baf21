"""Records of the whole fleet (binds, listeners...) held as columns.

A fleet repeats itself: the same ports, commands, users, options and
containers on host after host. A Table keeps, per field, the list of its
distinct values and one 4-byte code per record (array 'I'), instead of a dict
per record (~5 KB each with its strings): 2,000,000 records of 34 fields take
~270 MB. report.json schema 2 writes the tables as they are held (values and
codes per column, see jsontext.py), so writing and reading them is a join and
a split, not a walk over millions of dicts.

Records is one host's slice of a table: a read-only sequence of record dicts
made on access, equal to the list of dicts it stands for (==, copy, pickle
and deepcopy give that list). Hot paths (summary, bind table, unexpected
counts) read columns, never dicts.

Values are told apart exactly: 1, 1.0 and True are three values (Python
hashes them alike), as are {"a": 0} and {"a": False}.
"""
import itertools
import json
import operator
from array import array

from .sanitize import clean_walk

ABSENT = 0xFFFFFFFF     # the code of a record that has no such key
PLAIN_VALUES = 50000    # distinct values a column may hold before, if most records bring a new one, it goes plain
_NONE = type(None)
_DIRECT = ({str, _NONE}, {int, _NONE})   # columns whose values are their own keys
_JSON_TYPES = (str, int, float, bool, _NONE, dict, list, tuple)
_MISSING = object()
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


class Unencodable(ValueError):
    """A value that cannot go into a UTF-8 JSON file as it is (a lone
    surrogate from undecodable bytes, or not a JSON type)."""


def freeze(value):
    """A hashable key for a value, equal only for values JSON writes alike
    and of the same types (1, 1.0 and True differ)."""
    cls = value.__class__
    if cls is str or cls is int or value is None:
        return value
    if cls is bool or cls is float:
        return (cls, value)
    if isinstance(value, dict):
        return (dict,) + tuple((k, freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return (list,) + tuple(freeze(v) for v in value)
    if isinstance(value, str):      # a subclass (Ansible's unsafe text): its text
        return str(value)
    if isinstance(value, bool):
        return (bool, bool(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return (float, float(value))
    raise Unencodable("a %s is not a JSON value" % cls.__name__)


def _dict_key(value):
    """A cheaper key for a flat mapping of plain values: its items. Values
    that are equal but of other types (0 and False) get one key, so a column
    keyed so holds at most one of bool, int and float in its mappings
    (Column.numeric); a nested list or mapping is frozen."""
    if value is None:
        return None
    key = tuple(value.items())
    try:
        hash(key)
        return key
    except TypeError:
        return freeze(value)


_NUMERIC = {bool, int, float}


def _numeric(maps):
    """The numeric types among the values of mappings (None: no mapping)."""
    return set(map(type, itertools.chain.from_iterable(map(dict.values, filter(None, maps))))) & _NUMERIC


def _dict_keys(maps):
    """_dict_key of each mapping (or None), the common case at C speed."""
    if None in maps:
        keys = [None if m is None else tuple(m.items()) for m in maps]
    else:
        keys = list(map(tuple, map(dict.items, maps)))
    try:
        set(keys)   # hashable: flat mappings of plain values
        return keys
    except TypeError:
        return list(map(_dict_key, maps))


def _check(value):
    """Refuse a new distinct value that report.json could not hold."""
    if value.__class__ is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Unencodable("lone surrogate in %r" % value)
    elif not isinstance(value, _JSON_TYPES):
        raise Unencodable("a %s is not a JSON value" % type(value).__name__)
    elif isinstance(value, (dict, list, tuple)):
        try:
            _ENCODE(value).encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as e:
            raise Unencodable(str(e))


def _positions(items, value):
    """Indexes of value in items (found at C speed)."""
    out, i = [], -1
    try:
        while True:
            i = items.index(value, i + 1)
            out.append(i)
    except ValueError:
        return out


def _check_all(values):
    """_check of every value; a list of plain texts at C speed."""
    if set(map(type, values)) <= {str}:
        try:
            "".join(values).encode("utf-8")
            return
        except UnicodeEncodeError:
            pass
    for value in values:
        _check(value)


class Column(object):
    """One field: distinct values, their keys, and a code per record."""
    __slots__ = ("name", "values", "_keys", "_index", "codes", "dicts", "numeric", "plain")

    def __init__(self, name, rows=0):
        self.name = name
        self.values, self._keys, self._index = [], [], {}
        self.codes = array("I", [ABSENT]) * rows
        self.dicts = False    # keys made by _dict_key (a column of mappings)
        self.numeric = set()  # numeric types in its mappings' values (dicts: at most one)
        self.plain = False    # values nearly all distinct: kept as they come, no index (go_plain)

    def go_plain(self):
        """Stop looking values up: a field whose values are nearly all
        distinct (a timestamp per record) costs an index entry per value and
        saves nothing; from now on each new record's value is appended."""
        self.plain, self._keys, self._index = True, None, None

    # a column read from report.json makes its keys only if another column
    # copies from it, and its index only if records are added to it
    @property
    def keys(self):
        if self._keys is None:
            make = _dict_key if self.dicts else freeze
            self._keys = [make(v) for v in self.values]
        return self._keys

    @keys.setter
    def keys(self, keys):
        self._keys, self._index = keys, None

    @property
    def index(self):
        if self._index is None:
            self._index = dict(zip(self.keys, range(len(self.values))))
        return self._index

    @index.setter
    def index(self, index):
        self._index = index

    def _add(self, key, value):
        _check(value)
        code = self.index[key] = len(self.values)
        self.values.append(value)
        self.keys.append(key)
        return code

    def _use_dict_keys(self, numeric):
        """Key the column's mappings by their items when no two numeric
        types meet (then no two differing mappings share items)."""
        numeric = numeric | self.numeric
        if len(numeric) > 1:
            if self.dicts:
                self._use_freeze()
            return False
        if not self.dicts:
            if self.values and not _all_dicts(self.values):
                return False
            self.dicts = True
            self.keys = None    # made again, by _dict_key
        self.numeric = numeric
        return True

    def encode(self, col):
        """Codes of the values in col (a sequence), new values added."""
        if self.plain:
            start = len(self.values)
            _check_all(col)
            self.values.extend(col)
            return list(range(start, len(self.values)))
        types = set(map(type, col))
        if types <= _DIRECT[0] or types <= _DIRECT[1]:
            keys = col
        elif types <= {dict, _NONE} and self._use_dict_keys(_numeric(col)):
            keys = _dict_keys(col)
        else:
            if self.dicts:   # mappings, then something else: one key kind for all
                self._use_freeze()
            keys = list(map(freeze, col))
        codes = list(map(self.index.get, keys))
        if None in codes:
            get = self.index.get
            for i in _positions(codes, None):
                key = keys[i]
                code = get(key)
                codes[i] = self._add(key, col[i]) if code is None else code
        return codes

    def _use_freeze(self):
        self.dicts = False
        self.keys = None    # made again, by freeze

    def remap(self, other):
        """[code here for each code of other], other's values added (an array)."""
        if not other.values:
            return array("I")
        if self.plain:
            start = len(self.values)
            try:
                _check_all(other.values)
                self.values.extend(other.values)
            except Unencodable:   # a lone surrogate: cleaned, as below
                for value in other.values:
                    try:
                        _check(value)
                    except Unencodable:
                        value = clean_walk(value)
                        _check(value)
                    self.values.append(value)
            return array("I", range(start, len(self.values)))
        if _all_dicts(other.values) and (self.dicts or not self.values):
            self._use_dict_keys(_numeric(other.values))
        elif self.dicts:
            self._use_freeze()
        make = _dict_key if self.dicts else freeze
        keys = other.keys if other.dicts == self.dicts else [make(v) for v in other.values]
        out = array("I", bytes(4 * len(other.values)))
        get = self.index.get
        for code, (key, value) in enumerate(zip(keys, other.values)):
            have = get(key)
            if have is None:
                try:
                    have = self._add(key, value)
                except Unencodable:
                    # a lone surrogate (a \udcxx escape in the file): cleaned for
                    # the hosts that use it, as a host's facts are
                    value = clean_walk(value)
                    key = make(value)
                    have = get(key)
                    have = self._add(key, value) if have is None else have
            out[code] = have
        return out


def _all_dicts(values):
    return bool(values) and all(v is None or v.__class__ is dict for v in values)


class Table(object):
    """Records of one kind (e.g. every host's binds) as columns."""

    def __init__(self, name=""):
        self.name = name
        self.columns = []     # Column, in order of first appearance
        self.by_name = {}
        self.rows = 0
        self.derived = {}     # per-table caches of the readers (flags per code...)
        self.dirty = False    # may hold values no record uses (see vacuum)
        self.consumed = {}    # id(source table) -> (source, rows copied from it)
        self.in_order = True  # each column's values in order of first use (see vacuum)
        self.last = None      # (source table, row after the last one copied)

    def column(self, name):
        col = self.by_name.get(name)
        if col is None:
            col = self.by_name[name] = Column(name, self.rows)
            self.columns.append(col)
        return col

    # -- adding records -----------------------------------------------------
    def add(self, records):
        """Append records (a list of dicts, or Records of another table) ->
        their Records here. A value report.json cannot hold raises
        Unencodable and leaves the table as it was."""
        mark = self._mark()
        try:
            if isinstance(records, Records):
                added = self._add_records(records)
            else:
                added = self._add_dicts(records)
        except BaseException:
            self._rollback(mark)
            raise
        for col in self.columns:
            if not col.plain and len(col.values) > PLAIN_VALUES and 2 * len(col.values) > self.rows:
                col.go_plain()
        return added

    def _add_dicts(self, records):
        start, n = self.rows, len(records)
        if not n:
            return Records(self, start, start)
        if any(done < src.rows for src, done in self.consumed.values()):
            self.in_order = False   # a source's later records' values are in already
        if not {type(r) for r in records} <= {dict}:
            raise Unencodable("a record is not a mapping")
        first = tuple(records[0])
        cols, fast = None, True
        if first and len(set(map(len, records))) == 1:
            try:
                get = operator.itemgetter(*first)
                cols = (list(zip(*map(get, records))) if len(first) > 1
                        else [list(map(get, records))])
                names = first
            except KeyError:   # same sizes, other keys
                cols = None
        if cols is None:
            fast = False
            names = tuple(dict.fromkeys(itertools.chain.from_iterable(records)))
            cols = [[r.get(k, _MISSING) for r in records] for k in names]
        for name, col in zip(names, cols):
            column = self.column(name)
            if not fast and any(v is _MISSING for v in col):
                present = [i for i, v in enumerate(col) if v is not _MISSING]
                codes = [ABSENT] * n
                for i, code in zip(present, column.encode([col[i] for i in present])):
                    codes[i] = code
            else:
                codes = column.encode(col)
            column.codes.extend(array("I", codes))
        self._pad(names, n)
        self.rows += n
        return Records(self, start, self.rows)

    def _add_records(self, records):
        start, n = self.rows, len(records)
        src = records.table
        # a source copied whole, in order, one after the other keeps its
        # values in order of first use (as this table's own writer left them)
        if self.last is not None and self.last[0] is src:
            follows = self.last[1] == records.start
        else:   # a new source: from its first row, the one before copied to its end
            follows = records.start == 0 and id(src) not in self.consumed and (
                self.last is None or self.last[1] >= self.last[0].rows)
        if not (follows and records.contiguous):
            self.in_order = False
        self.last = (src, records.stop if records.contiguous else -1)
        held = self.derived.get(("remap", id(src)))
        if held is None or held[0] is not src:
            held = self.derived[("remap", id(src))] = (src, {})
        maps = held[1]
        for col in src.columns:
            # the source column's codes in this table's, all at once (a
            # slice per host after): one report.json input holds many hosts
            got = maps.get(col.name)
            if got is None or got[0] != len(col.values) or len(got[1]) != len(col.codes):
                # adds every value of the source column: those of hosts not
                # copied (yet, or refused) go again in vacuum()
                remap = self.column(col.name).remap(col)
                if remap == array("I", range(len(remap))):   # the values in the same order: as they are
                    mapped = col.codes
                elif ABSENT in col.codes:
                    mapped = array("I", [ABSENT if c == ABSENT else remap[c] for c in col.codes])
                else:
                    mapped = array("I", map(remap.__getitem__, col.codes))
                got = maps[col.name] = (len(col.values), mapped)
            if records.contiguous:
                codes = got[1][records.start:records.stop]
            else:
                codes = array("I", map(got[1].__getitem__, records.rows))
            self.by_name[col.name].codes.extend(codes)
        self._pad([c.name for c in src.columns], n)
        self.rows += n
        seen = self.consumed.get(id(src))
        self.consumed[id(src)] = (src, (seen[1] if seen and seen[0] is src else 0) + n)
        if self.consumed[id(src)][1] >= src.rows:   # copied whole: its codes here are not needed again
            self.derived.pop(("remap", id(src)), None)
        return Records(self, start, self.rows)

    def vacuum(self):
        """Drop the values no record uses (left by a refused host, or by
        hosts of a source table that were not copied), and put each column's
        values in order of first use (as ingesting records one by one does),
        so that a table is the same whichever way its records came in: a
        merge of job slices writes the report.json of one run. Readers also
        rely on every value being some record's (which optional columns a
        table shows)."""
        if self.in_order and not self.dirty and all(n >= src.rows for src, n in self.consumed.values()):
            return
        for col in self.columns:
            firsts = list(dict.fromkeys(col.codes))
            if ABSENT in firsts:
                firsts.remove(ABSENT)
            if firsts == list(range(len(col.values))):
                continue
            new = dict(zip(firsts, range(len(firsts))))
            new[ABSENT] = ABSENT
            col.codes = array("I", map(new.__getitem__, col.codes))
            col.values = [col.values[c] for c in firsts]
            if not col.plain:
                col.keys = [col.keys[c] for c in firsts]
                col.index = dict(zip(col.keys, range(len(firsts))))
        self.derived.clear()
        self.dirty, self.in_order, self.last = False, True, None
        self.consumed = {}

    def _pad(self, names, n):
        if len(names) != len(self.columns):
            have = set(names)
            for col in self.columns:
                if col.name not in have:
                    col.codes.extend(array("I", [ABSENT]) * n)

    def _mark(self):
        return (self.rows, len(self.columns), [len(c.values) for c in self.columns])

    def values_since(self, mark):
        """{field: its distinct values added since mark}."""
        _rows, ncols, nvalues = mark
        out = {c.name: c.values[n:] for c, n in zip(self.columns, nvalues)}
        out.update((c.name, c.values) for c in self.columns[ncols:])
        return out

    def _rollback(self, mark):
        rows, ncols, nvalues = mark
        for col in self.columns[ncols:]:
            del self.by_name[col.name]
        del self.columns[ncols:]
        for col, n in zip(self.columns, nvalues):
            del col.codes[rows:]
            if col.plain:
                del col.values[n:]
                continue
            for key in col.keys[n:]:
                del col.index[key]
            del col.values[n:], col.keys[n:]
        self.rows = rows
        self.derived.clear()
        self.dirty = True

    # -- reading --------------------------------------------------------------
    def record(self, row):
        out = {}
        for col in self.columns:
            code = col.codes[row]
            if code != ABSENT:
                out[col.name] = col.values[code]
        return out

    def records(self, rows):
        """The records at rows as dicts, built column by column."""
        if len(rows) < 4 or not self.columns:
            return [self.record(r) for r in rows]
        names, values = [], []
        for col in self.columns:
            codes = _codes(col, rows)
            if ABSENT in codes:
                return [self.record(r) for r in rows]
            names.append(col.name)
            values.append(map(col.values.__getitem__, codes))
        return [dict(zip(names, vals)) for vals in zip(*values)]

    def _padded(self, name, default):
        """The column's values and default last (the index of ABSENT in codes_of;
        [default] for a field no record has)."""
        col = self.by_name.get(name)
        if col is None:
            return [default]
        key = ("padded", name, default.__class__, default)
        got = self.derived.get(key)
        if got is None or len(got) != len(col.values) + 1:
            got = self.derived[key] = col.values + [default]
        return got

    def values_of(self, name, rows, default=None):
        """The field's value per record at rows (default where a record has
        no such key)."""
        if name not in self.by_name:
            return [default] * len(rows)
        return list(map(self._padded(name, default).__getitem__, self.codes_of(name, rows)))

    def mapped(self, name, fn):
        """fn(value) per code of a column, fn(None) last (a record without
        the key), cached per (name, fn): sums, counts and masks over codes
        then cost an index each. fn: a function defined once (module level)."""
        key = ("mapped", name, fn)
        col = self.by_name.get(name)
        got = self.derived.get(key)
        if got is None or len(got) != (len(col.values) if col else 0) + 1:
            got = self.derived[key] = [fn(v) for v in (col.values if col else [])] + [fn(None)]
        return got

    def per_record(self, name, fn, rows):
        """[fn(value) for each record at rows], fn computed per distinct value."""
        return list(map(self.mapped(name, fn).__getitem__, self.codes_of(name, rows)))

    def codes_of(self, name, rows):
        """Codes of a column at rows, ABSENT as len(values) (an index into
        mapped() and the padded values)."""
        col = self.by_name.get(name)
        if col is None:
            return [0] * len(rows)
        codes = _codes(col, rows)
        if ABSENT not in codes:
            return codes
        n = len(col.values)
        return [n if c == ABSENT else c for c in codes]

    def used(self, name):
        """The distinct values of a field that some record has."""
        col = self.by_name.get(name)
        return col.values if col is not None else []

    # -- building from report.json ----------------------------------------------
    @classmethod
    def from_json(cls, name, doc, where):
        """A table of report.json schema 2 -> Table; a malformed one raises
        ValueError naming what is wrong."""
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), int) or doc["rows"] < 0:
            raise ValueError("%s: expected {\"rows\": N, \"columns\": {...}}" % where)
        columns = doc.get("columns")
        if not isinstance(columns, dict):
            raise ValueError("%s.columns: expected a mapping of columns" % where)
        table = cls(name)
        rows = table.rows = doc["rows"]
        for field, spec in columns.items():
            here = "%s.columns.%s" % (where, field)
            if not isinstance(spec, dict) or not isinstance(spec.get("values"), list) \
                    or not isinstance(spec.get("codes"), list):
                raise ValueError("%s: expected {\"values\": [...], \"codes\": [...]}" % here)
            codes = spec["codes"]
            if len(codes) != rows:
                raise ValueError("%s.codes: %d codes for %d rows" % (here, len(codes), rows))
            values = spec["values"]
            try:
                arr = array("I", codes)    # refuses text, floats, negative numbers and null
                top = max(codes, default=-1)
            except (TypeError, OverflowError):
                try:   # null: a record without the key
                    present = [c for c in codes if c is not None]
                    arr = array("I", [ABSENT if c is None else c for c in codes])
                    top = max(present, default=-1)
                except (TypeError, OverflowError):
                    raise ValueError("%s.codes: expected codes (integers from 0) or null" % here)
            if not isinstance(top, int) or top >= len(values) or top >= ABSENT:
                raise ValueError("%s.codes: a code is past the %d values" % (here, len(values)))
            col = table.column(field)
            col.values, col.codes = values, arr
            col.numeric = _numeric(values) if _all_dicts(values) else set()
            col.dicts = _all_dicts(values) and len(col.numeric) <= 1
            col.keys = None   # made when needed (a value listed twice is one value, copied once)
        return table

    def to_json_parts(self, indent):
        """report.json text of this table, one column per line, made column
        by column as the writer takes it."""
        pad = " " * indent
        texts = [str(i) for i in range(max([len(c.values) for c in self.columns] + [0]))]
        yield '{\n%s  "rows": %d,\n%s  "columns": {' % (pad, self.rows, pad)
        for i, col in enumerate(self.columns):
            yield "\n" if i == 0 else ",\n"
            yield '%s    %s: {"values": ' % (pad, _ENCODE(col.name))
            yield _ENCODE(col.values)
            yield ', "codes": ['
            if ABSENT in col.codes:
                yield ",".join("null" if c == ABSENT else texts[c] for c in col.codes)
            else:
                yield ",".join(map(texts.__getitem__, col.codes))
            yield "]}"
        yield "\n%s  }\n%s}" % (pad, pad) if self.columns else "}\n%s}" % pad


def _codes(column, rows):
    """A column's codes at rows (a range: a slice of the array)."""
    if isinstance(rows, range):
        return column.codes[rows.start:rows.stop]
    return list(map(column.codes.__getitem__, rows))


class Records(object):
    """Some records of a table, as dicts on access: one host's rows (a
    range), or chosen rows (a list: e.g. a host's unexpected binds among its
    binds)."""
    __slots__ = ("table", "rows")

    def __init__(self, table, start, stop=None, rows=None):
        self.table = table
        self.rows = range(start, stop) if rows is None else rows

    @property
    def start(self):
        return self.rows.start

    @property
    def stop(self):
        return self.rows.stop

    @property
    def contiguous(self):
        return isinstance(self.rows, range)

    def __len__(self):
        return len(self.rows)

    def __bool__(self):
        return len(self.rows) > 0

    def __iter__(self):
        return iter(self.table.records(self.rows))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.table.record(r) for r in self.rows[i]]
        return self.table.record(self.rows[i])

    def __eq__(self, other):
        if isinstance(other, (Records, list, tuple)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None

    def __reduce__(self):     # copies, deep copies and pickles are the plain list
        return (list, (list(self),))

    def __repr__(self):
        return "Records(%s, %r)" % (self.table.name, self.rows)

    def codes(self, column):
        return _codes(column, self.rows)

    def values(self, name, default=None):
        return self.table.values_of(name, self.rows, default)

    def count(self, name, test):
        """How many records have test(value of name) true (None when absent)."""
        return sum(map(bool, self.table.per_record(name, test, self.rows)))

    def total(self, name, fn):
        """sum(fn(value of name)) over the records."""
        return sum(self.table.per_record(name, fn, self.rows))

    def per_record(self, name, fn):
        return self.table.per_record(name, fn, self.rows)


def _count_value(count):
    return count if isinstance(count, int) else 1


def count_sum(records):
    """Binds a list of bind records stands for: each record's count, 1 when
    it has none (columns where they are Records)."""
    if isinstance(records, Records):
        return records.total("count", _count_value)
    return sum(_count_value(r.get("count")) for r in records)


def matching(records, name, test):
    """The records (dicts) whose value of name passes test, found on the
    columns where they are Records: only those become dicts."""
    if isinstance(records, Records):
        mask = records.per_record(name, test)
        return [records.table.record(r) for r, keep in zip(records.rows, mask) if keep]
    return [r for r in records if test(r.get(name))]


def fields(records, *names):
    """[(value of each name, ...) per record] (None where a record has no
    such key), read from the columns where the records are Records."""
    if isinstance(records, Records):
        return list(zip(*[records.values(n) for n in names]))
    return [tuple(r.get(n) for n in names) for r in records]
