"""Allow rules -> a verdict per bind and per listener.

A policy is a list of rules (dicts). A rule matches a record when every key it
gives matches; a record is "expected" when any rule matches, else "unexpected".
No policy at all (None) gives verdict None everywhere; an empty list is a
policy that allows nothing.

Rule keys (all optional, at least one match key per rule):
  port       80 | "8000-8100" | [22, "8000-8100"]
  proto      "tcp" | ["tcp", "udp"]          (case-insensitive, as in the event's proto)
  addr       "loopback" | "any" (wildcard 0.0.0.0 / ::) | "10.0.0.5" | "10.0.0.0/8" | list
  comm       fnmatch glob of the process name, e.g. "nginx*" | list
  user       user name or uid, glob allowed: "www-data" | 0 | "svc-*" | list
  container  glob of the container name; "*" = any container (never a host process)
  host       true: only host processes (no container); false: only containers
  client     true: the rule matches client binds only (see below)
  exe        fnmatch glob of the executable's path, e.g. "/usr/sbin/nginx" | "/opt/*" | list
  unit       glob of the systemd unit: the cgroup's unit ("nginx.service") or, for a socket
             the service manager holds, its .socket unit ("ssh.socket") | list
  package    glob of the package that installed the executable ("nginx*") | list
  exposure   "loopback" | "address" | "wildcard" | list (how reachable the address is)
  name, description   free text, for people
  owner, ticket       free text: who asked for this exception, and where it was agreed
  expires    a date (YYYY-MM-DD, UTC): after that day the rule no longer allows; what it
             would have allowed gets the verdict "expired", naming the rule, owner and ticket

Verdicts: "expected" (a live rule matches), "expired" (only rules past their
expires date match), "unexpected" (no rule matches). `rule` on each record
names the rule that decided: {index, name, owner, ticket, expires}.

Failed binds (error set) get a verdict like any bind, for the report, but they
opened nothing: they are never listed in `unexpected` (so they never fail a task).

Client binds: a bind that asked for port 0 (the kernel picks the port, or
IP_BIND_ADDRESS_NO_PORT defers it to connect()) of a port protocol (TCP, UDP,
UDP-Lite, SCTP, MPTCP), on a socket that did not listen: what every client
socket of Java's DatagramSocket(), Node's dgram or a DNS resolver does. Summary
mode counts them in the kernel per process and address, without the port.
By default the policy does not judge them: their verdict is "client" and they
never fail a task. A rule with `client: true` turns judging on: then every
client bind is "expected" when a `client: true` rule matches it, else
"unexpected" (rules without `client: true` match listeners and binds to a
requested port only). A port-0 socket that becomes a listener is judged as the
listener it is, with its real port (the listener records).
"""
import datetime
import fnmatch
import ipaddress

from . import BindtraceError
from .protocols import PROTO_NAMES

MATCH_KEYS = ("port", "proto", "addr", "comm", "user", "container", "host", "client", "exe",
              "unit", "package", "exposure")
INFO_KEYS = ("name", "description", "owner", "ticket")
EXPOSURES = ("loopback", "address", "wildcard")
PROTOS = sorted(set(PROTO_NAMES.values()))
ADDR_WORDS = ("loopback", "any", "wildcard")
LOOPBACK_NETS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _fail(index, key, value, fix):
    where = "allow rule %d" % index if key is None else "allow rule %d, key %r" % (index, key)
    raise BindtraceError("invalid %s (%r): %s" % (where, value, fix))


def _known(index, key, value, known, case, hint):
    """Each item of value, normalised by case(), must be one of known."""
    names = []
    for item in _items(value):
        name = case(str(item).strip())
        if isinstance(item, bool) or name not in known:
            _fail(index, key, item, hint)
        names.append(name)
    return names


def _items(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _port_range(index, item):
    fix = "expected a port 1-65535, a range like \"8000-8100\", or a list of those"
    if isinstance(item, bool):
        _fail(index, "port", item, fix)
    text = str(item).strip()
    parts = text.split("-", 1) if "-" in text else [text, text]
    try:
        lo, hi = int(parts[0].strip(), 10), int(parts[1].strip(), 10)
    except ValueError:
        _fail(index, "port", item, fix)
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        _fail(index, "port", item, fix)
    if lo > hi:
        _fail(index, "port", item, "the first port of a range must not exceed the second")
    return (lo, hi)


def _addr_matcher(index, item):
    """-> ("word", "loopback"|"any") or ("net", ip_network)."""
    text = str(item).strip().lower()
    if text in ADDR_WORDS:
        return ("word", "any" if text == "wildcard" else text)
    try:
        return ("net", ipaddress.ip_network(text, strict=False))
    except ValueError:
        _fail(index, "addr", item, "expected 'loopback', 'any', an IP address or a CIDR "
                                   "like 10.0.0.0/8 (or a list of those)")


def _glob_list(index, key, value):
    out = []
    for item in _items(value):
        if item is None or isinstance(item, (bool, dict, list)) or str(item) == "":
            _fail(index, key, value, "expected a non-empty text or glob (or a list of those)")
        out.append(str(item))
    return out


def compile_rule(index, rule):
    """Validate one rule and return it in matching form (a dict of key -> matcher)."""
    if not isinstance(rule, dict):
        _fail(index, None, rule, "each rule must be a mapping such as {port: 22, proto: tcp}")
    known = MATCH_KEYS + INFO_KEYS + ("expires",)
    unknown = sorted((k for k in rule if k not in known), key=str)
    if unknown:
        _fail(index, unknown[0], rule[unknown[0]],
              "unknown key; rule keys are %s" % ", ".join(known))
    if not any(k in rule for k in MATCH_KEYS):
        _fail(index, None, rule, "a rule needs at least one of %s (an empty rule would allow "
                                 "everything)" % ", ".join(MATCH_KEYS))
    out = {}
    for key in MATCH_KEYS:
        if key not in rule:
            continue
        value = rule[key]
        if value is None or value == [] or value == "":
            _fail(index, key, value, "give a value or leave the key out")
        if key == "port":
            out[key] = [_port_range(index, item) for item in _items(value)]
        elif key == "proto":
            out[key] = _known(index, key, value, PROTOS, str.upper,
                              "expected a protocol name such as tcp or udp (known: %s)"
                              % ", ".join(p.lower() for p in PROTOS))
        elif key == "addr":
            out[key] = [_addr_matcher(index, item) for item in _items(value)]
        elif key == "exposure":
            out[key] = _known(index, key, value, EXPOSURES, str.lower,
                              "expected %s (or a list of those)" % ", ".join(EXPOSURES))
        elif key == "host":
            if not isinstance(value, bool):
                _fail(index, key, value, "expected true (host processes only) or false "
                                         "(containers only)")
            out[key] = value
        elif key == "client":
            if value is not True:
                _fail(index, key, value, "expected true: the rule then allows client binds "
                                         "(port 0) and client binds are judged; leave the key "
                                         "out for rules about listeners")
            out[key] = value
        else:
            out[key] = _glob_list(index, key, value)
    for key in INFO_KEYS:
        if key in rule and not isinstance(rule[key], str):
            _fail(index, key, rule[key], "expected text")
    expires = _expires(index, rule["expires"]) if "expires" in rule else None
    out = Rule(out)
    out.about = {"index": index, "name": rule.get("name"), "owner": rule.get("owner"),
                 "ticket": rule.get("ticket"),
                 "expires": expires.isoformat() if expires else None}
    out.expires = expires
    return out


class Rule(dict):
    """A compiled rule: key -> matcher, plus `about` (what names it) and `expires`."""
    about = None
    expires = None


def _expires(index, value):
    """A date (YAML may already have made it one) or 'YYYY-MM-DD' -> date."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.datetime.strptime(str(value).strip(), "%Y-%m-%d").date()
    except ValueError:
        _fail(index, "expires", value, "expected a date as YYYY-MM-DD (the last day the "
                                       "exception allows, UTC)")


def validate_rules(rules):
    """None (no policy) or a list of rule dicts -> compiled rules (or None)."""
    if rules is None:
        return None
    if isinstance(rules, str):
        # ad-hoc key=value arguments (ansible -a "allow=[...]") can only carry text
        raise BindtraceError(
            "invalid allow (%r): expected a list of rules, got text; key=value arguments "
            "(ansible -a \"allow=...\") carry only text: give the arguments as JSON instead, "
            "e.g. -a '{\"allow\": [{\"port\": 22, \"proto\": \"tcp\"}]}', or set allow in a "
            "playbook or group_vars" % (rules,))
    if not isinstance(rules, (list, tuple)):
        raise BindtraceError("invalid allow (%r): expected a list of rules, e.g. "
                             "[{port: 22, proto: tcp}, {addr: loopback}]" % (rules,))
    return [compile_rule(i, rule) for i, rule in enumerate(rules)]


# -- matching -----------------------------------------------------------------
def _ip(text):
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped if mapped is not None else ip   # ::ffff:10.0.0.1 is 10.0.0.1


def _addr_ok(matchers, addr):
    ip = _ip(addr) if addr else None
    if ip is None:
        return False
    for kind, what in matchers:
        if kind == "word":
            if what == "any" and ip.is_unspecified:
                return True
            if what == "loopback" and any(ip.version == n.version and ip in n
                                          for n in LOOPBACK_NETS):
                return True
        elif ip.version == what.version and ip in what:
            return True
    return False


def _port_of(rec):
    port = rec.get("port") or 0
    if not port:  # a failed bind never got its port: judge what it asked for
        port = rec.get("requested_port") or 0
    return port


def _container_name(rec):
    container = rec.get("container") or {}
    k8s = rec.get("k8s") or {}
    return container.get("name") or k8s.get("container")


def _is_container(rec):
    return bool(rec.get("container") or (rec.get("k8s") or {}).get("pod"))


def _user_ok(globs, rec):
    names = [str(rec["uid"])] if rec.get("uid") is not None else []
    if rec.get("user"):
        names.append(rec["user"])
    return any(fnmatch.fnmatchcase(n, g) for g in globs for n in names)


# protocols whose binds name a port (a raw socket's "port" is its protocol number)
PORT_PROTOS = ("TCP", "UDP", "UDPLITE", "SCTP", "MPTCP")


def is_client(rec):
    """A client bind: it asked for port 0 and its socket did not listen (the
    decoder sets `client`; the test is repeated for records without it)."""
    if rec.get("listened") or rec.get("state"):   # a listener (record of the snapshot)
        return False
    if "client" in rec:
        return bool(rec["client"])
    return rec.get("requested_port") == 0 and str(rec.get("proto") or "").upper() in PORT_PROTOS


def judges_clients(compiled):
    return bool(compiled) and any(r.get("client") for r in compiled)


def rule_matches(rule, rec, client=None):
    """client: whether rec is a client bind (None: work it out)."""
    if client is None:
        client = is_client(rec)
    if bool(rule.get("client")) != client:
        return False    # client rules judge client binds; other rules judge everything else
    for key, want in rule.items():
        if key == "client":
            continue
        if key == "port":
            port = _port_of(rec)
            ok = any(lo <= port <= hi for lo, hi in want)
        elif key == "proto":
            ok = str(rec.get("proto") or "").upper() in want
        elif key == "addr":
            ok = _addr_ok(want, rec.get("addr"))
        elif key == "comm":
            ok = rec.get("comm") is not None and any(
                fnmatch.fnmatchcase(rec["comm"], g) for g in want)
        elif key == "user":
            ok = _user_ok(want, rec)
        elif key == "container":
            name = _container_name(rec)
            ok = _is_container(rec) and any(
                g == "*" or (name is not None and fnmatch.fnmatchcase(name, g)) for g in want)
        elif key == "exe":
            ok = rec.get("exe") is not None and any(
                fnmatch.fnmatchcase(rec["exe"], g) for g in want)
        elif key == "unit":
            names = [n for n in (rec.get("unit"), rec.get("socket_unit")) if n]
            ok = any(fnmatch.fnmatchcase(n, g) for g in want for n in names)
        elif key == "package":
            ok = rec.get("package") is not None and any(
                fnmatch.fnmatchcase(rec["package"], g) for g in want)
        elif key == "exposure":
            ok = rec.get("exposure") in want
        else:  # host
            ok = want == (not _is_container(rec))
        if not ok:
            return False
    return True


def today_utc():
    return datetime.datetime.now(datetime.timezone.utc).date()


def decide(compiled, rec, clients_judged=None, listener=False, today=None):
    """-> (verdict, the deciding rule's `about` or None). Verdicts: None (no
    policy), "client" (a client bind nobody asked to judge), "expected",
    "expired" (only rules past their expires date match), "unexpected".
    A listener is never a client."""
    if compiled is None:
        return None, None
    if clients_judged is None:
        clients_judged = judges_clients(compiled)
    client = not listener and is_client(rec)
    if client and not clients_judged:
        return "client", None
    today = today or today_utc()
    expired = None
    for rule in compiled:
        if not rule_matches(rule, rec, client):
            continue
        if rule.expires is not None and today > rule.expires:
            expired = expired or rule
            continue
        return "expected", getattr(rule, "about", None)
    if expired is not None:
        return "expired", expired.about
    return "unexpected", None


def verdict(compiled, rec, clients_judged=None, listener=False, today=None):
    return decide(compiled, rec, clients_judged, listener, today)[0]


FAILING = ("unexpected", "expired")


def apply_policy(rules, binds, listeners, today=None):
    """Set `verdict` and `rule` on every bind and listener (in place); return
    the ones no live rule allows (unexpected or expired): {"binds": [successful
    binds], "listeners": [...]}."""
    compiled = validate_rules(rules)
    judged = judges_clients(compiled)
    unexpected = {"binds": [], "listeners": []}
    for kind, recs in (("binds", binds), ("listeners", listeners)):
        for rec in recs:
            rec["verdict"], rec["rule"] = decide(compiled, rec, judged, kind == "listeners", today)
            if rec["verdict"] in FAILING and not (kind == "binds" and rec.get("error")):
                unexpected[kind].append(rec)
    return unexpected


def _shown(value):
    """A name chosen by whoever runs the process, as it may appear in a message
    printed on a terminal: unprintable characters (ESC, newline, bidi) escaped."""
    return "".join(ch if ch.isprintable() else (
        "\\x%02x" % ord(ch) if ord(ch) < 0x100 else "\\u%04x" % ord(ch)) for ch in str(value))


def describe(rec):
    """One line naming a bind or listener: 'TCP 0.0.0.0:8080 nc pid 123', plus
    ' in container NAME' for a container's."""
    addr = rec.get("addr") or "?"
    if ":" in addr:
        addr = "[%s]" % addr
    where = _container_name(rec) or (rec.get("container") or {}).get("id")
    inside = " in container %s" % _shown(where) if where else ""
    port = _port_of(rec)
    if is_client(rec):   # 'UDP 127.0.0.1 client binds x2000 (ports 32768-60999)'
        port_min, port_max = rec.get("port_min"), rec.get("port_max")
        ports = "" if not port_max else " (port %d)" % port_max if port_min == port_max else \
            " (ports %s-%s)" % (port_min, port_max)
        port = "0 client bind%s x%s%s" % ("s" if rec.get("count", 1) != 1 else "",
                                          rec.get("count", 1), ports)
    if rec.get("pid") is None:   # a socket no visible process holds (another pid namespace)
        text = "%s %s:%s (no owning process visible)%s" % (rec.get("proto"), addr, port, inside)
    else:
        text = "%s %s:%s %s pid %s%s" % (rec.get("proto"), addr, port, _shown(rec.get("comm")),
                                         rec.get("pid"), inside)
    unit = rec.get("socket_unit") or rec.get("unit")
    if unit:
        text += " (%s)" % _shown(unit)
    if rec.get("verdict") == "expired" and rec.get("rule"):
        text += " " + expired_text(rec["rule"])
    return text


def expired_text(about):
    """'[exception expired 2026-01-31: rule 2 "legacy-web", owner alice, ticket OPS-1]'"""
    name = ' "%s"' % _shown(about["name"]) if about.get("name") else ""
    return "[exception expired %s: rule %s%s, owner %s, ticket %s]" % (
        about.get("expires"), about.get("index"), name, _shown(about.get("owner") or "-"),
        _shown(about.get("ticket") or "-"))
