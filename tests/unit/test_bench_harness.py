"""The benchmark harness's own logic (tests/bench), without timing anything:
the generated fleet facts are facts the real report model accepts, with exact
counts, and the cost / storm arithmetic turns runs into the right ratios."""
import os
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import bench_cost  # noqa: E402
import bench_report  # noqa: E402
import bench_storm  # noqa: E402
from bindreport import build_report, render_terminal  # noqa: E402


def test_generated_facts_pass_the_report_model_with_exact_counts():
    results = bench_report.fleet_results(200, 30)
    model = build_report(results)
    s = model["summary"]
    # hosts 1, 98, 195 unreachable and 2, 99, 196 unsupported; every other host's
    # facts pass factcheck (a refused host would show as failed)
    assert (s["hosts"], s["traced"], s["failed"], s["unreachable"], s["unsupported"]) == (
        200, 194, 0, 3, 3)
    assert s["bind_records"] == 194 * 30
    # counts 1 + i % 9 for i in 0..29: 30 + 3 * (0 + ... + 8) + (0 + 1 + 2) = 141 per host
    assert s["binds"] == 194 * 141
    host = next(h for h in model["hosts"] if h["name"] == "host0000")
    binds = host["facts"]["binds"]
    assert sum(1 for b in binds if b["container"]) == 10          # i % 3 == 0
    assert sum(1 for b in binds if b["error"] == "EADDRINUSE") == 1  # i == 0
    assert {b["verdict"] for b in binds} == {"expected", "unexpected"}
    assert "host0199" in render_terminal(model)


def run(rnd, cpu, offered=1000000, **extra):
    return dict({"round": rnd, "cpu": cpu, "offered": offered, "rate": offered / cpu}, **extra)


def test_cost_ratios_are_taken_within_rounds_then_medians():
    runs = {
        "none": [run(0, 1.0), run(1, 2.0), run(2, 1.0)],
        # added 0.5, 0.5, 0.5 us per bind
        "bpftrace": [run(0, 1.5), run(1, 2.5), run(2, 1.5)],
        # added 0.6, 0.7, 0.65 -> ratios 1.2, 1.4, 1.3
        "summary": [run(0, 1.6, counted=1000000, lost=0), run(1, 2.7, counted=1000000, lost=0),
                    run(2, 1.65, counted=1000000, lost=0)],
        "events": [run(r, c, delivered=1000000, lost=0, consumer_cpu=0.25, all_events=1000000)
                   for r, c in ((0, 2.0), (1, 3.0), (2, 2.0))],
    }
    s = bench_cost.summarize(runs)
    assert round(s["bpftrace"]["added_ns"]) == 500
    assert round(s["summary"]["added_ns"]) == 650
    assert round(s["summary"]["vs_bpftrace"], 6) == 1.3
    assert round(s["events"]["vs_bpftrace"], 6) == 2.0
    assert round(s["events"]["consumer_ns"]) == 250
    assert s["summary"]["counted"] == s["summary"]["offered"] == 3000000
    assert "1.30x" in bench_cost.report(s)


def test_storm_accounting_and_best_lossless_rate():
    ok = {"offered": 100, "rate": 5e5, "delivered": 100, "lost": 0}
    lossy = {"offered": 100, "rate": 9e5, "delivered": 60, "lost": 40}
    missing = {"offered": 100, "rate": 8e5, "delivered": 60, "lost": 39}
    assert bench_storm.accounted(ok) and bench_storm.accounted(lossy)
    assert not bench_storm.accounted(missing)
    assert not bench_storm.accounted({"offered": 10, "counted": 9, "lost": 0})
    rows = [("events/collect", "a", ok, None), ("events/collect", "b", lossy, None),
            ("events/poll", "c", dict(ok, rate=2e5), None), ("summary", "d",
                                                              {"offered": 1, "counted": 1,
                                                               "lost": 0, "rate": 1e6}, None)]
    assert bench_storm.best_lossless(rows) == {"events/collect": 5e5, "events/poll": 2e5}
