#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the work is done by the action plugin of the same name,
# on the controller (plugins/action/trace_bind_collect.py).
from __future__ import annotations

DOCUMENTATION = r"""
module: trace_bind_collect
short_description: Collect the result of a detached trace_bind window
description:
  - Reads the result of a window launched by M(fleetaudit.bindtrace.trace_bind) with
    O(fleetaudit.bindtrace.trace_bind#module:detach=true) and returns it as that module would
    have, the C(bind_trace) facts or the failure naming its cause.
  - Runs one shell command on the host (no module is copied or started there), which waits for
    the result while the window's process lives, prints it and removes it.
version_added: "0.1.0"
author:
  - bindtrace contributors (@fleetaudit)
options:
  job:
    description: The RV(fleetaudit.bindtrace.trace_bind#module:bindtrace_job) the launch returned.
    type: dict
    required: true
  timeout:
    description:
      - Seconds to wait for the result after the task starts on the host. A job still running
        then fails the host; the window still stops by itself at its deadline.
    type: float
    default: 150
attributes:
  action:
    support: full
    description: Runs on the controller, one shell command on the host.
  async:
    support: none
    description: Returns as soon as the result is there.
  check_mode:
    support: full
    description: Reading a result changes nothing.
  diff_mode:
    support: none
    description: Returns no diff.
  facts:
    support: full
    description: Returns the C(bind_trace) facts.
  platform:
    support: full
    platforms: posix
    description: Any POSIX shell with C(sleep) and C(kill).
extends_documentation_fragment: []
notes:
  - The result file is removed once read, so a job is collected once.
seealso:
  - module: fleetaudit.bindtrace.trace_bind
"""

EXAMPLES = r"""
- name: Launch every host's window at once
  fleetaudit.bindtrace.trace_bind:
    duration: 30
    start_at: "{{ bindtrace_start_at }}"
    detach: true
  become: true
  register: bindtrace_launch

- name: Collect every host's result
  fleetaudit.bindtrace.trace_bind_collect:
    job: "{{ bindtrace_launch.bindtrace_job }}"
  become: true
"""

RETURN = r"""
ansible_facts:
  description: The facts of M(fleetaudit.bindtrace.trace_bind) (C(bind_trace)).
  returned: success
  type: dict
"""
