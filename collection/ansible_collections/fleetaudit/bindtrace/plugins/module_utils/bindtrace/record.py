"""The bind record: one table of its fields, and everything derived from it.

To add a field: edit bpf/bind.h (the struct member) + the C assignment in
bpf/bind.bpf.c + one row in FIELDS here; then `make bpf`. That is all: the
struct formats, the decoder, EVENT_KEYS, the report's fact-shape check, the
report and trace-bind columns and the bcc backend's missing_fields come from
this table. (The bcc fallback reports a new field as null until its program
fills it and its row says bcc=True; the Ansible module's RETURN text lists
the fields, and a test says when it is behind.)

`make bpf` (bpf/gen_layout.py) writes bind_h.py: bind.h's #define numbers and
its structs' layout read from the compiled object's BTF. Importing this module
checks every row against that layout (a member without a row, a row without a
member, another size or signedness) and fails naming the difference, so a
disagreement breaks the build and the tests, never a user's run.
"""
import errno
import pwd
import socket
import struct

from . import SCHEMA
from .bind_h import (OPT_FREEBIND, OPT_NO_PORT, OPT_REUSEADDR, OPT_REUSEPORT,
                     OPT_TRANSPARENT, STRUCTS)
from .protocols import proto_name

# JSON kinds (the report's fact-shape check tests each value against its kind)
INT, TEXT, MAP, BOOL = "int", "text", "map", "bool"
LIST = "list"   # scalars or flat mappings
# which records carry a field
BIND = "bind"            # every bind record (events and summary mode)
SUMMARY = "summary"      # summary-mode bind records only
LISTENER = "listener"    # listener records (listeners.py)
POLICY = "policy"        # set by the allow rules on binds and listeners
# set by the host library on binds and listeners at the end of the window: owner
# identity (owner.py), exposure, listen lifecycle
HOSTSIDE = "hostside"


class Field(object):
    """One field. c: the bind.h member it is read from; code: that member's
    struct code, on the one row that owns the member; decode(*args): the JSON
    value from the members named in args (default: (c,); "clock" passes the
    boot-time clock), or the member as is without decode. title/width: its
    column; show: "C" trace-bind always, "c" trace-bind when asked (-i=false,
    --summary), "R" the report always, "r" the report when some row has a
    value. bcc: the bcc program fills it (else it is null there)."""
    __slots__ = ("name", "kind", "c", "code", "decode", "args", "title", "width", "show",
                 "records", "bcc", "cell")

    def __init__(self, name, kind, c=None, code=None, decode=None, args=None, title=None, width=0,
                 show="", records=(BIND,), bcc=False, cell=None):
        self.name, self.kind, self.c, self.code = name, kind, c, code
        self.decode, self.args = decode, args if args is not None else ((c,) if c else ())
        self.title, self.width, self.show, self.records = title, width, show, records
        self.bcc, self.cell = bcc, cell or (lambda rec, n=name: rec.get(n))


def _rfc3339(clock, boot_ns):
    return clock.rfc3339(boot_ns)


def _no_if_name(bound_dev_if):
    # not bound to a device: "" as ig's IF; else null until a name is found
    return "" if bound_dev_if == 0 else None


def _if_cell(rec):
    # as ig's IF: the name; empty when not bound to a device; the index when no name
    name = rec.get("if")
    if name:
        return name
    return "" if not rec.get("if_index") else str(rec.get("if_index"))


def _null():
    return None


# -- the value readers the rows use -------------------------------------------
# IG v1 column order, left to right: r R N T F
OPTS_ORDER = ((OPT_REUSEPORT, "r"), (OPT_REUSEADDR, "R"), (OPT_NO_PORT, "N"),
              (OPT_TRANSPARENT, "T"), (OPT_FREEBIND, "F"))
OPTION_NAMES = ((OPT_REUSEPORT, "reuseport"), (OPT_REUSEADDR, "reuseaddr"),
                (OPT_NO_PORT, "bind_address_no_port"), (OPT_TRANSPARENT, "transparent"),
                (OPT_FREEBIND, "freebind"))


def opts_string(bits):
    return "".join(ch if bits & bit else "." for bit, ch in OPTS_ORDER)


def opts_dict(bits):
    return {name: bool(bits & bit) for bit, name in OPTION_NAMES}


def format_addr(family, raw):
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw[:16])


def errno_name(ret):
    if ret >= 0:
        return None
    return errno.errorcode.get(-ret, "error#%d" % -ret)


def clean_comm(raw):
    """comm is chosen by whoever runs the process: keep it text, never bytes."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


_users = {}


def user_name(uid):
    if uid is None:
        return None
    if uid not in _users:
        try:
            _users[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _users[uid] = str(uid)
    return _users[uid]


# protocols whose binds name a port (bind.bpf.c's port_proto; a raw socket's
# "port" is its protocol): port 0 asked there is a client bind
PORT_PROTOS = frozenset((6, 17, 132, 136, 262))


def _listened_cell(rec):
    # the backlog when the socket listened in the window, "" when it did not
    if rec.get("listened"):
        return "yes (%s)" % rec.get("backlog") if rec.get("backlog") is not None else "yes"
    return ""


def _addr_cell(rec):
    # a failed bind never got an address (the kernel leaves the socket at
    # 0.0.0.0:0): the columns show what it asked for, as JSON's requested_addr
    if rec.get("error") and rec.get("requested_addr"):
        return rec["requested_addr"]
    return rec.get("addr")


def _port_cell(rec):
    if rec.get("error") and rec.get("requested_port") is not None:
        return rec["requested_port"]
    return rec.get("port")


BL = (BIND, LISTENER)
TIME = ("clock", "ts")
FIELDS = (
    Field("schema", INT, decode=lambda: SCHEMA, bcc=True),
    Field("timestamp", TEXT, "ts", "Q", _rfc3339, TIME, bcc=True),
    Field("pid", INT, "pid", "I", title="PID", width=7, show="CR", records=BL, bcc=True),
    Field("tid", INT, "tid", "I", bcc=True),
    Field("ppid", INT, "ppid", "I", bcc=True),
    Field("uid", INT, "uid", "I", records=BL, bcc=True),
    Field("gid", INT, "gid", "I", bcc=True),
    Field("user", TEXT, "uid", decode=user_name, records=BL, bcc=True),
    Field("comm", TEXT, "comm", "16s", clean_comm, title="COMM", width=16,
          show="CR", records=BL, bcc=True),
    Field("proto", TEXT, "proto", "H", proto_name, title="PROTO", width=6, show="CR", records=BL,
          bcc=True),
    Field("family", INT, "family", "B", records=BL, bcc=True),
    Field("addr", TEXT, "addr", "16s", format_addr, ("family", "addr"),
          title="ADDR", width=16, show="CR", records=BL, bcc=True, cell=_addr_cell),
    Field("port", INT, "port", "H", title="PORT", width=6, show="CR", records=BL, bcc=True,
          cell=_port_cell),
    Field("requested_addr", TEXT, "req_addr", "16s", format_addr,
          ("family", "req_addr"), bcc=True),
    Field("requested_port", INT, "req_port", "H", bcc=True),
    # port 0 asked on a port protocol: the kernel picked the port (summary mode
    # counts these without it: bind.h's bind_stats, bind.bpf.c's summary_add)
    Field("client", BOOL, decode=lambda req_port, proto: req_port == 0 and proto in PORT_PROTOS,
          args=("req_port", "proto"), bcc=True),
    Field("opts", TEXT, "opts", "B", opts_string, title="OPTS", width=6,
          show="CR", bcc=True),
    Field("options", MAP, "opts", decode=opts_dict, bcc=True),
    Field("if_index", INT, "bound_dev_if", "I", bcc=True),
    Field("if", TEXT, "bound_dev_if", decode=_no_if_name, title="IF", show="CR", bcc=True,
          cell=_if_cell),
    Field("error", TEXT, "ret", decode=errno_name, title="ERROR", width=12,
          show="cr", bcc=True),
    Field("ret", INT, "ret", "i", bcc=True),
    Field("netns", INT, "netns", "I", records=BL, bcc=True),
    Field("mntns", INT, "mntns", "I", bcc=True),
    Field("cgroup_id", INT, "cgroup_id", "Q", bcc=True),
    Field("container", MAP, decode=_null, records=BL, bcc=True),   # set by the enricher
    Field("k8s", MAP, decode=_null, records=BL, bcc=True),
    Field("count", INT, "count", "Q", title="COUNT", width=8, show="c", records=(SUMMARY,),
          bcc=True),
    Field("first_seen", TEXT, "first_ts", "Q", _rfc3339, ("clock", "first_ts"),
          records=(SUMMARY,), bcc=True),
    Field("last_seen", TEXT, "last_ts", "Q", _rfc3339, ("clock", "last_ts"), records=(SUMMARY,),
          bcc=True),
    Field("port_min", INT, "port_min", "H", records=(SUMMARY,), bcc=True),
    Field("port_max", INT, "port_max", "H", records=(SUMMARY,), bcc=True),
    # a client key has no pid/ppid: the summary decoder reads pid and ppid from
    # these (events.py); no record carries them under their own name
    Field("first_pid", INT, "first_pid", "I", records=()),
    Field("first_ppid", INT, "first_ppid", "I", records=()),
    Field("verdict", TEXT, records=(POLICY,)),          # set by the allow rules
    Field("rule", MAP, records=(POLICY,)),     # the deciding rule: index, name, owner, ticket, expires
    Field("exposure", TEXT, title="EXPOSURE", show="r", records=(HOSTSIDE,)),
    Field("exposure_families", LIST, records=(HOSTSIDE,)),
    Field("listened", BOOL, title="LISTENED", show="r", records=(HOSTSIDE,), cell=_listened_cell),
    Field("backlog", INT, "backlog", "I", records=(HOSTSIDE,)),    # from listen_stats
    Field("exe", TEXT, title="EXE", show="r", records=(HOSTSIDE,)),
    Field("exe_state", TEXT, records=(HOSTSIDE,)),
    Field("cmdline", TEXT, records=(HOSTSIDE,)),
    Field("parents", LIST, records=(HOSTSIDE,)),
    Field("cgroup", TEXT, records=(HOSTSIDE,)),
    Field("unit", TEXT, title="UNIT", show="r", records=(HOSTSIDE,),
          cell=lambda rec: rec.get("socket_unit") or rec.get("unit")),
    Field("socket_unit", TEXT, records=(HOSTSIDE,)),
    Field("package", TEXT, title="PACKAGE", show="r", records=(HOSTSIDE,)),
    Field("state", TEXT, records=(LISTENER,)),
    Field("inode", INT, "sock_ino", "Q", records=(LISTENER,)),    # listen_stats: the socket
    Field("v6only", BOOL, records=(LISTENER,)),
    Field("cookie", INT, records=(LISTENER,)),
    Field("seen", TEXT, records=(LISTENER,)),    # "snapshot" (listening at the end) or "window"
)
BY_NAME = {f.name: f for f in FIELDS}

# -- derived: struct formats, checked against bind.h's layout ------------------
_INT_CODES = {"u": "BHIQ", "s": "bhiq"}
_INT_SIZES = (1, 2, 4, 8)


def _code_problem(struct_name, member, size, kind, code):
    if code is None:
        return "bind.h member %s.%s has no row in record.py (add one, or name it _pad)" % (
            struct_name, member)
    ok = (struct.calcsize("<" + code) == size and
          (code.endswith("s") if kind == "bytes" else code in _INT_CODES.get(kind, "")))
    if not ok:
        return "bind.h member %s.%s is %d bytes (%s) but record.py's row says %r" % (
            struct_name, member, size, kind, code)
    return None


def struct_format(struct_name, structs=None):
    """The struct.Struct of one bind.h struct: members at their bind.h
    offsets, with the codes of their rows (nested structs as bytes)."""
    structs = structs or STRUCTS
    size, members = structs[struct_name]
    owners = {f.c: f.code for f in FIELDS if f.code}
    fmt, pos = "<", 0
    for member, offset, msize, kind in members:
        if offset > pos:
            fmt += "%dx" % (offset - pos)
        if member.startswith("_") or kind.startswith("struct "):
            code = "%d%s" % (msize, "x" if member.startswith("_") else "s")
        else:
            code = owners.get(member)
            problem = _code_problem(struct_name, member, msize, kind, code)
            if problem:
                raise ImportError(problem)
        fmt += code
        pos = offset + msize
    if size > pos:
        fmt += "%dx" % (size - pos)
    return struct.Struct(fmt)


def members(struct_name, structs=None):
    """Names of the members a struct_format unpacks (padding left out)."""
    return tuple(m[0] for m in (structs or STRUCTS)[struct_name][1] if not m[0].startswith("_"))


def layout_problems(structs):
    """Everything on which the rows and bind.h's layout disagree ([] if none)."""
    problems = []
    record_members = set()
    for name in ("bind_key", "bind_event", "bind_stats", "listen_key", "listen_stats"):
        if name not in structs:
            continue
        try:
            struct_format(name, structs)
        except ImportError as exc:
            problems.append(str(exc))
        record_members.update(members(name, structs))
    for f in FIELDS:
        if f.c is not None and f.c not in record_members:
            problems.append("record.py row %s reads member %s, which bind.h's records lack" % (
                f.name, f.c))
    return problems


_problems = layout_problems(STRUCTS)
if _problems:
    raise ImportError("bind.h and record.py disagree: %s; fix one and run make bpf"
                      % "; ".join(_problems))

KEY_FMT = struct_format("bind_key")
EVENT_FMT = struct_format("bind_event")
STATS_FMT = struct_format("bind_stats")
KEY_MEMBERS = members("bind_key")
EVENT_MEMBERS = members("bind_event")
STATS_MEMBERS = members("bind_stats")


def plain_format(struct_name):
    """A struct of bind.h that is no record (bind_config): codes from its layout."""
    size, layout = STRUCTS[struct_name]
    fmt, pos = "<", 0
    for _member, offset, msize, kind in layout:
        fmt += "%dx" % (offset - pos) if offset > pos else ""
        fmt += "%ds" % msize if kind == "bytes" else _INT_CODES[kind][_INT_SIZES.index(msize)]
        pos = offset + msize
    return struct.Struct(fmt + ("%dx" % (size - pos) if size > pos else ""))


# -- derived: the JSON shape --------------------------------------------------
EVENT_FIELDS = tuple(f for f in FIELDS if BIND in f.records)
SUMMARY_FIELDS = tuple(f for f in FIELDS if SUMMARY in f.records)
EVENT_KEYS = tuple(f.name for f in EVENT_FIELDS)
# what a bind of the facts has beyond trace-bind's JSON event
BIND_FACT_KEYS = tuple(f.name for f in FIELDS if POLICY in f.records or HOSTSIDE in f.records)


def make_decoder(fields, member_names, fixed=None, alias=None):
    """-> decode(values, clock): the JSON dict of `fields` from the tuple of
    member values (in member_names order). Compiled once from the rows, as
    collections.namedtuple does, so decoding costs what a hand-written dict
    display would: the window decodes every bind it kept at its end.
    fixed: {member: value} for members this record has not (a summary's tid);
    alias: {member: another member read in its place}."""
    where = {m: "v[%d]" % i for i, m in enumerate(member_names)}
    where.update((m, repr(value)) for m, value in (fixed or {}).items())
    where.update((m, where[other]) for m, other in (alias or {}).items())
    where["clock"] = "clock"
    env, items = {}, []
    for i, f in enumerate(fields):
        args = ", ".join(where[a] for a in f.args)
        if f.decode is None:
            items.append("%r: %s" % (f.name, args))
        else:
            env["f%d" % i] = f.decode
            items.append("%r: f%d(%s)" % (f.name, i, args))
    source = "def decode(v, clock):\n    return {%s}\n" % ", ".join(items)
    exec(source, env)  # noqa: S102 (source made above from the table, no outside text)
    return env["decode"]
