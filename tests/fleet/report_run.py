"""Helpers for the report tests: run the real ansible-playbook with the repo's
ansible.cfg (bind_report callback enabled) over an inventory of local hosts,
one unreachable ssh host, and the canned stand-in trace module."""
import json
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
from controller import VENV_BIN  # noqa: E402  (.venv, or the matrix row's controller)
STANDIN_PLAYBOOK = os.path.join(HERE, "fixtures", "standin", "standin.yml")
sys.path.insert(0, os.path.join(ROOT, "tests"))

import report_facts  # noqa: E402


def env(**extra):
    e = dict(os.environ)
    e["PATH"] = VENV_BIN + os.pathsep + e.get("PATH", "")
    e["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    e["ANSIBLE_NOCOLOR"] = "1"
    e["ANSIBLE_FORCE_COLOR"] = "0"
    for k in ("BIND_REPORT_DIR", "BIND_REPORT_FORMATS", "BIND_REPORT_BASELINE", "BIND_REPORT_TERMINAL",
              "AWX_ISOLATED_DATA_DIR", "ANSIBLE_INVENTORY"):
        e.pop(k, None)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def closed_port():
    """A loopback TCP port nothing listens on (taken and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_fleet(workdir, fleet):
    """fleet (report_facts.fleet() shape) -> inventory.json and canned/<host>.json.

    ok / failed / unsupported hosts are localhost aliases (local connection)
    whose stand-in task returns the canned facts or failure; unreachable
    hosts are ssh to a closed loopback port."""
    canned = os.path.join(workdir, "canned")
    os.makedirs(canned, exist_ok=True)
    hosts = {}
    for name, r in fleet.items():
        if r["status"] == "unreachable":
            hosts[name] = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                           "ansible_port": closed_port(), "ansible_user": "nobody",
                           "ansible_ssh_common_args": "-o ControlMaster=no -o ConnectTimeout=5"}
            continue
        hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
        data = {"facts": r["facts"]} if r["status"] == "ok" else {"fail": r["msg"]}
        with open(os.path.join(canned, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(data, f)
    inventory = os.path.join(workdir, "inventory.json")
    with open(inventory, "w", encoding="utf-8") as f:
        json.dump({"all": {"hosts": hosts}}, f)
    return inventory, canned


def run_standin(workdir, fleet, playbook=STANDIN_PLAYBOOK, extra_args=(), **envvars):
    inventory, canned = write_fleet(workdir, fleet)
    return subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "-e", "canned_dir=" + canned,
         playbook] + list(extra_args), cwd=workdir, env=env(**envvars), capture_output=True,
        text=True, timeout=300)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()
