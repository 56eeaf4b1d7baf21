"""maps.merge_runs: each CPU's run of repeated binds (bind.h struct bind_run,
bind.bpf.c summary_add) is added to its key's summary record when the host
reads the summary, so the counts stay exact."""
from bindtrace.maps import merge_runs
from bindtrace.record import KEY_FMT, STATS_FMT, STATS_MEMBERS


def key(n):
    return bytes([n]) * KEY_FMT.size


def stats(**kw):
    values = dict.fromkeys(STATS_MEMBERS, 0)
    values.update(kw)
    return STATS_FMT.pack(*[values[m] for m in STATS_MEMBERS])


def unpack(raw):
    return dict(zip(STATS_MEMBERS, STATS_FMT.unpack(raw)))


def run(n, **kw):
    return key(n) + stats(**kw) + b"\0" * 4   # a per-CPU value comes 8-aligned


def test_a_run_adds_its_count_last_stamp_and_ports():
    records = [(key(1), stats(count=3, first_ts=10, last_ts=20, port_min=40000, port_max=40010,
                              first_pid=7)),
               (key(2), stats(count=1, first_ts=11, last_ts=11, port_min=80, port_max=80))]
    out = merge_runs(records, [run(1, count=5, last_ts=30, port_min=39000, port_max=40005),
                               run(2, count=0, last_ts=99, port_min=1, port_max=1),
                               run(1, count=2, last_ts=25, port_min=40020, port_max=40020)])
    assert [k for k, _ in out] == [key(1), key(2)]
    one, two = unpack(out[0][1]), unpack(out[1][1])
    assert (one["count"], one["first_ts"], one["last_ts"], one["port_min"], one["port_max"],
            one["first_pid"]) == (10, 10, 30, 39000, 40020, 7)
    assert two == unpack(records[1][1])   # an empty run changes nothing


def test_a_run_whose_key_is_missing_still_counts():
    out = merge_runs([], [run(3, count=4, last_ts=50, port_min=53, port_max=53)])
    assert len(out) == 1 and out[0][0] == key(3)
    got = unpack(out[0][1])
    assert (got["count"], got["first_ts"], got["last_ts"]) == (4, 50, 50)
