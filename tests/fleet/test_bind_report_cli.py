"""bind-report (the fleet report outside Ansible) against the bind_report callback.

One data set, rendered both ways:
  - through a real ansible-playbook run with the callback (the trace task is
    the canned stand-in of test_report_callback.py, so each host's result is
    exactly the data set's);
  - through bind-report over the saved Salt JSON of the same data: the real
    output of `salt-call --local --module-dirs=modules bindtrace.trace
    --out=json` for this machine, plus a `salt --out=json` file for the rest of
    the fleet (bind_trace dicts, and the texts Salt returns for a failed or
    unsupported minion).
The four files must be the same but for when and by what they were generated.
"""
import json
import os

import pytest

from report_run import read, report_facts as rf, run_standin
from salt_run import bind_report, ensure_salt, local_return, minion_config, traced_by_salt
from helpers import report_json  # noqa: E402

FILES = ["junit.xml", "report.html", "report.json", "report.md"]
CALLBACK = "fleetaudit.bindtrace.bind_report"


def normalized(outdir):
    """{file: text} with the generation time and the generator's name masked."""
    report = report_json.parse(read(os.path.join(outdir, "report.json")))
    out = {}
    for name in sorted(os.listdir(outdir)):
        text = read(os.path.join(outdir, name))
        text = text.replace(report["generated"], "<GENERATED>")
        # as written raw and as escaped in Markdown
        for generator in (report["generator"], report["generator"].replace("_", "\\_")):
            text = text.replace(generator, "<GENERATOR>")
        out[name] = text
    return out


def salt_fleet_file(path, fleet):
    """The rest of the fleet as `salt '*' bindtrace.trace --out=json` prints it
    without --static: one JSON document per minion, in the order they return."""
    with open(path, "w") as f:
        for name, r in fleet.items():
            if r["status"] == "ok":
                value = r["facts"]
            elif r["status"] == "unsupported":    # __virtual__ said no: the module never loaded
                value = "'bindtrace' __virtual__ returned False: " + r["msg"]
            else:                                 # the module raised CommandExecutionError
                value = "ERROR: " + r["msg"]
            f.write(json.dumps({name: value}, indent=4) + "\n")


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("bind-report"))
    ensure_salt()
    cfg = minion_config(os.path.join(work, "salt"))
    out, workload, p1, p2 = traced_by_salt(cfg, "duration=2", "mode=events", "ports={p1},{p2}")
    salt_call_out = os.path.join(work, "salt-call.json")
    with open(salt_call_out, "w") as f:
        f.write(out)
    # bindtrace.trace's result/comment are Salt's words beside the facts: bind-report drops them
    here = {k: v for k, v in local_return(out).items() if k not in ("result", "comment")}
    # the data set: this machine's real trace, and the canned fleet (no
    # unreachable host: "why" is each front-end's own transport error text)
    fleet = {k: v for k, v in rf.fleet().items() if v["status"] != "unreachable"}
    salt_fleet = os.path.join(work, "salt-fleet.json")
    salt_fleet_file(salt_fleet, fleet)
    fleet[here["host"]["hostname"]] = {"status": "ok", "facts": here, "msg": None}
    ansible_dir = os.path.join(work, "ansible")
    os.makedirs(ansible_dir)
    playbook = run_standin(ansible_dir, fleet)
    assert playbook.returncode == 2, playbook.stdout + playbook.stderr   # failed hosts
    cli_dir = os.path.join(work, "cli")
    cli = bind_report(salt_call_out, salt_fleet, "-o", cli_dir)
    assert cli.returncode == 0, cli.stderr
    return {"work": work, "fleet": fleet, "here": here, "ports": (p1, p2), "pid": workload["pid"],
            "playbook": playbook, "cli": cli, "ansible_out": os.path.join(ansible_dir, "reports"),
            "cli_out": cli_dir, "salt_call_out": salt_call_out, "salt_fleet": salt_fleet}


def test_same_four_files_as_the_callback(both_ways):
    assert sorted(os.listdir(both_ways["cli_out"])) == FILES
    assert sorted(os.listdir(both_ways["ansible_out"])) == FILES
    from_cli, from_callback = normalized(both_ways["cli_out"]), normalized(both_ways["ansible_out"])
    for name in FILES:
        assert from_cli[name] == from_callback[name], name
    generators = {report_json.parse(read(os.path.join(both_ways[d], "report.json")))["generator"]
                  for d in ("cli_out", "ansible_out")}
    assert generators == {"bind-report", CALLBACK}


def test_the_salt_call_host_holds_exactly_the_workloads_binds(both_ways):
    report = report_json.parse(read(os.path.join(both_ways["cli_out"], "report.json")))
    hosts = {h["name"]: h for h in report["hosts"]}
    here = hosts[both_ways["here"]["host"]["hostname"]]   # salt-call's "local" takes its hostname
    p1, p2 = both_ways["ports"]
    assert here["status"] == "ok" and here["facts"] == both_ways["here"]
    assert [(b["proto"], b["addr"], b["port"], b["error"]) for b in here["facts"]["binds"]
            if b["pid"] == both_ways["pid"]] == [("TCP", "127.0.0.1", p1, None), ("UDP", "::1", p2, None)]
    assert {h: (e["status"], e["reason"]) for h, e in hosts.items() if e["status"] != "ok"} == {
        "broken": ("failed", rf.fleet()["broken"]["msg"]),
        "legacy": ("unsupported", rf.fleet()["legacy"]["msg"])}
    s = report["summary"]
    assert (s["hosts"], s["traced"], s["failed"], s["unsupported"], s["unreachable"]) == (7, 5, 1, 1, 0)


def test_same_terminal_table_as_the_callback(both_ways):
    printed = both_ways["cli"].stdout
    table = printed[:printed.index("bind-report: wrote ")]
    assert table.startswith("HOST  VERDICT") and "BIND REPORT SUMMARY" in table
    assert table in both_ways["playbook"].stdout
    assert printed.endswith("bind-report: wrote %s\n" % ", ".join(
        os.path.join(both_ways["cli_out"], n) for n in ("report.json", "report.md", "report.html",
                                                         "junit.xml")))


def test_rerendering_a_report_json_gives_the_same_files(both_ways, tmp_path):
    """A scheduled job re-renders an earlier report without tracing again."""
    again = str(tmp_path / "again")
    res = bind_report(os.path.join(both_ways["ansible_out"], "report.json"), "-o", again,
                      "--no-terminal")
    assert res.returncode == 0, res.stderr
    assert "HOST  VERDICT" not in res.stdout
    assert normalized(again) == normalized(both_ways["ansible_out"])


def test_drift_against_a_baseline_from_the_callback(both_ways, tmp_path):
    """Baseline: the callback's report. Now: db1 has stopped nc on 4444 and
    started redis on 6379; everything else as before."""
    now = rf.fleet()
    db = now["db1"]["facts"]
    db["listeners"] = [l for l in db["listeners"] if l["port"] != 4444]
    db["listeners"].append(rf.listener(700, "redis-server", 6379, addr="127.0.0.1"))
    salt_now = str(tmp_path / "now.json")
    with open(salt_now, "w") as f:
        json.dump({"db1": db, "web1": now["web1"]["facts"]}, f)
    outdir = str(tmp_path / "drift")
    baseline = os.path.join(both_ways["ansible_out"], "report.json")
    res = bind_report(salt_now, "-o", outdir, "-f", "json,md", "--baseline", baseline)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(outdir)) == ["report.json", "report.md"]
    report = report_json.parse(read(os.path.join(outdir, "report.json")))
    assert report["baseline"]["path"] == baseline
    drift = {h["name"]: h["drift"] for h in report["hosts"]}
    key = lambda l: (l["proto"], l["addr"], l["port"], l["comm"])  # noqa: E731
    assert [key(l) for l in drift["db1"]["new"]] == [("TCP", "127.0.0.1", 6379, "redis-server")]
    assert [key(l) for l in drift["db1"]["gone"]] == [("TCP", "0.0.0.0", 4444, "nc")]
    assert (drift["web1"]["new"], drift["web1"]["gone"]) == ([], [])
    assert report["summary"]["drift"] == {
        "new": 1, "gone": 1,
        "hosts_missing": sorted(set(both_ways["fleet"]) - {"db1", "web1"})}
    md = read(os.path.join(outdir, "report.md"))
    assert "| db1 | new since baseline | TCP | 127.0.0.1 | 6379 | redis-server |" in md
    assert "| db1 | gone since baseline | TCP | 0.0.0.0 | 4444 | nc |" in md
    assert "  db1 new since baseline: TCP 127.0.0.1:6379 redis-server" in res.stdout


def test_unusable_inputs_fail_with_a_clear_message(both_ways, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    res = bind_report(str(empty), "-o", str(tmp_path / "x"))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == ("bind-report: %s holds no JSON: a failed salt-call prints its error on "
                          "stderr, not as JSON; save the output of a run that returned\n" % empty)
    res = bind_report(both_ways["salt_fleet"], both_ways["salt_fleet"], "-o", str(tmp_path / "y"))
    assert res.returncode == 2
    assert "host 'web1' is in both %s and %s" % ((both_ways["salt_fleet"],) * 2) in res.stderr
    res = bind_report(both_ways["salt_call_out"], "-f", "pdf", "-o", str(tmp_path / "z"))
    assert (res.returncode, res.stderr) == (2, "bind-report: unknown report format 'pdf': use any of "
                                               "json, md, html, junit, prom (comma-separated)\n")
    assert not os.path.exists(str(tmp_path / "x")) and not os.path.exists(str(tmp_path / "z"))
