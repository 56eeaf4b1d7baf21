"""The embedded per-architecture objects: one for x86_64 and one for arm64
(aarch64), each built for its architecture's saved registers. Read from the
objects themselves (ELF sections, the BTF clang emitted for the types the
program uses), not from the build files."""
import struct

import pytest

from bindtrace import bpf_object, hooks

EM_BPF = 247
BTF_KIND_STRUCT, BTF_KIND_UNION = 4, 5
# bytes after the common 12-byte header, per kind: (fixed, per vlen item)
KIND_EXTRA = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0),
              8: (0, 0), 9: (0, 0), 10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8), 14: (4, 0),
              15: (0, 12), 16: (0, 0), 17: (4, 0), 18: (0, 0), 19: (0, 12)}


def sections(elf):
    """{name: bytes} of an ELF64 little-endian relocatable object."""
    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[5] == 1, "not an ELF64 LE object"
    e_machine, = struct.unpack_from("<H", elf, 18)
    assert e_machine == EM_BPF
    shoff, = struct.unpack_from("<Q", elf, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 58)
    heads = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    strtab = heads[shstrndx]
    names = elf[strtab[4]:strtab[4] + strtab[5]]
    out = {}
    for h in heads:
        name = names[h[0]:names.index(b"\0", h[0])].decode()
        out[name] = elf[h[4]:h[4] + h[5]]
    return out


def btf_structs(btf):
    """{struct name: [member names]} from a .BTF section."""
    magic, _ver, _flags, hdr_len, type_off, type_len, str_off, _str_len = struct.unpack_from(
        "<HBBIIIII", btf, 0)
    assert magic == 0xEB9F
    types = btf[hdr_len + type_off:hdr_len + type_off + type_len]
    strs = btf[hdr_len + str_off:]

    def name(off):
        return strs[off:strs.index(b"\0", off)].decode()

    out, pos = {}, 0
    while pos < len(types):
        name_off, info, _size = struct.unpack_from("<III", types, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12
        if kind in (BTF_KIND_STRUCT, BTF_KIND_UNION):
            out[name(name_off)] = [name(struct.unpack_from("<I", types, pos + 12 * i)[0])
                                   for i in range(vlen)]
        fixed, per = KIND_EXTRA[kind]
        pos += fixed + per * vlen
    return out


@pytest.mark.parametrize("machine,members,kretprobe", [
    ("x86_64", {"di", "si", "dx", "ax"}, "kretprobe/__x64_sys_bind"),
    ("aarch64", {"regs", "orig_x0"}, "kretprobe/__arm64_sys_bind"),
])
def test_each_architecture_has_its_object(machine, members, kretprobe):
    secs = sections(bpf_object.object_bytes(machine))
    structs = btf_structs(secs[".BTF"])
    # the saved registers the program reads at syscall exit are this architecture's:
    # arm64 reads the first argument from orig_x0 (x0 holds the return value by then)
    assert set(structs["pt_regs"]) == members
    # every rung's entry points are in the object, the kretprobe on this arch's syscall
    assert {"tracepoint/syscalls/sys_exit_bind", kretprobe, "fexit/inet_bind",
            "fexit/inet6_bind"} <= set(secs)
    # the record body reads the same socket fields on both
    assert set(structs["sock_common"]) >= {"skc_family", "skc_rcv_saddr", "skc_v6_rcv_saddr",
                                           "skc_bound_dev_if", "skc_net"}


def test_both_objects_carry_every_program_of_the_ladder():
    for machine in ("x86_64", "aarch64"):
        data = bpf_object.object_bytes(machine)
        for program in hooks.ALL_PROGRAMS:
            assert b"\0" + program + b"\0" in data, (machine, program)


def test_no_object_for_another_architecture_says_so(monkeypatch):
    from bindtrace import BindtraceError, preflight
    monkeypatch.setattr(bpf_object, "machine", lambda: "riscv64")
    with pytest.raises(BindtraceError) as exc:
        preflight.check_object_arch()
    assert str(exc.value) == ("unsupported: no bindtrace object for riscv64 (objects exist for "
                              "aarch64, x86_64); use backend bcc on this host")
