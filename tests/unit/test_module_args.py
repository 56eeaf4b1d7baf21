"""The Ansible module's argument spec, its documentation and the host library's
option defaults (facts.DEFAULTS, shared with the Salt module) agree."""
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Imported in a child process: putting a plain `ansible_collections` namespace
# package into this test process could confuse Ansible's own collection loader
# in other tests.
PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.fleetaudit.bindtrace.plugins.modules import trace_bind as m
from ansible_collections.fleetaudit.bindtrace.plugins.module_utils.bindtrace import facts
print(json.dumps({"spec": m.ARGUMENT_SPEC, "defaults": facts.DEFAULTS, "doc": m.DOCUMENTATION,
                  "examples": m.EXAMPLES, "ret": m.RETURN, "import_error": str(m.IMPORT_ERROR)
                  if m.IMPORT_ERROR else None}))
"""
data = json.loads(subprocess.run([sys.executable, "-c", PROBE, os.path.join(ROOT, "collection")],
                                 stdout=subprocess.PIPE, universal_newlines=True,
                                 check=True).stdout)


class module(object):   # noqa: N801 (reads like the module's namespace below)
    IMPORT_ERROR = data["import_error"]
    ARGUMENT_SPEC = data["spec"]
    DOCUMENTATION = data["doc"]
    EXAMPLES = data["examples"]
    RETURN = data["ret"]


class facts(object):   # noqa: N801
    DEFAULTS = data["defaults"]


def test_the_module_imports_its_library():
    assert module.IMPORT_ERROR is None


def test_argument_spec_matches_library_defaults():
    # detach is how the module runs the window (here or in a process of its
    # own), not an option of the window: the library never sees it
    spec = dict(module.ARGUMENT_SPEC)
    assert spec.pop("detach") == {"type": "bool", "default": False}
    assert set(spec) == set(facts.DEFAULTS)
    assert {k: v.get("default") for k, v in spec.items()} == facts.DEFAULTS


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(module.DOCUMENTATION)
    opts = doc["options"]
    assert set(opts) == set(module.ARGUMENT_SPEC)
    for name, spec in module.ARGUMENT_SPEC.items():
        assert opts[name]["type"] == spec["type"], name
        assert opts[name].get("default") == spec.get("default"), name
        assert opts[name].get("choices") == spec.get("choices"), name
    # raw where the library must see the value as typed, so "abc" / 70000 / 0
    # get its message rather than Ansible's type-conversion one
    assert [n for n, s in module.ARGUMENT_SPEC.items() if s["type"] == "raw"] == [
        "duration", "max_events", "max_records", "pid", "ports", "uid", "allow", "start_at"]
    assert doc["attributes"]["check_mode"]["support"] == "full"
    examples = yaml.safe_load(module.EXAMPLES)
    assert all("fleetaudit.bindtrace.trace_bind" in task or "fleetaudit.bindtrace.trace_bind_collect"
               in task for task in examples)
    assert sum("fleetaudit.bindtrace.trace_bind_collect" in task for task in examples) == 1
    ret = yaml.safe_load(module.RETURN)["ansible_facts"]["contains"]["bind_trace"]["contains"]
    assert set(ret) == {"schema", "host", "window", "mode", "filters", "binds", "listeners", "lost",
                        "dropped", "truncated", "summary_full", "unexpected", "counts",
                        "missing_fields", "policy", "snapshot", "listens_full"}
