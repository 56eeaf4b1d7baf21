# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collect a detached trace_bind window: one shell command on the host (no
module transfer), the result returned as the module's own result (facts or
failure). Documentation: plugins/modules/trace_bind_collect.py."""
from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.fleetaudit.bindtrace.plugins.plugin_utils.detached import (
    collect_command, parse_output)

DEFAULT_TIMEOUT = 150   # the detached window's own slack (120 s) and some more


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("job", "timeout"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        job = self._task.args.get("job")
        try:
            timeout = float(self._task.args.get("timeout", DEFAULT_TIMEOUT))
            if not 0 < timeout <= 86400:
                raise ValueError("timeout must be seconds, more than 0 and at most 86400")
            cmd = collect_command(job, timeout)
        except (TypeError, ValueError) as exc:
            result.update(failed=True, msg="trace_bind_collect: %s" % exc)
            return result
        out = self._low_level_execute_command(cmd, sudoable=True)
        result.update(parse_output(job, out.get("rc"), out.get("stdout"), out.get("stderr"),
                                   timeout))
        return result
