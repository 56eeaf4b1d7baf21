"""`make demo`: run the real playbook against localhost while a small bind
workload runs, and let the bind_report callback print the fleet report."""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
WINDOW = 6

# A tiny fleet of listeners: an expected web server, an expected DNS-ish UDP
# socket, and one listener nobody expected (a "backdoor" on 31337).
WORKLOAD = r"""
import socket, time, sys
end = time.time() + float(sys.argv[1])
while time.time() < end:
    socks = []
    for family, kind, addr in ((socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 8080)),
                               (socket.AF_INET6, socket.SOCK_DGRAM, ("::1", 5353)),
                               (socket.AF_INET, socket.SOCK_STREAM, ("0.0.0.0", 31337))):
        s = socket.socket(family, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
        if kind == socket.SOCK_STREAM:
            s.listen()
        socks.append(s)
    time.sleep(0.5)
    for s in socks:
        s.close()
"""

ALLOW = [
    {"name": "web", "port": 8080, "proto": "tcp", "addr": "loopback"},
    {"name": "mdns", "port": 5353, "proto": "udp"},
    {"name": "ssh", "port": 22, "proto": "tcp"},
]


def main():
    outdir = os.environ.get("BIND_REPORT_DIR") or os.path.join(ROOT, "reports", "demo")
    extra = {"bindtrace_duration": WINDOW - 1, "bindtrace_allow": ALLOW}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(extra, f)
    env = dict(os.environ, BIND_REPORT_DIR=outdir, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    # binds until the play ends (the window opens after the launch lead)
    workload = subprocess.Popen(["/usr/bin/python3", "-c", WORKLOAD, "600"])
    try:
        play = subprocess.run(
            [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/trace_bind.yml",
             "-e", "@" + f.name], cwd=ROOT, env=env)
    finally:
        workload.kill()
        workload.wait()
        os.unlink(f.name)
    print("\nreport files: %s" % outdir)
    return play.returncode


if __name__ == "__main__":
    sys.exit(main())
