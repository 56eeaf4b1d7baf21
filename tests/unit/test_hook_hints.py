"""The causes named when the kernel refuses to attach a hook (the messages a
user reads; the real refusals are exercised by tests/kernel/test_hooks.py and
the VM matrix, but a full hook cannot be provoked on demand there)."""
import errno

from bindtrace import hooks


def rung(name):
    return [r for r in hooks.RUNGS if r.name == name][0]


def test_too_many_programs_on_one_hook_names_the_limit_and_the_fix():
    for name in ("tracepoint", "kprobe", "fexit"):
        hint = hooks.attach_hint(rung(name), -errno.E2BIG)
        assert hint.startswith("; the kernel allows only so many BPF programs on one %s hook" % name)
        assert "stop some" in hint and "pin another hook" in hint


def test_other_refusals_keep_their_hints():
    assert hooks.attach_hint(rung("fexit"), errno.ENOTSUP).startswith("; this kernel cannot attach BPF trampolines")
    assert hooks.attach_hint(rung("kprobe"), errno.ENOENT) == "; the kernel has no kprobe on %s" % rung("kprobe").where
    assert hooks.attach_hint(rung("tracepoint"), errno.EBUSY) == ""
