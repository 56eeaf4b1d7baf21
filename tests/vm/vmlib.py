"""Host side of the VM kernel matrix: build guest images offline from the
machine's own Debian mirror, boot them under QEMU/TCG, parse the results.

Everything comes from the apt sources configured on this machine (the files
under /etc/apt/sources.list.d and /etc/apt/sources.list are passed as they
are; no mirror name is written anywhere by this code). Built pieces are cached
under $BINDTRACE_VM_CACHE (default /var/cache/bindtrace-vm), keyed by the
package versions they hold, so a second run only boots.

Layout of one guest run:
  kernel   Debian's own linux-image package, apt-get download + dpkg-deb -x
  rootfs   mmdebstrap --variant=minbase (python3, pytest, libbpf, bpftool,
           bcc...) of the same release, for the guest's architecture
  image    rootfs + the kernels' /lib/modules (+ 6.1 headers for bcc) ->
           mkfs.ext4 -d; booted with -snapshot so it stays clean
  initrd   busybox + virtio/ext4 modules + the payload (git archive of the
           commit under test) + the job; /init mounts the disk, unpacks the
           payload into /opt/bindtrace and switch_roots to guest_init.sh
  results  marked lines on the serial console (see guest_report.py)
"""
import glob
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("BINDTRACE_VM_CACHE", "/var/cache/bindtrace-vm")
RELEASE = "bookworm"
# bump when the way an image is built changes (part of every cache key)
BUILDER_VERSION = "1"

ROOTFS_PACKAGES = [
    "python3", "python3-pytest", "libbpf1", "bpftool", "iproute2", "busybox-static", "kmod",
    "util-linux", "procps", "python3-bpfcc",
]
# Debian's names: a meta package resolves to the current kernel of that line
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
MARK = "@@BTVM "


def log(msg):
    sys.stderr.write("[vm %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def out(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- apt, per arch

def sources_files():
    """The machine's apt sources for this release (the files, as configured)."""
    files = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        if not (path.endswith(".list") or path.endswith(".sources")) or not os.path.isfile(path):
            continue
        with open(path) as f:
            text = f.read()
        if re.search(r"^\s*(deb\s|Types:\s*deb)", text, re.M) and RELEASE in text:
            files.append(path)
    if not files:
        raise RuntimeError("no apt source for %s in /etc/apt/sources.list(.d): the VM matrix "
                           "builds its guests from the machine's Debian mirror" % RELEASE)
    return files


def sources_text():
    return "".join(open(p).read() for p in sources_files())


def host_deb_arch():
    return out(["dpkg", "--print-architecture"]).strip()


class Apt(object):
    """apt-cache/apt-get for one architecture. The host's own architecture uses
    the machine's apt state; another one gets private lists and cache under
    CACHE, so the host's dpkg architectures never change."""

    def __init__(self, deb_arch):
        self.arch = deb_arch
        self.opts = []
        if deb_arch != host_deb_arch():
            state = os.path.join(CACHE, "apt-" + deb_arch)
            lists = os.path.join(state, "lists")
            os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
            os.makedirs(os.path.join(state, "archives", "partial"), exist_ok=True)
            self.opts = ["-o", "APT::Architecture=" + deb_arch,
                         "-o", "APT::Architectures::=" + deb_arch,
                         "-o", "Dir::State::Lists=" + lists,
                         "-o", "Dir::Cache=" + state,
                         "-o", "Dir::Cache::archives=" + os.path.join(state, "archives"),
                         "-o", "Dir::State::status=/dev/null"]
            stamp = os.path.join(state, "updated")
            if not os.path.exists(stamp) or time.time() - os.path.getmtime(stamp) > 86400:
                log("apt-get update for %s (private lists)" % deb_arch)
                run(["apt-get", "-qq"] + self.opts + ["update"])
                open(stamp, "w").close()

    def depends(self, pkg):
        text = out(["apt-cache"] + self.opts + ["depends", "--no-recommends", "--no-suggests",
                                                 pkg])
        return [l.split(":", 1)[1].strip() for l in text.splitlines()
                if l.strip().startswith("Depends:") and "<" not in l]

    def version(self, pkg):
        text = out(["apt-cache"] + self.opts + ["show", "--no-all-versions", pkg])
        m = re.search(r"^Version: (\S+)", text, re.M)
        if not m:
            raise RuntimeError("apt has no version for %s (%s)" % (pkg, self.arch))
        return m.group(1)

    def extract(self, pkg, dest):
        """apt-get download pkg, dpkg-deb -x into dest (cached by name+version)."""
        ver = self.version(pkg)
        debs = os.path.join(CACHE, "debs")
        os.makedirs(debs, exist_ok=True)
        deb = glob.glob(os.path.join(debs, "%s_%s_*.deb" % (pkg, ver.replace(":", "%3a"))))
        if not deb:
            log("apt-get download %s=%s (%s)" % (pkg, ver, self.arch))
            run(["apt-get", "-qq", "-o", "APT::Sandbox::User=root"] + self.opts + ["download", "%s:%s=%s" % (pkg, self.arch, ver)],
                cwd=debs, stdout=subprocess.DEVNULL)
            deb = glob.glob(os.path.join(debs, "%s_%s_*.deb" % (pkg, ver.replace(":", "%3a"))))
        run(["dpkg-deb", "-x", deb[0], dest])
        return ver


# ---------------------------------------------------------------- kernels

class Kernel(object):
    """One Debian kernel package line, resolved through its meta package."""

    def __init__(self, arch, meta, headers_meta=None):
        self.arch, self.meta, self.headers_meta = arch, meta, headers_meta
        self.deb_arch = DEB_ARCH[arch]
        self._resolved = None

    def resolve(self):
        if self._resolved is None:
            apt = Apt(self.deb_arch)
            image = [d for d in apt.depends(self.meta) if d.startswith("linux-image-")][0]
            pkgs = [image]
            if self.headers_meta:
                hdr = [d for d in apt.depends(self.headers_meta) if d.startswith("linux-headers-")][0]
                pkgs += [hdr] + [d for d in apt.depends(hdr)
                                 if d.startswith(("linux-headers-", "linux-kbuild-"))]
            versions = {p: apt.version(p) for p in pkgs}
            self._resolved = (apt, image, pkgs, versions)
        return self._resolved

    @property
    def release(self):
        return self.resolve()[1][len("linux-image-"):]

    def key(self):
        return sha(self.resolve()[3])

    def tree(self):
        """Directory holding the extracted packages (boot/, lib/modules/, usr/src/)."""
        apt, _, pkgs, _ = self.resolve()
        path = os.path.join(CACHE, "kernels", "%s-%s" % (self.release, self.key()))
        if not os.path.exists(os.path.join(path, ".done")):
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
            for p in pkgs:
                apt.extract(p, path)
            rel = self.release
            moddir = os.path.join(path, "lib", "modules", rel)
            if self.headers_meta:
                # bcc looks for the headers at /lib/modules/<release>/{build,source}
                common = [d for d in os.listdir(os.path.join(path, "usr", "src"))
                          if d.endswith("-common")]
                for name, target in (("build", "/usr/src/linux-headers-" + rel),
                                     ("source", "/usr/src/" + common[0])):
                    link = os.path.join(moddir, name)
                    if os.path.lexists(link):
                        os.unlink(link)
                    os.symlink(target, link)
            # the package's postinst would run depmod: the initramfs and modprobe need modules.dep
            run(["depmod", "-b", path, rel])
            open(os.path.join(path, ".done"), "w").close()
        return path

    def vmlinuz(self):
        return os.path.join(self.tree(), "boot", "vmlinuz-" + self.release)


# the guests' kernels, and the kernels each architecture's image carries
K61 = Kernel("x86_64", "linux-image-cloud-amd64", "linux-headers-cloud-amd64")
K612 = Kernel("x86_64", "linux-image-6.12-cloud-amd64")
K61_ARM = Kernel("aarch64", "linux-image-arm64")
K612_ARM = Kernel("aarch64", "linux-image-6.12-cloud-arm64")
X86_IMAGE = [K61, K612]
ARM_IMAGE = [K61_ARM, K612_ARM]


# ---------------------------------------------------------------- root filesystem

def rootfs(arch):
    """mmdebstrap of RELEASE for arch, as a directory (cached by key)."""
    deb_arch = DEB_ARCH[arch]
    srcs = sources_files()
    key = sha(BUILDER_VERSION, deb_arch, ROOTFS_PACKAGES, sources_text())
    path = os.path.join(CACHE, "rootfs-%s-%s" % (deb_arch, key))
    if os.path.exists(os.path.join(path, "etc", "os-release")):
        return path, key
    os.makedirs(CACHE, exist_ok=True)
    log("mmdebstrap %s rootfs (%s): a few minutes" % (deb_arch, ", ".join(ROOTFS_PACKAGES)))
    t0 = time.monotonic()
    tmp = path + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = ["mmdebstrap", "--quiet", "--variant=minbase", "--arch=" + deb_arch,
           "--include=" + ",".join(ROOTFS_PACKAGES),
           "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
           "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-exclude=/usr/share/info/*",
           "--format=directory", RELEASE, tmp] + srcs
    if deb_arch != host_deb_arch():
        # foreign architecture: maintainer scripts run through qemu-user-static + binfmt
        binfmt = "/proc/sys/fs/binfmt_misc"
        if not os.path.exists(os.path.join(binfmt, "status")):
            run(["mount", "-t", "binfmt_misc", "binfmt_misc", binfmt])
        if not os.path.exists(os.path.join(binfmt, "qemu-aarch64")):
            run(["update-binfmts", "--enable", "qemu-aarch64"])
    run(cmd)
    shutil.rmtree(path, ignore_errors=True)
    os.rename(tmp, path)
    log("rootfs %s built in %.0f s" % (deb_arch, time.monotonic() - t0))
    return path, key


def image(arch, kernels):
    """ext4 image: rootfs + every kernel's modules (and headers). Cached by key."""
    rdir, rkey = rootfs(arch)
    key = sha(BUILDER_VERSION, rkey, [k.key() for k in kernels])
    path = os.path.join(CACHE, "image-%s-%s.ext4" % (DEB_ARCH[arch], key))
    if os.path.exists(path):
        return path
    t0 = time.monotonic()
    stage = os.path.join(CACHE, "stage-%s" % key)
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    try:
        run(["cp", "-al", rdir + "/.", stage + "/"])  # hard links: mkfs only reads them
        for k in kernels:
            tree = k.tree()
            for sub in ("lib/modules", "usr/src"):
                src = os.path.join(tree, sub)
                if os.path.isdir(src):
                    # stage/lib is a symlink to usr/lib on merged-/usr systems: copy into usr/lib
                    dst = os.path.join(stage, "usr", sub) if sub.startswith("lib/") else \
                        os.path.join(stage, sub)
                    os.makedirs(dst, exist_ok=True)
                    run(["cp", "-a", src + "/.", dst + "/"], stdout=subprocess.DEVNULL)
        size_mb = int(out(["du", "-sm", stage]).split()[0])
        tmp = path + ".part"
        if os.path.exists(tmp):
            os.unlink(tmp)
        run(["mkfs.ext4", "-q", "-F", "-L", "btvmroot", "-d", stage, tmp,
             "%dM" % (size_mb * 13 // 10 + 256)])
        os.rename(tmp, path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log("image %s built in %.0f s" % (os.path.basename(path), time.monotonic() - t0))
    return path


# ---------------------------------------------------------------- initramfs

def _cpio_entry(buf, name, mode, data=b"", ino=[1000]):
    ino[0] += 1
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    buf.write(hdr.encode() + name_b)
    buf.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    buf.write(data)
    buf.write(b"\0" * ((4 - len(data) % 4) % 4))


def _modules_for(kernel, names):
    """Module files (in load order) for names and their dependencies (modules.dep)."""
    moddir = os.path.join(kernel.tree(), "lib", "modules", kernel.release)
    deps = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            mod, _, rest = line.partition(":")
            deps[mod] = rest.split()
    by_name = {}
    for mod in deps:
        base = os.path.basename(mod).split(".ko")[0].replace("-", "_")
        by_name[base] = mod
    order = []

    def add(mod):
        if mod in order:
            return
        for d in reversed(deps.get(mod, [])):
            add(d)
        order.append(mod)
    for name in names:
        if name in by_name:  # absent: built into this kernel
            add(by_name[name])
    return [os.path.join(moddir, m) for m in order]


INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if ! mount -t ext4 /dev/vda /newroot; then
  echo "@@BTVM-FATAL no root disk (modules: $(ls /modules))"; poweroff -f
fi
mkdir -p /newroot/opt/bindtrace
tar -xf /payload.tar -C /newroot/opt/bindtrace
cp /job.json /newroot/job.json
mount --move /dev /newroot/dev
umount /proc
exec switch_root /newroot /bin/sh /opt/bindtrace/tests/vm/guest_init.sh
"""


def head_commit():
    return out(["git", "-C", ROOT, "rev-parse", "HEAD"]).strip()


def payload_tar(commit="HEAD"):
    """git archive of the commit under test: exactly what is committed, nothing else."""
    return subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", commit],
                          check=True, capture_output=True).stdout


def initrd(kernel, rootfs, job, payload):
    """newc cpio: busybox (from the guest's own rootfs), modules, payload, job."""
    buf = io.BytesIO()
    with open(os.path.join(rootfs, "usr", "bin", "busybox"), "rb") as f:
        busybox = f.read()
    for d in ("bin", "modules", "dev"):
        _cpio_entry(buf, d, 0o40755)
    _cpio_entry(buf, "dev/console", 0o20600)  # char 5,1 set below is not needed: devtmpfs
    _cpio_entry(buf, "bin/busybox", 0o100755, busybox)
    _cpio_entry(buf, "init", 0o100755, INIT.encode())
    mods = _modules_for(kernel, ["virtio_pci", "virtio_blk", "ext4", "crc32c_generic",
                                 "crc32c_intel"])
    for i, m in enumerate(mods):
        data = open(m, "rb").read()
        if m.endswith(".xz"):
            data = lzma.decompress(data)
        name = os.path.basename(m).split(".ko")[0]
        _cpio_entry(buf, "modules/%02d-%s.ko" % (i, name), 0o100644, data)
    _cpio_entry(buf, "payload.tar", 0o100644, payload)
    _cpio_entry(buf, "job.json", 0o100644, json.dumps(job).encode())
    _cpio_entry(buf, "TRAILER!!!", 0)
    return buf.getvalue()


# ---------------------------------------------------------------- guests

class Guest(object):
    """One boot: a kernel on an architecture, a CPU model, and the job to run."""

    def __init__(self, name, arch, kernel, cpu, job, image_kernels, smp=2, qemu_args=()):
        self.name, self.arch, self.kernel, self.cpu, self.smp = name, arch, kernel, cpu, smp
        self.qemu_args = list(qemu_args)
        self.job = dict(job, guest=name)
        self.image_kernels = image_kernels

    def qemu_cmd(self, img, kernel_path, initrd_path):
        common = ["-smp", str(self.smp), "-m", "2048", "-nographic", "-no-reboot", "-snapshot",
                  "-nodefaults", "-serial", "stdio", "-kernel", kernel_path, "-initrd",
                  initrd_path, "-drive", "file=%s,if=virtio,format=raw" % img] + self.qemu_args
        # quiet: kernel messages would cut through the result lines on the console
        append = "panic=-1 quiet loglevel=1 rdinit=/init"
        if self.arch == "x86_64":
            return ["qemu-system-x86_64", "-accel", "tcg", "-cpu", self.cpu] + common + \
                ["-append", "console=ttyS0 " + append]
        return ["qemu-system-aarch64", "-M", "virt", "-accel", "tcg", "-cpu", self.cpu] + \
            common + ["-append", "console=ttyAMA0 " + append]

    def boot(self, workdir, timeout):
        """Build what is missing, boot, return (results dict, console text, seconds)."""
        img = image(self.arch, self.image_kernels)
        rdir, _ = rootfs(self.arch)
        rd = os.path.join(workdir, "%s.initrd" % self.name)
        with open(rd, "wb") as f:
            f.write(initrd(self.kernel, rdir, self.job, payload_tar()))
        cmd = self.qemu_cmd(img, self.kernel.vmlinuz(), rd)
        log("boot %s: %s" % (self.name, " ".join(cmd)))
        t0 = time.monotonic()
        console = os.path.join(workdir, "%s.console" % self.name)
        with open(console, "wb") as f:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        secs = time.monotonic() - t0
        text = open(console, "rb").read().decode("utf-8", "replace")
        log("%s finished in %.0f s (qemu rc %s)" % (self.name, secs, proc.returncode))
        return parse(text), text, secs


def parse(text):
    """Marked lines -> {"cases": {(rung, nodeid): result}, "facts": [...], "done": bool,
    "corrupt": n}. A line is `@@BTVM <json> <crc32>`: a line cut by a kernel message
    fails its checksum and is counted, never half-read."""
    res = {"cases": {}, "facts": [], "records": {}, "done": False, "corrupt": 0, "fatal": [],
           "run_errors": {}}
    for line in text.splitlines():
        line = line.strip("\r")
        i = line.find(MARK)
        if line.find("@@BTVM-FATAL") >= 0:
            res["fatal"].append(line)
            continue
        if i < 0:
            continue
        body, _, crc = line[i + len(MARK):].rpartition(" ")
        if "%08x" % (zlib.crc32(body.encode()) & 0xffffffff) != crc.strip():
            res["corrupt"] += 1
            continue
        msg = json.loads(body)
        kind = msg.pop("kind")
        if kind == "case":
            res["cases"][(msg["rung"], msg["nodeid"])] = msg
        elif kind == "facts":
            res["facts"].append(msg)
        elif kind == "records":
            res["records"][msg["rung"]] = msg
        elif kind == "run_error":
            res["run_errors"][msg["rung"]] = msg["text"]
        elif kind == "bench":
            res["bench"] = msg
        elif kind == "done":
            res["done"] = True
    return res
