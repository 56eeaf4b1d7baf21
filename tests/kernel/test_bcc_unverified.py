"""A field bcc cannot read reliably is null in every record and named in the
facts' missing_fields, never a guessed value.

On this kernel calibration finds every offset, so a kernel where it does not
is simulated: one offset is withheld (as if not found) and one is replaced by
a wrong one (as if a header offset were trusted); the real self-test binds on
the real kernel must then catch the wrong one. Runs under the system Python
(the one with bcc)."""
import json
import subprocess

from helpers.kernel import cli_env

SCRIPT = r'''
import json, os, socket, time
import bindtrace.bcc.calibrate as cal
from bindtrace.filters import make_config
from bindtrace.facts import build_facts
from bindtrace.trace import run_window

real = cal.calibrate
def simulated(BPF):
    off, notes = real(BPF)
    del off["OFF_SK_NUM"]                          # not found on this kernel
    off["OFF_SK_PROTOCOL"] = off["OFF_SK_FAMILY"]  # a wrong offset
    off["SK_PROTOCOL_SIZE"] = 2
    return off, notes
cal.calibrate = simulated

state = {}
def should_stop():
    if "t" not in state:  # the tracer is attached: bind once
        state["t"] = time.monotonic()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        state["port"] = s.getsockname()[1]
        s.close()
    return time.monotonic() - state["t"] > 0.5

cfg = make_config(mode="events", backend="bcc", pid=os.getpid())
binds, st, meta = run_window(cfg, 30, should_stop)
facts = build_facts(cfg, binds, st, meta)
print(json.dumps({"facts": facts, "port": state["port"]}))
'''


def test_unverified_fields_are_null_and_listed():
    p = subprocess.run(["/usr/bin/python3", "-c", SCRIPT], capture_output=True, text=True,
                       env=cli_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    facts = out["facts"]
    assert facts["host"]["backend"] == "bcc"
    assert facts["missing_fields"] == ["port", "proto"]
    assert len(facts["binds"]) == 1
    b = facts["binds"][0]
    assert b["port"] is None and b["proto"] is None
    # the rest is still there, verified
    assert (b["addr"], b["requested_port"], b["family"], b["opts"], b["error"]) == (
        "127.0.0.1", 0, 4, ".....", None)
