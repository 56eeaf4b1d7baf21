"""The fleetaudit.bindtrace.bcc role through real ansible-playbook on this host.

The Debian branch runs for real (apt checks the installed python3-bpfcc and
headers). Debian has no headers package for this machine's 6.18 kernel, so the
test names the one CI links for bcc (linux-headers-cloud-amd64); on a host
running a Debian kernel the default linux-headers-<release> applies. The RHEL
branch cannot run here (no RHEL host)."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAY = """---
- hosts: localhost
  gather_facts: false
  roles:
    - role: fleetaudit.bindtrace.bcc
"""


def run(tmp_path, *extra):
    path = tmp_path / "play.yml"
    path.write_text(PLAY)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="default")
    p = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                        str(path)] + list(extra), cwd=ROOT, capture_output=True, text=True,
                       env=env, timeout=600)
    return p


def play(tmp_path, *extra):
    p = run(tmp_path, *extra)
    assert p.returncode == 0, p.stdout + p.stderr
    recap = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0\s+"
                      r"skipped=(\d+)", p.stdout)
    return tuple(int(x) for x in recap.groups()), p.stdout


def test_install_when_asked_is_idempotent(tmp_path):
    args = ["-e", "bindtrace_install_bcc=true",
            "-e", "bindtrace_bcc_headers_package=linux-headers-cloud-amd64"]
    first, out = play(tmp_path, *args)
    assert "Debian/Ubuntu - python3-bpfcc and the running kernel's headers" in out
    second, _ = play(tmp_path, *args)
    # argument check, setup, apt, stat ok; RHEL, other-systems and mount skipped; nothing changed
    assert first == second == (4, 0, 3)


def test_nothing_installed_unless_asked(tmp_path):
    (ok, changed, skipped), out = play(tmp_path)
    assert (ok, changed, skipped) == (3, 0, 4)
    assert "skipping: [localhost]" in out


def test_bad_option_stops_the_role_before_any_task(tmp_path):
    """meta/argument_specs.yml: a wrong type fails the role's first task,
    naming the option, before anything is gathered or installed."""
    p = run(tmp_path, "-e", '{"bindtrace_install_bcc": "perhaps"}')
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Validating arguments against arg spec" in p.stdout
    assert ("argument 'bindtrace_install_bcc' is of type str and we were unable to convert to bool: "
            "The value 'perhaps' is not a valid boolean") in p.stdout
    assert "Gather the minimal facts" not in p.stdout
