"""The summary table's size, from measurements (issue 19): kernel memory of the
summary hash against its entries and against the distinct keys in use, and
the distinct keys a busy host's client binds make.

- memory: a hash map with bind.h's key and value sizes is created through
  libbpf (bpf_map_create) and the kernel's own accounting read back (memlock
  in /proc/self/fdinfo): preallocated (what bind.bpf.c uses) for several
  max_entries, and BPF_F_NO_PREALLOC after inserting K distinct keys.
- keys: 30 processes x 2,000 UDP binds to 127.0.0.1:0 (tests/kernel/
  client_flood.py) in a network namespace of their own, traced in summary
  mode: the records the table holds for 60,000 binds.

    .venv/bin/python tests/bench/bench_table.py"""
import ctypes
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from bench_common import table

from bindtrace import libbpf
from bindtrace.filters import make_config
from bindtrace.record import KEY_FMT, STATS_FMT
from bindtrace.trace import run_window

HERE = os.path.dirname(os.path.abspath(__file__))
FLOOD = os.path.join(os.path.dirname(HERE), "kernel", "client_flood.py")
BPF_MAP_TYPE_HASH, BPF_F_NO_PREALLOC, BPF_ANY = 1, 1, 0


class CreateOpts(ctypes.Structure):   # struct bpf_map_create_opts, its stable head
    _fields_ = [("sz", ctypes.c_size_t), ("btf_fd", ctypes.c_uint32),
                ("btf_key_type_id", ctypes.c_uint32), ("btf_value_type_id", ctypes.c_uint32),
                ("btf_vmlinux_value_type_id", ctypes.c_uint32), ("inner_map_fd", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("map_extra", ctypes.c_uint64),
                ("numa_node", ctypes.c_uint32), ("map_ifindex", ctypes.c_uint32)]


def memlock(fd):
    with open("/proc/self/fdinfo/%d" % fd) as f:
        for line in f:
            if line.startswith("memlock:"):
                return int(line.split()[1])
    return None


def table_memory(entries, flags=0, keys=0):
    """Bytes the kernel charges for a summary-shaped hash of `entries`, after
    inserting `keys` distinct keys."""
    lib = libbpf.load_library()
    lib.bpf_map_create.restype = ctypes.c_int
    lib.bpf_map_create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32,
                                   ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p]
    opts = CreateOpts(sz=ctypes.sizeof(CreateOpts), map_flags=flags)
    fd = lib.bpf_map_create(BPF_MAP_TYPE_HASH, b"bt_table", KEY_FMT.size, STATS_FMT.size,
                            entries, ctypes.byref(opts))
    if fd < 0:
        raise RuntimeError("bpf_map_create failed: %s" % libbpf.errno_text(fd))
    try:
        key = ctypes.create_string_buffer(KEY_FMT.size)
        val = ctypes.create_string_buffer(STATS_FMT.size)
        for i in range(keys):
            ctypes.memmove(key, i.to_bytes(8, "little"), 8)
            if lib.bpf_map_update_elem(fd, key, val, BPF_ANY):
                raise RuntimeError("insert %d failed" % i)
        return memlock(fd)
    finally:
        os.close(fd)


def flood_keys(procs=30, per_proc=2000, window=8):
    """Records in the summary table after procs x per_proc client binds."""
    ns = "btbench-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        cfg = make_config(mode="summary", netns=os.stat("/run/netns/" + ns).st_ino)
        out = {}
        tracer = threading.Thread(target=lambda: out.update(w=run_window(cfg, window)))
        tracer.start()
        time.sleep(2)          # the window is open (load + attach take ~0.3 s)
        flood = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", FLOOD,
                                  str(procs), str(per_proc), "127.0.0.1", "btbench"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        flood.stdout.readline()
        flood.stdin.write("go\n")
        flood.stdin.flush()
        truth = json.loads(flood.stdout.readline())
        flood.stdin.close()
        flood.wait()
        tracer.join()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    binds, stats, _ = out["w"]
    return {"offered": sum(b[0] for b in truth["binds"].values()), "records": len(binds),
            "counted": sum(b["count"] for b in binds), "summary_full": stats["summary_full"]}


def measure():
    mem = {"prealloc": {n: table_memory(n) for n in (16384, 65536, 262144)},
           "no_prealloc": {k: table_memory(262144, BPF_F_NO_PREALLOC, k)
                           for k in (0, 1000, 16384, 65536)}}
    return {"memory": mem, "flood": flood_keys()}


def report(m):
    rows = [("preallocated, %d entries" % n, "%.1f MB" % (b / 2.0 ** 20), "%d B" % (b // n))
            for n, b in sorted(m["memory"]["prealloc"].items())]
    rows += [("no prealloc (262144 max), %d keys in use" % k, "%.1f MB" % (b / 2.0 ** 20),
              "%d B" % (b // k) if k else "-")
             for k, b in sorted(m["memory"]["no_prealloc"].items())]
    f = m["flood"]
    rows.append(("30 x 2000 client binds: records", "%d" % f["records"],
                 "counted %d/%d, summary_full %d" % (f["counted"], f["offered"],
                                                     f["summary_full"])))
    return table(("TABLE", "KERNEL MEMORY / RECORDS", "PER ENTRY / CHECK"), rows)


if __name__ == "__main__":
    sys.stdout.write(report(measure()) + "\n")
