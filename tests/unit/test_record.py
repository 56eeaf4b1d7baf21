"""The one record table (bindtrace/record.py) against bpf/bind.h as the
compiler laid it out: the object's BTF, read with bpftool. A member without a
row, a row without a member, or a size that differs fails here and in
`make bpf` / `make bpf-check`, naming the member."""
import ast
import importlib.util
import os
import shutil
import subprocess

import pytest

from bindtrace import bind_h, cli, events, record
from bindreport import factcheck, views

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BPF = os.path.join(ROOT, "bpf")   # the build: gen_layout.py, the objects
SRC = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace",
                   "bpf")   # the one copy of the source
LIB = os.path.dirname(record.__file__)

pytestmark = pytest.mark.skipif(shutil.which("bpftool") is None or shutil.which("clang") is None,
                                reason="needs bpftool and clang (.ci/run installs them)")


def gen_layout():
    spec = importlib.util.spec_from_file_location("gen_layout", os.path.join(BPF, "gen_layout.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compiled_layout(tmp_path, edit=None):
    """bind.bpf.o built from bind.h (edited by `edit`), -> its structs' layout."""
    for name in ("bind.bpf.c", "bind.h", "core_types.h"):
        shutil.copy(os.path.join(SRC, name), str(tmp_path))
    if edit:
        path = tmp_path / "bind.h"
        path.write_text(edit(path.read_text()))
    subprocess.run(["clang", "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", "-c",
                    "bind.bpf.c", "-o", "bind.bpf.o"], cwd=str(tmp_path), check=True)
    gen = gen_layout()
    return gen, gen.layout(gen.btf_types(str(tmp_path / "bind.bpf.o")))


def test_committed_object_and_record_agree():
    gen = gen_layout()
    structs = gen.layout(gen.btf_types(os.path.join(BPF, "bind.x86_64.bpf.o")))
    assert record.layout_problems(structs) == []
    # the arm64 object lays the record out the same way (the same fields on both)
    assert gen.layout(gen.btf_types(os.path.join(BPF, "bind.arm64.bpf.o"))) == structs
    assert structs == bind_h.STRUCTS
    # bind_h.py is what make bpf writes from the committed header and object
    text = gen.render(open(os.path.join(SRC, "bind.h")).read(), structs)
    assert open(os.path.join(LIB, "bind_h.py")).read() == text
    assert (record.KEY_FMT.size, record.EVENT_FMT.size, record.STATS_FMT.size) == (96, 112, 40)
    assert (bind_h.STAT_LOST, bind_h.OPT_REUSEPORT, bind_h.TASK_COMM_LEN) == (0, 16, 16)


def test_a_member_without_a_row_fails(tmp_path):
    _gen, structs = compiled_layout(tmp_path, lambda h: h.replace(
        "\tchar comm[TASK_COMM_LEN];\n};\n\nstruct bind_event",
        "\tchar comm[TASK_COMM_LEN];\n\t__u32 listened;\n};\n\nstruct bind_event"))
    assert structs["bind_key"][0] == 104
    assert record.layout_problems(structs) == [
        "bind.h member bind_key.listened has no row in record.py (add one, or name it _pad)"]


def test_a_member_of_another_size_fails(tmp_path):
    _gen, structs = compiled_layout(tmp_path, lambda h: h.replace("__u16 port;", "__u32 port;", 1))
    assert record.layout_problems(structs) == [
        "bind.h member bind_key.port is 4 bytes (u) but record.py's row says 'H'"]


def test_a_row_without_a_member_fails(tmp_path):
    # the member renamed (the C program follows through the macro)
    _gen, structs = compiled_layout(tmp_path, lambda h: h.replace(
        "\t__u32 mntns;", "\t__u32 mnt_ns;\n#define mntns mnt_ns"))
    assert record.layout_problems(structs) == [
        "bind.h member bind_key.mnt_ns has no row in record.py (add one, or name it _pad)",
        "record.py row mntns reads member mntns, which bind.h's records lack"]


def test_make_bpf_refuses_a_disagreement(tmp_path):
    """gen_layout (make bpf) exits naming the difference and writes nothing."""
    _gen, _ = compiled_layout(tmp_path, lambda h: h.replace("__u16 port;", "__u32 port;", 1))
    out = os.path.join(LIB, "bind_h.py")
    before = open(out).read()
    proc = subprocess.run(["python3", os.path.join(BPF, "gen_layout.py"), "--check",
                           str(tmp_path / "bind.h"), str(tmp_path / "bind.bpf.o"), out],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 1
    assert proc.stdout.strip().endswith(
        "bind.h and record.py disagree: ImportError: bind.h and record.py disagree: bind.h member "
        "bind_key.port is 4 bytes (u) but record.py's row says 'H'; fix one and run make bpf")
    assert open(out).read() == before


def test_everything_else_is_derived_from_the_table():
    assert events.EVENT_KEYS == tuple(f.name for f in record.FIELDS if record.BIND in f.records)
    assert set(factcheck.INT_FIELDS) | set(factcheck.TEXT_FIELDS) | set(factcheck.MAP_FIELDS) | \
        set(factcheck.BOOL_FIELDS) | set(factcheck.LIST_FIELDS) == {f.name for f in record.FIELDS}
    assert [t for t, _ in views.SEED_COLUMNS] == ["PID", "COMM", "PROTO", "ADDR", "PORT", "OPTS",
                                                  "IF"]
    assert [c[0] for c in cli.BASE_COLUMNS] == ["PID", "COMM", "PROTO", "ADDR", "PORT", "OPTS", "IF"]
    # the Ansible module's RETURN names the same fields
    module = os.path.join(LIB, "..", "..", "modules", "trace_bind.py")
    tree = ast.parse(open(module).read())
    ret = [n.value.value for n in tree.body if isinstance(n, ast.Assign)
           and n.targets[0].id == "RETURN"][0]
    listed = ret.split('"Fields: ', 1)[1].split('."', 1)[0]
    assert [f.strip() for f in listed.replace("\n", " ").split(",")] == \
        list(events.EVENT_KEYS) + list(record.BIND_FACT_KEYS)
