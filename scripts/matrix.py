#!/usr/bin/env python3
"""`make test-matrix`: the Ansible tests (module, callback, playbook, the
installed collection, ansible-test sanity) once per controller the project
supports. Each row is a plain venv (.venv-matrix/<row>) with one ansible-core;
pytest and the test libraries stay in the project's .venv, the tests drive the
row's ansible-* commands (tests/controller.py reads BINDTRACE_CONTROLLER_VENV).

    python scripts/matrix.py [ROW ...]      # default: every row

Rows (why these: README "Supported Ansible and Python versions"):
  oldest   ansible-core 2.18 on Python 3.12: the floor meta/runtime.yml claims.
           Automation Hub certification accepts 2.16 and later; 2.16 ran the
           module, playbook and tarball tests here, but the sanity of 2.16 and
           2.17 wants an empty module_utils __init__.py (and 2.16 Python 2
           boilerplate in every host-library file), so the claim starts at 2.18
  default  the project's .venv (`make venv`: python3, ansible-core 2.19)
  newest   ansible-core 2.21 on Python 3.13 (2.20+ needs a 3.12+ controller)
"""
import glob
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATRIX_DIR = os.path.join(ROOT, ".venv-matrix")

# row -> (python X.Y, pip requirements); None = the project's .venv as `make venv` builds it
ROWS = {
    "oldest": ("3.12", ["ansible-core>=2.18,<2.19", "paramiko>=3", "ansible-runner>=2.3"]),
    "default": None,
    "newest": ("3.13", ["ansible-core>=2.21,<2.22", "ansible-runner>=2.3", "ansible-builder>=3.1",
                        "antsibull-changelog>=0.26"]),
}

TESTS = [
    "tests/fleet/test_module_local.py",         # the module, local connection
    "tests/fleet/test_module_ssh.py",           # the module over ssh (and paramiko_ssh where it exists)
    "tests/fleet/test_report_callback.py",      # the bind_report callback
    "tests/fleet/test_report_e2e.py",           # the playbook with the real module + callback
    "tests/fleet/test_fleet_trace.py",          # the playbook over the 5-host sshd fleet
    "tests/fleet/test_collection_install.py",   # the built tarball, installed, used from outside
    "tests/fleet/test_module_sanity.py",        # ansible-test sanity on the whole collection
    "tests/fleet/test_execution_environment.py",  # ansible-builder create (rows that have it)
]


# kernel-side behaviour the default row (make test) already proves and no
# ansible-core version changes: not repeated per row, to keep CI short
DESELECT = [
    "tests/fleet/test_module_local.py::test_summary_100000_binds_one_record_under_async_poll",
    "tests/fleet/test_module_local.py::test_killed_module_leaves_nothing_loaded",
]


def find_python(version):
    """pythonX.Y: pyenv's (part of the machine image), else one on PATH that runs
    (a pyenv shim is on PATH for every version but runs only the selected ones)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)),
                   key=lambda p: [int(x) for x in p.split("/versions/")[1].split("/")[0].split(".")])
    found = found[::-1] + ([shutil.which("python" + version)] if shutil.which("python" + version) else [])
    for exe in found:
        if subprocess.call([exe, "-c", "pass"], stderr=subprocess.DEVNULL) == 0:
            return exe
    sys.exit("matrix: no working python%s under %s/versions or on PATH: install it (pyenv install %s)"
             % (version, root, version))


def ensure_venv(name):
    """The row's venv, (re)built when its requirements changed; -> its path."""
    if ROWS[name] is None:
        venv = os.path.join(ROOT, ".venv")
        if not os.path.exists(os.path.join(venv, ".installed")):
            subprocess.check_call(["make", "-C", ROOT, "venv"])
        return venv
    version, reqs = ROWS[name]
    venv = os.path.join(MATRIX_DIR, name)
    stamp = os.path.join(venv, ".installed")
    want = "\n".join([version] + reqs) + "\n"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.check_call([find_python(version), "-m", "venv", venv])
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q"]
    subprocess.check_call(pip + ["--upgrade", "pip"])
    subprocess.check_call(pip + reqs)
    with open(stamp, "w") as f:
        f.write(want)
    return venv


def describe(venv):
    return subprocess.check_output(
        [os.path.join(venv, "bin", "python"), "-c",
         "import sys; from ansible.release import __version__ as v; "
         "print('ansible-core %s, Python %d.%d.%d' % ((v,) + sys.version_info[:3]))"],
        universal_newlines=True).strip()


def main(argv):
    names = argv or list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        sys.exit("matrix: unknown row(s) %s; rows: %s" % (", ".join(unknown), ", ".join(ROWS)))
    pytest = [os.path.join(ROOT, ".venv", "bin", "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    extra = os.environ.get("PYTEST_ARGS", "").split()
    results = []
    for name in names:
        t0 = time.monotonic()
        venv = ensure_venv(name)
        what = describe(venv)
        print("\n=== matrix row %s: %s (%s) ===" % (name, what, venv), flush=True)
        env = dict(os.environ, BINDTRACE_CONTROLLER_VENV=venv)
        deselect = [] if name == "default" else [a for d in DESELECT for a in ("--deselect", d)]
        rc = subprocess.call(pytest + extra + deselect + TESTS, cwd=ROOT, env=env)
        results.append((name, what, rc, time.monotonic() - t0))
    print("\n=== matrix summary ===")
    for name, what, rc, secs in results:
        print("%-8s %-40s %s  %4.0f s" % (name, what, "passed" if rc == 0 else "FAILED (rc %d)" % rc, secs))
    return 1 if any(rc for _, _, rc, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
