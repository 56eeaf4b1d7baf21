"""Run one window in a process of its own, detached from the module that
launched it: the launch returns at once, the result waits in a file under
JOB_DIR, and the play's collecting step reads it with one shell command per
host (the action plugin trace_bind_collect).

Why not Ansible's async: an async launch cannot pipeline (it copies the
module and async_wrapper to the host first) and async_status is a whole
module run per host. Measured on the 20-host test fleet at forks 5 (README,
"One fleet-wide window"): async launch 11.3 s and async_status 3.7 s, against
a pipelined launch like one ping and a collect of about 0.5 s.

A detached window cannot outlive its deadline (start + duration + slack):
SIGALRM stops it there, closing the tracer, so a controller that dies after
the launch leaves nothing loaded once the window is over.
"""
import json
import os
import pkgutil
import signal
import sys
import time

from . import BindtraceError

JOB_DIR = "/run/bindtrace/jobs"   # root's tmpfs: gone at reboot, never on a shared disk
STALE_SECONDS = 86400            # results nobody collected are removed a day later
SLACK_SECONDS = 120              # listener snapshot, owner lookup, a slow host


class DeadlinePassed(BaseException):
    """Raised by SIGALRM in a detached window that ran past its deadline."""


def job_id(now=None):
    """A name only this launch uses: time, pid and random bits (hex)."""
    return "%d-%d-%s" % (int(now if now is not None else time.time()), os.getpid(),
                         os.urandom(4).hex())


def result_path(jid, job_dir=JOB_DIR):
    return os.path.join(job_dir, jid + ".json")


def prepare_dir(job_dir=JOB_DIR, now=None, max_age=STALE_SECONDS):
    """JOB_DIR as root's private directory (refusing one somebody else owns),
    with results older than max_age removed."""
    os.makedirs(job_dir, mode=0o700, exist_ok=True)
    st = os.lstat(job_dir)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077 or not os.path.isdir(job_dir) \
            or os.path.islink(job_dir):
        raise BindtraceError("refusing %s for detached results: it must be a directory of uid %d "
                             "with mode 0700 (remove it; the module recreates it)"
                             % (job_dir, os.geteuid()))
    now = time.time() if now is None else now
    for name in os.listdir(job_dir):
        path = os.path.join(job_dir, name)
        try:
            if now - os.lstat(path).st_mtime > max_age:
                os.unlink(path)
        except OSError:
            pass   # collected (removed) meanwhile


def preimport(package):
    """Import every module of the host library now: the Ansible payload (a zip
    file in a temporary directory) is removed when the launching module exits,
    and the detached window would then fail on its first lazy import."""
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            __import__(info.name)
        except ImportError:
            pass   # a backend whose system package is missing here (bcc): never used


def write_result(path, result):
    """Atomically: a collector sees the whole result or none."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(result, f)
    os.rename(tmp, path)


def _alarm(_signum, _frame):
    raise DeadlinePassed()


def _detach_stdio():
    """The launcher's stdout is the controller's connection: the session ends
    only once every holder has closed it."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _run(work, path, deadline, library):
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(deadline - time.time()) + 1))
    try:
        result = work()
    except DeadlinePassed:
        result = {"failed": True, "msg": "the detached window did not end by its deadline (%s, "
                  "start + duration + %d s); it was stopped and nothing stays loaded; rerun the "
                  "task, with a shorter window on a busy host" % (
                      time.strftime("%H:%M:%S", time.gmtime(deadline)), SLACK_SECONDS)}
    except BaseException as exc:   # a result must be written whatever happened
        result = {"failed": True, "msg": "internal error in the detached window: %s: %s; "
                                         "please report it" % (type(exc).__name__, exc)}
    signal.alarm(0)
    write_result(path, result)
    remove_library(library)


def launch(work, deadline, job_dir=JOB_DIR, library=None):
    """Run work() -> result dict in a detached process (new session, no
    controlling terminal, stdio on /dev/null) that writes the result to
    result_path(jid), then removes `library` (the host library's zip it
    imports from, if any). -> the job: {jid, pid, file, deadline}."""
    prepare_dir(job_dir)
    jid = job_id()
    path = result_path(jid, job_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    first = os.fork()
    if first == 0:   # the first child only starts the daemon, so nobody must reap it
        status = 1
        try:
            os.close(rfd)
            os.setsid()
            daemon = os.fork()
            if daemon:
                os.write(wfd, str(daemon).encode())
                status = 0
            else:
                os.close(wfd)
                os.chdir("/")
                _detach_stdio()
                _run(work, path, deadline, library)
                status = 0
        finally:
            os._exit(status)   # never back into the module's code (or its payload's cleanup)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        pid = r.read()
    os.waitpid(first, 0)
    if not pid:
        raise BindtraceError("could not start the detached window (fork failed); rerun the task")
    return {"jid": jid, "pid": int(pid), "file": path, "deadline": deadline}


# -- the fast launch: trace_bind's action plugin runs BOOTSTRAP with `python3 -c`
# and pipes one line of JSON options, then the host library as a zip, to its
# stdin. No AnsiballZ and no ansible.module_utils on the host (their import is
# most of a module's start-up): about a third of a module run's CPU there.
BOOTSTRAP = (
    "import json,os,sys,tempfile\n"
    "d=sys.stdin.buffer.read();n=d.index(b'\\n')\n"
    "r=%(job_dir)r\n"
    "if os.geteuid()==0:\n"
    " os.makedirs(r,0o700,exist_ok=True)\n"
    "else:\n"
    " r=tempfile.mkdtemp()\n"
    "f,p=tempfile.mkstemp(suffix='.zip',dir=r)\n"
    "with os.fdopen(f,'wb') as o:o.write(d[n+1:])\n"
    "sys.path.insert(0,p)\n"
    "try:\n"
    " from bindtrace.detach import bootstrap_main\n"
    "except BaseException:\n"
    " os.unlink(p)\n"
    " raise\n"
    "bootstrap_main(json.loads(d[:n].decode()),p)\n") % {"job_dir": JOB_DIR}


def bootstrap_main(options, library):
    """Validate the options, start the detached window and print the launch's
    result as one JSON line: {"changed": false, "bindtrace_job": ...} or
    {"failed": true, "msg": ...}. The library zip stays while its window runs."""
    from . import facts   # here, not at the top: facts imports this module
    try:
        plan = facts.prepare(**options)
        job = facts.launch_detached(plan, library=library)
        result = {"changed": False, "bindtrace_job": job}
    except Exception as exc:
        result = facts.failure_of(exc)
    if result.get("failed"):
        remove_library(library)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def remove_library(library):
    """The zip, and its private directory when it was not JOB_DIR (not root)."""
    if not library:
        return
    try:
        os.unlink(library)
        parent = os.path.dirname(library)
        if parent != JOB_DIR:
            os.rmdir(parent)
    except OSError:
        pass
