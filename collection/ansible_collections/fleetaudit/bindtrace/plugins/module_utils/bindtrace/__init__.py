"""bindtrace host library: stdlib-only (Python 3.8+), shipped to hosts by AnsiballZ.

Modules: libbpf (ctypes binding), backend_core / backend_bcc (kernel side),
events (raw record -> one event shape), filters (options validation),
enrich (container / Kubernetes identity), listeners (sockets listening now),
policy (allow rules -> verdicts), trace (one bounded window -> facts), cli.
"""
SCHEMA = 1


class BindtraceError(Exception):
    """A failure the user can fix: the message names the cause and the fix."""
