"""The core backend: the committed CO-RE object loaded through libbpf.so.1.

Lifecycle: open -> write config into .rodata -> size maps -> load -> fill the
ports bitmap -> attach. Every failure closes what was opened, so nothing stays
loaded in the kernel; everything is owned by this process's fds, so even a
SIGKILL releases it."""
import ctypes
import errno
import os
import time

from . import BindtraceError
from . import bpf_object
from . import hooks
from . import libbpf
from . import ringbuf
from .bind_h import BIND_MODE_EVENTS, BIND_MODE_SUMMARY
from .maps import STATS, merge_runs, ports_bitmap, read_stats
from .record import KEY_FMT, STATS_FMT, plain_format, struct_format

CONFIG_FMT = plain_format("bind_config")
# Every hook rung has two builds of its programs (hooks.RUNGS): "fast" reads
# fields through bpf_rdonly_cast (Linux 6.2+), "compat" through probe reads
# (5.15+). One rung's one build is loaded.
FAST, COMPAT = b"bind_exit", b"bind_exit_compat"  # the tracepoint rung's programs
LOG_SIZE = 1 << 20
LISTEN_KEY_FMT = struct_format("listen_key")
LISTEN_STATS_FMT = struct_format("listen_stats")


class LoadRefused(BindtraceError):
    """One rung's programs did not load or attach: the message names the cause."""

    def __init__(self, message, err=0):
        BindtraceError.__init__(self, message)
        self.err = err


def pack_config(cfg, netns_inode):
    comm = (cfg.comm or "").encode("utf-8")[:15]
    return CONFIG_FMT.pack(
        BIND_MODE_SUMMARY if cfg.mode == "summary" else BIND_MODE_EVENTS,
        1 if cfg.ignore_errors else 0,
        1 if cfg.pid else 0, cfg.pid or 0,
        1 if cfg.uid is not None else 0, cfg.uid or 0,
        1 if netns_inode else 0, netns_inode or 0,
        1 if cfg.ports else 0,
        1 if cfg.comm else 0, comm)


class CoreBackend(object):
    name = "core"
    missing_fields = ()
    defers_attach = True   # attach=False: loaded now, tracing from attach()

    def __init__(self, cfg, netns_inode=None, attach=True):
        self.lib = libbpf.load_library()
        self.obj = None
        self.links = []
        self.rb = None
        self.mrb = None  # ringbuf.RingBuffer: replaces libbpf's rb where supported
        self._pending = []
        self._cb = None
        self.ncpu = self.lib.libbpf_num_possible_cpus()
        self.hook = self.build = self.program = None
        self.hook_where = self.hook_sees = None
        self.hook_skipped = []   # [(rung, why)]: why each cheaper rung was not used
        try:
            self._climb(cfg, netns_inode)
            if cfg.mode == "events":
                self._open_ringbuf()
            if not attach:
                # the ladder attached to find the hook this kernel takes: stop
                # until attach(), which drops what that moment recorded
                for link in self.links:
                    self.lib.bpf_link__destroy(link)
                self.links = []
        except BaseException:
            self.close()
            raise

    def attach(self):
        """Start tracing (made with attach=False): forget whatever the ladder's
        trial attach recorded, then attach the programs it chose. Nothing is
        attached in between, so the maps hold exactly the window's binds."""
        try:
            if self.mrb:
                self.mrb.consume([])
            if self.rb:
                self.lib.ring_buffer__consume(self.rb)
            del self._pending[:]
            self._clear_maps()
            self._attach(self._rung, self.programs)
        except BaseException:
            self.close()
            raise

    def _clear_maps(self):
        fd = self.lib.bpf_map__fd(self._map("summary"))
        key = ctypes.create_string_buffer(KEY_FMT.size)
        while self.lib.bpf_map_get_next_key(fd, None, key) == 0:
            if self.lib.bpf_map_delete_elem(fd, key):
                raise BindtraceError("internal: cannot clear the summary map")
        fd = self.lib.bpf_map__fd(self._map("listens"))
        key = ctypes.create_string_buffer(LISTEN_KEY_FMT.size)
        while self.lib.bpf_map_get_next_key(fd, None, key) == 0:
            if self.lib.bpf_map_delete_elem(fd, key):
                raise BindtraceError("internal: cannot clear the listens map")
        fd, zeros = self._run_map()[:2]
        key = ctypes.c_uint32(0)
        if self.lib.bpf_map_update_elem(fd, ctypes.byref(key), zeros, 0):
            raise BindtraceError("internal: cannot reset the runs map")
        fd = self.lib.bpf_map__fd(self._map("stats"))
        zeros = (ctypes.c_uint64 * self.ncpu)()
        for slot, _name in STATS:
            k = ctypes.c_uint32(slot)
            if self.lib.bpf_map_update_elem(fd, ctypes.byref(k), zeros, 0):
                raise BindtraceError("internal: cannot reset the stats map")

    @property
    def hook_reason(self):
        """Why the cheaper rungs were not used ('' when the first one tried loaded)."""
        return "; ".join("%s: %s" % (name, why) for name, why in self.hook_skipped)

    def _climb(self, cfg, netns_inode):
        """Load the cheapest rung of the hook ladder this kernel accepts (or the
        pinned one): fast build first, the compat build if the verifier refused it."""
        hook = getattr(cfg, "hook", "auto")
        pinned_by = "hook option"
        if hook == "auto" and os.environ.get("BINDTRACE_HOOK"):  # tests: force a rung everywhere
            hook, pinned_by = os.environ["BINDTRACE_HOOK"], "BINDTRACE_HOOK"
        rungs = hooks.ladder(hook)
        compat_only = os.environ.get("BINDTRACE_CORE_PROGRAM") == "compat"  # tests: old kernels
        for rung in rungs:
            why = hooks.unavailable(rung) or (len(rungs) > 1 and hooks.refused_this_boot(rung))
            if why:
                self.hook_skipped.append((rung.name, why))
                continue
            builds = rung.builds[1:] if compat_only else rung.builds
            for build, programs in builds:
                try:
                    self._open_and_load(cfg, netns_inode, rung, programs)
                    self._attach(rung, programs)
                except LoadRefused as exc:
                    for link in self.links:
                        self.lib.bpf_link__destroy(link)
                    self.links = []
                    self._close_object()
                    if build == "fast" and len(builds) > 1 and hooks.retry_compat(exc.err):
                        continue
                    self.hook_skipped.append((rung.name, str(exc)))
                    hooks.remember_refusal(rung, exc.err, str(exc))
                    break
                self.hook, self.build, self.program = rung.name, build, programs[0]
                self._rung = rung
                self.programs = programs
                self.hook_where, self.hook_sees = rung.where, rung.sees
                return
        if len(rungs) == 1:
            raise BindtraceError("hook %s (%s, set by %s) is not available on this host: %s; "
                                 "use hook auto, which takes the cheapest hook that loads"
                                 % (rungs[0].name, rungs[0].where, pinned_by,
                                    self.hook_skipped[-1][1]))
        raise BindtraceError("the kernel accepted none of the bind tracer's hooks: %s"
                             % self.hook_reason)

    # -- set-up ---------------------------------------------------------------
    def _map(self, name):
        m = self.lib.bpf_object__find_map_by_name(self.obj, name.encode())
        if not m:
            raise BindtraceError("internal: map %s missing from the BPF object" % name)
        return m

    def _open_and_load(self, cfg, netns_inode, rung, programs):
        from .preflight import btf_path
        arch = bpf_object.machine()
        if arch not in bpf_object.OBJECTS:
            raise BindtraceError("unsupported: no bindtrace object for %s (objects: %s); use "
                                 "backend bcc there" % (arch, ", ".join(sorted(bpf_object.OBJECTS))))
        data = bpf_object.object_bytes(arch)
        self._buf = ctypes.create_string_buffer(data, len(data))
        self._log = ctypes.create_string_buffer(LOG_SIZE)
        opts = libbpf.OpenOpts()
        opts.sz = ctypes.sizeof(opts)
        opts.object_name = b"bindtrace"
        opts.btf_custom_path = btf_path().encode()
        opts.kernel_log_buf = ctypes.cast(self._log, ctypes.c_char_p)
        opts.kernel_log_size = LOG_SIZE
        opts.kernel_log_level = 0
        libbpf.take_messages()
        self.obj = self.lib.bpf_object__open_mem(self._buf, len(data), ctypes.byref(opts))
        if not self.obj:
            err = libbpf.last_errno()
            if not os.path.exists(btf_path()):
                raise BindtraceError("no kernel BTF at %s: the core backend needs a kernel built "
                                     "with CONFIG_DEBUG_INFO_BTF; use backend bcc" % btf_path())
            raise BindtraceError("cannot open the BPF object: %s; the host needs libbpf >= 1.0 "
                                 "and kernel BTF at %s" % (libbpf.errno_text(err), btf_path()))
        self._write_rodata(pack_config(cfg, netns_inode))
        for name in programs:
            if not self.lib.bpf_object__find_program_by_name(self.obj, name):
                raise BindtraceError("internal: program %s missing from the BPF object"
                                     % name.decode())
        prog = None
        while True:  # load only the chosen programs: the object holds every hook and build
            prog = self.lib.bpf_object__next_program(self.obj, prog)
            if not prog:
                break
            if self.lib.bpf_program__set_autoload(
                    prog, self.lib.bpf_program__name(prog) in programs):
                raise BindtraceError("internal: cannot select program %s" % programs[0].decode())
        if self.lib.bpf_map__set_max_entries(self._map("events"), cfg.ringbuf_bytes) or \
                self.lib.bpf_map__set_max_entries(self._map("summary"), cfg.summary_entries):
            raise BindtraceError("internal: cannot size the BPF maps")
        err = self.lib.bpf_object__load(self.obj)
        if err:
            log = self._log.value.decode("utf-8", "replace").strip().splitlines()[-3:]
            said = [m for m in libbpf.take_messages() if "CO-RE relocation" in m][-2:]
            hint = hooks.load_hint(rung, err, said + log)
            raise LoadRefused("the kernel refused %s (%s): %s; %s%s" % (
                ", ".join(p.decode() for p in programs), rung.where, libbpf.errno_text(err),
                hint, (": " + " | ".join(said + log)) if (said or log) else ""), err)
        words = ports_bitmap(cfg.ports)
        if words:
            fd = self.lib.bpf_map__fd(self._map("ports"))
            for idx, word in words.items():
                k, v = ctypes.c_uint32(idx), ctypes.c_uint64(word)
                if self.lib.bpf_map_update_elem(fd, ctypes.byref(k), ctypes.byref(v), 0):
                    raise BindtraceError("internal: cannot fill the ports filter map")

    def _write_rodata(self, blob):
        m = None
        while True:
            m = self.lib.bpf_object__next_map(self.obj, m)
            if not m:
                raise BindtraceError("internal: the BPF object has no .rodata")
            if self.lib.bpf_map__name(m).endswith(b".rodata"):
                break
        size = ctypes.c_size_t()
        ptr = self.lib.bpf_map__initial_value(m, ctypes.byref(size))
        if not ptr or size.value != len(blob):
            raise BindtraceError("internal: .rodata is %d bytes, expected %d (bind.h and "
                                 "backend_core.py disagree)" % (size.value, len(blob)))
        ctypes.memmove(ptr, blob, len(blob))

    def _attach(self, rung, programs):
        for name in programs:
            prog = self.lib.bpf_object__find_program_by_name(self.obj, name)
            link = self.lib.bpf_program__attach(prog) if prog else None
            if not link:
                err = libbpf.last_errno()
                raise LoadRefused("cannot attach %s (%s): %s%s" % (
                    name.decode(), rung.where, libbpf.errno_text(err),
                    hooks.attach_hint(rung, err)), err)
            self.links.append(link)

    def _open_ringbuf(self):
        if ringbuf.supported():  # batches from the mmapped ring, no ctypes call per record
            self.mrb = ringbuf.RingBuffer(self.lib.bpf_map__fd(self._map("events")))
            return
        pending = self._pending
        string_at = ctypes.string_at

        def on_sample(_ctx, data, size):
            pending.append(string_at(data, size))
            return 0

        self._cb = libbpf.SAMPLE_FN(on_sample)  # keep a reference: libbpf calls it later
        self.rb = self.lib.ring_buffer__new(self.lib.bpf_map__fd(self._map("events")), self._cb,
                                            None, None)
        if not self.rb:
            raise BindtraceError("cannot open the ring buffer: %s"
                                 % libbpf.errno_text(libbpf.last_errno()))

    # -- running --------------------------------------------------------------
    def poll(self, timeout_ms):
        """Raw event records delivered since the last call (events mode)."""
        if self.mrb:
            self.mrb.poll(self._pending, int(timeout_ms))
        elif self.rb:
            n = self.lib.ring_buffer__poll(self.rb, int(timeout_ms))
            if n < 0 and -n != errno.EINTR:
                raise BindtraceError("reading the ring buffer failed: %s" % libbpf.errno_text(n))
        elif timeout_ms > 0:
            time.sleep(timeout_ms / 1000.0)  # summary mode: nothing to read until the end
        out = self._pending[:]
        del self._pending[:]
        return out

    def detach(self):
        """Stop tracing (the window closes); maps stay readable until close()."""
        for link in self.links:
            self.lib.bpf_link__destroy(link)
        self.links = []
        if self.mrb:
            self.mrb.consume(self._pending)
        if self.rb:
            self.lib.ring_buffer__consume(self.rb)

    def stats(self):
        fd = self.lib.bpf_map__fd(self._map("stats"))
        values = (ctypes.c_uint64 * self.ncpu)()

        def per_cpu(slot):
            key = ctypes.c_uint32(slot)
            if self.lib.bpf_map_lookup_elem(fd, ctypes.byref(key), values):
                raise BindtraceError("internal: cannot read the stats map")
            return values
        return read_stats(per_cpu)

    def summary(self):
        """[(raw key, raw stats)] of every distinct bind counted in the kernel:
        the summary map, plus what each CPU's run has not added to it yet."""
        return merge_runs(self._dump("summary", KEY_FMT, STATS_FMT), self._runs())

    def _run_map(self):
        """(fd, per-CPU value buffer, one CPU's value size) of the runs map."""
        size = KEY_FMT.size + STATS_FMT.size   # bind.h struct bind_run
        if self.lib.bpf_map__value_size(self._map("runs")) != size:
            raise BindtraceError("internal: the runs map's value is not a bind_run")
        step = (size + 7) // 8 * 8             # per-CPU values come 8-aligned
        return self.lib.bpf_map__fd(self._map("runs")), ctypes.create_string_buffer(
            step * self.ncpu), step

    def _runs(self):
        fd, buf, step = self._run_map()
        key = ctypes.c_uint32(0)
        if self.lib.bpf_map_lookup_elem(fd, ctypes.byref(key), buf):
            raise BindtraceError("internal: cannot read the runs map")
        return [buf.raw[i * step:(i + 1) * step] for i in range(self.ncpu)]

    def listens(self):
        """[(raw listen_key, raw listen_stats)] of every socket that listened."""
        return self._dump("listens", LISTEN_KEY_FMT, LISTEN_STATS_FMT)

    def _dump(self, name, key_fmt, val_fmt):
        fd = self.lib.bpf_map__fd(self._map(name))
        KEY_SIZE = key_fmt.size   # noqa: N806
        key = ctypes.create_string_buffer(KEY_SIZE)
        nxt = ctypes.create_string_buffer(KEY_SIZE)
        val = ctypes.create_string_buffer(val_fmt.size)
        out = []
        prev = None
        while self.lib.bpf_map_get_next_key(fd, prev, nxt) == 0:
            ctypes.memmove(key, nxt, KEY_SIZE)
            if self.lib.bpf_map_lookup_elem(fd, key, val) == 0:
                out.append((key.raw, val.raw))
            prev = key
        return out

    def close(self):
        if self.links:
            self.detach()
        if self.mrb:
            self.mrb.close()
            self.mrb = None
        if self.rb:
            self.lib.ring_buffer__free(self.rb)
            self.rb = None
        self._close_object()

    def _close_object(self):
        if self.obj:
            self.lib.bpf_object__close(self.obj)
            self.obj = None
