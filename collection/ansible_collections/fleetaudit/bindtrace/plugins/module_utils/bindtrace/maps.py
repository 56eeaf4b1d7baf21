"""What both backends (core and bcc) put into and read from the kernel's maps,
whatever library they reach them through: the ports filter bitmap, the
per-CPU stats counters (slots numbered in bpf/bind.h), and the core program's
per-CPU runs of repeated binds, added to the summary when it is read."""
from .bind_h import STAT_INFLIGHT_FULL, STAT_LISTENS_FULL, STAT_LOST, STAT_SEEN, STAT_SUMMARY_FULL
from .record import KEY_FMT, STATS_FMT, STATS_MEMBERS

# stats slot -> the name the facts and trace-bind give its count
STATS = ((STAT_LOST, "lost"), (STAT_SUMMARY_FULL, "summary_full"),
         (STAT_INFLIGHT_FULL, "inflight_full"), (STAT_SEEN, "seen"),
         (STAT_LISTENS_FULL, "listens_full"))


def ports_bitmap(ranges):
    """{word index: 64-bit word} of the ports map: one bit per port kept."""
    words = {}
    for lo, hi in ranges:
        for port in range(lo, hi + 1):
            words[port >> 6] = words.get(port >> 6, 0) | (1 << (port & 63))
    return words


def read_stats(per_cpu_values):
    """{name: total over CPUs} from per_cpu_values(slot) -> that slot's values."""
    return {name: sum(per_cpu_values(slot)) for slot, name in STATS}


def merge_runs(records, runs):
    """records: [(raw bind_key, raw bind_stats)] read from the summary map;
    runs: each CPU's raw bind_run (bind.h). A run's binds beyond its first are
    not in the map yet (bind.bpf.c summary_add): add them to their key's record
    (count, last seen, port range). Returns the records, in the same order."""
    out = list(records)
    where = {item[0]: i for i, item in enumerate(out)}
    for raw in runs:
        key, run = raw[:KEY_FMT.size], dict(zip(STATS_MEMBERS, STATS_FMT.unpack(
            raw[KEY_FMT.size:KEY_FMT.size + STATS_FMT.size])))
        if not run["count"]:
            continue
        if key not in where:   # not in the map (cannot happen: a run starts once its key is)
            where[key] = len(out)
            run["first_ts"] = run["last_ts"]
            out.append((key, STATS_FMT.pack(*[run[m] for m in STATS_MEMBERS])))
            continue
        i = where[key]
        st = dict(zip(STATS_MEMBERS, STATS_FMT.unpack(out[i][1])))
        st["count"] += run["count"]
        st["last_ts"] = max(st["last_ts"], run["last_ts"])
        st["port_min"] = min(st["port_min"], run["port_min"])
        st["port_max"] = max(st["port_max"], run["port_max"])
        out[i] = (key, STATS_FMT.pack(*[st[m] for m in STATS_MEMBERS]))
    return out
