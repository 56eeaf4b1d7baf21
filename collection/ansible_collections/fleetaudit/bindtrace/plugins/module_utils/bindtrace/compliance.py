"""The verdict on one traced window for a front-end that reports pass/fail and
changes (Salt's bindtrace.compliant state, the `result`/`comment` of Salt's
bindtrace.trace): a one-line comment, and the drift of the listener set
against the previous run's, kept as a small JSON file on the host."""
import json
import os
import tempfile

from . import BindtraceError
from .facts import incomplete_message, unexpected_failure

STATE_KIND = "bindtrace-listener-set"


def _addr(rec):
    addr = rec.get("addr") or "?"
    return "[%s]" % addr if ":" in addr else addr


def listener_name(rec):
    """A listener across runs, without its pid (a restarted daemon is the same
    listener): 'TCP 127.0.0.1:47200 python3', plus ' in container NAME'."""
    container = (rec.get("container") or {}).get("name") or (rec.get("k8s") or {}).get("container")
    inside = " in container %s" % container if container else ""
    comm = rec.get("comm")
    who = " %s" % comm if comm is not None else " (no owning process visible)"
    return "%s %s:%s%s%s" % (rec.get("proto"), _addr(rec), rec.get("port"), who, inside)


def listener_set(facts):
    """The sorted, distinct names of the window's listeners. A list cut at
    max_records is no listener set: comparing it would report drift that is
    not there (fail closed)."""
    omitted = (facts.get("counts") or {}).get("omitted_listeners") or 0
    if omitted:
        raise BindtraceError("%d listeners on %s were left out of the facts (max_records): the "
                             "listener set cannot be compared; set max_records to unlimited"
                             % (omitted, facts["host"]["hostname"]))
    return sorted({listener_name(l) for l in facts.get("listeners") or []})


def drift(previous, current):
    """{"new": [...], "gone": [...]} between two listener sets, or {} when equal.
    previous None (no earlier run) makes every listener new."""
    before = set(previous or [])
    now = set(current)
    if previous is not None and before == now:
        return {}
    return {"new": sorted(now - before), "gone": sorted(before - now)}


def verdict(facts):
    """-> (compliant, comment) for facts traced with a policy (allow rules):
    compliant when nothing the rules do not allow was seen and every bind was
    seen (a full table or lost records fail, closed)."""
    failure = unexpected_failure(facts, True)
    if failure:
        return False, failure
    rules = facts["policy"]["rules"]
    return True, "%s, all allowed by the %d allow rule%s" % (_counted(facts), rules, _s(rules))


def no_policy_message():
    return ("no allow rules: set the pillar key bindtrace:allow to a list of rules, or pass "
            "allow=[...] (an empty list allows nothing)")


def summary(facts, policy):
    """One line for a trace that fails nothing: counts, and (with a policy)
    what no rule allows."""
    text = _counted(facts)
    if policy:
        counts = facts["counts"]
        text += "; unexpected: %d listener%s, %d bind%s" % (
            counts["unexpected_listeners"], _s(counts["unexpected_listeners"]),
            counts["unexpected_binds"], _s(counts["unexpected_binds"]))
        failure = unexpected_failure(facts, True)
        if failure:
            text += " (%s)" % failure
    else:
        unchecked = incomplete_message(facts)
        text += "; no allow rules" + ("; " + unchecked if unchecked else "")
    return text


def _counted(facts):
    counts = facts["counts"]
    return "%d listener%s and %d bind%s on %s in the %s s window" % (
        counts["listeners"], _s(counts["listeners"]), counts["binds"], _s(counts["binds"]),
        facts["host"]["hostname"], facts["window"]["duration"])


def _s(n):
    return "" if n == 1 else "s"


def load_listener_set(path):
    """The previous run's listener set, or None when there was none. A file
    that is not ours is an error (the state must not guess a baseline)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BindtraceError("cannot read the previous listener set %s (%s): remove the file; "
                             "the next run records a new one" % (path, exc))
    if not (isinstance(doc, dict) and doc.get("kind") == STATE_KIND
            and isinstance(doc.get("listeners"), list)):
        raise BindtraceError("%s is not a bindtrace listener set: remove the file; the next run "
                             "records a new one" % path)
    return [str(x) for x in doc["listeners"]]


def store_listener_set(path, names, facts):
    """Write the listener set atomically (0600 file, 0700 directory)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    doc = {"kind": STATE_KIND, "host": facts["host"]["hostname"], "window": facts["window"],
           "listeners": list(names)}
    fd, tmp = tempfile.mkstemp(prefix=".listeners-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
