"""Run one Tracer (either backend) for the backend-comparison tests, in
whichever interpreter the test picks: bcc is importable only by the system
Python here, the core backend runs anywhere.

argv[1]: JSON of make_config() keyword arguments. Protocol on stdout, one JSON
object per line: {"ready", "backend", "reason", "missing", "held"} once
attached; after "stop" on stdin: {"events" | "records", "stats",
"held_after_close"}."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "collection",
                                "ansible_collections", "fleetaudit", "bindtrace", "plugins",
                                "module_utils"))
sys.path.insert(0, os.path.dirname(HERE))   # tests/: the shared helpers

from bindtrace import BindtraceError  # noqa: E402
from bindtrace.filters import make_config  # noqa: E402
from bindtrace.trace import Tracer  # noqa: E402
from helpers.kernel import bpf_ids_of  # noqa: E402


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    cfg = make_config(**json.loads(sys.argv[1]))
    try:
        tracer = Tracer(cfg)
    except BindtraceError as exc:
        say({"error": str(exc)})
        return 2
    try:
        held = sorted(bpf_ids_of(os.getpid()))
        say({"ready": True, "backend": tracer.backend_name, "reason": tracer.backend_reason,
             "missing": list(getattr(tracer.backend, "missing_fields", ())), "held": held})
        events = []
        os.set_blocking(0, False)
        buf = ""
        while "stop" not in buf:
            events.extend(tracer.poll(50))
            try:
                buf += os.read(0, 100).decode()
            except BlockingIOError:
                pass
        tracer.stop()
        events.extend(tracer.poll(0))
        out = {"stats": tracer.stats()}
        if cfg.mode == "summary":
            out["records"] = tracer.summary()
        else:
            out["events"] = events
    finally:
        tracer.close()
    out["held_after_close"] = sorted(bpf_ids_of(os.getpid()))
    say(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
