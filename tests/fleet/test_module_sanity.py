"""`ansible-test sanity` on the whole collection (every file, every test this
ansible-core has) and `ansible-lint`, run from a proper
ansible_collections/<namespace>/<name> tree (a copy of the collection).

ansible-test builds one virtualenv per sanity test and bootstraps pip in it
with a script it downloads from a host outside the package registries. The
test gives it a stand-in at the cache path it checks first: ensurepip, then pip
from PyPI. The sanity requirements come from PyPI. The venvs stay in
HOME_DIR, so a second run installs nothing."""
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
from controller import IS_DEFAULT, VENV_BIN, core_version  # noqa: E402
COLLECTION = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace")
HOME_DIR = "/tmp/bindtrace-ansible-test-home"
GET_PIP_STANDIN = '''\
# stand-in for ansible-test's get-pip bootstrap script (its host is not reachable here)
import ensurepip, os, subprocess, sys
ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)   # ensurepip points it at /dev/null: keep pip.conf
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"] + args)
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("sanity")
    dest = base / "ansible_collections" / "fleetaudit" / "bindtrace"
    shutil.copytree(COLLECTION, str(dest),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    return str(dest)


def _pip_version():
    """The pip version the controller's ansible-test bootstraps (it names the cached script)."""
    path = subprocess.check_output(
        [os.path.join(VENV_BIN, "python"), "-c", "import ansible_test, os; print(os.path.join("
         "os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py'))"],
        universal_newlines=True).strip()
    with open(path) as f:
        return re.search(r"pip='([0-9.]+)'", f.read()).group(1)


def test_ansible_test_sanity(tree):
    cache = os.path.join(HOME_DIR, ".ansible", "test", "cache")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, "get_pip_%s.py" % _pip_version().replace(".", "_")), "w") as f:
        f.write(GET_PIP_STANDIN)
    env = dict(os.environ, HOME=HOME_DIR)
    # the controller's own Python: ansible-test runs every sanity test there (no containers)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-test"), "sanity", "--python", core_version()[1],
                           "--color", "no"],   # no targets: the whole collection
                          cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=1800)
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:]
    ran = re.findall(r'^Running sanity test "([a-z0-9-]+)"', out, re.M)
    # the checks that matter for a module, all of which ran (nothing skipped as unsupported)
    for name in ("validate-modules", "import", "compile", "pylint", "pep8", "yamllint",
                 "ansible-doc", "runtime-metadata", "shebang", "no-smart-quotes"):
        assert name in ran, out[-3000:]
    assert "ERROR:" not in out


@pytest.mark.skipif(not IS_DEFAULT, reason="ansible-lint runs once, with the default controller (.venv)")
def test_ansible_lint_collection_and_module_examples(tree, tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.dirname(os.path.dirname(
        os.path.dirname(tree))), NO_COLOR="1")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-lint"), "--offline", "--nocolor",
                           "--profile", "production"], cwd=tree, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"Passed: 0 failure\(s\), 0 warning\(s\)", proc.stdout), proc.stdout[-2000:]
    # the module's EXAMPLES, as the tasks of one play, lint clean too
    import yaml
    src = open(os.path.join(COLLECTION, "plugins", "modules", "trace_bind.py")).read()
    text = re.search(r'EXAMPLES = r"""(.*?)"""', src, re.S).group(1)
    assert len(yaml.safe_load(text)) == 8
    # the examples' own text (not a re-dump), indented as the tasks of one play
    tasks = "".join("    " + line if line.strip() else line
                    for line in text.lstrip("\n").splitlines(True))
    proj = tmp_path / "examples"
    proj.mkdir()
    (proj / "examples.yml").write_text("---\n- name: Module examples\n  hosts: all\n"
                                       "  gather_facts: false\n  tasks:\n" + tasks)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-lint"), "--offline", "--nocolor",
                           "--profile", "production", "examples.yml"], cwd=str(proj), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"Passed: 0 failure\(s\), 0 warning\(s\)", proc.stdout), proc.stdout[-2000:]
