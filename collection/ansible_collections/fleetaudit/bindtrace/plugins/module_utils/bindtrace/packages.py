"""Which package installed a file: the dpkg database (/var/lib/dpkg/info/
*.list), read once per root filesystem on first use and kept as a path ->
package index; each looked-up path is cached. A file no package lists has
package None. Paths are looked up inside the process's root (/proc/PID/root),
so a container's executable is checked against the container's own database.

rpm hosts: not read yet (the rpm database is a binary header store); package
is None there and `package_db` says so."""
import os

DPKG_INFO = "var/lib/dpkg/info"
# merged-/usr: dpkg may list /bin/x while the kernel reports /usr/bin/x (and back)
MERGED = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")


def _aliases(path):
    yield path
    for top in MERGED:
        if path.startswith("/usr" + top):
            yield path[4:]
        elif path.startswith(top):
            yield "/usr" + path


class PackageIndex(object):
    """The file lists are read once (about 8 MB on a desktop-sized Debian);
    each looked-up path is then one substring search over them (~4 ms), cached.
    Building a path -> package dict of every listed file would cost ~0.5 s
    per audit for the few executables that own listeners."""

    def __init__(self, root="/"):
        self.root = root
        self._lists = None
        self._cache = {}
        self.db = None   # "dpkg" once a database was found, else None

    def _read(self):
        self._lists = []
        top = os.path.join(self.root, DPKG_INFO)
        try:
            names = sorted(os.listdir(top))
        except OSError:
            return
        self.db = "dpkg"
        for name in names:
            if not name.endswith(".list"):
                continue
            try:
                with open(os.path.join(top, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            # nginx-light:amd64.list -> nginx-light
            self._lists.append((name[:-5].split(":", 1)[0], b"\n" + data))

    def owner(self, path):
        """The package that ships `path`, or None."""
        if not path:
            return None
        if path in self._cache:
            return self._cache[path]
        if self._lists is None:
            self._read()
        found = None
        for candidate in _aliases(path):
            needle = b"\n" + candidate.encode("utf-8", "surrogateescape") + b"\n"
            found = next((pkg for pkg, data in self._lists if needle in data), None)
            if found:
                break
        self._cache[path] = found
        return found
