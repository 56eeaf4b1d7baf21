"""The hooks bench (tests/bench/bench_hooks.py) inside a VM-matrix guest, for
the rungs this host refuses (fexit, kprobe): Debian's 6.12 x86_64 kernel
under QEMU/TCG, one vCPU, the committed tree as payload (vmlib).

TCG time is not absolute and moves with the host's load, so only what is
measured side by side inside the guest counts: every configuration runs once
per round in a rotating order, and each figure is the median of the per-round
differences and ratios, printed with the middle half of the rounds [25th..75th
percentile]. The guest has no compiler: the floor object (bind.bpf.c with
every entry point returning at once) and a static bindstorm are built here and
travel in the job.

    .venv/bin/python tests/vm/bench_guest.py [--guest x86_64-6.12] [--rounds 15]
        [--binds 30000] [--getppids 300000] [--rungs fexit,kprobe,tracepoint] [--json FILE]"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "bench")]

import vmlib  # noqa: E402

# name -> (kernel, image kernels, QEMU cpu): x86_64 only (bindstorm is built here)
GUESTS = {"x86_64-6.12": (vmlib.K612, vmlib.X86_IMAGE, "max,-la57"),
          "x86_64-6.1": (vmlib.K61, vmlib.X86_IMAGE, "max,-la57")}


def static_bindstorm(workdir):
    import bench_common
    path = os.path.join(workdir, "bindstorm.static")
    subprocess.run(["gcc", "-O2", "-Wall", "-static", "-pthread", "-o", path,
                    bench_common.STORM_SRC], check=True)
    with open(path, "rb") as f:
        return f.read()


def run(guest="x86_64-6.12", rounds=15, binds=30000, getppids=300000,
        rungs=("fexit", "kprobe", "tracepoint"), timeout=5400, icount=None):
    """The guest's bench result: {"rungs": [...], "summary": {...}} as
    bench_hooks.main writes it, plus the guest's kernel release and the seconds."""
    import bench_hooks
    kernel, image_kernels, cpu = GUESTS[guest]
    work = tempfile.mkdtemp(prefix="bindtrace-vmbench.")
    job = {"runs": [], "bench": {
        "numbers": [rounds, binds, getppids], "args": ["--threads", "1", "--rungs", ",".join(rungs)],
        "floor": base64.b64encode(bench_hooks.floor_object("x86_64")).decode(),
        "storm": base64.b64encode(static_bindstorm(work)).decode()}}
    extra = [] if icount is None else ["-icount", "shift=%d,sleep=on" % icount]
    g = vmlib.Guest(guest + "-bench", "x86_64", kernel, cpu, job, image_kernels, smp=1,
                    qemu_args=extra)
    commit = vmlib.head_commit()   # the payload's (HEAD when the guest is built)
    res, text, secs = g.boot(work, timeout)
    log = os.path.join(vmlib.CACHE, "logs", guest + "-bench.console")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        f.write(text)
    if "bench" not in res:
        raise RuntimeError("no bench result from the guest (console: %s): %s" % (
            log, res.get("run_errors") or text[-2000:]))
    out = res["bench"]
    out.update(guest=guest, release=kernel.release, secs=secs, rounds=rounds, binds=binds,
               getppids=getppids, commit=commit, icount=icount)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", default="x86_64-6.12", choices=sorted(GUESTS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--binds", type=int, default=30000)
    ap.add_argument("--getppids", type=int, default=300000)
    ap.add_argument("--rungs", default="fexit,kprobe,tracepoint")
    ap.add_argument("--icount", type=int, default=None,
                    help="QEMU -icount shift: guest time = instructions x 2^shift ns")
    ap.add_argument("--json")
    a = ap.parse_args()
    import bench_hooks
    out = run(a.guest, a.rounds, a.binds, a.getppids, a.rungs.split(","), icount=a.icount)
    print("guest %s (Linux %s, QEMU/TCG, 1 vCPU), commit %s, %.0f s" % (
        out["guest"], out["release"], out["commit"][:10], out["secs"]))
    print(bench_hooks.report([tuple(r) for r in out["rungs"]], out["summary"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
