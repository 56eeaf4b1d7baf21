"""fleetaudit.bindtrace.trace_bind with the bcc backend, through the real
ansible-playbook on localhost (the module runs under /usr/bin/python3, the
interpreter that has python3-bpfcc): AnsiballZ ships the bcc modules, the
facts carry the exact binds, the backend and its reason, and nothing stays
loaded."""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))

from module_run import (EXACT, Play, Workload, assert_nothing_left, bpf_ids_of,  # noqa: E402
                        free_port, tagged_pids, trace_task)


def wait_bcc_attached(play, seen_pids, timeout=180):
    """bcc attaches through perf events (no BPF links): wait until a new tagged
    process has both bind tracepoints in `bpftool perf`; keep its BPF ids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        perf = json.loads(subprocess.run(["bpftool", "-j", "perf", "show"], capture_output=True,
                                         text=True, check=True).stdout or "[]")
        for pid in tagged_pids(play.tag):
            tps = {p.get("tracepoint") for p in perf if p["pid"] == pid}
            if pid not in seen_pids and {"sys_enter_bind", "sys_exit_bind"} <= tps:
                seen_pids.add(pid)
                play.seen_ids |= bpf_ids_of(pid)
                return pid
        assert play.proc.poll() is None, play.proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the bcc tracer never attached")


def test_module_bcc_forced_and_auto_without_btf():
    p1, p2 = free_port(), free_port()
    tasks = [trace_task(name="forced", duration=4, mode="events", backend="bcc", ports=[p1, p2],
                        ignore_errors=False),
             trace_task(name="auto", duration=4, mode="summary", backend="auto", ports=[p1, p2],
                        ignore_errors=False)]
    # no BTF (simulated: the path is pointed elsewhere), so auto must pick bcc
    play = Play(tasks, BINDTRACE_BTF_PATH="/nonexistent")
    seen, infos = set(), []
    for _ in tasks:
        wait_bcc_attached(play, seen)
        work = Workload(EXACT, p1, p2)
        infos.append(work.info)
        work.stop()
    play.wait()
    assert play.proc.returncode == 0, play.out[-3000:] + play.err[-3000:]
    res = play.results()
    forced = res["forced"]["ansible_facts"]["bind_trace"]
    auto = res["auto"]["ansible_facts"]["bind_trace"]
    assert (forced["host"]["backend"], forced["host"]["backend_reason"]) == ("bcc", "requested")
    assert (auto["host"]["backend"], auto["host"]["backend_reason"]) == (
        "bcc", "auto: no kernel BTF at /nonexistent; bcc present")
    assert forced["missing_fields"] == auto["missing_fields"] == []
    w = infos[0]
    assert [(b["pid"], b["tid"], b["ppid"], b["proto"], b["family"], b["addr"], b["port"],
             b["requested_addr"], b["requested_port"], b["error"], b["ret"], b["opts"], b["comm"],
             b["uid"], b["user"], b["netns"], b["mntns"]) for b in forced["binds"]] == [
        (w["pid"], w["pid"], w["ppid"], "TCP", 4, "127.0.0.1", p1, "127.0.0.1", p1, None, 0,
         ".....", "python3", 0, "root", w["netns"], w["mntns"]),
        (w["pid"], w["pid"], w["ppid"], "UDP", 6, "::1", p2, "::1", p2, None, 0,
         ".....", "python3", 0, "root", w["netns"], w["mntns"]),
        (w["pid"], w["pid"], w["ppid"], "TCP", 4, "0.0.0.0", 0, "127.0.0.1", p1, "EADDRINUSE",
         -98, ".....", "python3", 0, "root", w["netns"], w["mntns"])]
    w = infos[1]
    assert sorted((b["pid"], b["proto"], b["addr"], b["port"], b["error"], b["count"])
                  for b in auto["binds"]) == sorted([
                      (w["pid"], "TCP", "127.0.0.1", p1, None, 1),
                      (w["pid"], "UDP", "::1", p2, None, 1),
                      (w["pid"], "TCP", "0.0.0.0", 0, "EADDRINUSE", 1)])
    assert auto["counts"]["binds"] == 3 and auto["lost"] == 0
    assert_nothing_left(play)
