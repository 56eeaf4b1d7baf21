"""Atomic, private report files: a temporary file in the target directory,
fsync, mode 0640, then os.replace, so a reader (CI, a scheduled diff) sees
either the previous complete file or the new one, never half of it."""
import os
import tempfile

from .parallel import gc_paused
from .model import BindReportError
from .render import FORMATS, render

FILE_MODE = 0o640
DIR_MODE = 0o750
DEFAULT_FORMATS = ("json", "md", "html", "junit")


def parse_formats(formats):
    """"json,html" / ["json", "html"] / None (all) -> a checked tuple."""
    if formats is None:
        return DEFAULT_FORMATS
    if isinstance(formats, str):
        formats = formats.split(",")
    out = []
    for f in formats:
        f = f.strip().lower()
        if f in ("all", "*"):
            return DEFAULT_FORMATS
        if f and f not in FORMATS:
            raise BindReportError("unknown report format %r: use any of %s (comma-separated)" % (
                f, ", ".join(DEFAULT_FORMATS)))
        if f and f not in out:
            out.append(f)
    return tuple(out)


def write_atomic(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


@gc_paused()
def write_reports(model, outdir, formats=None):
    """Render and write each format into outdir -> {format: path}."""
    formats = parse_formats(formats)
    try:
        os.makedirs(outdir, mode=DIR_MODE, exist_ok=True)
    except OSError as e:
        raise BindReportError("cannot create report directory %s (%s): set the bind_report output_dir "
                              "option or BIND_REPORT_DIR to a writable directory" % (outdir, e.strerror))
    # render everything first: a template error leaves the old reports in place
    texts = {fmt: render(model, fmt) for fmt in formats}
    paths = {}
    for fmt in formats:
        path = os.path.join(outdir, FORMATS[fmt][0])
        try:
            paths[fmt] = write_atomic(path, texts[fmt])
        except OSError as e:
            raise BindReportError("cannot write %s (%s): set the bind_report output_dir option or "
                                  "BIND_REPORT_DIR to a writable directory" % (path, e.strerror))
    return paths
