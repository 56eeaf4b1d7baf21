"""The collection as a new user gets it: `ansible-galaxy collection build`,
the tarball installed into an empty collections path, and the installed
playbook run from a directory outside the repository (no repo ansible.cfg,
the bind_report callback enabled by environment) with the controller under
test (`make test-matrix` runs this once per supported ansible-core)."""
import json
import os
import re
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET

import pytest

from controller import VENV_BIN, core_version
from report_run import ROOT, read
from test_report_e2e import check_report, extra_vars, workload, workloads  # noqa: F401 (fixtures)
from helpers import report_json  # noqa: E402

COLLECTION = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace")


def clean_env(**extra):
    """No trace of the checkout: no ANSIBLE_* from outside, no repo ansible.cfg."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "BIND_REPORT_")) and k not in ("PYTHONPATH",)}
    env.update(PATH=VENV_BIN + os.pathsep + env.get("PATH", ""), ANSIBLE_NOCOLOR="1",
               HOME=env.get("HOME", "/root"))
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", COLLECTION,
                           "--output-path", str(out)], cwd=str(out), env=clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = [str(p) for p in out.iterdir()]
    assert os.path.basename(tarball) == "fleetaudit-bindtrace-0.1.0.tar.gz"
    return tarball


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """-> (collections path, a work directory outside the repository)."""
    base = tmp_path_factory.mktemp("user")
    cpath = base / "collections"
    cpath.mkdir()
    assert not os.path.commonpath([str(base), ROOT]) == ROOT
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", built,
                           "-p", str(cpath)], cwd=str(base), env=clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    work = base / "work"
    work.mkdir()
    (work / "inventory.yml").write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    return str(cpath), str(work)


def test_tarball_carries_license_source_playbook_and_urls(built):
    with tarfile.open(built) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    for name in ("LICENSE", "README.md", "meta/runtime.yml", "playbooks/trace_bind.yml",
                 "roles/bcc/meta/argument_specs.yml", "bpf/bind.bpf.c", "bpf/bind.h", "bpf/core_types.h",
                 "bpf/GPL-2.0.txt", "changelogs/changelog.yaml",
                 "plugins/module_utils/bindtrace/bpf_object.py", "plugins/callback/bind_report.py"):
        assert name in names, name
    # the source shipped is the one copy the embedded objects are built from
    # (bpf/Makefile compiles the collection's bpf/; `make bpf-check` rebuilds and compares)
    for name in ("bind.bpf.c", "bind.h", "core_types.h"):
        with open(os.path.join(COLLECTION, "bpf", name)) as f, tarfile.open(built) as tar:
            assert tar.extractfile("bpf/" + name).read().decode() == f.read()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/output")]
    assert manifest["license"] == ["GPL-3.0-or-later", "GPL-2.0-only"]
    for key in ("repository", "documentation", "issues", "homepage"):
        assert manifest[key].startswith("https://"), key


def test_installed_playbook_runs_outside_the_repository_with_the_callback(installed, workload):
    cpath, work = installed
    pid, ports = workload
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=cpath,
                    ANSIBLE_CALLBACKS_ENABLED="fleetaudit.bindtrace.bind_report")
    # the collection Ansible finds is the installed one, and only it
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "list",
                           "fleetaudit.bindtrace", "--format", "json"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads(proc.stdout)
    assert list(found) == [os.path.join(cpath, "ansible_collections")], found
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "fleetaudit.bindtrace.trace_bind",
                           "-i", "inventory.yml", "-e", json.dumps(extra_vars(pid, ports))],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BIND REPORT SUMMARY" in proc.stdout
    # the callback's default output directory, under the user's working directory
    outdir = os.path.join(work, "reports")
    report = report_json.parse(read(os.path.join(outdir, "report.json")))
    check_report(report, report["hosts"][0]["facts"], pid, ports)
    suite = ET.parse(os.path.join(outdir, "junit.xml")).getroot().find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == ["localhost"]


def test_installed_docs(installed):
    cpath, work = installed
    env = clean_env(ANSIBLE_COLLECTIONS_PATH=cpath)
    for args, wanted in ((["-t", "role", "fleetaudit.bindtrace.bcc"],
                          ["ENTRY POINT: main", "bindtrace_install_bcc", "bindtrace_tracefs_path"]),
                         (["fleetaudit.bindtrace.trace_bind"], ["fail_on_unexpected", "bind_trace"]),
                         (["-t", "callback", "fleetaudit.bindtrace.bind_report"], ["BIND_REPORT_DIR"])):
        proc = subprocess.run([os.path.join(VENV_BIN, "ansible-doc")] + args, cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        text = re.sub(r"\x1b\[[0-9;]*m|\*", "", proc.stdout)   # bold: ANSI (<= 2.20) or *x* (2.21)
        for w in wanted:
            assert w in text, (core_version(), w, text[:2000])


@pytest.mark.skipif(not os.path.exists(os.path.join(VENV_BIN, "antsibull-changelog")),
                    reason="antsibull-changelog is installed in the matrix's newest row only")
def test_changelog_lints_clean_and_changelog_md_is_generated_from_it(tmp_path):
    tool = os.path.join(VENV_BIN, "antsibull-changelog")
    env = clean_env()
    for args in (["lint"], ["lint-changelog-yaml", "--strict", "changelogs/changelog.yaml"]):
        proc = subprocess.run([tool] + args, cwd=COLLECTION, env=env, capture_output=True, text=True,
                              timeout=120)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), args
    # CHANGELOG.md is what changelogs/ generates (regenerated in a copy)
    copy = tmp_path / "ansible_collections" / "fleetaudit" / "bindtrace"
    shutil.copytree(COLLECTION, str(copy), ignore=shutil.ignore_patterns("__pycache__", ".plugin-cache.yaml"))
    proc = subprocess.run([tool, "generate"], cwd=str(copy), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(COLLECTION, "CHANGELOG.md")) as f:
        assert (copy / "CHANGELOG.md").read_text() == f.read()
