"""Option validation: every bad value gets one message naming it and the fix."""
import pytest

from bindtrace import BindtraceError
from bindtrace.filters import make_config, parse_duration, parse_ports


def test_ports_lists_and_ranges():
    assert parse_ports("4242,4343,8000-8100") == [(4242, 4242), (4343, 4343), (8000, 8100)]
    assert parse_ports([80, "443", "8000-8001"]) == [(80, 80), (443, 443), (8000, 8001)]
    assert parse_ports(None) == [] and parse_ports("") == []


@pytest.mark.parametrize("value,msg", [
    ("0", "invalid ports entry '0'"), ("70000", "invalid ports entry '70000'"),
    ("abc", "invalid ports entry 'abc'"), ("10-5", "invalid ports range '10-5'"),
])
def test_bad_ports(value, msg):
    with pytest.raises(BindtraceError) as err:
        parse_ports(value)
    assert str(err.value).startswith(msg)


@pytest.mark.parametrize("value", [0, -1, 99999, "x", None, True, float("nan")])
def test_bad_duration(value):
    with pytest.raises(BindtraceError) as err:
        parse_duration(value)
    assert str(err.value).startswith("invalid duration")
    assert "at most 3600" in str(err.value)


@pytest.mark.parametrize("kw,msg", [
    (dict(pid="x"), "invalid pid 'x'"), (dict(mode="full"), "invalid mode 'full'"),
    (dict(backend="ebpf"), "invalid backend 'ebpf'"), (dict(uid="-1"), "invalid uid '-1'"),
    (dict(netns="nowhere"), "invalid netns 'nowhere'"), (dict(scope="pods"), "invalid scope"),
    (dict(ignore_errors="maybe"), "invalid ignore_errors 'maybe'"),
    (dict(max_events=-5), "invalid max_events -5"),
])
def test_bad_options(kw, msg):
    with pytest.raises(BindtraceError) as err:
        make_config(**kw)
    assert str(err.value).startswith(msg)


def test_caps_take_unlimited_explicitly():
    from bindtrace.filters import parse_limit
    assert make_config(max_events="unlimited").max_events is None
    assert make_config(max_events=0).max_events is None
    assert make_config(max_events=10).max_events == 10
    assert parse_limit("Unlimited", "max_records", "records") is None
    assert parse_limit("500", "max_records", "records") == 500
    with pytest.raises(BindtraceError) as err:
        parse_limit(True, "max_records", "records")
    assert str(err.value) == ("invalid max_records True: expected a positive number of records, "
                              "or unlimited")


def test_defaults_follow_ig():
    cfg = make_config()
    assert (cfg.ignore_errors, cfg.pid, cfg.ports, cfg.netns) == (True, None, [], "all")
    assert make_config(pid=0).pid is None  # ig: --pid 0 means every process
