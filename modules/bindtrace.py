# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Salt execution module: one bounded eBPF bind-trace window on a minion.

    salt '*' bindtrace.trace duration=10 ports=4242
    salt-call --local --module-dirs=modules bindtrace.trace duration=3 --out=json

``bindtrace.trace`` returns the same ``bind_trace`` dict as the Ansible
module's ``ansible_facts.bind_trace`` plus ``result`` and ``comment``;
``bindtrace.compliance`` is what the state ``bindtrace.compliant``
(states/bindtrace.py) runs. Allow rules come from the pillar key
``bindtrace:allow`` unless given as ``allow``. The options, the tracing, the listener snapshot
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
import re
import sys

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # only under Salt; keeps the file importable for a syntax check
    CommandExecutionError = RuntimeError

__virtualname__ = "bindtrace"

log = logging.getLogger(__name__)

PILLAR_ALLOW = "bindtrace:allow"
NOT_ROOT = ("not root: loading eBPF programs needs root: run the salt-minion (or salt-call) as "
            "root (user: root in its config, the default)")

_CHECKOUT_LIBRARY = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "collection", "ansible_collections",
    "fleetaudit", "bindtrace", "plugins", "module_utils")


def _library():
    """-> (the host library's facts and compliance modules, None) or (None, why
    it cannot load)."""
    checkout = os.path.normpath(_CHECKOUT_LIBRARY)
    if os.path.isfile(os.path.join(checkout, "bindtrace", "facts.py")) and checkout not in sys.path:
        sys.path.insert(0, checkout)
    try:
        from bindtrace import compliance, facts
    except ImportError as exc:
        return None, ("the bindtrace host library is not importable (%s): install the project "
                      "into the minion's Python (salt-pip install bindtrace-*.whl on onedir Salt, "
                      "pip install into a pip-installed Salt's environment) or run the module from "
                      "a checkout (module_dirs=<checkout>/modules)" % exc)
    return (facts, compliance), None


def __virtual__():
    """Load only where a trace can run: library importable, root, a backend."""
    lib, why = _library()
    if lib is None:
        return False, _once(why)
    if os.geteuid() != 0:
        return False, _once(NOT_ROOT)
    ok, reason = lib[0].host_support()
    if not ok:
        return False, _once(reason)
    return __virtualname__


def _once(reason):
    """Salt's loader appends a module's __virtual__ reason to the one it has
    unless it is already among its "; "-separated parts: a reason that itself
    holds "; " is shown twice. Said with ", " it is shown once."""
    return reason.replace("; ", ", ")


def _options(kwargs):
    """The trace options: the arguments given, without Salt's own __pub_*
    ones; allow rules from the pillar key bindtrace:allow unless given."""
    options = {k: v for k, v in kwargs.items() if not k.startswith("__")}
    if "allow" not in options:
        rules = _pillar(PILLAR_ALLOW)
        if rules is not None:
            options["allow"] = rules
    return options


def _pillar(key):
    """A pillar value as plain data. Salt 3008 masks pillar values that
    pillar.get returns (its output boundary) unless asked with unmask=True;
    earlier Salt has no such argument and masks nothing."""
    get = __salt__["pillar.get"]  # noqa: F821 (set by Salt's loader)
    try:
        value = get(key, None, unmask=True)
    except TypeError:
        value = get(key, None)
    return _plain(value)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _collect(facts, options):
    try:
        return facts.collect_facts(should_stop=facts.SignalStop(), **options)
    except facts.BindtraceError as exc:
        raise CommandExecutionError(str(exc))


def trace(**kwargs):
    """
    Trace socket binds for a bounded window and return the bind_trace dict,
    plus ``result`` and ``comment`` (Salt's words for how it went).

    Options (the Ansible module fleetaudit.bindtrace.trace_bind's, same
    defaults): duration (10 s), mode (summary|events), max_events (10000),
    max_records (500; "unlimited" for no cap), pid, ports
    (4242, "22,8000-8100" or a list), ignore_errors (true), comm, uid, netns
    (all|host|inode), containername, scope (all|host|containers), backend
    (auto|core|bcc), hook (auto|fexit|kprobe|tracepoint), listeners (true), allow (list of
    rules; keys include exe, unit, package, exposure, and owner/ticket/expires for
    exceptions; default: the pillar key ``bindtrace:allow``), fail_on_unexpected,
    cmdline (redacted|full|none).

    ``comment`` counts what was seen and names what no allow rule matches.
    With fail_on_unexpected and anything unexpected (or a bind the rules could
    not check), ``result`` is False, ``comment`` says why, and the job's
    return code is 1; the facts are still returned.

    Give the salt command a timeout longer than the window
    (``salt -t 60 '*' bindtrace.trace duration=30``), or look the job up
    later with ``salt-run jobs.lookup_jid JID --out=json``.

    CLI Example:

    .. code-block:: bash

        salt '*' bindtrace.trace duration=10 ports=4242
        salt -t 60 '*' bindtrace.trace duration=30 allow='[{port: 22, proto: tcp}]' fail_on_unexpected=true
    """
    lib, why = _library()
    if lib is None:
        raise CommandExecutionError(why)
    facts, compliance_lib = lib
    options = _options(kwargs)
    result = _collect(facts, options)
    failure = facts.unexpected_failure(result, options.get("fail_on_unexpected"))
    if failure:
        log.error("bindtrace.trace: %s", failure)
        __context__["retcode"] = 1  # noqa: F821 (set by Salt's loader)
    result["result"] = not failure
    result["comment"] = failure or compliance_lib.summary(result, options.get("allow") is not None)
    return result


def compliance(name="bindtrace", test=False, **kwargs):
    """
    Trace a window and judge it against the allow rules (pillar
    ``bindtrace:allow`` unless ``allow`` is given): what the state
    ``bindtrace.compliant`` runs.

    Returns ``result`` (False: something no rule allows, named in
    ``comment``), ``comment``, ``changes`` (``new`` / ``gone`` listeners
    against the previous run of this ``name``; empty when the listener set is
    the same) and ``bind_trace`` (the facts). The listener set is kept in the
    minion's cachedir (``bindtrace/listeners-NAME.json``) and not updated
    when ``test`` is true.

    CLI Example:

    .. code-block:: bash

        salt '*' bindtrace.compliance duration=30 test=true
    """
    lib, why = _library()
    if lib is None:
        raise CommandExecutionError(why)
    facts, compliance_lib = lib
    options = _options(kwargs)
    for fixed in ("listeners", "fail_on_unexpected"):
        if fixed in options:
            raise CommandExecutionError(
                "%s is not an option of the compliance check: it always snapshots the listeners "
                "and fails on what no allow rule matches" % fixed)
    if options.get("allow") is None:
        raise CommandExecutionError(compliance_lib.no_policy_message())
    options.setdefault("max_records", "unlimited")   # the listener set must be whole
    path = os.path.join(__opts__["cachedir"], "bindtrace",  # noqa: F821 (set by Salt's loader)
                        "listeners-%s.json" % re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)))
    try:
        previous = compliance_lib.load_listener_set(path)
        result = _collect(facts, options)
        ok, comment = compliance_lib.verdict(result)
        names = compliance_lib.listener_set(result)
        changes = compliance_lib.drift(previous, names)
        if not test:
            compliance_lib.store_listener_set(path, names, result)
    except facts.BindtraceError as exc:
        raise CommandExecutionError(str(exc))
    if previous is None:
        comment += "; first run: %d listener%s recorded" % (len(names), "" if len(names) == 1 else "s")
    elif changes:
        comment += "; the listener set changed since the previous run (%d new, %d gone)" % (
            len(changes["new"]), len(changes["gone"]))
    return {"result": ok, "comment": comment, "changes": changes, "bind_trace": result}
