"""report.json text: readable, diffable JSON (objects expanded, every element
of a list of objects - a bind, a listener - on one line), produced with one
reused encoder instead of a json.dumps (and a new encoder) per element.

The text of each host's facts is made once, by build_report, which also uses
it as the check that the facts encode to UTF-8 (no lone surrogates); the
report.json writer then only joins the cached pieces."""
import json

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
compact = _ENCODER.encode


def pretty(value, level=0, cached=None):
    """value -> JSON text; continuation lines indented to `level` steps.
    cached: {id(obj): (obj, text)} of subtrees already encoded (at the level
    where they appear), used when the very same object is met again."""
    if cached:
        hit = cached.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
    pad = "  " * (level + 1)
    if isinstance(value, dict) and value:
        items = [pad + compact(k) + ": " + pretty(v, level + 1, cached) for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + pad + (",\n" + pad).join(map(compact, value)) + "\n" + "  " * level + "]"
    return compact(value)


FACTS_LEVEL = 3   # report -> hosts list -> host -> facts


def facts_text(facts):
    """The text of one host's facts as report.json holds it, or None when
    it cannot go into a UTF-8 file as is (lone surrogates: clean it first;
    values JSON cannot encode)."""
    try:
        text = pretty(facts, FACTS_LEVEL)
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return None
    return text


def report_text(model, cached=None):
    """The whole report.json (the layout of the former template)."""
    return "".join(report_parts(model, cached))


def report_parts(model, cached=None):
    """report.json as a list of pieces (the writer need not join them)."""
    parts = ["{\n"]
    for key in ("schema", "kind", "generated", "generator"):
        parts.append('  "%s": %s,\n' % (key, compact(model[key])))
    parts.append('  "baseline": %s,\n' % pretty(model["baseline"], 1))
    parts.append('  "summary": %s,\n' % pretty(model["summary"], 1))
    parts.append('  "hosts": [\n')
    hosts = model["hosts"]
    for i, host in enumerate(hosts):
        parts.append("    " + pretty(host, 2, cached) + (",\n" if i < len(hosts) - 1 else "\n"))
    parts.append("  ]\n}\n")
    return parts
