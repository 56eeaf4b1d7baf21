"""The controller's side of a detached window (trace_bind with detach: true;
the host's side is module_utils/bindtrace/detach.py).

Launch: the host library as one zip plus the options, piped to `python3 -c`
on the host (trace_bind's action plugin): no AnsiballZ, no ansible.module_utils
to import there. Collect: one shell command per host that waits for the
result file (trace_bind_collect), no module at all. Measured on the 20-host
test fleet (README, "One fleet-wide window").
"""
import io
import json
import os
import re
import zipfile

from ansible_collections.fleetaudit.bindtrace.plugins.module_utils.bindtrace import detach

# what the launch returned; checked before any of it reaches a shell
JID = re.compile(r"^[0-9]+-[0-9]+-[0-9a-f]{8}$")
RESULT_FILE = re.compile(r"^/[A-Za-z0-9/._-]+/([0-9]+-[0-9]+-[0-9a-f]{8})\.json$")
RUNNING = "BINDTRACE-JOB-RUNNING"
GONE = "BINDTRACE-JOB-GONE"
POLL = 0.1   # seconds between looks at the result file

# Wait for the result while its process lives (at most the timeout); print it
# and remove it. `alive` is read before the file: a process found dead cannot
# write any more, so "no file" then means it never will.
SCRIPT = ("f=%(file)s; n=0; "
          "while [ ! -e \"$f\" ] && kill -0 %(pid)d 2>/dev/null && [ \"$n\" -lt %(polls)d ]; "
          "do sleep %(poll)s; n=$((n+1)); done; "
          "alive=0; kill -0 %(pid)d 2>/dev/null && alive=1; "
          "if [ -e \"$f\" ]; then cat \"$f\" && rm -f \"$f\"; "
          "elif [ \"$alive\" = 1 ]; then echo " + RUNNING + "; else echo " + GONE + "; fi")


def check_job(job):
    """The launch's bindtrace_job -> (jid, pid, file), or ValueError naming the
    problem (a job from elsewhere must never become a shell command)."""
    if not isinstance(job, dict):
        raise ValueError("job must be the bindtrace_job the launch returned (a dict with jid, "
                         "pid and file), got %s" % type(job).__name__)
    jid, pid, path = job.get("jid"), job.get("pid"), job.get("file")
    m = RESULT_FILE.match(path) if isinstance(path, str) else None
    if not (isinstance(jid, str) and JID.match(jid) and m and m.group(1) == jid):
        raise ValueError("job %r is not a bindtrace_job returned by trace_bind with detach: true"
                         % (job,))
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise ValueError("job %s has no valid pid (%r)" % (jid, pid))
    return jid, pid, path


def collect_command(job, timeout):
    """The shell command that waits up to timeout seconds for the job's result."""
    _jid, pid, path = check_job(job)
    return SCRIPT % {"file": path, "pid": pid, "polls": max(1, int(timeout / POLL)),
                     "poll": POLL}


def parse_output(job, rc, stdout, stderr, timeout):
    """The collect command's output -> the module's result dict (facts, or
    failed + msg naming the cause and the fix)."""
    jid, pid, _path = check_job(job)
    text = stdout or ""
    start = text.find("{")
    if start >= 0:
        try:
            result, _end = json.JSONDecoder().raw_decode(text[start:])
        except ValueError as exc:
            return {"failed": True, "msg": "the result of detached job %s is not JSON (%s); "
                                           "rerun the task" % (jid, exc)}
        if isinstance(result, dict):
            result.setdefault("changed", False)
            return result
    if RUNNING in text:
        return {"failed": True, "msg": "detached job %s (pid %d) had no result after %d s; it "
                "stops by itself at its deadline and nothing stays loaded; collect again with a "
                "longer timeout (bindtrace_collect_timeout)" % (jid, pid, timeout)}
    if GONE in text:
        return {"failed": True, "msg": "detached job %s (pid %d) ended without a result: it was "
                "killed (SIGKILL, out of memory) or the host restarted; the kernel unloaded its "
                "tracer with it; rerun the play" % (jid, pid)}
    return {"failed": True, "msg": "could not read the result of detached job %s (exit %s): %s"
            % (jid, rc, (stderr or stdout or "no output").strip()[-500:])}


# -- launch ------------------------------------------------------------------
HOST_LIBRARY = os.path.dirname(os.path.abspath(detach.__file__))
_ZIP_CACHE = {}
PYTHONS = ("/usr/bin/python3", "/usr/libexec/platform-python")


def library_zip(root=HOST_LIBRARY):
    """The host library as a zip of package `bindtrace` (stored in order, no
    timestamps that vary: the same checkout gives the same bytes), built once
    per process."""
    if root not in _ZIP_CACHE:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for d, dirs, files in os.walk(root):
                dirs.sort()
                for name in sorted(files):
                    if name.endswith(".py"):
                        path = os.path.join(d, name)
                        arc = os.path.join("bindtrace", os.path.relpath(path, root))
                        info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
                        info.compress_type = zipfile.ZIP_DEFLATED
                        with open(path, "rb") as f:
                            z.writestr(info, f.read())
        _ZIP_CACHE[root] = out.getvalue()
    return _ZIP_CACHE[root]


def launch_command(interpreter, shell_quote):
    """The host command: the given Python, or the first of PYTHONS / python3
    on PATH that exists, running the bootstrap."""
    if interpreter:
        pick = "P=%s" % shell_quote(interpreter)
    else:
        pick = "P=; for c in %s; do [ -x \"$c\" ] && P=$c && break; done; " \
               "[ -n \"$P\" ] || P=$(command -v python3)" % " ".join(PYTHONS)
    return "%s; exec \"$P\" -c %s" % (pick, shell_quote(detach.BOOTSTRAP))


def launch_input(options):
    """stdin of the launch command: one JSON line of options, then the zip."""
    return json.dumps(options).encode() + b"\n" + library_zip()


def parse_launch(rc, stdout, stderr):
    """The launch's output -> the task result (bindtrace_job, or failed + msg)."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                break
            if isinstance(result, dict):
                return result
    return {"failed": True, "msg": "could not launch the trace (exit %s): %s" % (
        rc, (stderr or stdout or "no output").strip()[-800:])}
