"""Shared test set-up: make the host library and the report model importable
as plain packages (`bindtrace`, `bindreport`) straight from the collection,
and tests/ itself (`controller`: which Ansible the tests drive)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTION = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace")
for sub in ("plugins/module_utils", "plugins/plugin_utils"):
    path = os.path.join(COLLECTION, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
