"""History of fleet reports across runs: one schema in SQLite (a file path,
stdlib) or PostgreSQL (a postgresql:// DSN, psycopg 3).

Each run appends its hosts, their listeners and their unexpected binds; the
report then says, per listener, when it was first and last seen, what is new
or gone since the previous run, and per host the trend of unexpected
listeners. `bind-report history` queries the same tables.

The schema is versioned: MIGRATIONS lists the statements that bring a store
from one version to the next, applied in order inside one transaction, and
the store refuses a version newer than this code knows.
"""
import datetime
import json
import re

from .columns import matching
from .model import BindReportError

SCHEMA_VERSION = 1
TREND_RUNS = 10

# (version, statements); {id} is the auto-increment key of each dialect
MIGRATIONS = [
    (1, [
        "CREATE TABLE runs (id {id}, generated TEXT NOT NULL, recorded TEXT NOT NULL, "
        "generator TEXT, hosts INTEGER NOT NULL, traced INTEGER NOT NULL, failed INTEGER NOT NULL, "
        "unreachable INTEGER NOT NULL, unsupported INTEGER NOT NULL, "
        "unexpected_listeners INTEGER NOT NULL)",
        "CREATE TABLE run_hosts (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, "
        "host TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, groups_csv TEXT NOT NULL, "
        "binds INTEGER NOT NULL, listeners INTEGER NOT NULL, unexpected_listeners INTEGER NOT NULL, "
        "unexpected_binds INTEGER NOT NULL, lost INTEGER NOT NULL, PRIMARY KEY (run_id, host))",
        "CREATE TABLE listeners (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, "
        "host TEXT NOT NULL, proto TEXT, family INTEGER, addr TEXT, port INTEGER, comm TEXT, "
        "exe TEXT, unit TEXT, container TEXT, verdict TEXT)",
        "CREATE TABLE unexpected_binds (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, "
        "host TEXT NOT NULL, proto TEXT, family INTEGER, addr TEXT, port INTEGER, comm TEXT, "
        "exe TEXT, unit TEXT, container TEXT, verdict TEXT, count INTEGER NOT NULL)",
        # one row per listener identity ever seen: first/last seen without
        # scanning every run's listeners (kept up to date by record_run)
        "CREATE TABLE listener_seen (ident TEXT PRIMARY KEY, host TEXT NOT NULL, proto TEXT, "
        "family INTEGER, addr TEXT, port INTEGER, comm TEXT, first_seen TEXT NOT NULL, "
        "last_seen TEXT NOT NULL, first_run INTEGER NOT NULL, last_run INTEGER NOT NULL, "
        "runs INTEGER NOT NULL)",
        "CREATE INDEX listener_seen_last ON listener_seen (last_run)",
        "CREATE INDEX listeners_port ON listeners (port, proto)",
        "CREATE INDEX listeners_host ON listeners (host, run_id)",
        "CREATE INDEX listeners_run ON listeners (run_id)",
        "CREATE INDEX binds_run ON unexpected_binds (run_id)",
        "CREATE INDEX run_hosts_host ON run_hosts (host, run_id)",
    ]),
]

LISTENER_COLS = ("host", "proto", "family", "addr", "port", "comm", "exe", "unit", "container", "verdict")
BIND_COLS = LISTENER_COLS + ("count",)
SEEN_COLS = ("host", "proto", "family", "addr", "port", "comm", "first_seen", "last_seen", "first_run",
             "last_run", "runs")


def _is_unexpected(verdict):
    return verdict == "unexpected"


def _text(value):
    return None if value is None else str(value)


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _container(record):
    c = record.get("container")
    if isinstance(c, dict):
        return _text(c.get("name") or c.get("id"))
    return None


def _identity(host, r):
    """One listener or bind as a row of LISTENER_COLS."""
    return (host, _text(r.get("proto")), _int(r.get("family")), _text(r.get("addr")), _int(r.get("port")),
            _text(r.get("comm")), _text(r.get("exe")), _text(r.get("unit")), _container(r),
            _text(r.get("verdict")))


def row_key(row):
    """The history identity of a listener row: listener_key plus its host
    (a restart, with a new pid, is the same listener)."""
    return (row["host"], row["proto"], row["family"], row["addr"], row["port"], row["comm"])


def _ident(key):
    """A listener identity as one text (NULLs would defeat a unique index)."""
    return json.dumps(list(key), separators=(",", ":"))


def _listener_identity(host, listener):
    """The same identity as row_key, from a listener of the facts."""
    return _identity(host, listener)[:6]


def redact_target(target):
    """A store's label for reports: the DSN without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", target) if is_dsn(target) else "sqlite:" + target


def is_dsn(target):
    return target.startswith(("postgresql://", "postgres://")) or "dbname=" in target


class Store(object):
    """A connection to one history store (use open_store)."""

    def __init__(self, conn, dialect, label):
        self.conn, self.dialect, self.label = conn, dialect, label
        self.mark = "?" if dialect == "sqlite" else "%s"

    # -- plumbing --------------------------------------------------------
    def _sql(self, sql):
        return sql.replace("?", self.mark)

    def execute(self, sql, args=()):
        cur = self.conn.cursor()
        cur.execute(self._sql(sql), args)
        return cur

    def query(self, sql, args=()):
        cur = self.execute(sql, args)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- schema ----------------------------------------------------------
    def version(self):
        try:
            rows = self.query("SELECT MAX(version) AS v FROM bindtrace_schema")
        except Exception:   # no table yet: a new store (each driver has its own error class)
            self.conn.rollback()
            return 0
        return rows[0]["v"] or 0

    def migrate(self):
        current = self.version()
        if current > SCHEMA_VERSION:
            raise BindReportError("history store %s has schema version %d, this bindtrace knows up to %d: "
                                  "upgrade bindtrace on this controller" % (self.label, current,
                                                                            SCHEMA_VERSION))
        ident = ("INTEGER PRIMARY KEY AUTOINCREMENT" if self.dialect == "sqlite"
                 else "BIGSERIAL PRIMARY KEY")
        try:
            if current == 0:
                self.execute("CREATE TABLE bindtrace_schema (version INTEGER NOT NULL, applied TEXT NOT NULL)")
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    self.execute(statement.replace("{id}", ident))
                self.execute("INSERT INTO bindtrace_schema (version, applied) VALUES (?, ?)",
                             (version, _now()))
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    # -- writing ---------------------------------------------------------
    def record_run(self, model):
        """Append one report model as a run -> the run's id."""
        s = model["summary"]
        unexpected = sum((s.get("unexpected_listeners") or {}).values())
        run = (model["generated"], _now(), model.get("generator"), s["hosts"], s["traced"], s["failed"],
               s["unreachable"], s["unsupported"], unexpected)
        sql = ("INSERT INTO runs (generated, recorded, generator, hosts, traced, failed, unreachable, "
               "unsupported, unexpected_listeners) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        try:
            if self.dialect == "sqlite":
                run_id = self.execute(sql, run).lastrowid
            else:
                run_id = self.execute(sql + " RETURNING id", run).fetchone()[0]
            hosts, listeners, binds = [], [], []
            for h in model["hosts"]:
                facts = h.get("facts") or {}
                host_listeners = facts.get("listeners") or []
                host_binds = facts.get("binds") or []
                hosts.append((run_id, h["name"], h["status"], h.get("reason"),
                              ",".join(h.get("groups") or []), len(host_binds), len(host_listeners),
                              h["unexpected"]["listeners"], h["unexpected"]["binds"],
                              _int(facts.get("lost")) or 0))
                listeners.extend((run_id,) + _identity(h["name"], l) for l in host_listeners)
                binds.extend((run_id,) + _identity(h["name"], b) + (_int(b.get("count")) or 1,)
                             for b in matching(host_binds, "verdict", _is_unexpected))
            self._insert_many("run_hosts", ("run_id", "host", "status", "reason", "groups_csv", "binds",
                                            "listeners", "unexpected_listeners", "unexpected_binds",
                                            "lost"), hosts)
            self._insert_many("listeners", ("run_id",) + LISTENER_COLS, listeners)
            self._insert_many("unexpected_binds", ("run_id",) + BIND_COLS, binds)
            self._mark_seen(run_id, model["generated"], listeners)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return run_id

    def _insert_many(self, table, cols, rows):
        if rows:
            sql = "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(cols), ", ".join("?" * len(cols)))
            self.conn.cursor().executemany(self._sql(sql), rows)

    def _mark_seen(self, run_id, generated, listeners):
        idents = {}
        for row in listeners:
            key = row[1:7]   # host, proto, family, addr, port, comm
            idents[_ident(key)] = key
        rows = [(ident,) + key + (generated, generated, run_id, run_id, 1) for ident, key in idents.items()]
        if rows:
            sql = ("INSERT INTO listener_seen (ident, host, proto, family, addr, port, comm, first_seen, "
                   "last_seen, first_run, last_run, runs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (ident) DO UPDATE SET last_seen = excluded.last_seen, "
                   "last_run = excluded.last_run, runs = listener_seen.runs + 1")
            self.conn.cursor().executemany(self._sql(sql), rows)

    def _rebuild_seen(self):
        """listener_seen from the runs still kept (after a prune)."""
        self.execute("DELETE FROM listener_seen")
        rows = self.query(
            "SELECT l.host AS host, l.proto AS proto, l.family AS family, l.addr AS addr, l.port AS port, "
            "l.comm AS comm, MIN(r.generated) AS first_seen, MAX(r.generated) AS last_seen, "
            "MIN(r.id) AS first_run, MAX(r.id) AS last_run, COUNT(DISTINCT r.id) AS runs "
            "FROM listeners l JOIN runs r ON r.id = l.run_id "
            "GROUP BY l.host, l.proto, l.family, l.addr, l.port, l.comm")
        self._insert_many("listener_seen", ("ident",) + SEEN_COLS,
                          [(_ident(row_key(r)),) + tuple(r[c] for c in SEEN_COLS) for r in rows])

    def prune(self, keep_runs):
        """Delete all but the newest keep_runs runs -> ids deleted."""
        if keep_runs < 1:
            raise BindReportError("keep at least one run in the history store (got %d)" % keep_runs)
        ids = [r["id"] for r in self.query("SELECT id FROM runs ORDER BY id DESC")][keep_runs:]
        try:
            for run_id in ids:
                for table in ("listeners", "unexpected_binds", "run_hosts", "runs"):
                    self.execute("DELETE FROM %s WHERE %s = ?" % (table, "id" if table == "runs" else "run_id"),
                                 (run_id,))
            if ids:
                self._rebuild_seen()
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return sorted(ids)

    # -- reading ---------------------------------------------------------
    def runs(self, limit=None):
        sql = "SELECT * FROM runs ORDER BY id DESC"
        rows = self.query(sql + (" LIMIT %d" % int(limit) if limit else ""))
        return list(reversed(rows))

    def listener_rows(self, run_id):
        return self.query("SELECT %s FROM listeners WHERE run_id = ?" % ", ".join(LISTENER_COLS), (run_id,))

    def traced_hosts(self, run_id):
        return {r["host"] for r in self.query("SELECT host FROM run_hosts WHERE run_id = ? AND status = 'ok'",
                                              (run_id,))}

    def seen(self, run_id):
        """{identity: (first seen, last seen, runs)} of the listeners of
        run_id, the newest run (record_run keeps listener_seen current)."""
        rows = self.query("SELECT * FROM listener_seen WHERE last_run = ?", (run_id,))
        return {row_key(r): (r["first_seen"], r["last_seen"], r["runs"]) for r in rows}

    def trends(self, run_ids):
        """{host: [(generated, unexpected listeners or None if not traced)]} over run_ids."""
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self.query("SELECT h.host AS host, h.run_id AS run_id, h.status AS status, "
                          "h.unexpected_listeners AS n FROM run_hosts h WHERE h.run_id IN (%s)" % marks,
                          tuple(run_ids))
        by_host = {}
        for r in rows:
            by_host.setdefault(r["host"], {})[r["run_id"]] = r["n"] if r["status"] == "ok" else None
        return by_host

    def search(self, host=None, port=None, proto=None, comm=None, exe=None, unit=None, container=None,
               since=None, until=None):
        """Listeners matching every given filter, one row per identity, with
        first/last seen, the number of runs and the latest verdict."""
        where, args = ["1 = 1"], []
        for col, value in (("l.host", host), ("l.port", port), ("l.comm", comm), ("l.exe", exe),
                           ("l.unit", unit), ("l.container", container)):
            if value is not None:
                where.append("%s = ?" % col)
                args.append(value)
        if proto is not None:
            where.append("UPPER(l.proto) = ?")
            args.append(proto.upper())
        if since is not None:
            where.append("r.generated >= ?")
            args.append(since)
        if until is not None:
            where.append("r.generated <= ?")
            args.append(until)
        rows = self.query(
            "SELECT l.host AS host, l.proto AS proto, l.family AS family, l.addr AS addr, l.port AS port, "
            "l.comm AS comm, MIN(r.generated) AS first_seen, MAX(r.generated) AS last_seen, "
            "COUNT(DISTINCT r.id) AS runs, MAX(r.id) AS last_run FROM listeners l "
            "JOIN runs r ON r.id = l.run_id WHERE %s "
            "GROUP BY l.host, l.proto, l.family, l.addr, l.port, l.comm" % " AND ".join(where), tuple(args))
        verdicts = {}
        for r in rows:   # the verdict, exe, unit and container of the latest sighting
            latest = self.query(
                "SELECT verdict, exe, unit, container FROM listeners WHERE run_id = ? AND host = ? AND port = ? "
                "AND proto = ? ORDER BY verdict", (r["last_run"], r["host"], r["port"], r["proto"]))
            verdicts[row_key(r)] = latest[0] if latest else {}
        for r in rows:
            r.update(verdicts[row_key(r)])
            r.pop("last_run")
        return sorted(rows, key=lambda r: (r["host"], r["port"] or 0, r["proto"] or "", r["addr"] or "",
                                           r["comm"] or ""))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def open_store(target):
    """A path (SQLite, created when missing) or a postgresql:// DSN -> a
    migrated Store. Errors name the cause and the fix."""
    if not target:
        raise BindReportError("no history store given: set a SQLite file path or a postgresql:// DSN")
    label = redact_target(target)
    if is_dsn(target):
        try:
            import psycopg
        except ImportError:
            raise BindReportError("history store %s is PostgreSQL, which needs psycopg 3 on the controller: "
                                  "pip install 'psycopg[binary]' (or the bindtrace[postgres] extra)" % label)
        try:
            conn = psycopg.connect(target, connect_timeout=10)
        except psycopg.Error as e:
            raise BindReportError("cannot connect to history store %s (%s): check the DSN, that the server "
                                  "runs and that the role may log in" % (label, str(e).strip().splitlines()[0]))
        store = Store(conn, "postgresql", label)
    else:
        import sqlite3
        try:
            conn = sqlite3.connect(target, timeout=30)
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as e:
            raise BindReportError("cannot open history store %s (%s): give a writable file path" % (label, e))
        store = Store(conn, "sqlite", label)
    try:
        store.migrate()
    except BindReportError:
        store.close()
        raise
    except Exception as e:   # sqlite3.DatabaseError / psycopg.Error: not a store we can use
        store.close()
        raise BindReportError("history store %s is not usable (%s): give a new file or an empty database, "
                              "or one written by bindtrace" % (label, e))
    return store


def _listener_out(row, seen=None):
    out = {k: row[k] for k in ("proto", "family", "addr", "port", "comm")}
    if seen is not None:
        out["first_seen"], out["last_seen"], out["runs"] = seen
    return out


def annotate(model, store, run_id):
    """Add the across-runs view of run run_id (already recorded) to the model:
    per host new/gone since the previous run, first/last seen of each current
    listener, the trend of unexpected listeners; summary["history"]."""
    runs = store.runs(TREND_RUNS)
    previous = [r for r in runs if r["id"] < run_id]
    prev = previous[-1] if previous else None
    seen = store.seen(run_id)
    prev_rows, prev_traced = {}, set()
    if prev is not None:
        prev_traced = store.traced_hosts(prev["id"])
        for row in store.listener_rows(prev["id"]):
            prev_rows.setdefault(row["host"], {}).setdefault(row_key(row), row)
    trend_ids = [r["id"] for r in runs if r["id"] <= run_id]
    generated = {r["id"]: r["generated"] for r in runs}
    trends = store.trends(trend_ids)
    new_total = gone_total = 0
    for h in model["hosts"]:
        name = h["name"]
        facts = h.get("facts")
        current = {}
        for l in (facts or {}).get("listeners") or []:
            current.setdefault(_listener_identity(name, l), l)
        entry = {"previous_run": prev["generated"] if prev else None,
                 "compared": facts is not None and name in prev_traced,
                 "new": [], "gone": [],
                 "listeners": [_listener_out(dict(zip(("host", "proto", "family", "addr", "port", "comm"), k)),
                                             seen.get(k)) for k in sorted(current, key=_sort_key)],
                 "trend": [[generated[i], trends.get(name, {}).get(i)] for i in trend_ids]}
        if entry["compared"]:
            before = prev_rows.get(name, {})
            entry["new"] = [_listener_out(dict(zip(("host", "proto", "family", "addr", "port", "comm"), k)))
                            for k in sorted(current, key=_sort_key) if k not in before]
            entry["gone"] = [_listener_out(before[k]) for k in sorted(before, key=_sort_key)
                             if k not in current]
        new_total += len(entry["new"])
        gone_total += len(entry["gone"])
        h["history"] = entry
    model["summary"]["history"] = {
        "store": store.label, "run_id": run_id, "runs": len(store.runs()),
        "previous_run": prev["generated"] if prev else None,
        "new": new_total, "gone": gone_total,
    }
    return model


def _sort_key(k):
    return tuple("" if v is None else (v if isinstance(v, str) else "%010d" % v) for v in k)


def record_and_annotate(model, target):
    """The front-ends' one call: append the run to the store at target and
    add the across-runs view to the model -> the run id."""
    with open_store(target) as store:
        run_id = store.record_run(model)
        annotate(model, store, run_id)
    return run_id
