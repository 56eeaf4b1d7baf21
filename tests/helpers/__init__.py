"""Helpers shared by the tests and benchmarks of every folder (kernel, hostile,
fleet, bench, unit), one copy each: kernel (run the tracer around a workload,
the BPF ids a process holds), procs (process trees from /proc, stopping them
by PID and start time), net (free ports), html (what a report page holds),
docker (container names a test uses, removed before and after).

Importable as `helpers.<module>` once tests/ is on sys.path (tests/conftest.py
puts it there; scripts run on their own, like the benchmarks, add it)."""
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
