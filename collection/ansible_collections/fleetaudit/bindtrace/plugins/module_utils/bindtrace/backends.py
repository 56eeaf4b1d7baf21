"""Which backend traces on this host: the one place that decides.

LADDER is tried top to bottom under backend=auto; a forced backend (or a
forced hook, which only the core backend has) tries only its rung. A rung is
skipped when it is not available here (available() raises with the cause and
the fix), and under auto also when the kernel refuses to load it (the core
backend then tried its own hooks, fexit -> kprobe -> tracepoint, and bcc may
still run). The reason for the choice goes into the facts (host.backend_reason,
and the core backend's refusal in host.hook_not_used)."""
from . import BindtraceError
from . import preflight


def _core_available():
    if not preflight.has_btf():
        raise BindtraceError("no kernel BTF at %s" % preflight.btf_path())
    preflight.check_object_arch()
    from .libbpf import load_library
    load_library()


def _core_class():
    from .backend_core import CoreBackend
    return CoreBackend


def _bcc_available():
    from .bcc.backend import check_bcc
    check_bcc()


def _bcc_class():
    from .bcc.backend import BccBackend
    return BccBackend


class Rung(object):
    """One backend on the ladder: available() raises when it cannot run here;
    why(): the reason given when auto takes it with nothing skipped."""

    def __init__(self, name, available, cls, why, forced_check=None):
        self.name, self.available, self.cls, self.why = name, available, cls, why
        self.forced_check = forced_check or available   # the message when it is asked for


def _core_forced():
    preflight.check_btf()
    _core_available()


LADDER = (
    Rung("core", _core_available, _core_class, "kernel BTF and libbpf.so.1 present",
         forced_check=_core_forced),
    Rung("bcc", _bcc_available, _bcc_class, "bcc present"),
)
UNSUPPORTED = ("unsupported: no usable backend on this host (%s); install libbpf1 on a kernel "
               "with BTF (CONFIG_DEBUG_INFO_BTF), or bcc with kernel headers "
               "(bindtrace_install_bcc: true)")


def check_host():
    """What every backend needs: Linux, root, the bind syscall tracepoints."""
    preflight.check_linux()
    preflight.check_root()
    preflight.check_tracepoints()


class Deferred(object):
    """A backend that attaches as it loads (bcc compiles and attaches in one
    step), for a tracer that must start at a given time: built by build() at
    that time, so no bind from before it counts."""

    def __init__(self, cls, cfg, netns_inode):
        self.cls, self.cfg, self.netns_inode = cls, cfg, netns_inode
        self.name = cls.name
        self.hook_reason = None

    def build(self):
        backend = self.cls(self.cfg, self.netns_inode)
        if self.hook_reason:
            backend.hook_reason = self.hook_reason
        return backend

    def close(self):
        pass


def _make(cls, cfg, netns_inode, attach):
    """cls loaded (and attached unless attach is False: then attach() starts it)."""
    if attach:
        return cls(cfg, netns_inode)
    if getattr(cls, "defers_attach", False):
        return cls(cfg, netns_inode, attach=False)
    return Deferred(cls, cfg, netns_inode)


def select_backend(cfg, netns_inode=None, load=True, attach=True):
    """-> (backend, reason): the backend loaded and attached with cfg (or, with
    load=False, the class of the one that would be tried first: nothing is
    loaded; with attach=False, loaded but tracing only from its attach(), or
    a Deferred to build then). Raises BindtraceError with the cause and the
    fix when none can."""
    check_host()
    forced = "core" if getattr(cfg, "hook", "auto") in ("fexit", "kprobe") else cfg.backend
    if forced != "auto":
        rung = [r for r in LADDER if r.name == forced][0]
        rung.forced_check()
        cls = rung.cls()
        return (_make(cls, cfg, netns_inode, attach) if load else cls), "requested"
    skipped = []     # why the rungs above the chosen one were passed over
    failed = None    # the first load failure: raised if nothing below can run
    for rung in LADDER:
        try:
            rung.available()
        except (BindtraceError, ImportError) as exc:
            skipped.append(str(exc))
            continue
        reason = "auto: %s" % "; ".join(skipped + [rung.why])
        if not load:
            return rung.cls(), reason
        try:
            backend = _make(rung.cls(), cfg, netns_inode, attach)
        except BindtraceError as exc:
            if getattr(cfg, "hook", "auto") != "auto":
                raise   # the hook asked for is the core backend's: no fall through
            failed = failed or exc
            skipped.append("the %s backend failed (%s)" % (rung.name, exc))
            continue
        if failed is not None:
            backend.hook_reason = "core: %s" % failed
        return backend, reason
    if failed is not None:
        raise failed
    raise BindtraceError(UNSUPPORTED % "; ".join(skipped))
