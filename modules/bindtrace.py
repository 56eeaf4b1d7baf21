# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Salt execution module: one bounded eBPF bind-trace window on a minion.

    salt '*' bindtrace.trace duration=10 ports=4242
    salt-call --local --module-dirs=modules bindtrace.trace duration=3 --out=json

Returns the same ``bind_trace`` dict as the Ansible module's
``ansible_facts.bind_trace``: the options, the tracing, the listener snapshot
and the allow-rule verdicts are all the host library's
(``bindtrace.facts.collect_facts``); this file only finds the library and
turns its errors into Salt's.

Where the host library comes from, first found wins:
  1. deployed from a checkout of the project (``module_dirs`` pointing at its
     ``modules/``): ``../collection/ansible_collections/fleetaudit/bindtrace/plugins/module_utils``
     relative to this file;
  2. an installed ``bindtrace`` package in the minion's Python
     (``pip install`` / ``salt-pip install`` of the project), which is what a
     module synced from ``salt://_modules/`` uses.
"""
import logging
import os
import sys

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # only under Salt; keeps the file importable for a syntax check
    CommandExecutionError = RuntimeError

__virtualname__ = "bindtrace"

log = logging.getLogger(__name__)

_CHECKOUT_LIBRARY = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "collection", "ansible_collections",
    "fleetaudit", "bindtrace", "plugins", "module_utils")


def _library():
    """-> (the host library's facts module, None) or (None, why it cannot load)."""
    checkout = os.path.normpath(_CHECKOUT_LIBRARY)
    if os.path.isfile(os.path.join(checkout, "bindtrace", "facts.py")) and checkout not in sys.path:
        sys.path.insert(0, checkout)
    try:
        from bindtrace import facts
    except ImportError as exc:
        return None, ("the bindtrace host library is not importable (%s): run the module from a "
                      "checkout of the project (module_dirs=<checkout>/modules) or install the "
                      "project into the minion's Python (salt-pip install / pip install "
                      "<checkout>)" % exc)
    return facts, None


def __virtual__():
    """Load only where a trace can run: library importable, root, a backend."""
    facts, why = _library()
    if facts is None:
        return False, why
    ok, reason = facts.host_support()
    if not ok:
        return False, reason
    return __virtualname__


def trace(**kwargs):
    """
    Trace socket binds for a bounded window and return the bind_trace dict.

    Options (the Ansible module fleetaudit.bindtrace.trace_bind's, same
    defaults): duration (10 s), mode (summary|events), max_events (10000),
    max_records (500; "unlimited" for no cap), pid, ports
    (4242, "22,8000-8100" or a list), ignore_errors (true), comm, uid, netns
    (all|host|inode), containername, scope (all|host|containers), backend
    (auto|core|bcc), hook (auto|fexit|kprobe|tracepoint), listeners (true), allow (list of
    rules; keys include exe, unit, package, exposure, and owner/ticket/expires for
    exceptions), fail_on_unexpected, cmdline (redacted|full|none).

    With fail_on_unexpected, anything no allow rule matches fails the job
    (exit code 1) naming it; the dict is still returned.

    CLI Example:

    .. code-block:: bash

        salt '*' bindtrace.trace duration=10 ports=4242
        salt '*' bindtrace.trace duration=30 allow='[{port: 22, proto: tcp}]' fail_on_unexpected=true
    """
    facts, why = _library()
    if facts is None:
        raise CommandExecutionError(why)
    # Salt adds the job's own __pub_* arguments; they are not trace options
    options = {k: v for k, v in kwargs.items() if not k.startswith("__")}
    try:
        result = facts.collect_facts(should_stop=facts.SignalStop(), **options)
    except facts.BindtraceError as exc:
        raise CommandExecutionError(str(exc))
    failure = facts.unexpected_failure(result, options.get("fail_on_unexpected"))
    if failure:
        log.error("bindtrace.trace: %s", failure)
        __context__["retcode"] = 1  # noqa: F821 (set by Salt's loader)
    return result
