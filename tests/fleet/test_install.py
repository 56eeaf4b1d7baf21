"""The project as a user installs it: an sdist built from the checkout, then a
plain (non-editable) `pip install` of it into a fresh venv, run from outside
the checkout. An editable install hides package data that is missing (the
report templates were once): this catches it."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import report_facts as rf  # noqa: E402

TEMPLATES = ["junit.xml.j2", "report.css", "report.html.j2", "report.js", "report.md.j2"]
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "reports", "__pycache__",
                              "*.egg-info", ".pytest_cache", "*.pyc")


def run(cmd, **kw):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=900, **kw)
    assert res.returncode == 0, "%s\n%s\n%s" % (cmd, res.stdout, res.stderr)
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("install")
    src = str(work / "src")
    shutil.copytree(ROOT, src, ignore=SKIP)
    venv = str(work / "venv")
    run([sys.executable, "-m", "venv", venv])
    py = os.path.join(venv, "bin", "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # the sdist, built by setuptools' own PEP 517 backend (what pip and `build` call)
    dist = str(work / "dist")
    run([py, "-m", "pip", "install", "-q", "setuptools>=61"], env=env)
    run([py, "-c", "import sys; from setuptools import build_meta as b; "
                   "print(b.build_sdist(sys.argv[1]))", dist], cwd=src, env=env)
    sdist = os.path.join(dist, os.listdir(dist)[0])
    run([py, "-m", "pip", "install", "-q", sdist], cwd=str(work), env=env)
    return {"venv": venv, "sdist": sdist, "work": str(work), "env": env, "py": py}


def test_sdist_carries_the_templates(installed):
    with tarfile.open(installed["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    base = "collection/ansible_collections/fleetaudit/bindtrace/plugins/plugin_utils/bindreport/"
    assert {base + "templates/" + t for t in TEMPLATES} <= names


def test_installed_package_is_not_the_checkout_and_has_its_templates(installed):
    res = run([installed["py"], "-c", "import bindreport, bindtrace, os; "
               "print(bindreport.__file__); print(bindtrace.__file__); "
               "print(sorted(os.listdir(os.path.join(os.path.dirname(bindreport.__file__), "
               "'templates'))))"], cwd=installed["work"], env=installed["env"])
    report_file, trace_file, templates = res.stdout.splitlines()
    site = os.path.join(installed["venv"], "lib")
    assert report_file.startswith(site) and trace_file.startswith(site)
    assert templates == repr(TEMPLATES)


def test_bind_report_renders_every_file_from_a_plain_install(installed):
    facts = rf.facts("web1", binds=[rf.bind(4242, "nc", 4242, verdict="unexpected")],
                     listeners=[rf.listener(4242, "nc", 4242, verdict="unexpected")])
    saved = os.path.join(installed["work"], "run.json")
    with open(saved, "w") as f:
        json.dump({"web1": facts}, f)
    out = os.path.join(installed["work"], "reports")
    res = run([os.path.join(installed["venv"], "bin", "bind-report"), saved, "-o", out],
              cwd=installed["work"], env=installed["env"])
    assert sorted(os.listdir(out)) == ["junit.xml", "report.html", "report.json", "report.md"]
    assert "bind-report: wrote " in res.stdout
    with open(os.path.join(out, "report.md")) as f:
        md = f.read()
    assert "web1" in md and "4242" in md
    with open(os.path.join(out, "report.json")) as f:
        assert [h["name"] for h in json.load(f)["hosts"]] == ["web1"]


def test_trace_bind_help_from_a_plain_install(installed):
    res = run([os.path.join(installed["venv"], "bin", "trace-bind"), "--help"],
              cwd=installed["work"], env=installed["env"])
    assert res.stdout.startswith("usage: trace-bind")
    assert "--ports" in res.stdout


def test_every_subpackage_and_module_of_the_checkout_is_installed(installed):
    """A subpackage missing from pyproject's `packages` installs nothing and
    fails only where it is imported: every .py of the two source trees must be there."""
    plugins = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace",
                           "plugins")
    res = run([installed["py"], "-c", "import bindreport, bindtrace, os; "
               "print(os.path.dirname(os.path.dirname(bindtrace.__file__)))"],
              cwd=installed["work"], env=installed["env"])
    site = res.stdout.strip()
    for top, package in (("module_utils", "bindtrace"), ("plugin_utils", "bindreport")):
        base = os.path.join(plugins, top)
        for dirpath, dirs, files in os.walk(os.path.join(base, package)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            rel = os.path.relpath(dirpath, base)
            for name in files:
                if name.endswith(".py"):
                    assert os.path.isfile(os.path.join(site, rel, name)), os.path.join(rel, name)
