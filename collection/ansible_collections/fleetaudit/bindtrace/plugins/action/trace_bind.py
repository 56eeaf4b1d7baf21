# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""trace_bind: the module as usual, except a detached launch (detach: true),
which pipes the host library and the options to `python3 -c` on the host (one
round trip, no AnsiballZ: plugin_utils/detached.py says why and what it
saves). Where that cannot work (no pipelining, async, module_defaults) the
module itself launches, the same way."""
from __future__ import annotations

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.fleetaudit.bindtrace.plugins.modules.trace_bind import ARGUMENT_SPEC
from ansible_collections.fleetaudit.bindtrace.plugins.plugin_utils.detached import (
    launch_command, launch_input, parse_launch)


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        if not self._fast_launch():
            wrap_async = self._task.async_val and not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(task_vars=task_vars,
                                                             wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        # the module's own argument spec, checked here as AnsibleModule would there
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(self._task.args))
        if checked.error_messages:   # the first, worded as AnsibleModule words it
            msg = checked.errors.msg
            if isinstance(checked.errors[0], UnsupportedError):
                msg = "Unsupported parameters for (%s) module: %s" % (
                    self._task.resolved_action or self._task.action, msg)
            result.update(failed=True, msg=msg)
            return result
        options = dict(checked.validated_parameters)
        options.pop("detach")
        cmd = launch_command(self._interpreter(task_vars), self._connection._shell.quote)
        try:
            out = self._low_level_execute_command(cmd, sudoable=True,
                                                  in_data=launch_input(options))
        except AnsibleConnectionFailure:
            # writing the input can break the pipe before ssh says why ("Broken pipe"):
            # one command without input fails with ssh's own reason (refused, timed out)
            self._low_level_execute_command("true", sudoable=False)
            raise
        result.update(changed=False)
        result.update(parse_launch(out.get("rc"), out.get("stdout"), out.get("stderr")))
        return result

    def _fast_launch(self):
        try:
            detach = boolean(self._task.args.get("detach", False), strict=True)
        except TypeError:
            return False   # the module reports the bad value
        return bool(detach and not self._task.async_val and not self._task.module_defaults
                    and self._is_pipelining_enabled("new"))

    def _interpreter(self, task_vars):
        """The host's Python as configured or discovered; None: the launch
        command looks for python3 itself."""
        for value in (task_vars.get("ansible_python_interpreter"),
                      (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")):
            if value:
                value = self._templar.template(value)
                if value and not str(value).startswith("auto"):
                    return str(value)
        return None
