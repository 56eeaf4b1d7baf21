"""A rung the kernel refuses for the whole boot (hooks.remember_refusal) is
skipped by `auto` until the next boot, with the refusal's own words; anything
that may pass next time is not remembered."""
import errno
import json
import os

from bindtrace import hooks

FEXIT = [r for r in hooks.RUNGS if r.name == "fexit"][0]
KPROBE = [r for r in hooks.RUNGS if r.name == "kprobe"][0]
WHY = "the kernel refused bind_fexit4 (fexit on inet_bind/inet6_bind): Operation not permitted"


def test_a_lasting_refusal_is_remembered_word_for_word(tmp_path):
    path = str(tmp_path / "run" / "refused-hooks.json")
    assert hooks.refused_this_boot(FEXIT, path) is None
    hooks.remember_refusal(FEXIT, -errno.EPERM, WHY, path)
    hooks.remember_refusal(KPROBE, 524, "no kprobes", path)
    assert hooks.refused_this_boot(FEXIT, path) == WHY
    assert hooks.refused_this_boot(KPROBE, path) == "no kprobes"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [n for n in os.listdir(os.path.dirname(path))] == ["refused-hooks.json"]


def test_refusals_that_may_pass_next_time_are_not_remembered(tmp_path):
    path = str(tmp_path / "refused-hooks.json")
    for err in (errno.EINVAL, errno.EACCES, errno.E2BIG, errno.ENOMEM, errno.ENOENT):
        hooks.remember_refusal(FEXIT, -err, WHY, path)
    assert not os.path.exists(path)


def test_another_boot_or_kernel_forgets(tmp_path):
    path = str(tmp_path / "refused-hooks.json")
    hooks.remember_refusal(FEXIT, errno.EPERM, WHY, path)
    with open(path) as f:
        data = json.load(f)
    boot, release = data["boot"].split(" ", 1)
    assert boot == open(hooks.BOOT_ID).read().strip() and release == os.uname().release
    for other in ("00000000-0000-0000-0000-000000000000 " + release, boot + " 5.10.0-old"):
        with open(path, "w") as f:
            json.dump(dict(data, boot=other), f)
        assert hooks.refused_this_boot(FEXIT, path) is None
    with open(path, "w") as f:
        f.write("{not json")
    assert hooks.refused_this_boot(FEXIT, path) is None
