"""bcc calibration: which values are kernel pointers, for every paging layout
(the 5-level LA57 direct map starts at 0xff11..., below 0xffff000000000000)."""
import pytest

from bindtrace.bcc import calibrate as bc


@pytest.mark.parametrize("machine,task,start", [
    ("x86_64", 0xffff888003a1c000, 0xffff800000000000),   # 4-level, no KASLR
    ("x86_64", 0xffff9e2c41a3b280, 0xffff800000000000),   # 4-level, KASLR direct map
    ("x86_64", 0xffffc90000a1c000, 0xffff800000000000),   # 4-level, a high direct map
    ("x86_64", 0xff11000003a1c000, 0xff00000000000000),   # 5-level (LA57), as in the 6.1 guest
    ("x86_64", 0xff4a6e8f03a1c000, 0xff00000000000000),   # 5-level, KASLR
    ("aarch64", 0xffff00000a1c2000, 0xffff000000000000),  # 48-bit VA linear map
    ("aarch64", 0xfff000000a1c2000, 0xfff0000000000000),  # 52-bit VA
    ("aarch64", 0xffffff800a1c2000, 0xffffff8000000000),  # 39-bit VA
    ("riscv64", 0xffffaf8000a1c200, 0xffff800000000000),  # unknown: sign extension of the pointer
])
def test_kernel_half_from_a_known_kernel_pointer(machine, task, start):
    assert bc.kernel_half(task, machine) == start


def test_user_address_is_refused():
    with pytest.raises(bc.CalibrationError):
        bc.kernel_half(0x00007ffd12345678, "riscv64")


def test_is_kptr_follows_the_running_kernels_layout(monkeypatch):
    la57_sock, la57_text = 0xff110000045a8c40, 0xffffffff81e0a000
    monkeypatch.setattr(bc, "kernel_start", bc.kernel_half(0xff11000003a1c000, "x86_64"))
    assert bc.is_kptr(la57_sock) and bc.is_kptr(la57_text)
    assert not bc.is_kptr(0x00007ffd12345678)      # user space
    assert not bc.is_kptr(la57_sock + 4)            # not 8-aligned: a field, not a pointer
    assert not bc.is_kptr(0xfffffffffffffff2)       # -ENOENT as a pointer
    monkeypatch.setattr(bc, "kernel_start", bc.kernel_half(0xffff888003a1c000, "x86_64"))
    assert not bc.is_kptr(la57_sock)                # non-canonical with 4-level paging
    assert bc.is_kptr(0xffff888004000000)


class FakeOracle(bc.Oracle):
    """The oracle's task report, without BPF: current_task() sets the layout."""

    def __init__(self, task):
        self.task_addr, self.cache, self.reads, self.task = task, {}, 0, None

    def read_many(self, items):
        self.task = self.task_addr
        return [None for _ in items]


def test_current_task_sets_the_layout(monkeypatch):
    monkeypatch.setattr(bc, "kernel_start", 0xffff000000000000)
    monkeypatch.setattr(bc.os, "uname", lambda: type("U", (), {"machine": "x86_64"})())
    assert FakeOracle(0xff11000003a1c000).current_task() == 0xff11000003a1c000
    assert bc.kernel_start == 0xff00000000000000
    assert bc.is_kptr(0xff11000003a1c000)
