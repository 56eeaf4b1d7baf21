#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: bindtrace contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: one bounded bind-trace window on a host -> ansible_facts.bind_trace."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: trace_bind
short_description: Trace socket binds on a host for a bounded window with eBPF and return them as facts
version_added: "0.1.0"
description:
  - Loads an eBPF bind tracer (on the C(bind) syscall tracepoints) on the host, keeps it
    attached for O(duration) seconds, unloads it, and returns every AF_INET / AF_INET6 C(bind)
    made on the host during that window as the fact C(bind_trace), together with a snapshot of
    the sockets listening at the end of the window.
  - Optional allow rules (O(allow)) give each bind and listener a verdict, C(expected) or
    C(unexpected); O(fail_on_unexpected) fails the task naming what no rule allows.
  - The tracer deploys itself. The compiled CO-RE BPF object is embedded in the host library
    (C(module_utils/bindtrace/bpf_object.py)) and travels inside the AnsiballZ payload with the
    module, so a host needs no copy of the project, no compiler and no kernel headers.
  - Nothing stays loaded in the kernel after the task, whether it succeeds, fails, times out
    under C(async) or is killed. Every kernel object is owned by the module's file descriptors.
author:
  - bindtrace contributors (@fleetaudit)
options:
  duration:
    description:
      - Length of the trace window in seconds, more than 0 and at most 3600.
      - For windows longer than the connection timeout, use C(async) with a value greater than
        O(duration) (see the examples).
    type: raw
    default: 10
  start_at:
    description:
      - The fleet's common start time, as epoch seconds (UTC, fractions allowed). The module
        loads the tracer at once, waits until this time on the host's clock, then traces until
        O(start_at) + O(duration). Launched with C(async) and C(poll=0), every host of a fleet
        then traces the same seconds, however many forks the launch took.
      - A host launched after O(start_at) starts at once and still ends with the fleet, so its
        window is shorter (C(window.start) says when it began; the fleet report shows the start
        spread) and overlaps every other host's. Launched after O(start_at) + O(duration), it
        traces O(duration) seconds from then, and the fleet report flags it.
      - More than 3600 seconds ahead is an error.
      - Unset, the window starts as soon as the tracer is loaded.
      - The bcc backend attaches while it compiles, so on a bcc host the window starts after the
        compile that follows O(start_at), some seconds late; its facts say when.
    type: raw
  mode:
    description:
      - V(summary) counts binds in the kernel, one record per distinct bind (process, protocol,
        address, port, options, interface, error) with C(count), C(first_seen), C(last_seen),
        C(port_min) and C(port_max).
      - In V(summary) mode a client bind (port 0 asked on TCP, UDP, UDP-Lite, SCTP or MPTCP, so
        the kernel picks the port) is counted without its port. A process making 2,000
        client sockets is one record with C(client=true), C(port=0), C(count=2000) and the
        range of ports it got in C(port_min) / C(port_max).
      - Every bind call is counted, whatever the rate. The kernel's table holds 65536 distinct
        binds; a window with more distinct binds counts the rest in C(summary_full), marks the
        facts C(truncated), and fails O(fail_on_unexpected), closed.
      - V(events) returns one record per C(bind) call, up to O(max_events).
    type: str
    choices: [summary, events]
    default: summary
  max_events:
    description:
      - In V(events) mode, keep and judge at most this many events. Events past the cap are
        counted in C(dropped), C(truncated) is true, and O(fail_on_unexpected) fails, closed.
      - Unset means 10000. V(unlimited) (or V(0)) means no cap, which a busy host can turn into
        a very large result.
    type: raw
  max_records:
    description:
      - Return at most this many records in C(binds), and as many in C(listeners), per host, in
        both modes. The allow rules judge every record first, so the cap never hides anything
        from O(fail_on_unexpected).
      - The most significant records are kept, in this order, unexpected records,
        listeners, binds to a requested port, failed binds, client binds. Within each rank the
        most frequent come first. C(counts) keeps the exact totals, C(counts.omitted_binds) and
        C(counts.omitted_listeners) count what was left out, and C(truncated) is true.
      - Unset means 500, about 0.35 MB of JSON per host at most, so that 1000 hosts fit in
        about 1 GB of controller memory. V(unlimited) (or V(0)) means no cap.
      - In V(events) mode with O(max_events) set higher than 500 (or V(unlimited)) and
        O(max_records) unset, the cap is O(max_events), so the events asked for are returned.
    type: raw
  pid:
    description:
      - Only binds made by this process id.
    type: raw
  ports:
    description:
      - Only binds on these ports. Give a list, or a comma-separated string, of port numbers
        and ranges, for example V(22,8000-8100) or V([22, "8000-8100"]).
    type: raw
  ignore_errors:
    description:
      - When true, only successful binds are returned. Set it to false to see failed binds too.
        Their C(error) holds the errno name, for example C(EADDRINUSE).
    type: bool
    default: true
  comm:
    description:
      - Only binds made by processes with this name, at most 15 bytes as the kernel keeps it.
    type: str
  uid:
    description:
      - Only binds made by processes running as this user id.
    type: raw
  netns:
    description:
      - V(all) traces every network namespace of the host.
      - V(host) keeps only binds made in the tracer's own network namespace, and limits the
        listener snapshot to that namespace. Use it to audit one network namespace.
      - A network namespace inode number keeps only that namespace.
    type: str
    default: all
  containername:
    description:
      - Only binds made in the container with this name.
    type: str
  scope:
    description:
      - V(all) (default), V(host) for host processes only, or V(containers) for container
        processes only.
    type: str
    default: all
  backend:
    description:
      - V(core) loads the embedded CO-RE object through C(libbpf.so.1). It needs kernel BTF.
      - V(bcc) compiles the tracer at run time. It needs bcc and the kernel headers.
      - V(auto) picks core when BTF and libbpf are present, else bcc. If neither is there, the
        task fails with a message starting with C(unsupported:).
    type: str
    choices: [auto, core, bcc]
    default: auto
  hook:
    description:
      - Which kernel hook carries the core backend's tracer (the hook ladder, cheapest first).
      - V(fexit) attaches BPF trampolines to inet_bind/inet6_bind. Only binds pay, and it also
        sees io_uring binds and in-kernel binds.
      - V(kprobe) attaches a kretprobe to the bind syscall. Only binds pay.
      - V(tracepoint) attaches to syscalls:sys_exit_bind. While the window is open, every
        syscall of every process on the host pays a little.
      - V(auto) takes the cheapest hook the kernel accepts. The facts name the hook used
        (C(host.hook) in the facts) and why cheaper ones were not used.
      - A pinned hook the kernel refuses fails the task with the kernel's reason.
    type: str
    choices: [auto, fexit, kprobe, tracepoint]
    default: auto
  listeners:
    description:
      - Also return the sockets listening at the end of the window, meaning TCP in LISTEN and
        bound unconnected UDP, with the owning process, user and container, and the TCP
        sockets that listened during the window and were closed before its end (C(seen=window)).
      - The snapshot comes from the kernel's socket diagnostics (NETLINK_SOCK_DIAG, as C(ss)),
        which returns only listeners whatever the number of connections, with C(IPV6_V6ONLY)
        and the socket's cgroup; where that interface is unusable, from C(/proc/net).
        C(snapshot.source) says which.
      - Each listener and bind carries its owner's identity (C(exe), C(exe_state), C(cmdline),
        C(parents), C(cgroup), C(unit), C(socket_unit), C(package)) and its C(exposure)
        (V(loopback), V(address) or V(wildcard)) with C(exposure_families).
      - The snapshot honours O(netns) only. The other filters select binds.
    type: bool
    default: true
  allow:
    description:
      - Allow rules. Each rule is a mapping. A rule matches a bind or listener when every key it
        gives matches. A record is C(expected) when any rule matches, else C(unexpected).
      - "Keys: C(port) (number, V(8000-8100) range, or a list of those), C(proto) (V(tcp), V(udp), and so on),
        C(addr) (V(loopback), V(any) for the wildcard address, an IP address, or a CIDR, or a list),
        C(comm) and C(user) (name or uid; shell globs), C(container) (container name glob,
        V(*) for any container), C(host) (true for host processes only, false for container
        processes only), C(client) (see below), C(exe) (glob of the executable path), C(unit)
        (glob of the systemd unit from the cgroup, or of the C(.socket) unit for a socket the
        service manager holds), C(package) (glob of the package that installed the executable),
        C(exposure) (V(loopback), V(address), V(wildcard), or a list), and C(name) /
        C(description) (free text)."
      - "C(client) (V(true) only): the rule matches client binds, binds that asked for port 0
        on a socket that did not listen, for example C({client: true, comm: [java, unbound]})."
      - "Client binds are not judged by default: their verdict is C(client), they are never
        C(unexpected) and never fail the task. A policy with at least one C(client: true) rule
        judges them. A client bind is then C(expected) when a C(client: true) rule matches it,
        else C(unexpected). Rules without C(client) never match client binds."
      - A socket bound to port 0 that listens is a listener with its real port, judged like
        any listener.
      - "Exceptions: C(owner) and C(ticket) (free text) and C(expires) (a date, V(YYYY-MM-DD),
        UTC, the last day the rule allows). Past that day the rule no longer allows: what it
        matches gets the verdict C(expired), and C(rule) names the rule, owner and ticket, so
        an exception cannot silently live forever. Expired records count as unexpected."
      - Without O(allow) the verdicts are null. An empty list allows nothing.
      - Failed binds get a verdict but are never counted as unexpected, because they opened nothing.
      - Usually set per group in C(group_vars), so that each group has its own expected
        listeners.
    type: raw
  fail_on_unexpected:
    description:
      - Fail the task when a successful bind or a listener matches no rule in O(allow). The
        message names each one as C(PROTO addr:port comm pid N). The facts are returned all the
        same.
      - It also fails, closed, when some binds escaped the check (C(lost), C(dropped) or
        C(summary_full) not 0), so that a flood of binds cannot hide a forbidden one.
      - Requires O(allow).
    type: bool
    default: false
  cmdline:
    description:
      - Command lines of the owning processes in the facts. V(redacted) replaces the values of
        password, token, secret and key options (C(--password=x), C(--token x), C(API_KEY=x),
        a URL's C(user:password@)) with C(REDACTED). V(full) keeps them. V(none) leaves
        C(cmdline) null. At most 1024 characters, unprintable characters escaped.
    type: str
    choices: [redacted, full, none]
    default: redacted
  detach:
    description:
      - Start the window in a process of its own on the host and return at once with
        RV(bindtrace_job); the C(fleetaudit.bindtrace.trace_bind_collect) task reads its result
        (facts, failure) later. Every bad argument still fails at the launch, and nothing is
        loaded then.
      - The way to launch a whole fleet at once. Unlike C(async), the launch pipelines (one round
        trip per host) and the collection is one shell command per host.
      - The detached window cannot outlive O(start_at) + O(duration) + 120 seconds; its result
        waits in C(/run/bindtrace/jobs) (root only, tmpfs) until collected, and is removed a
        day later if nobody collects it.
    type: bool
    default: false
notes:
  - Needs root (C(become=true)), Linux with syscall tracepoints and a mounted tracefs, and either
    kernel BTF plus C(libbpf.so.1) (Debian package C(libbpf1)) or bcc.
  - AnsiballZ ships only Python. The BPF object is compiled once, in the project, and committed
    as bytes in a Python module under C(module_utils). AnsiballZ packs it into the payload
    like any other module_utils file. A C(copy) task or a package on every host would be a second
    deployment path to keep in step. Compiling on the host would need clang and headers there.
    The object is CO-RE, so the one build fits every kernel that has BTF.
  - Tracing changes nothing on the host, so the module supports check mode and still traces in it.
  - The host library needs Python 3.8 or later and the standard library only.
seealso:
  - name: Inspektor Gadget trace bind
    description: The single-host gadget whose event fields this module follows.
    link: https://www.inspektor-gadget.io/docs/latest/gadgets/trace_bind
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Tracing changes nothing, so check mode traces too and returns the same facts.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
    support: full
"""

EXAMPLES = r"""
- name: Summarise the binds made during 30 seconds on every host
  fleetaudit.bindtrace.trace_bind:
    duration: 30
  become: true

- name: Audit listeners against the group's policy and fail on anything else
  fleetaudit.bindtrace.trace_bind:
    duration: 10
    allow: "{{ bindtrace_allow }}"
    fail_on_unexpected: true
  become: true
  vars:
    bindtrace_allow:    # usually in group_vars/<group>.yml
      - {name: ssh, port: 22, proto: tcp, comm: sshd}
      - {name: local resolver, addr: loopback, proto: udp}
      - {name: web, port: [80, 443], comm: "nginx*", user: www-data}
      - {name: any container on 8000-8100, port: "8000-8100", container: "*"}
      - {name: nginx from the package, exe: /usr/sbin/nginx, package: "nginx*", unit: nginx.service}
      - {name: anything on loopback, exposure: loopback}
      - {name: legacy app, port: 8081, owner: alice, ticket: OPS-1234, expires: "2027-03-31"}

- name: Also judge client binds (port 0) - only these processes may make them
  fleetaudit.bindtrace.trace_bind:
    duration: 10
    allow:
      - {name: ssh, port: 22, proto: tcp, comm: sshd}
      - {name: resolver and app clients, client: true, comm: [unbound, java]}
    fail_on_unexpected: true
  become: true

- name: Every bind on two ports, failures included, one event per call
  fleetaudit.bindtrace.trace_bind:
    duration: 5
    mode: events
    max_events: 1000
    ports: [8080, "9000-9100"]
    ignore_errors: false
  become: true

- name: A one-hour window, without holding the connection open
  fleetaudit.bindtrace.trace_bind:
    duration: 3600
  become: true
  async: 3700
  poll: 30

- name: Every host traces the same 30 seconds, launched at once (see playbooks/trace_bind.yml)
  fleetaudit.bindtrace.trace_bind:
    duration: 30
    start_at: "{{ bindtrace_start_at }}"   # set once for the play: now + the launch time
    detach: true
  become: true
  register: bindtrace_launch

- name: Collect every host's result once the window is over
  fleetaudit.bindtrace.trace_bind_collect:
    job: "{{ bindtrace_launch.bindtrace_job }}"
  become: true

- name: Only the network namespace the module runs in
  fleetaudit.bindtrace.trace_bind:
    duration: 10
    netns: host
  become: true
"""

RETURN = r"""
bindtrace_job:
  description: The detached window's job, for C(fleetaudit.bindtrace.trace_bind_collect).
  returned: when O(detach=true)
  type: dict
  sample: {"jid": "1764612000-4242-9f1c2a3b", "pid": 4243,
           "file": "/run/bindtrace/jobs/1764612000-4242-9f1c2a3b.json", "deadline": 1764612140.5}
ansible_facts:
  description: Facts set on the host (with O(detach=true), by the collecting task).
  returned: success (with O(detach=true), from the collecting task)
  type: dict
  contains:
    bind_trace:
      description: What the window saw.
      returned: always
      type: dict
      contains:
        schema:
          description: Version of this shape.
          type: int
          returned: always
          sample: 1
        host:
          description: Host name, kernel release, backend used and why, the tracer's
            network namespace inode, the hook used (C(hook); C(hook_build), C(hook_where) where it
            attaches, C(hook_sees) which binds reach it, C(hook_not_used) why cheaper hooks were
            not used), and C(trust), one line to weigh the host's results by.
          type: dict
          returned: always
          sample: {"hostname": "web1", "kernel": "6.1.0-40-cloud-amd64", "backend": "core",
                   "backend_reason": "auto: kernel BTF and libbpf.so.1 present",
                   "node": "web1", "netns": 4026531833, "hook": "kprobe", "hook_build": "compat",
                   "hook_where": "kretprobe on the bind syscall", "hook_sees": "bind(2) calls",
                   "hook_not_used": "fexit: the kernel refused ...",
                   "trust": "hook kprobe (kretprobe on the bind syscall, build compat);
                             sees bind(2) calls; cheaper hooks not used: fexit: ...;
                             missing fields: none; lost: 0"}
        window:
          description: Start and end (RFC 3339, nanoseconds) and length in seconds.
          type: dict
          returned: always
          sample: {"start": "2026-11-25T12:00:00.000000001Z",
                   "end": "2026-11-25T12:00:10.000000002Z", "duration": 10.0}
        mode:
          description: V(summary) or V(events).
          type: str
          returned: always
          sample: summary
        filters:
          description: The filters in force (ports in their text form).
          type: dict
          returned: always
          sample: {"pid": null, "ports": "22,8000-8100", "ignore_errors": true, "comm": null,
                   "uid": null, "netns": "all", "containername": null, "scope": "all"}
        binds:
          description:
            - One record per bind (events mode) or per distinct bind (summary mode, with
              C(count), C(first_seen), C(last_seen), C(port_min), C(port_max)), the same fields
              as C(trace-bind -o json), plus C(verdict).
            - "Fields: schema, timestamp, pid, tid, ppid, uid, gid, user, comm, proto, family,
              addr, port, requested_addr, requested_port, client, opts, options, if_index, if,
              error, ret, netns, mntns, cgroup_id, container, k8s, verdict, rule, exposure,
              exposure_families, listened, backlog, exe, exe_state, cmdline, parents, cgroup,
              unit, socket_unit, package."
            - C(client) is true for a bind that asked for port 0. In summary mode such binds
              are aggregated per identity with C(port=0) and the assigned ports' range.
            - C(verdict) is C(expected), C(unexpected), C(expired) (only a rule past its
              C(expires) date matches), C(client) (a client bind the policy does not judge), or
              null without O(allow).
            - At most O(max_records) records, the most significant first.
            - The owner's identity (exe ... package) is read at the end of the window, so it is
              null for a process already gone, except C(unit), which comes from the cgroup id
              the kernel recorded while that cgroup exists. C(listened) says whether that socket
              listened during the window, with its C(backlog).
          type: list
          elements: dict
          returned: always
          sample: [{"schema": 1, "timestamp": "2026-11-25T12:00:01.000000000Z", "pid": 4242,
                    "tid": null, "ppid": 1, "uid": 0, "gid": 0, "user": "root", "comm": "nc",
                    "proto": "TCP", "family": 4, "addr": "0.0.0.0", "port": 4242,
                    "requested_addr": "0.0.0.0", "requested_port": 4242, "client": false,
                    "opts": ".R...",
                    "options": {"reuseport": false, "reuseaddr": true,
                                "bind_address_no_port": false, "transparent": false,
                                "freebind": false},
                    "if_index": 0, "if": "", "error": null, "ret": 0, "netns": 4026531833,
                    "mntns": 4026531832, "cgroup_id": 1, "container": null, "k8s": null,
                    "count": 1, "first_seen": "2026-11-25T12:00:01.000000000Z",
                    "last_seen": "2026-11-25T12:00:01.000000000Z", "port_min": 4242,
                    "port_max": 4242, "verdict": "unexpected"}]
        listeners:
          description:
            - Sockets listening at the end of the window (empty when O(listeners=false)).
            - "Fields: proto, family, addr, port, state, inode, uid, user, pid, comm, netns,
              container, k8s, verdict, rule, v6only, exposure, exposure_families, cgroup_id,
              cookie, exe, exe_state, cmdline, parents, cgroup, unit, socket_unit, package,
              listened, backlog, seen."
          type: list
          elements: dict
          returned: always
          sample: [{"proto": "TCP", "family": 4, "addr": "0.0.0.0", "port": 22, "state": "LISTEN",
                    "inode": 12345, "uid": 0, "user": "root", "pid": 321, "comm": "sshd",
                    "netns": 4026531833, "container": null, "k8s": null, "verdict": "expected"}]
        lost:
          description: Events the kernel could not deliver (ring buffer full). Always 0 in summary mode.
          type: int
          returned: always
          sample: 0
        dropped:
          description: Events past O(max_events), counted exactly and not kept.
          type: int
          returned: always
          sample: 0
        truncated:
          description: True when O(max_events) cut the list, the kernel's summary table was
            full (C(summary_full) distinct binds not recorded), or O(max_records) left records
            out of C(binds) or C(listeners).
          type: bool
          returned: always
          sample: false
        summary_full:
          description: Distinct binds the kernel's summary table had no room for.
          type: int
          returned: always
          sample: 0
        unexpected:
          description: The successful binds and the listeners that no rule allows (those among
            the records returned; C(counts) has the exact numbers).
          type: dict
          returned: always
          sample: {"binds": [], "listeners": []}
        counts:
          description:
            - Exact totals, whatever O(max_records) returned. C(binds) is the number of bind
              calls, summing counts in summary mode, C(client_binds) those that were client
              binds, C(records) and C(listeners) the records found, C(omitted_binds) and
              C(omitted_listeners) those left out by O(max_records).
          type: dict
          returned: always
          sample: {"binds": 3, "records": 2, "listeners": 5, "client_binds": 0,
                   "unexpected_binds": 0, "unexpected_listeners": 0, "omitted_binds": 0,
                   "omitted_listeners": 0, "lost": 0, "dropped": 0}
        missing_fields:
          description: Fields this backend cannot read (null in every record).
          type: list
          elements: str
          returned: always
          sample: []
        listens_full:
          description: Listening sockets the kernel's listen table had no room for (the
            window's listeners may then be incomplete; O(fail_on_unexpected) fails, closed).
          type: int
          returned: always
          sample: 0
        snapshot:
          description: Where the listener snapshot came from (V(sock_diag) or V(proc_net), and
            why), and what the owner lookup read (C(method) V(cgroup), V(cgroup+fd-scan) or
            V(fd-scan); processes and fds read).
          type: dict
          returned: always
          sample: {"source": "sock_diag", "why": null,
                   "owner_lookup": {"method": "cgroup", "processes": 3, "fds_read": 12}}
        policy:
          description: Number of allow rules applied.
          type: dict
          returned: always
          sample: {"rules": 2}
"""

from ansible.module_utils.basic import AnsibleModule

try:
    from ansible_collections.fleetaudit.bindtrace.plugins.module_utils.bindtrace.facts import (
        SignalStop, failure_of, launch_detached, module_result, prepare)
    from ansible_collections.fleetaudit.bindtrace.plugins.module_utils.bindtrace.hangup import (
        HangupStop)
    IMPORT_ERROR = None
except ImportError as exc:  # e.g. a host without pwd/ctypes: not a Linux we can trace
    IMPORT_ERROR = exc

ARGUMENT_SPEC = dict(
    duration=dict(type="raw", default=10),
    mode=dict(type="str", default="summary", choices=["summary", "events"]),
    max_events=dict(type="raw"),
    max_records=dict(type="raw"),
    pid=dict(type="raw"),
    ports=dict(type="raw"),
    ignore_errors=dict(type="bool", default=True),
    comm=dict(type="str"),
    uid=dict(type="raw"),
    netns=dict(type="str", default="all"),
    containername=dict(type="str"),
    scope=dict(type="str", default="all"),
    backend=dict(type="str", default="auto", choices=["auto", "core", "bcc"]),
    hook=dict(type="str", default="auto", choices=["auto", "fexit", "kprobe", "tracepoint"]),
    listeners=dict(type="bool", default=True),
    allow=dict(type="raw"),
    fail_on_unexpected=dict(type="bool", default=False),
    start_at=dict(type="raw"),
    cmdline=dict(type="str", default="redacted", choices=["redacted", "full", "none"]),
    detach=dict(type="bool", default=False),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if IMPORT_ERROR is not None:
        module.fail_json(msg="unsupported: the bindtrace host library cannot load here (%s); "
                             "it needs Linux and Python 3.8+" % IMPORT_ERROR)
    options = dict(module.params)
    detach = options.pop("detach")
    # all of the trace logic is in the host library, shared with the Salt module
    try:
        plan = prepare(**options)   # every bad argument fails here, before anything loads
        if detach:   # returns at once; trace_bind_collect reads the result
            module.exit_json(changed=False, bindtrace_job=launch_detached(plan))
    except Exception as exc:   # a BindtraceError names cause and fix; anything else is a bug
        module.fail_json(**failure_of(exc))
    # the window also ends when the controller hangs up (task timeout, dropped
    # SSH): nobody would read the result, and the tracer must not stay loaded
    result = module_result(plan, should_stop=HangupStop(SignalStop()))
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
