"""Saved per-host results -> {host: {"status", "facts", "msg"}} for build_report,
so a report can be re-rendered or diffed without tracing again.

Accepted inputs (one file may hold several JSON documents one after another,
as `salt --out=json` prints one per minion unless --static is given):
  - Salt output: {minion id: result}, as `salt ... --out=json`, `salt-call
    --out=json` and `salt-run jobs.lookup_jid JID --out=json` print it. A
    result is the bind_trace dict of bindtrace.trace (its Salt-only
    `result`/`comment` are read and dropped: result false = a failed host with
    the comment as reason, its facts kept), or the text Salt puts in its
    place: "ERROR: ..." (the module raised), "'bindtrace' __virtual__ returned
    False: ..." (the module cannot load there), "Minion did not return. ..."
    (no answer). salt-call names its one minion "local": that host takes the
    name in its facts (host.hostname), else the input file's name.
  - `salt-run jobs.list_job JID --out=json`: {"jid", "Function", "Result":
    {minion: {"return": result, ...}}, ...}.
  - Job returns from the event bus (a scheduled run's too): {"id": minion,
    "fun", "jid", "return": result, ...}, one per document, optionally
    preceded by its tag as `salt-run state.event` prints it
    ("salt/job/JID/ret/MINION<TAB>{...}"). Returns of other functions than
    bindtrace.trace (the bus carries every job's) are skipped; a later
    return of one minion replaces an earlier one.
  - A previous report.json (kind bindtrace-fleet-report): its hosts as they were.
"""
import json
import os
import sys

from .gcpause import gc_paused
from .model import REPORT_KIND, BindReportError, classify_result, expand_checked

SALT_CALL_ID = "local"
NO_RETURN = "Minion did not return"
VIRTUAL_FALSE = "__virtual__ returned False"
ERROR_PREFIX = "ERROR: "
SALT_ONLY = ("result", "comment")   # bindtrace.trace's words to Salt, not facts
EVENT_TAG = "salt/"
TRACE_FUN = "bindtrace.trace"


def json_documents(text, source):
    """Every JSON document in text, in order (concatenated or one per line)."""
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text.startswith(EVENT_TAG, pos):   # `salt-run state.event`: TAG<whitespace>JSON
            while pos < len(text) and not text[pos].isspace():
                pos += 1
            continue
        if pos >= len(text):
            break
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except ValueError as e:
            raise BindReportError("%s is not Salt JSON output or a report.json (%s): save the output "
                                  "of `salt ... bindtrace.trace --out=json` or a report.json"
                                  % (source, e))
        docs.append(doc)
    if not docs:
        raise BindReportError("%s holds no JSON: a failed salt-call prints its error on stderr, not "
                              "as JSON; save the output of a run that returned" % source)
    return docs


def salt_result(value):
    """One minion's Salt return -> {"status", "facts", "msg"}, classified
    like an Ansible task result so both front-ends agree on statuses."""
    if isinstance(value, dict) and isinstance(value.get("binds"), list) and "schema" in value:
        facts = {k: v for k, v in value.items() if k not in SALT_ONLY}
        if value.get("result") is False:   # fail_on_unexpected: the comment says why
            comment = value.get("comment")
            return classify_result({"ansible_facts": {"bind_trace": facts}, "failed": True,
                                    "msg": comment if isinstance(comment, str) else None},
                                   "failed")
        return classify_result({"ansible_facts": {"bind_trace": facts}}, "ok")
    text = value if isinstance(value, str) else json.dumps(value)
    if text.startswith(NO_RETURN):
        return classify_result({"msg": text.strip()}, "unreachable")
    if VIRTUAL_FALSE in text:   # the module's own reason, e.g. "unsupported: ..."
        text = text.split(VIRTUAL_FALSE, 1)[1].lstrip(": ") or text
    elif text.startswith(ERROR_PREFIX):
        text = text[len(ERROR_PREFIX):]
    return classify_result({"msg": text.strip() or None}, "failed")


def report_hosts(doc, source):
    """A previous report.json (schema 1 or 2) -> its hosts, as build_report
    takes them (schema 2: their records are Records of the file's tables)."""
    expand_checked(doc, source, "", "%s is not a usable report.json" % source,
                   ": give a report.json as bindtrace wrote it")
    hosts = {}
    for h in doc.get("hosts") or []:
        if isinstance(h, dict) and "name" in h:
            entry = hosts[h["name"]] = {"status": h["status"], "facts": h.get("facts"), "msg": h.get("reason")}
            if isinstance(h.get("groups"), list):   # inventory groups, for fleet outliers
                entry["groups"] = h["groups"]
    return hosts


def _host_name(minion, entry, source):
    if minion != SALT_CALL_ID:
        return minion
    hostname = ((entry["facts"] or {}).get("host") or {}).get("hostname")
    return hostname or os.path.splitext(os.path.basename(source))[0]


def read_results(text, source):
    """The hosts in one saved input (see the module doc)."""
    hosts = {}
    for doc in json_documents(text, source):
        if not isinstance(doc, dict):
            raise BindReportError("%s: expected a JSON object of {minion: result}, got %s"
                                  % (source, type(doc).__name__))
        if doc.get("kind") == REPORT_KIND:
            found = report_hosts(doc, source)
        elif isinstance(doc.get("Result"), dict) and "jid" in doc and "Function" in doc:
            found = {} if doc["Function"] != TRACE_FUN else {   # jobs.list_job
                minion: salt_result(ret.get("return") if isinstance(ret, dict) else ret)
                for minion, ret in doc["Result"].items()}
        elif isinstance(doc.get("id"), str) and "return" in doc and "fun" in doc:
            # one job return event; the bus carries every job's: only the trace's count
            found = {doc["id"]: salt_result(doc["return"])} if doc["fun"] == TRACE_FUN else {}
        else:
            found = {}
            for minion, value in doc.items():
                entry = salt_result(value)
                found[_host_name(minion, entry, source)] = entry
        hosts.update(found)
    return hosts


@gc_paused()
def load_results(paths):
    """Several saved inputs (paths, "-" for stdin) -> one {host: result}; a
    host named twice is an error (two runs of one host cannot both be it)."""
    hosts, where = {}, {}
    for path in paths:
        text = _read_file(path)
        for name, entry in read_results(text, path).items():
            if name in hosts:
                raise BindReportError("host %r is in both %s and %s: give each host's result once"
                                      % (name, where[name], path))
            hosts[name], where[name] = entry, path
    if not hosts:
        raise BindReportError("no host results in %s" % ", ".join(paths))
    return hosts


def load_groups(path):
    """Inventory groups -> {host: [group, ...]}. Accepts the JSON of
    `ansible-inventory -i INV --list` ({group: {"hosts": [...], "children":
    [...]}}, children resolved) or a plain {group: [host, ...]}."""
    try:
        doc = json.loads(_read_file(path))
    except ValueError as e:
        raise BindReportError("groups file %s is not JSON (%s): save `ansible-inventory -i INV --list` "
                              "or write {group: [host, ...]}" % (path, e))
    if not isinstance(doc, dict):
        raise BindReportError("groups file %s: expected a JSON object of groups" % path)

    def members(group, seen):
        entry = doc.get(group)
        if isinstance(entry, list):
            return set(map(str, entry))
        if not isinstance(entry, dict) or group in seen:
            return set()
        out = set(map(str, entry.get("hosts") or []))
        for child in entry.get("children") or []:
            out |= members(child, seen | {group})
        return out
    hosts = {}
    for group in doc:
        if group.startswith("_"):   # _meta: host variables
            continue
        for host in members(group, set()):
            hosts.setdefault(host, set()).add(group)
    return {h: sorted(g) for h, g in hosts.items()}


def _read_file(path):
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise BindReportError("cannot read %s (%s): give a saved `--out=json` output or a report.json"
                              % (path, e.strerror))
