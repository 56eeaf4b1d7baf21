"""Report files: atomic replacement, mode 0640, formats option, clear errors."""
import json
import os
import stat

import pytest

import report_facts as rf
from bindreport import BindReportError, build_report, parse_formats, write_reports
from bindreport import writer


def model():
    return build_report(rf.fleet(), generated="2026-11-25T12:00:00Z")


def test_writes_all_four_private_files(tmp_path):
    out = tmp_path / "new" / "reports"
    paths = write_reports(model(), str(out))
    assert sorted(os.path.basename(p) for p in paths.values()) == [
        "junit.xml", "report.html", "report.json", "report.md"]
    for p in paths.values():
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(str(out)).st_mode) & 0o007 == 0  # 0750 under the usual umask
    assert sorted(os.listdir(str(out))) == ["junit.xml", "report.html", "report.json", "report.md"]


def test_no_environment_or_secrets_in_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BINDTRACE_TEST_SECRET", "s3cr3t-token-value")
    paths = write_reports(model(), str(tmp_path))
    for p in paths.values():
        with open(p, encoding="utf-8") as f:
            text = f.read()
        assert "s3cr3t-token-value" not in text and "BINDTRACE_TEST_SECRET" not in text


def test_replace_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    write_reports(model(), str(tmp_path), ["json"])
    path = tmp_path / "report.json"
    old_inode = os.stat(str(path)).st_ino
    # a crash mid-write leaves the previous report intact and no temporary file
    real_fsync = os.fsync

    def crash(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(writer.os, "fsync", crash)
    with pytest.raises(BindReportError, match="No space left on device"):
        write_reports(build_report({}), str(tmp_path), ["json"])
    monkeypatch.setattr(writer.os, "fsync", real_fsync)
    assert json.loads(path.read_text())["summary"]["hosts"] == 7
    assert os.listdir(str(tmp_path)) == ["report.json"]
    write_reports(build_report({}), str(tmp_path), ["json"])
    assert json.loads(path.read_text())["summary"]["hosts"] == 0
    assert os.stat(str(path)).st_ino != old_inode  # a new file renamed over the old one


def test_formats_option():
    assert parse_formats(None) == ("json", "md", "html", "junit")
    assert parse_formats("json, html") == ("json", "html")
    assert parse_formats(["JUNIT", "junit"]) == ("junit",)
    assert parse_formats("all") == ("json", "md", "html", "junit")
    with pytest.raises(BindReportError, match="unknown report format 'pdf'"):
        parse_formats("json,pdf")


def test_only_requested_formats(tmp_path):
    write_reports(model(), str(tmp_path), "junit,md")
    assert sorted(os.listdir(str(tmp_path))) == ["junit.xml", "report.md"]


def test_unwritable_directory_names_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BindReportError, match="cannot create report directory .*BIND_REPORT_DIR"):
        write_reports(model(), str(blocker / "sub"))
