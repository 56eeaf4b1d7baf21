"""The Ansible controller the tests drive. `make test` uses the project's
.venv; `make test-matrix` runs the Ansible tests once per supported
ansible-core with BINDTRACE_CONTROLLER_VENV pointing at that row's venv, while
pytest itself (and the libraries the tests import) stays in .venv."""
import functools
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VENV = os.path.join(ROOT, ".venv")
VENV = os.path.abspath(os.environ.get("BINDTRACE_CONTROLLER_VENV") or DEFAULT_VENV)
VENV_BIN = os.path.join(VENV, "bin")
IS_DEFAULT = VENV == os.path.abspath(DEFAULT_VENV)


@functools.lru_cache(maxsize=None)
def core_version():
    """(major, minor) of the controller's ansible-core, and its python X.Y."""
    out = subprocess.check_output(
        [os.path.join(VENV_BIN, "python"), "-c",
         "import sys; from ansible.release import __version__ as v; "
         "print(v); print('%d.%d' % sys.version_info[:2])"], universal_newlines=True).split()
    return tuple(int(x) for x in out[0].split(".")[:2]), out[1]


@functools.lru_cache(maxsize=None)
def has_connection(name):
    """Whether the controller's ansible-core ships the connection plugin `name`
    and can load it (paramiko_ssh: removed in 2.21; before that it needs the
    paramiko package)."""
    code = ("import importlib, sys\n"
            "try:\n"
            "    importlib.import_module('ansible.plugins.connection.%s')\n"
            "except ImportError:\n"
            "    sys.exit(1)\n"
            "if %r == 'paramiko_ssh':\n"
            "    import paramiko\n" % (name, name))
    return subprocess.run([os.path.join(VENV_BIN, "python"), "-c", code],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def connection_param(name):
    """A pytest.param for a connection plugin, skipped (with the reason) where
    this controller's ansible-core does not have it."""
    import pytest
    reason = "ansible-core %s has no loadable %s connection plugin (removed in 2.21)" % (
        ".".join(map(str, core_version()[0])), name)
    return pytest.param(name, marks=pytest.mark.skipif(not has_connection(name), reason=reason))
