"""Fixtures of the hostile-conditions tests (see hostile_util.py for helpers)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import hostile_util  # noqa: E402

FLEET_STATE = "/tmp/bindtrace-fleet-hostile"
FLEET_PREFIX = "bthst"      # distinct from the fleet tests', molecule's and the bench's fleets
FLEET_SUBNET = "10.238.0"


@pytest.fixture(scope="session")
def bindstorm(tmp_path_factory):
    return hostile_util.build_bindstorm(tmp_path_factory.mktemp("bindstorm"))


@pytest.fixture
def local_inventory(tmp_path):
    return hostile_util.write_local_inventory(tmp_path / "inventory.json")


@pytest.fixture(scope="session")
def ssh_fleet():
    """One network-namespace sshd host (tests/fleet/harness.py), torn down at the end."""
    from harness import Fleet
    f = Fleet(FLEET_STATE)
    f.down()  # left over from an interrupted session
    try:
        f.up(1, prefix=FLEET_PREFIX, subnet=FLEET_SUBNET)
        yield f
    finally:
        f.down()


@pytest.fixture(scope="session")
def docker_images():
    from dockerimg import ensure_images
    return ensure_images()


@pytest.fixture
def containers():
    """Container names a test uses, removed before and after it."""
    from dockerimg import remove
    from helpers.docker import container_names
    yield from container_names(remove)
