"""Use the second core for the report's heavy, independent parts: a forked
child computes half of a list (or one of two jobs) and hands back the result
through a pipe (marshal: str, bytes, lists, dicts, None, numbers only).

Forking is used only where it is safe and pays off: os.fork exists, more than
one CPU is usable, and the process has a single thread (Ansible's controller
may run a results thread; a child of a threaded process is not trusted). In
any other case, or if the child fails, the work runs in this process, with
the same result."""
import functools
import gc
import marshal
import os
import threading

ENABLED = True       # tests switch it off to compare both paths
MIN_ITEMS = 64       # below this a fork costs more than it saves


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork():
    return ENABLED and hasattr(os, "fork") and _cpus() > 1 and threading.active_count() == 1


def _in_child(job, w):
    """Run job in the forked child, write marshal(result) to w, never return."""
    code = 1
    try:
        data = marshal.dumps(job())
        with os.fdopen(w, "wb") as f:
            f.write(data)
        code = 0
    except BaseException:   # the parent recomputes; nothing may escape the child
        pass
    os._exit(code)


class Forked(object):
    """job() started in a forked child now (when can_fork), its result
    collected by result(); without a child, or when the child failed,
    result() runs job() here."""

    def __init__(self, job):
        self.job, self.pid, self.r = job, None, None
        if not can_fork():
            return
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return
        if pid == 0:
            os.close(r)
            _in_child(job, w)
        os.close(w)
        self.pid, self.r = pid, r

    def wait(self):
        """Wait for the child -> (True, its result) or (False, None)."""
        if self.pid is None:
            return False, None
        with os.fdopen(self.r, "rb") as f:
            data = f.read()
        try:
            _pid, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            # reaped by the host program's own SIGCHLD handler: the child
            # writes only once done, so complete data means it succeeded
            status = 0
        self.pid = None
        if status == 0 and data:
            try:
                return True, marshal.loads(data)
            except (EOFError, ValueError, TypeError):   # cut short
                pass
        return False, None

    def result(self):
        ok, value = self.wait()
        return value if ok else self.job()


def both(job_a, job_b):
    """(job_a(), job_b()), job_b in a forked child when possible."""
    child = Forked(job_b)
    try:
        a = job_a()
    except BaseException:
        child.wait()
        raise
    return a, child.result()


def map_split(fn, items):
    """[fn(x) for x in items]; the second half in a forked child when possible."""
    items = list(items)
    if len(items) < MIN_ITEMS or not can_fork():
        return [fn(x) for x in items]
    half = len(items) // 2
    first, second = both(lambda: [fn(x) for x in items[:half]],
                         lambda: [fn(x) for x in items[half:]])
    return first + second


class gc_paused(object):
    """Context (and decorator) that pauses the cyclic garbage collector: the
    report makes millions of small objects and no cycles, and each full
    collection would walk the whole model again and again (2-3x the cost of
    the work itself at 1000 hosts). Restores the previous state."""

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc):
        if self.was_enabled:
            gc.enable()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def paused(*args, **kw):
            with gc_paused():
                return fn(*args, **kw)
        return paused
