# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Salt state module: bind compliance of a minion, judged from one traced window.

.. code-block:: yaml

    # salt://bindtrace/init.sls; rules from the pillar key bindtrace:allow
    bind-compliance:
      bindtrace.compliant:
        - duration: 30

``result`` is False when anything no allow rule matches listened or bound
in the window (the ``comment`` names it), True otherwise. ``changes`` holds
the listeners new and gone since the previous run of this state (empty when
the set is the same). With ``test=True`` the window is traced all the same
(tracing changes nothing on the minion) but the listener set is not
recorded: ``result`` is None where a real run would record changes.

Glue only: the execution module's ``bindtrace.compliance`` (modules/bindtrace.py)
does the work, over the host library.
"""
try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # only under Salt; keeps the file importable for a syntax check
    CommandExecutionError = RuntimeError

__virtualname__ = "bindtrace"


def __virtual__():
    if "bindtrace.compliance" in __salt__:  # noqa: F821 (set by Salt's loader)
        return __virtualname__
    return (False, "the bindtrace execution module is not loaded on this minion: sync it "
                   "(salt://_modules/bindtrace.py, saltutil.sync_all) and see why with "
                   "salt MINION sys.list_functions bindtrace")


def compliant(name, **kwargs):
    """
    Trace a window and fail on anything the allow rules do not allow.

    name
        Names the recorded listener set (one per state id).
    allow
        Allow rules (list); default: the pillar key ``bindtrace:allow``. No
        rules at all fails the state: an empty list allows nothing.
    duration, ports, netns, scope, mode, ...
        The trace options of ``bindtrace.trace``.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test"))  # noqa: F821 (set by Salt's loader)
    try:
        verdict = __salt__["bindtrace.compliance"](name=name, test=test, **kwargs)  # noqa: F821
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["comment"] = verdict["comment"]
    ret["changes"] = verdict["changes"]
    if not test:
        ret["result"] = verdict["result"]
    elif not verdict["result"]:
        ret["result"] = False
    else:
        ret["result"] = None if verdict["changes"] else True
    if test and verdict["changes"]:
        ret["comment"] += " (test: the listener set was not recorded)"
    return ret
