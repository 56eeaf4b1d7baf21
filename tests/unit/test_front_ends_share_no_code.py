"""The front-ends stay thin: no run of 6+ lines is repeated between the Ansible
module, the Salt module and state, the bind-report CLI and the callback, or
between them and the rest of the Python tree; the logic they share lives once,
in the host library (bindtrace.facts) and the report model (bindreport).

Our own check (the project depends only on what it installs): Python's tokenizer
turns each file into logical lines of tokens; comments, docstrings, imports and
lines of bare punctuation are left out; a run is "the same" when its tokens are
the same, or the same shape (every name, string and number replaced by a
placeholder: code copied and renamed).
"""
import io
import os
import tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = "collection/ansible_collections/fleetaudit/bindtrace/plugins/"
FRONT_ENDS = (
    "modules/bindtrace.py",
    "states/bindtrace.py",
    PLUGINS + "modules/trace_bind.py",
    PLUGINS + "callback/bind_report.py",
    PLUGINS + "plugin_utils/bindreport/cli.py",
    PLUGINS + "plugin_utils/bindreport/inputs.py",
    PLUGINS + "module_utils/bindtrace/facts.py",
)
# generated code (the embedded BPF objects and header) is left out
GENERATED = ("bpf_object.py", "bind_h.py")
RUN = 6


def logical_lines(path):
    """[(first line number, exact tokens, shape tokens)] of the code lines."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    out, exact, shape, start, prev = [], [], [], None, None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
            continue
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            docstring = len(exact) == 1 and prev == tokenize.STRING
            is_import = exact[:1] in (["import"], ["from"])
            if exact and not docstring and not is_import and any(t.isalnum() or "_" in t for t in exact):
                out.append((start, tuple(exact), tuple(shape)))
            exact, shape, start = [], [], None
            continue
        if start is None:
            start = tok.start[0]
        exact.append(tok.string)
        if tok.type == tokenize.NAME and tok.string not in KEYWORDS:
            shape.append("N")
        elif tok.type in (tokenize.STRING, tokenize.NUMBER):
            shape.append("V")
        else:
            shape.append(tok.string)
        prev = tok.type
    return out


KEYWORDS = set(__import__("keyword").kwlist) | {"self", "None", "True", "False"}


def python_files():
    for top in ("collection", "modules", "states", "scripts"):
        for base, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "tests")]
            for name in files:
                if name.endswith(".py") and name not in GENERATED:
                    yield os.path.relpath(os.path.join(base, name), ROOT)


def runs(lines, key):
    """{run of RUN consecutive lines (by key) -> first line number}"""
    out = {}
    for i in range(len(lines) - RUN + 1):
        window = tuple(l[key] for l in lines[i:i + RUN])
        out.setdefault(window, lines[i][0])
    return out


def repeats(which):
    """'a.py:10 ~ b.py:40' for each run of a front-end found again (key 1:
    same tokens, key 2: same shape)."""
    files = {p: logical_lines(os.path.join(ROOT, p)) for p in python_files()}
    fronts = [f for f in FRONT_ENDS if f in files]
    assert len(fronts) >= 5, "front-end files not found: %s" % fronts
    found = []
    seen = {}
    for path, lines in files.items():
        for window, line in runs(lines, which).items():
            seen.setdefault(window, []).append((path, line))
    for front in fronts:
        for window, line in runs(files[front], which).items():
            others = [(p, n) for p, n in seen[window] if (p, n) != (front, line)]
            if others:
                found.append("%s:%d ~ %s" % (front, line, ", ".join("%s:%d" % o for o in others)))
    return found


def test_no_front_end_repeats_code():
    assert repeats(1) == []


def test_no_front_end_repeats_code_with_other_names():
    assert repeats(2) == []


def test_the_check_finds_a_copied_and_renamed_block(tmp_path):
    """The check itself can fail: a block copied with other names is found."""
    block = ("def f(a, b):\n    c = a + b\n    if c > 3:\n        c = c * 2\n    d = [c, a]\n"
             "    e = {'k': d}\n    return e\n")
    renamed = block.replace("a", "x").replace("'k'", "'z'")
    one, two = tmp_path / "one.py", tmp_path / "two.py"
    one.write_text(block)
    two.write_text("import os\n\n" + renamed)
    a, b = logical_lines(str(one)), logical_lines(str(two))
    assert set(runs(a, 2)) & set(runs(b, 2))
    assert not set(runs(a, 1)) & set(runs(b, 1))
