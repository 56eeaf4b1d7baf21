"""A run never overwrites the baseline it compares against.

The obvious daily job (`BIND_REPORT_BASELINE=reports/report.json`, default
output directory ./reports) would replace the approved baseline with today's
state, unexpected listeners included, and the next run would compare against
that. Both front-ends (the callback, bind-report) refuse instead, with the fix,
before anything is written."""
import os

from .render import FORMATS


def baseline_overwrite_error(baseline, outdir, formats):
    """-> the message when writing `formats` into `outdir` would replace the file
    `baseline` (the same path, a symlink to it, or a hard link), else None."""
    if not baseline or "json" not in formats:
        return None
    target = os.path.join(outdir, FORMATS["json"][0])
    same = os.path.realpath(baseline) == os.path.realpath(target)
    if not same:
        try:
            same = os.path.samefile(baseline, target)
        except OSError:
            same = False
    if not same:
        return None
    return ("the baseline %s is the report.json this run would write in %s, and a run never "
            "overwrites the report it compares against: write each run to its own directory (e.g. "
            "BIND_REPORT_DIR=reports/$(date +%%F)) or keep the baseline elsewhere (e.g. cp %s "
            "baseline.json, then BIND_REPORT_BASELINE=baseline.json)" % (baseline, outdir, baseline))
