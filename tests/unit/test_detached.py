"""The controller's side of a detached window (plugin_utils/detached.py): only
a job the launch returned becomes a shell command, the collect command's
output is turned into the module's result or one message naming the cause,
and the host library travels as the same zip every time."""
import json
import os
import shlex
import subprocess
import sys
import zipfile
import io

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "collection"))

import detached  # noqa: E402  (plugin_utils, on the path from tests/conftest.py)

JOB_DIR = "/run/bindtrace/jobs"
JOB = {"jid": "1796149336-2491-77f762f0", "pid": 2493, "deadline": 1796149464.5,
       "file": "/run/bindtrace/jobs/1796149336-2491-77f762f0.json"}


@pytest.mark.parametrize("job, why", [
    (None, "job must be the bindtrace_job the launch returned"),
    ("1796149336-2491-77f762f0", "job must be the bindtrace_job the launch returned"),
    (dict(JOB, jid="x; rm -rf /"), "is not a bindtrace_job returned by trace_bind with detach"),
    (dict(JOB, file="/tmp/$(reboot)/1796149336-2491-77f762f0.json"), "is not a bindtrace_job"),
    (dict(JOB, file="/run/bindtrace/jobs/1796149336-2491-00000000.json"), "is not a bindtrace_job"),
    (dict(JOB, pid=True), "has no valid pid"),
    (dict(JOB, pid="2493"), "has no valid pid"),
    (dict(JOB, pid=1), "has no valid pid"),
])
def test_only_a_launched_job_becomes_a_command(job, why):
    with pytest.raises(ValueError) as exc:
        detached.collect_command(job, 10)
    assert why in str(exc.value)


def run_collect(tmp_path, job, timeout):
    out = subprocess.run(["/bin/sh", "-c", detached.collect_command(job, timeout)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return detached.parse_output(job, out.returncode, out.stdout, out.stderr, timeout)


def local_job(tmp_path, pid):
    jid = "1796149336-%d-77f762f0" % pid
    return {"jid": jid, "pid": pid, "file": str(tmp_path / (jid + ".json")), "deadline": 0}


def test_collect_prints_the_result_once_and_removes_it(tmp_path):
    job = local_job(tmp_path, os.getpid())
    result = {"changed": False, "ansible_facts": {"bind_trace": {"lost": 0}}}
    with open(job["file"], "w") as f:
        json.dump(result, f)
    assert run_collect(tmp_path, job, 5) == result
    assert not os.path.exists(job["file"])
    # collected once: the process still lives, so a second collect waits, then says so
    again = run_collect(tmp_path, job, 0.3)
    assert again == {"failed": True, "msg": "detached job %s (pid %d) had no result after 0 s; "
                     "it stops by itself at its deadline and nothing stays loaded; collect again "
                     "with a longer timeout (bindtrace_collect_timeout)" % (job["jid"], job["pid"])}


def test_collect_waits_for_a_result_written_while_it_waits(tmp_path):
    job = local_job(tmp_path, os.getpid())
    writer = subprocess.Popen(["/bin/sh", "-c", "sleep 0.5; echo '{\"failed\": true, \"msg\": "
                               "\"x\"}' > %s.tmp && mv %s.tmp %s" % ((job["file"],) * 3)])
    try:
        assert run_collect(tmp_path, job, 10) == {"failed": True, "msg": "x", "changed": False}
    finally:
        writer.wait()


def test_collect_of_a_job_whose_process_died_says_so_at_once(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    job = local_job(tmp_path, dead.pid)
    got = run_collect(tmp_path, job, 60)
    assert got == {"failed": True, "msg": "detached job %s (pid %d) ended without a result: it "
                   "was killed (SIGKILL, out of memory) or the host restarted; the kernel unloaded "
                   "its tracer with it; rerun the play" % (job["jid"], dead.pid)}


def test_output_that_is_no_result_is_named():
    assert detached.parse_output(JOB, 1, "", "sh: 1: cannot open: Permission denied", 5) == {
        "failed": True, "msg": "could not read the result of detached job %s (exit 1): sh: 1: "
        "cannot open: Permission denied" % JOB["jid"]}
    assert detached.parse_output(JOB, 0, "{not json", "", 5)["msg"].startswith(
        "the result of detached job %s is not JSON (" % JOB["jid"])
    # a tty turns newlines into CRLF, and junk may come first: the JSON is found
    assert detached.parse_output(JOB, 0, "motd\r\n{\"changed\": false,\r\n \"x\": 1}\r\n", "",
                                 5) == {"changed": False, "x": 1}


def test_library_zip_is_the_whole_host_library_byte_for_byte_the_same():
    data = detached.library_zip()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    lib = os.path.join(ROOT, "collection/ansible_collections/fleetaudit/bindtrace/plugins/"
                             "module_utils/bindtrace")
    expected = sorted("bindtrace/" + os.path.relpath(os.path.join(d, f), lib)
                      for d, _, fs in os.walk(lib) for f in fs if f.endswith(".py"))
    assert sorted(names) == expected
    assert "bindtrace/detach.py" in names and "bindtrace/bcc/backend.py" in names
    detached._ZIP_CACHE.clear()
    assert detached.library_zip() == data   # no timestamps: the same bytes


def test_launch_command_quotes_the_interpreter_and_the_bootstrap():
    cmd = detached.launch_command("/opt/py 3/bin/python3", shlex.quote)
    assert cmd.startswith("P='/opt/py 3/bin/python3'; exec \"$P\" -c ")
    assert shlex.split(cmd.split("-c ", 1)[1]) == [detached.detach.BOOTSTRAP]
    found = detached.launch_command(None, shlex.quote)
    assert found.startswith('P=; for c in /usr/bin/python3 /usr/libexec/platform-python; do ')
    # the command runs: a missing library is a clear launch failure, not a hang,
    # and leaves no file behind
    before = set(os.listdir(JOB_DIR)) if os.path.isdir(JOB_DIR) else set()
    out = subprocess.run(["/bin/sh", "-c", found], input=b'{"duration": 1}\nnot a zip',
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = detached.parse_launch(out.returncode, out.stdout.decode(), out.stderr.decode())
    assert got["failed"] is True and got["msg"].startswith("could not launch the trace (exit 1): ")
    assert "No module named 'bindtrace'" in got["msg"]
    assert set(os.listdir(JOB_DIR)) <= before
