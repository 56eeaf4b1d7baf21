"""Text hygiene for names chosen by whoever runs a process (comm, container, pod).

Two layers: `clean_text` makes any value safe to store (valid UTF-8, no lone
surrogates) and keeps the exact characters for the JSON report; `visible`
turns control and bidi-override characters into printable escapes for every
human format (terminal, Markdown, HTML, XML), so they can neither move the
cursor, recolour the terminal, reorder text, nor make XML invalid.
"""
import json
import re

# C0, DEL, C1 controls; Unicode bidi embeddings/overrides/isolates and marks;
# line/paragraph separators; the BOM; U+FFFE/U+FFFF (valid UTF-8, e.g. in a
# comm, but not XML characters).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff\ufffe\uffff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SPACES = re.compile(r"\s+")
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(value):
    """A str that encodes to UTF-8: lone surrogates (from undecodable bytes)
    become U+FFFD, as invalid UTF-8 does."""
    if not isinstance(value, str):
        value = str(value)
    return _SURROGATES.sub("\ufffd", value)


def _escape(match):
    ch = match.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code


def visible(value):
    """Printable form of one cell: control characters shown as escapes."""
    if value is None:
        return ""
    return _UNSAFE.sub(_escape, clean_text(value))


def one_line(value):
    """A message (reason, error) on one line: whitespace runs collapse to a
    space, remaining control characters are escaped."""
    if value is None:
        return ""
    return visible(_SPACES.sub(" ", clean_text(value)).strip())


def clean_walk(obj):
    if isinstance(obj, str):
        return clean_text(obj)
    if isinstance(obj, dict):
        return {clean_text(k): clean_walk(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_walk(v) for v in obj]
    return obj


def clean_tree(obj):
    """A JSON-like tree with clean_text applied to every str (keys too). The
    common case (nothing to fix, found at C speed) returns obj itself."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")   # fails on lone surrogates
        return obj
    except (TypeError, ValueError, UnicodeEncodeError):
        return clean_walk(obj)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def markdown(value):
    """One Markdown table cell / heading: visible text, HTML metacharacters as
    entities (Markdown passes raw HTML through), and Markdown syntax
    backslash-escaped so a name cannot become a link, code or a new column."""
    text = visible(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)
