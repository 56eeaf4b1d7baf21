"""The bcc program text against bpf/bind.h, and how offsets become fields."""
import os
import re

from bindtrace.bcc import program as bcc_program
from bindtrace.bcc.backend import FIELD_OFFSETS, missing_from_offsets
from bindtrace.filters import make_config

BIND_H = os.path.join(os.path.dirname(__file__), "..", "..", "collection", "ansible_collections", "fleetaudit", "bindtrace", "bpf", "bind.h")


def struct_body(text, name):
    return re.search(r"struct %s \{(.*?)\};" % name, text, re.S).group(1)


def test_records_are_bind_h_verbatim():
    """The bcc program compiles bpf/bind.h as embedded by `make bpf` (not a copy)."""
    header = open(BIND_H).read()
    from bindtrace import bpf_object
    assert bpf_object.BIND_H == header, "bpf_object.py is stale: run make bpf"
    assert header in bcc_program.MAIN_C
    for name in ("bind_key", "bind_event", "bind_stats"):
        assert struct_body(bcc_program.MAIN_C, name) == struct_body(header, name)


def test_render_main_filters_and_offsets_become_defines():
    cfg = make_config(mode="summary", pid=42, ports="80,8000-8001", ignore_errors=False,
                      comm="nc", uid=0)
    text = bcc_program.render_main(cfg, 4026531840, {"HAVE_SOCK": 1, "OFF_SK_NUM": 14}, 512)
    head = text[:text.index(bcc_program.MAIN_C)]
    assert head.splitlines() == [
        "#define FILTER_COMM 1", "#define FILTER_COMM_VALUE {110, 99, 0}",
        "#define FILTER_NETNS 1", "#define FILTER_NETNS_VALUE 4026531840u",
        "#define FILTER_PID 1", "#define FILTER_PID_VALUE 42u", "#define FILTER_PORTS 1",
        "#define FILTER_UID 1", "#define FILTER_UID_VALUE 0u", "#define HAVE_SOCK 1",
        "#define IGNORE_ERRORS 0", "#define MODE_SUMMARY 1", "#define OFF_SK_NUM 14",
        "#define SUMMARY_ENTRIES 512"]


def test_comm_initializer_is_bytes_not_a_c_string():
    # a process name may hold quotes or backslashes: never pasted into C source
    assert bcc_program.c_string('a"\\') == "{97, 34, 92, 0}"


def test_missing_fields_follow_the_offsets_found():
    every = {n for _, needs in FIELD_OFFSETS for n in needs}
    assert missing_from_offsets({n: 0 for n in every}) == []
    assert missing_from_offsets({}) == ["addr", "port", "proto", "opts", "options", "if_index",
                                        "if", "netns", "mntns", "ppid"]
    no_opts = {n: 0 for n in every if n != "HAVE_OPTS"}
    assert missing_from_offsets(no_opts) == ["opts", "options"]
