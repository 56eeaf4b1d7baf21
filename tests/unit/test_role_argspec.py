"""The bcc role's options are declared once in meta/argument_specs.yml; its
defaults/main.yml and README table must say the same names and defaults."""
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace", "roles", "bcc")


def load(*path):
    with open(os.path.join(ROLE, *path)) as f:
        return yaml.safe_load(f)


def test_argument_spec_defaults_and_readme_agree():
    options = load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults = load("defaults", "main.yml")
    assert {k: v["default"] for k, v in options.items()} == defaults
    assert all(v["description"] and v["type"] in ("bool", "str", "path") for v in options.values())
    with open(os.path.join(ROLE, "README.md")) as f:
        rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", f.read(), re.M)
    assert {name: yaml.safe_load(value) for name, value in rows} == defaults
