"""The front-ends stay thin: no run of 6+ lines (same text, or same shape with
other names) is repeated between the Ansible module, the Salt module, the
bind-report CLI and the callback, or between them and the rest of the tree;
the logic they share lives once, in the host library (bindtrace.facts) and the
report model (bindreport).

Uses the workplace's `duplicates` command (on PATH on this project's machines;
it only reads files). It takes well under a second on this tree.
"""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION = "collection/ansible_collections/fleetaudit/bindtrace/plugins/"
FRONT_ENDS = (
    "modules/bindtrace.py",
    COLLECTION + "modules/trace_bind.py",
    COLLECTION + "callback/bind_report.py",
    COLLECTION + "plugin_utils/bindreport/cli.py",
    COLLECTION + "plugin_utils/bindreport/inputs.py",
    COLLECTION + "module_utils/bindtrace/facts.py",
)


def test_no_duplicated_lines_in_the_front_ends():
    tool = shutil.which("duplicates")
    if tool is None:  # a workplace tool, not a package: nothing to install it from
        pytest.skip("the `duplicates` command is not on PATH on this machine")
    out = subprocess.run([tool, "--repo", ROOT, "--most", "200", "--seconds", "120"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300).stdout
    lines = out.splitlines()
    assert lines and "files read" in lines[0], out
    assert not [l for l in lines if l.startswith("incomplete:")], out
    rows = [l for l in lines if l.startswith("D")]
    ours = [r for r in rows if any(f in r for f in FRONT_ENDS)]
    assert ours == [], "\n".join(ours)
