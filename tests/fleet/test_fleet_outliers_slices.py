"""Fleet outliers and job slices on the test fleet, with the real module and
callback: one of five hosts listens on an extra port and only it is flagged;
two slices run as separate playbook runs are merged by bind-report into one
fleet report and one history run. A canned-facts variant (the stand-in
module: known facts, so the runs are comparable byte for byte) proves the
merged report.json equals one run over all hosts, apart from run metadata."""
import json
import os
import re
import subprocess

import pytest

from conftest import ROOT, VENV_BIN, ansible_env
from report_run import STANDIN_PLAYBOOK, read, report_facts as rf, write_fleet
from helpers import report_json  # noqa: E402

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

EXTRA_PORT = 16379
WINDOW = 3
RUN_METADATA = re.compile(r'^  "(generated|generator)": .*\n', re.M)


def fleet_group_inventory(path, groups):
    """A second inventory source: group "fleet" holding the harness's groups."""
    with open(path, "w") as f:
        json.dump({"all": {"children": {"fleet": {"children": {g: {} for g in groups}}}}}, f)
    return path


def playbook(inventories, report_dir, limit=None, extra_vars=None, playbook=os.path.join(ROOT, "playbooks",
                                                                                         "trace_bind.yml"),
             cwd=ROOT, **env):
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-f", "5", playbook]
    for inv in inventories:
        cmd += ["-i", inv]
    if limit:
        cmd += ["--limit", limit]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(cmd, env=ansible_env(BIND_REPORT_DIR=report_dir, BIND_REPORT_TERMINAL="false",
                                               **env),
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def bind_report(*args):
    return subprocess.run([os.path.join(VENV_BIN, "bind-report")] + list(args), capture_output=True, text=True,
                          timeout=300)


def load(report_dir):
    return report_json.load(os.path.join(report_dir, "report.json"))


def test_one_of_five_is_the_outlier_and_slices_merge(fleet, binders, tmp_path):
    h3 = fleet.host("h3")
    binders(fleet, "h3", [(h3["addr"], EXTRA_PORT)])
    extra = fleet_group_inventory(str(tmp_path / "fleet-group.json"), fleet.data["groups"])
    inventories = [fleet.inventory_path, extra]
    traced = {"bindtrace_duration": WINDOW, "bindtrace_netns": "host"}

    whole = str(tmp_path / "whole")
    proc = playbook(inventories, whole, extra_vars=traced, BIND_REPORT_FORMATS="json,prom")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    report = load(whole)
    names = sorted(h["name"] for h in fleet.hosts)
    assert sorted(h["name"] for h in report["hosts"]) == names
    o = report["summary"]["outliers"]
    # "fleet" (5 hosts): 1 of 5 = 20% -> flagged; "web" (h1, h3, h5): 1 of 3 -> not; "db" has h3 not
    assert o["hosts"] == [h3["name"]] and o["flags"] == 1
    assert {g["group"]: g["outliers"] for g in o["groups"]} == {
        "fleet": [{"proto": "TCP", "port": EXTRA_PORT, "present": 1, "of": 5, "hosts": [h3["name"]],
                   "comms": ["python3"]}],
        "web": []}     # db has 2 traced hosts: too few to have an odd one out
    for h in report["hosts"]:
        assert h["outliers"] == ([{"group": "fleet", "proto": "TCP", "port": EXTRA_PORT, "present": 1, "of": 5}]
                                 if h["name"] == h3["name"] else [])
        assert set(h["groups"]) == {"fleet", fleet.host(h["name"].rsplit("-", 1)[-1])["group"]}
    prom = read(os.path.join(whole, "report.prom"))
    assert 'bindtrace_host_outlier_listeners{host="%s"} 1.0' % h3["name"] in prom
    assert 'bindtrace_port_hosts{port="22",proto="TCP"} 5.0' in prom
    assert 'bindtrace_port_hosts{port="%d",proto="TCP"} 1.0' % EXTRA_PORT in prom

    # two slices, two playbook runs; each alone cannot see the outlier
    first, second = names[:2], names[2:]
    slices = []
    for i, part in enumerate((first, second)):
        out = str(tmp_path / ("slice%d" % i))
        proc = playbook(inventories, out, limit=",".join(part), extra_vars=traced)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
        assert sorted(h["name"] for h in load(out)["hosts"]) == part
        slices.append(os.path.join(out, "report.json"))
    assert load(os.path.dirname(slices[1]))["summary"]["outliers"]["hosts"] == []   # 1 of 3 in "fleet"
    merged, history = str(tmp_path / "merged"), str(tmp_path / "history.db")
    res = bind_report(slices[0], slices[1], "-o", merged, "--history", history, "--no-terminal")
    assert res.returncode == 0, res.stderr
    m = load(merged)
    assert sorted(h["name"] for h in m["hosts"]) == names
    assert m["summary"]["outliers"]["hosts"] == [h3["name"]]
    assert m["summary"]["traced"] == 5
    assert m["summary"]["history"]["run_id"] == 1
    res = bind_report("history", "--history", history, "--port", str(EXTRA_PORT), "-o", "json")
    assert [(r["host"], r["port"], r["runs"]) for r in json.loads(res.stdout)] == [(h3["name"], EXTRA_PORT, 1)]
    res = bind_report("history", "--history", history, "--runs", "-o", "json")
    assert [(r["hosts"], r["traced"]) for r in json.loads(res.stdout)] == [(5, 5)]


def test_merged_slices_equal_one_run(tmp_path):
    """Canned facts (the stand-in module), so three playbook runs return the same
    facts: report.json merged from two slices == report.json of one run over
    all hosts, byte for byte apart from generated/generator."""
    facts = {}
    for i in range(1, 6):
        name = "web%d" % i
        listeners = [rf.listener(10 + i, "sshd", 22), rf.listener(20 + i, "nginx", 443, verdict="allowed")]
        if i == 3:
            listeners.append(rf.listener(33, "redis-server", 6379, verdict="unexpected"))
        facts[name] = {"status": "ok", "facts": rf.facts(name, listeners=listeners,
                                                           binds=[rf.bind(20 + i, "nginx", 443, count=2)]),
                       "msg": None}
    work = str(tmp_path)
    inventory, canned = write_fleet(work, facts)
    hosts = json.load(open(inventory))["all"]["hosts"]
    with open(inventory, "w") as f:   # the same hosts, in a group
        json.dump({"all": {"children": {"web": {"hosts": hosts}}}}, f)
    standin = ["-e", "canned_dir=" + canned]

    def run(out, limit=None):
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, STANDIN_PLAYBOOK] + standin
        if limit:
            cmd += ["--limit", limit]
        proc = subprocess.run(cmd, cwd=work, env=ansible_env(BIND_REPORT_DIR=out, BIND_REPORT_TERMINAL="false",
                                                             ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return os.path.join(out, "report.json")

    one = run(str(tmp_path / "one"))
    a = run(str(tmp_path / "a"), "web1,web2")
    b = run(str(tmp_path / "b"), "web3,web4,web5")
    merged = str(tmp_path / "merged")
    res = bind_report(a, b, "-o", merged, "--no-terminal", "-f", "json")
    assert res.returncode == 0, res.stderr
    one_text, merged_text = read(one), read(os.path.join(merged, "report.json"))
    assert RUN_METADATA.sub("", merged_text) == RUN_METADATA.sub("", one_text)
    assert json.loads(one_text)["summary"]["outliers"]["hosts"] == ["web3"]
    assert json.loads(read(b))["summary"]["outliers"]["hosts"] == []
    # a host in two slices is refused, naming both files
    res = bind_report(a, one, "-o", str(tmp_path / "dup"), "--no-terminal")
    assert res.returncode == 2 and "host 'web1' is in both %s and %s" % (a, one) in res.stderr
