"""Atomic, private report files: a temporary file in the target directory,
fsync, mode 0640, then os.replace, so a reader (CI, a scheduled diff) sees
either the previous complete file or the new one, never half of it."""
import contextlib
import errno
import os
import tempfile
import threading

from . import parallel
from .parallel import gc_paused
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
                if isinstance(part, str):
                    f.write(part.encode("utf-8"))
                else:
                    f.flush()
                    _copy_segment(part, f.fileno())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
    return tmp


def _copy_segment(segment, out_fd):
    """A jsontext.Segment of the spill file, appended to out_fd in the kernel."""
    done = 0
    while done < segment.length:
        try:
            sent = os.sendfile(out_fd, segment.file.fileno(), segment.offset + done, segment.length - done)
        except (AttributeError, OSError) as e:
            if isinstance(e, OSError) and e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            # no file-to-file sendfile here: copy through memory
            rest = memoryview(segment.data())[done:]
            while rest:
                rest = rest[os.write(out_fd, rest):]
            return
        if sent == 0:
            raise OSError(5, "report spill file is shorter than expected")
        done += sent


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


class _Writer(threading.Thread):
    """Writes one temporary file while the next format renders: the write
    and fsync wait on the disk outside the GIL."""

    def __init__(self, path, parts):
        threading.Thread.__init__(self, name="bindreport-write", daemon=True)
        self.path, self.parts, self.tmp, self.error = path, parts, None, None
        self.start()

    def run(self):
        try:
            self.tmp = _write_temp(self.path, self.parts)
        except OSError as e:   # raised by write_reports, in the caller's thread
            self.error = _write_error(self.path, e)
        except BaseException as e:
            self.error = e
        self.parts = None


def _temps_job(model, outdir, formats):
    def job():
        done = []
        try:
            for fmt in formats:
                done.append(_temp_for(model, outdir, fmt))
        except BaseException:
            for tmp in done:
                _unlink(tmp)
            raise
        return done
    return job


# rendered by a forked child (the other core) while this process renders
# the rest, when there is more than one format and forking is possible
FORKED_FORMATS = ("html",)


@gc_paused()
def write_reports(model, outdir, formats=None):
    """Render and write each format into outdir -> {format: path}.

    Each format goes to a temporary file (written in the background while
    the next renders; html by a forked child when possible); only when every
    format rendered and reached the disk are they renamed over the previous
    reports: a template or disk error leaves the old reports in place and no
    temporary file behind."""
    formats = parse_formats(formats)
    try:
        os.makedirs(outdir, mode=DIR_MODE, exist_ok=True)
    except OSError as e:
        raise BindReportError("cannot create report directory %s (%s): set the bind_report output_dir "
                              "option or BIND_REPORT_DIR to a writable directory" % (outdir, e.strerror))
    forked = [f for f in formats if f in FORKED_FORMATS] if len(formats) > 1 else []
    here = [f for f in formats if f not in forked]
    child = parallel.Forked(_temps_job(model, outdir, forked)) if forked else None
    temps = {}
    try:
        writers = []
        try:
            for fmt in here:
                writers.append(_Writer(os.path.join(outdir, FORMATS[fmt][0]), render_parts(model, fmt)))
        finally:
            for fmt, w in zip(here, writers):
                w.join()
                if w.tmp:
                    temps[fmt] = w.tmp
        for w in writers:
            if w.error is not None:
                raise w.error
        if child is not None:
            temps.update(zip(forked, child.result()))
            child = None
    except BaseException:
        if child is not None:
            ok, tmps = child.wait()
            for tmp in (tmps if ok else ()):
                _unlink(tmp)
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
