"""Notice that nobody will read this run's result any more.

The Ansible module's stdout is its controller's connection: a pipe to the local
connection's worker, or to the host's sshd session. When the controller gives
up (a task `timeout:`, a dropped SSH connection, a killed ansible-playbook) the
reading end closes, but nothing signals the module (no tty, so no SIGHUP).
Without this check the window would run to its end, up to an hour, with the
tracer loaded in the kernel for nobody.
"""
import select


def reader_gone(fd=1):
    """True when fd is a pipe or socket whose reading side has closed. A file,
    /dev/null or a tty that is still there never counts as gone."""
    try:
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR / POLLHUP are reported whatever the mask
        events = poller.poll(0)
    except (OSError, ValueError):
        return False
    return any(item[1] & (select.POLLERR | select.POLLHUP) for item in events)


class HangupStop(object):
    """A should_stop for run_window / collect_facts: `inner` (e.g. SignalStop)
    asks to stop, or the reader of fd (stdout) has gone away."""

    def __init__(self, inner=None, fd=1):
        self.inner = inner
        self.fd = fd
        self.hangup = False

    @property
    def signum(self):
        if self.hangup:
            return "SIGHUP (the controller closed the connection: task timeout or dropped SSH)"
        return getattr(self.inner, "signum", None)

    def __call__(self):
        if self.inner is not None and self.inner():
            return True
        if not self.hangup and reader_gone(self.fd):
            self.hangup = True
        return self.hangup
