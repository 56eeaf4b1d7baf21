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
            lib.libbpf_set_print(None)  # libbpf would print to our stderr; we report errors ourselves
        _lib = lib
    return _lib


def errno_text(err):
    err = abs(err)
    return "%s (%s)" % (os.strerror(err), __import__("errno").errorcode.get(err, err))


def last_errno():
    return ctypes.get_errno()
