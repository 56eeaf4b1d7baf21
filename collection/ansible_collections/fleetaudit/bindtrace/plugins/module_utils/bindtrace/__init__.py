"""bindtrace host library: stdlib-only (Python 3.8+), shipped to hosts by AnsiballZ.

Layers, top down (a value follows them from a front-end to the kernel):
  facts (options in, bind_trace facts out: the orchestrator every front-end
  calls; cli is trace-bind's live view) -> trace (one window: Tracer) ->
  backends (select_backend: which backend, the one place) -> backend_core
  (libbpf) / bcc (the fallback: backend, program, calibrate). Beside them: filters (options
  validation, container selection), record (the bind record's fields; bind_h
  is bind.h for Python, generated), events (raw record -> event), maps (what
  both backends write to and read from the maps), enrich (container /
  Kubernetes identity), listeners (sockets listening now), policy (allow
  rules -> verdicts).
"""
SCHEMA = 1


class BindtraceError(Exception):
    """A failure the user can fix: the message names the cause and the fix."""
