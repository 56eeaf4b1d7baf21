"""A run never overwrites the baseline it compares against (bindreport.guard),
in bind-report here and in the callback in tests/fleet/test_report_callback.py."""
import io
import json
import os

from bindreport.cli import EXIT_INPUT, run
from bindreport.guard import baseline_overwrite_error

import report_facts as rf

ALL = ("json", "md", "html", "junit")


def message(baseline, outdir):
    return ("the baseline %s is the report.json this run would write in %s, and a run never "
            "overwrites the report it compares against: write each run to its own directory (e.g. "
            "BIND_REPORT_DIR=reports/$(date +%%F)) or keep the baseline elsewhere (e.g. cp %s "
            "baseline.json, then BIND_REPORT_BASELINE=baseline.json)" % (baseline, outdir, baseline))


def test_same_file_by_path_symlink_or_hard_link_is_refused(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "report.json").write_text("{}")
    os.symlink(str(out / "report.json"), str(tmp_path / "latest.json"))
    os.link(str(out / "report.json"), str(tmp_path / "hard.json"))
    for baseline in (str(out / "report.json"), str(tmp_path / "reports" / ".." / "reports" / "report.json"),
                     str(tmp_path / "latest.json"), str(tmp_path / "hard.json")):
        assert baseline_overwrite_error(baseline, str(out), ALL) == message(baseline, str(out))
    # a report.json not written yet, named by the path it will have
    assert baseline_overwrite_error(str(tmp_path / "new" / "report.json"), str(tmp_path / "new"), ALL)


def test_other_files_or_no_json_output_are_fine(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "report.json").write_text("{}")
    (tmp_path / "baseline.json").write_text("{}")
    assert baseline_overwrite_error(str(tmp_path / "baseline.json"), str(out), ALL) is None
    assert baseline_overwrite_error(str(out / "report.json"), str(out), ("md", "html", "junit")) is None
    assert baseline_overwrite_error(None, str(out), ALL) is None


def test_bind_report_refuses_before_writing_anything(tmp_path):
    src = tmp_path / "salt.json"
    src.write_text(json.dumps({"web1": rf.fleet()["web1"]["facts"]}))
    out, err = io.StringIO(), io.StringIO()
    assert run([str(src), "-o", str(tmp_path / "r"), "--no-terminal"], out=out, err=err) == 0
    baseline = tmp_path / "r" / "report.json"
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    out, err = io.StringIO(), io.StringIO()
    rc = run([str(src), "-o", str(tmp_path / "r"), "--baseline", str(baseline)], out=out, err=err)
    assert rc == EXIT_INPUT
    assert err.getvalue() == "bind-report: %s\n" % message(str(baseline), str(tmp_path / "r"))
    assert out.getvalue() == ""
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before
