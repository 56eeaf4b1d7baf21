"""Pause the cyclic garbage collector around the report's bulk work."""
import functools
import gc


class gc_paused(object):
    """Context (and decorator) that pauses the cyclic garbage collector: the
    report makes many small objects and no cycles (record dicts from the
    hosts, rows of the tables), and each full collection would walk all of
    them again and again. Restores the previous state."""

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
