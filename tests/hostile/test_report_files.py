"""Report files under hostile conditions: written atomically (a reader polling
report.json during the run sees the old or the new file, never part of one; a
planted symlink or hard link is replaced, not written through), mode 0640
whatever the umask, and no secret or environment variable in any of them."""
import json
import os
import stat
import threading
import uuid

import pytest

from hostile_util import FIXTURES, PORT_BASE, no_traceback, run_playbook

pytestmark = pytest.mark.slow

PORT = PORT_BASE + 80
FORMATS = ["junit.xml", "report.html", "report.json", "report.md"]


class Reader(threading.Thread):
    """Reads report.json over and over while the play runs."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.stop, self.seen, self.bad = path, threading.Event(), set(), []

    def run(self):
        while not self.stop.is_set():
            try:
                with open(self.path, encoding="utf-8") as f:
                    text = f.read()
            except FileNotFoundError:
                self.bad.append("missing")
                continue
            try:
                self.seen.add(json.loads(text).get("kind", "old"))
            except ValueError:
                self.bad.append(text[:80])


def test_report_files_atomic_private_and_free_of_secrets(local_inventory, tmp_path):
    rdir = tmp_path / "reports"
    rdir.mkdir(mode=0o750)
    old = rdir / "report.json"
    old.write_text(json.dumps({"old": True}))
    old_inode = old.stat().st_ino
    held = open(str(old))                             # a reader holding the old file open
    victim = tmp_path / "victim.txt"
    victim.write_text("victim\n")
    os.symlink(str(victim), str(rdir / "report.md"))   # planted: must not be written through
    linked = tmp_path / "linked.txt"
    linked.write_text("linked\n")
    os.link(str(linked), str(rdir / "report.html"))   # planted hard link, same
    canary_env, canary_var, canary_ctl = ("BTCANARY" + uuid.uuid4().hex for _ in range(3))
    reader = Reader(str(old))
    reader.start()
    rc, out = run_playbook(
        local_inventory, rdir,
        {"canary_env": canary_env, "canary_var": canary_var, "trace_port": PORT, "window": 3},
        playbook=os.path.join(FIXTURES, "canary.yml"),
        env={"BINDTRACE_CANARY_SECRET": canary_ctl}, preexec_fn=lambda: os.umask(0))
    reader.stop.set()
    reader.join(10)
    assert rc == 0, out
    assert no_traceback(out) == []
    # atomic: every read saw a whole file, the old or the new one
    assert reader.bad == []
    assert reader.seen <= {"old", "bindtrace-fleet-report"} and "old" in reader.seen
    assert json.loads(held.read()) == {"old": True}   # the old file itself was never touched
    held.close()
    assert os.stat(str(old)).st_ino != old_inode
    assert victim.read_text() == "victim\n" and linked.read_text() == "linked\n"
    # exactly the four files, regular, 0640 although the umask was 0, directory 0750
    assert sorted(os.listdir(str(rdir))) == FORMATS   # no temporary file left behind
    for name in FORMATS:
        st = os.lstat(str(rdir / name))
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1, name
        assert stat.S_IMODE(st.st_mode) == 0o640, (name, oct(st.st_mode))
    assert stat.S_IMODE(os.stat(str(rdir)).st_mode) == 0o750
    with open(str(rdir / "report.json"), encoding="utf-8") as f:
        assert json.load(f)["hosts"][0]["status"] == "ok"
    # no secret, no environment variable
    blob = b"".join(open(str(rdir / n), "rb").read() for n in FORMATS)
    for secret in (canary_env, canary_var, canary_ctl, "BINDTRACE_CANARY_SECRET",
                   os.environ["PATH"], "ANSIBLE_CONFIG", "BIND_REPORT_DIR"):
        assert secret.encode() not in blob, secret


def test_report_write_failure_is_one_clear_message(local_inventory, tmp_path):
    """junit.xml cannot be replaced (a directory is in the way): the callback
    says so in one message, leaves no temporary file, the play's result stands."""
    rdir = tmp_path / "reports"
    (rdir / "junit.xml").mkdir(parents=True)
    (rdir / "junit.xml" / "keep").write_text("x")
    rc, out = run_playbook(local_inventory, rdir, {"bindtrace_duration": 1,
                                                   "bindtrace_listeners": False,
                                                   "bindtrace_ports": str(PORT + 1)})
    assert rc == 0, out
    assert no_traceback(out) == []
    assert "bind_report: cannot write %s" % (rdir / "junit.xml") in out
    assert "set the bind_report output_dir option or BIND_REPORT_DIR" in out
    assert sorted(os.listdir(str(rdir))) == FORMATS   # the others written, nothing half-done
    assert os.listdir(str(rdir / "junit.xml")) == ["keep"]
