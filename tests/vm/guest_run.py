"""Inside a VM-matrix guest (run by guest_init.sh as PID 1's child): report the
guest's facts, run the kernel tests' pytest subset once per hook rung of the
job, record one known bind workload per rung (for the cross-architecture
comparison), then say done. Every result is a marked console line
(guest_report.emit); the host turns each into a pytest item.

argv[1]: the job (JSON), written by the host (vmlib.Guest.job):
  {"guest": name, "runs": [{"rung", "env", "targets", "deselect"}], "record": bool}"""
import base64
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KERNEL_TESTS = os.path.join(ROOT, "tests", "kernel")
LIB = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace", "plugins",
                   "module_utils")
sys.path[:0] = [HERE, LIB, KERNEL_TESTS]

from guest_report import emit  # noqa: E402


def paging_levels():
    """4 or 5 on x86_64: the kernel clears the la57 CPU flag unless it runs with
    5-level page tables (addresses in /proc are hashed, so they cannot tell)."""
    if platform.machine() != "x86_64":
        return None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return 5 if "la57" in line.split() else 4
    return None


def tracer_facts(env, config):
    """What the tracer picks here under env (backend, program, hook), in a child so
    a forced rung's environment applies exactly as in the tests."""
    code = ("import json\nfrom bindtrace.filters import make_config\n"
            "from bindtrace.trace import Tracer\n"
            "from bindtrace import BindtraceError\n"
            "try:\n"
            " t = Tracer(make_config(pid=1, **%r))\n"
            "except BindtraceError as e:\n"
            " print(json.dumps({'error': str(e)}))\n"
            "else:\n"
            " b = t.backend\n"
            " out = {'backend': t.backend_name, 'reason': t.backend_reason,\n"
            "        'program': (getattr(b, 'program', b'') or b'').decode(),\n"
            "        'hook': getattr(t, 'hook', None) or getattr(b, 'hook', None),\n"
            "        'missing': list(getattr(b, 'missing_fields', ()))}\n"
            " t.close()\n"
            " print(json.dumps(out))\n") % (config,)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (proc.stderr or proc.stdout)[-2000:]}


def record(env, config):
    """The backend-comparison workload (tests/kernel/bind_workload.py) under one
    tracer: the events it reported, for the host's arm64 == x86_64 comparison."""
    code = (
        "import json,subprocess,sys,time\n"
        "from bindtrace.filters import make_config\nfrom bindtrace.trace import Tracer\n"
        "wl = subprocess.Popen([sys.executable, %r, 'bt-vmrec', '41000'],\n"
        "                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
        "pid = json.loads(wl.stdout.readline())['pid']\n"
        "evs = []\n"
        "with Tracer(make_config(pid=pid, ignore_errors=False, **%r)) as t:\n"
        "    wl.stdin.write('go\\n'); wl.stdin.flush()\n"
        "    truths = json.loads(wl.stdout.readline())['truths']\n"
        "    end = time.monotonic() + 30\n"
        "    while len(evs) < len([x for x in truths if x['pid'] == pid]) and time.monotonic() < end:\n"
        "        evs.extend(t.poll(100))\n"
        "    t.stop(); evs.extend(t.poll(0))\n"
        "wl.stdin.write('\\n'); wl.stdin.close(); wl.wait()\n"
        "print(json.dumps({'events': evs, 'truths': truths}))\n"
    ) % (os.path.join(KERNEL_TESTS, "bind_workload.py"), config)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (proc.stderr or proc.stdout)[-2000:]}


def bench(job, base):
    """The hooks bench (tests/bench/bench_hooks.py) with the host-built floor
    object and static bindstorm from the job (the guest has no compiler)."""
    spec = job["bench"]
    env = dict(base)
    for name, var in (("floor", "BINDTRACE_BENCH_FLOOR"), ("storm", "BINDTRACE_BENCH_STORM")):
        path = "/tmp/bench-" + name
        with open(path, "wb") as f:
            f.write(base64.b64decode(spec[name]))
        os.chmod(path, 0o755)
        env[var] = path
    out = "/tmp/bench-hooks.json"
    cmd = [sys.executable, os.path.join(ROOT, "tests", "bench", "bench_hooks.py")] + \
        [str(n) for n in spec["numbers"]] + spec.get("args", []) + ["--json", out]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    sys.stdout.write(proc.stdout + proc.stderr[-3000:])
    sys.stdout.flush()
    if proc.returncode != 0:
        emit({"kind": "run_error", "rung": "bench", "rc": proc.returncode,
              "text": proc.stderr[-1500:]})
        return
    with open(out) as f:
        emit(dict(json.load(f), kind="bench", rung="bench"))


def main():
    job = json.load(open(sys.argv[1]))
    uname = os.uname()
    emit({"kind": "facts", "rung": "", "guest": job["guest"], "release": uname.release,
          "machine": uname.machine, "paging_levels": paging_levels(),
          "btf": os.path.exists("/sys/kernel/btf/vmlinux")})
    base = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, LIB]))
    # byte-compile once: every CLI the tests start would otherwise compile the
    # library (the embedded object is a large module) again, at TCG speed
    subprocess.call([sys.executable, "-m", "compileall", "-q", LIB, KERNEL_TESTS, HERE],
                    stdout=subprocess.DEVNULL)
    if job.get("bench"):
        bench(job, base)
    for name in job.get("probe_rungs", []):  # each rung pinned alone: loads, or why not
        facts = tracer_facts(dict(base, BINDTRACE_HOOK=name), {})
        emit(dict(facts, kind="facts", rung="pinned:" + name, guest=job["guest"]))
    for run in job["runs"]:
        env = dict(base, BTVM_RUNG=run["rung"], **run.get("env", {}))
        t0 = time.monotonic()
        facts = tracer_facts(env, run.get("config", {}))
        emit(dict(facts, kind="facts", rung=run["rung"], guest=job["guest"]))
        cmd = [sys.executable, "-m", "pytest", "-p", "guest_report", "-p", "no:cacheprovider",
               "-q", "-rN", "--rootdir", ROOT] + run["targets"]
        for d in run.get("deselect", []):
            cmd += ["--deselect", d]
        log = "/tmp/pytest-%s.log" % run["rung"]
        with open(log, "w") as f:
            rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        tail = open(log).read()[-1500:]
        sys.stdout.write("--- pytest %s rc=%d %.0f s\n%s\n" % (run["rung"], rc,
                                                             time.monotonic() - t0, tail))
        sys.stdout.flush()
        if rc not in (0, 1):  # collection or internal error: nothing per case to trust
            emit({"kind": "run_error", "rung": run["rung"], "rc": rc, "text": tail})
        if job.get("record") and not run.get("config"):  # core rungs: compared across arches
            rec = record(env, run.get("config", {}))
            emit({"kind": "records", "rung": run["rung"], "events": rec.get("events"),
                  "truths": rec.get("truths"), "error": rec.get("error")})
    emit({"kind": "done", "rung": ""})


if __name__ == "__main__":
    main()
