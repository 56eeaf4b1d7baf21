"""execution-environment.yml (AWX / AAP): `ansible-builder create` makes a build
context whose Containerfile installs a supported ansible-core, and whose galaxy
requirements install this collection (checked by running that same install
here, from the context, into an empty collections path). No image is built."""
import os
import subprocess

import pytest
import yaml

from controller import VENV_BIN

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDER = os.path.join(VENV_BIN, "ansible-builder")

pytestmark = pytest.mark.skipif(not os.path.exists(BUILDER),
                                reason="ansible-builder is installed in the matrix's newest row only")


def test_ansible_builder_create_gives_a_context_that_installs_the_collection(tmp_path):
    ctx = tmp_path / "context"
    proc = subprocess.run([BUILDER, "create", "-f", os.path.join(ROOT, "execution-environment.yml"),
                           "-c", str(ctx)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (ctx / "Containerfile").read_text()
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.18,<2.22 ansible-runner>=2.3"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "WORKDIR /build" in containerfile
    build = ctx / "_build"
    assert yaml.safe_load((build / "requirements.yml").read_text()) == {
        "collections": [{"name": "src/bindtrace", "type": "dir"}]}
    assert (build / "src" / "bindtrace" / "bpf" / "bind.bpf.c").is_file()
    # the galaxy stage's install, run from the context as the image's /build
    cpath = tmp_path / "collections"
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install",
                           "-r", "requirements.yml", "-p", str(cpath)], cwd=str(build),
                          env={k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = cpath / "ansible_collections" / "fleetaudit" / "bindtrace"
    assert (installed / "MANIFEST.json").is_file()
    assert (installed / "playbooks" / "trace_bind.yml").is_file()
    assert not list(installed.rglob("__pycache__"))
