"""The fleet window of the report (bindreport/window.py): exact values from
host windows, including partial overlaps and a host that traced other seconds."""
from bindreport.window import fleet_window, overlap_line, rfc3339_ns, window_line


def host(name, start, end):
    return {"name": name, "facts": {"window": {"start": start, "end": end, "duration": 1.0}}}


T = "2026-12-01T14:00:%sZ"


def test_rfc3339_ns_keeps_nanoseconds():
    assert rfc3339_ns("1970-01-01T00:00:01.000000001Z") == 1000000001
    assert rfc3339_ns("1970-01-01T00:00:01.5Z") == 1500000000
    assert rfc3339_ns("1970-01-01T00:00:02Z") == 2000000000
    for bad in (None, 5, "", "1970-01-01 00:00:01Z", "1970-01-01T00:00:01.5", "2026-13-01T00:00:00Z"):
        assert rfc3339_ns(bad) is None


def test_simultaneous_windows_spread_and_common_seconds():
    hosts = [host("a", T % "00.000000000", T % "05.000000000"),
             host("b", T % "00.250000000", T % "05.300000000"),
             host("c", T % "00.100000001", T % "05.100000000")]
    assert fleet_window(hosts) == {
        "start": T % "00.000000000", "end": T % "05.300000000", "start_spread": 0.25,
        "common": {"start": T % "00.250000000", "end": T % "05.000000000", "seconds": 4.75},
        "hosts": 3, "not_overlapping": []}


def test_a_host_that_traced_other_seconds_is_named():
    hosts = [host("a", T % "00", T % "05"), host("b", T % "01", T % "06"),
             host("late", T % "07", T % "12"), host("failed", None, None),
             {"name": "unreachable", "facts": None}]
    w = fleet_window(hosts)
    assert (w["start"], w["end"], w["start_spread"], w["common"], w["hosts"], w["not_overlapping"]) == (
        T % "00", T % "12", 7.0, None, 3, ["late"])
    assert window_line(w) == ("fleet window: %s .. %s, start spread 7.000 s over 3 hosts" % (T % "00", T % "12"))
    assert overlap_line(w, lambda n: n.upper()) == (
        "window did not overlap the fleet's on 1 host: LATE (launched late: raise "
        "bindtrace_launch_host_seconds, or forks)")


def test_chain_of_partial_overlaps_flags_those_outside_the_busiest_seconds():
    # a and b overlap, b and c overlap, a and c do not: the busiest stretch is
    # 2 hosts deep; the longest such stretch is a+b's [03, 05)
    hosts = [host("a", T % "00", T % "05"), host("b", T % "03", T % "08"), host("c", T % "07", T % "09")]
    assert fleet_window(hosts)["not_overlapping"] == ["c"]
    # touching windows do not overlap
    hosts = [host("a", T % "00", T % "05"), host("b", T % "00", T % "05"), host("c", T % "05", T % "10")]
    w = fleet_window(hosts)
    assert (w["not_overlapping"], w["common"]) == (["c"], None)


def test_no_windows():
    assert fleet_window([{"name": "x", "facts": None}]) is None
    assert window_line(None) == "fleet window: no host traced"
    assert overlap_line(None) is None
