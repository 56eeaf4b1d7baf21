"""pytest plugin used inside a VM-matrix guest: one marked, checksummed console
line per test (its final outcome over setup/call/teardown), read by the host
(vmlib.parse). Loaded with `-p guest_report`."""
import json
import os
import zlib

MARK = "@@BTVM "
_seen = {}


def emit(obj):
    body = json.dumps(obj, sort_keys=True)
    line = "%s%s %08x\n" % (MARK, body, zlib.crc32(body.encode()) & 0xffffffff)
    with open(os.environ.get("BTVM_CONSOLE", "/dev/console"), "w") as f:
        f.write(line)


def _text(report):
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        return report.longrepr[2]
    return str(report.longrepr)[-3000:] if report.longrepr else ""


def pytest_runtest_logreport(report):
    state = _seen.setdefault(report.nodeid, {"outcome": "passed", "text": "", "secs": 0.0})
    state["secs"] += report.duration
    if report.failed and state["outcome"] != "failed":
        state["outcome"], state["text"] = "failed", "[%s] %s" % (report.when, _text(report))
    elif report.skipped and state["outcome"] == "passed":
        if hasattr(report, "wasxfail"):
            state["outcome"], state["text"] = "xfailed", report.wasxfail
        else:
            state["outcome"], state["text"] = "skipped", _text(report)
    elif report.when == "call" and report.passed and hasattr(report, "wasxfail"):
        state["outcome"], state["text"] = "xpassed", report.wasxfail
    if report.when == "teardown":
        emit({"kind": "case", "rung": os.environ.get("BTVM_RUNG", ""), "nodeid": report.nodeid,
              "outcome": state["outcome"], "text": state["text"], "secs": round(state["secs"], 2)})
