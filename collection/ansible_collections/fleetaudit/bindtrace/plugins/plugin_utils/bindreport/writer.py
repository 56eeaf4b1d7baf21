"""Atomic, private report files: a temporary file in the target directory,
fsync, mode 0640, then os.replace, so a reader (CI, a scheduled diff) sees
either the previous complete file or the new one, never half of it."""
import contextlib
import os
import tempfile

from .gcpause import gc_paused
from .model import BindReportError
from .render import FORMATS, render_parts

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
                f, ", ".join(FORMATS)))
        if f and f not in out:
            out.append(f)
    return tuple(out)


def _write_temp(path, parts):
    """parts -> a private, fsynced temporary file next to path -> its name."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    with _removed_on_error(tmp):
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
    return tmp


def _unlink(tmp):
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def _removed_on_error(tmp):
    """The temporary file goes when anything fails before its rename."""
    try:
        yield
    except BaseException:
        _unlink(tmp)
        raise


def write_atomic(path, text):
    tmp = _write_temp(path, [text])
    with _removed_on_error(tmp):
        os.replace(tmp, path)
    return path


def _write_error(path, e):
    return BindReportError("cannot write %s (%s): set the bind_report output_dir option or "
                           "BIND_REPORT_DIR to a writable directory" % (path, e.strerror))


def _temp_for(model, outdir, fmt):
    """Render fmt into its temporary file -> the temporary file's name."""
    path = os.path.join(outdir, FORMATS[fmt][0])
    parts = render_parts(model, fmt)
    try:
        return _write_temp(path, parts)
    except OSError as e:
        raise _write_error(path, e)


@gc_paused()
def write_reports(model, outdir, formats=None):
    """Render and write each format into outdir -> {format: path}.

    Each format goes to a temporary file; only when every format rendered
    and reached the disk are they renamed over the previous reports: a
    template or disk error leaves the old reports in place and no temporary
    file behind."""
    formats = parse_formats(formats)
    try:
        os.makedirs(outdir, mode=DIR_MODE, exist_ok=True)
    except OSError as e:
        raise BindReportError("cannot create report directory %s (%s): set the bind_report output_dir "
                              "option or BIND_REPORT_DIR to a writable directory" % (outdir, e.strerror))
    temps = {}
    try:
        for fmt in formats:
            temps[fmt] = _temp_for(model, outdir, fmt)
    except BaseException:
        for tmp in temps.values():
            _unlink(tmp)
        raise
    paths = {}
    for i, fmt in enumerate(formats):
        path = os.path.join(outdir, FORMATS[fmt][0])
        try:
            os.replace(temps[fmt], path)
        except OSError as e:
            for later in formats[i:]:
                _unlink(temps[later])
            raise _write_error(path, e)
        paths[fmt] = path
    return paths
