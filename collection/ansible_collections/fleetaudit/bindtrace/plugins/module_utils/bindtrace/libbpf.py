"""A thin ctypes binding to libbpf.so.1: just what the core backend needs
(open from memory, configure, load, attach, ring buffer, map access)."""
import ctypes
import os

from . import BindtraceError

c_void_p, c_int, c_size_t, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p

# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
SAMPLE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)


class OpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts (libbpf >= 1.0)."""
    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", c_char_p),
        ("_unused", ctypes.c_uint32),
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", ctypes.c_char_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
    ]


_SIGNATURES = {
    "bpf_object__open_mem": (c_void_p, [c_void_p, c_size_t, ctypes.POINTER(OpenOpts)]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__find_map_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_object__find_program_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_object__next_program": (c_void_p, [c_void_p, c_void_p]),
    "bpf_program__name": (c_char_p, [c_void_p]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, ctypes.c_uint32]),
    "bpf_map__value_size": (ctypes.c_uint32, [c_void_p]),
    "bpf_map__initial_value": (c_void_p, [c_void_p, ctypes.POINTER(c_size_t)]),
    "bpf_program__attach": (c_void_p, [c_void_p]),
    "bpf_program__set_autoload": (c_int, [c_void_p, ctypes.c_bool]),
    "bpf_link__destroy": (c_int, [c_void_p]),
    "ring_buffer__new": (c_void_p, [c_int, SAMPLE_FN, c_void_p, c_void_p]),
    "ring_buffer__poll": (c_int, [c_void_p, c_int]),
    "ring_buffer__consume": (c_int, [c_void_p]),
    "ring_buffer__free": (None, [c_void_p]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "libbpf_num_possible_cpus": (c_int, []),
    "libbpf_set_print": (c_void_p, [c_void_p]),
}

_lib = None


def load_library(name="libbpf.so.1"):
    """Load libbpf once; a missing library is a user-fixable precondition."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise BindtraceError(
                "libbpf.so.1 not found (%s): install it (Debian/Ubuntu: apt-get install libbpf1; "
                "RHEL/Fedora: dnf install libbpf) or use backend bcc" % exc)
        for fname, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, fname)
            fn.restype = restype
            fn.argtypes = argtypes
        if not os.environ.get("BINDTRACE_LIBBPF_DEBUG"):
            _capture_messages(lib)  # libbpf would print to our stderr; we report errors ourselves
        _lib = lib
    return _lib


# int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *fmt, va_list ap): va_list
# arrives as one pointer-sized value on x86_64 (an array) and arm64 (a 32-byte struct passed by
# reference), and vsnprintf takes it the same way.
PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
LIBBPF_WARN = 0
_messages = []
_printer = None


def _capture_messages(lib):
    """Keep libbpf's warnings (e.g. 'failed to resolve CO-RE relocation ...') so a refused
    load can name its cause; if vsnprintf is unavailable, silence libbpf instead."""
    global _printer
    try:
        libc = ctypes.CDLL(None)
        vsnprintf = libc.vsnprintf
        vsnprintf.restype = c_int
        vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
    except (OSError, AttributeError):
        lib.libbpf_set_print(None)
        return
    buf = ctypes.create_string_buffer(512)

    def on_print(level, fmt, args):
        if level == LIBBPF_WARN:
            vsnprintf(buf, len(buf), fmt, args)
            _messages.append(buf.value.decode("utf-8", "replace").strip())
            del _messages[:-20]
        return 0

    _printer = PRINT_FN(on_print)  # keep a reference: libbpf calls it later
    lib.libbpf_set_print(ctypes.cast(_printer, c_void_p))


def take_messages():
    """libbpf's warnings since the last call (at most the last 20)."""
    out = _messages[:]
    del _messages[:]
    return out


def errno_text(err):
    err = abs(err)
    if err == 524:  # the kernel's internal ENOTSUPP, unknown to libc
        return "operation not supported by this kernel (ENOTSUPP)"
    return "%s (%s)" % (os.strerror(err), __import__("errno").errorcode.get(err, err))


def last_errno():
    return ctypes.get_errno()
