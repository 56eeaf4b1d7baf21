"""report.json text: readable, diffable JSON (objects expanded, every element
of a list of objects - a bind, a listener - on one line), produced with one
reused encoder instead of a json.dumps (and a new encoder) per element.

The text of each host's facts is made once, by build_report, which also uses
it as the check that the facts encode to UTF-8 (no lone surrogates); the
report.json writer then only joins the cached pieces."""
import json
import os

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
    data = facts_bytes(facts)
    return None if data is None else data[0]


def facts_bytes(facts):
    """(text, its UTF-8 bytes) of facts_text, or None."""
    try:
        text = pretty(facts, FACTS_LEVEL)
        return text, text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return None


class Segment(object):
    """A facts text that a forked child wrote, as UTF-8, into a private
    unlinked spill file: report.json copies it file to file (sendfile)
    instead of bringing the text back through a pipe."""
    __slots__ = ("file", "offset", "length")

    def __init__(self, file, offset, length):
        self.file, self.offset, self.length = file, offset, length

    def data(self):
        chunks, done = [], 0
        while done < self.length:
            chunk = os.pread(self.file.fileno(), self.length - done, self.offset + done)
            if not chunk:
                raise OSError(5, "report spill file is shorter than expected")
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def text(self):
        return self.data().decode("utf-8")


def spill_texts(facts_list, file):
    """Write the facts texts to file, one after the other -> [(offset,
    length) or None (facts that need cleaning)]."""
    out, offset = [], 0
    for facts in facts_list:
        data = None if facts is None else facts_bytes(facts)
        if data is None:
            out.append(None)
            continue
        view, done = memoryview(data[1]), 0
        while done < len(view):
            done += os.pwrite(file.fileno(), view[done:], offset + done)
        out.append((offset, len(view)))
        offset += len(view)
    return out


_MARK = "\x00"   # never in JSON text: control characters are escaped there


def report_text(model, cached=None):
    """The whole report.json (the layout of the former template)."""
    return "".join(p if isinstance(p, str) else p.text() for p in report_parts(model, cached))


def report_parts(model, cached=None):
    """report.json as a list of pieces: str, or Segment for facts a forked
    child wrote to the spill file (the writer need not join them)."""
    parts = ["{\n"]
    for key in ("schema", "kind", "generated", "generator"):
        parts.append('  "%s": %s,\n' % (key, compact(model[key])))
    parts.append('  "baseline": %s,\n' % pretty(model["baseline"], 1))
    parts.append('  "summary": %s,\n' % pretty(model["summary"], 1))
    parts.append('  "hosts": [\n')
    hosts = model["hosts"]
    for i, host in enumerate(hosts):
        end = ",\n" if i < len(hosts) - 1 else "\n"
        facts = host.get("facts")
        hit = cached.get(id(facts)) if cached else None
        if hit is not None and hit[0] is facts and isinstance(hit[1], Segment):
            before, after = pretty(host, 2, {id(facts): (facts, _MARK)}).split(_MARK)
            parts.extend(("    " + before, hit[1], after + end))
        else:
            parts.append("    " + pretty(host, 2, cached) + end)
    parts.append("  ]\n}\n")
    return parts
