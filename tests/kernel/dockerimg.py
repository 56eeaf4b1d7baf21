"""Real Docker for tests: start dockerd (scripts/dockerd-up.sh) and build the test
images offline from Debian's busybox-static with `docker import` (no registry).

bindtrace-bb:latest  busybox applets (nc -l -p PORT as in the seed)
bindtrace-py:latest  merged-usr layout; run with `-v /usr:/usr:ro` to use the host's python3
"""
import io
import os
import shutil
import subprocess
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BB_IMAGE = "bindtrace-bb:latest"
PY_IMAGE = "bindtrace-py:latest"
USR_RO = ["-v", "/usr:/usr:ro"]
CHANGES = ["--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "--change", 'CMD ["/bin/sh"]']


def docker(*args, check=True, timeout=120):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, check=check,
                          timeout=timeout)


def docker_up():
    subprocess.run([os.path.join(ROOT, "scripts", "dockerd-up.sh")], check=True, timeout=120)


def _busybox():
    path = "/bin/busybox"
    out = subprocess.run([path, "--list"], capture_output=True, text=True, check=True).stdout
    return path, out.split()


def rootfs_tar(merged_usr):
    """The image's root filesystem as an in-memory tar."""
    busybox, applets = _busybox()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name, mode=0o755):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode = tarfile.DIRTYPE, mode
            tar.addfile(ti)

        def add_link(name, target):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tar.addfile(ti)

        def add_file(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), mode
            tar.addfile(ti, io.BytesIO(data))

        dirs = ["bin", "etc", "proc", "sys", "dev", "root", "run", "var"]
        dirs += ["usr"] if merged_usr else ["sbin", "usr", "usr/bin", "usr/sbin"]
        for d in dirs:
            add_dir(d)
        add_dir("tmp", 0o1777)
        if merged_usr:   # /lib -> usr/lib so the host's python3 finds its loader and libs
            add_link("lib", "usr/lib")
            add_link("lib64", "usr/lib64")
        with open(busybox, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        for a in applets:
            if a != "busybox":
                add_link("bin/" + a, "busybox")
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\n")
    return buf.getvalue()


def _import(tag, merged_usr):
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    proc = subprocess.run(["docker", "import"] + CHANGES + ["-", tag], input=rootfs_tar(merged_usr),
                          capture_output=True, check=True, timeout=120)
    assert proc.returncode == 0
    return tag


def ensure_images():
    """Start dockerd if needed and build both images once; returns (bb, py)."""
    assert shutil.which("docker"), "docker.io is not installed (.ci/run installs it)"
    docker_up()
    return _import(BB_IMAGE, False), _import(PY_IMAGE, True)


def inspect(name, fmt):
    return docker("inspect", "-f", fmt, name).stdout.strip()


def remove(*names):
    docker("rm", "-f", *names, check=False)


def remove_empty_cgroups(*rels):
    """rmdir the given cgroup dirs (deepest first) in every hierarchy, if empty:
    the --cgroup-parent directories runtimes create and never remove."""
    base = "/sys/fs/cgroup"
    mounts = [base] + [os.path.join(base, d) for d in sorted(os.listdir(base))]
    for rel in sorted(rels, key=lambda r: -r.count("/")):
        for m in mounts:
            try:
                os.rmdir(os.path.join(m, rel))
            except OSError:
                pass   # absent, or still in use
