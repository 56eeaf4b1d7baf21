"""What both backends (core and bcc) put into and read from the kernel's maps,
whatever library they reach them through: the ports filter bitmap and the
per-CPU stats counters (slots numbered in bpf/bind.h)."""
from .bind_h import STAT_INFLIGHT_FULL, STAT_LISTENS_FULL, STAT_LOST, STAT_SEEN, STAT_SUMMARY_FULL

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
