"""C sources of the bcc backend, compiled by bcc on the host at run time.

Two programs:
- ORACLE_C: a calibration helper. When the calibrating thread calls getppid(),
  it copies the kernel memory userspace asked for into a map, so userspace can
  find struct offsets of the RUNNING kernel by searching for values it knows.
- MAIN_C: the bind tracer. It only reads struct fields whose offsets the
  calibration verified (HAVE_* defines); everything else stays zero and is
  reported as null. Its records use the layout of bpf/bind.h, so events.py
  decodes both backends.
The kernel headers bcc compiles against are used for nothing but the helpers'
declarations: no struct offset is taken from them."""

from ..bpf_object import BIND_H

# bpf/bind.h itself (embedded by `make bpf`): records, option and stats numbers
RECORDS_C = BIND_H

ORACLE_CHUNK = 4096
ORACLE_SLOTS = 16

ORACLE_C = r"""
#define CHUNK %(chunk)d
#define SLOTS %(slots)d
struct oreq { u64 addr; u32 len; u32 tid; };
struct oout { s64 rc; u64 task; u8 data[CHUNK]; };
BPF_ARRAY(oreq, struct oreq, SLOTS);
BPF_ARRAY(oout, struct oout, SLOTS);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{
    u32 tid = bpf_get_current_pid_tgid();
    #pragma unroll
    for (int i = 0; i < SLOTS; i++) {
        int k = i;
        struct oreq *r = oreq.lookup(&k);
        if (!r || r->tid != tid)
            return 0;
        struct oout *o = oout.lookup(&k);
        if (!o)
            return 0;
        o->task = bpf_get_current_task();
        u32 len = r->len;
        if (len == 0)
            return 0;
        if (len > CHUNK)
            len = CHUNK;
        o->rc = bpf_probe_read_kernel(o->data, len, (void *)r->addr);
    }
    return 0;
}
""" % {"chunk": ORACLE_CHUNK, "slots": ORACLE_SLOTS}

MAIN_C = r"""
#define AF_INET 2
#define AF_INET6 10
""" + RECORDS_C + r"""
struct inflight { u64 uaddr; u32 fd; u32 addrlen; };

BPF_HASH(inflight, u32, struct inflight, 10240);
BPF_PERF_OUTPUT(events);
BPF_HASH(summary, struct bind_key, struct bind_stats, SUMMARY_ENTRIES);
BPF_ARRAY(ports, u64, 1024);
BPF_PERCPU_ARRAY(stats, u64, STAT_MAX);  // every slot of bind.h, read back by maps.read_stats
BPF_PERCPU_ARRAY(scratch, struct bind_event, 1);
/* slot 0: the self-test thread; its binds skip the filters and always go to
 * the perf buffer, so the backend can check every field against the truth */
BPF_ARRAY(selftest, u32, 1);

static __always_inline void stat_inc(u32 slot)
{
    u64 *v = stats.lookup(&slot);
    if (v)
        *v += 1;
}

static __always_inline bool port_wanted(u16 port)
{
    u32 idx = port >> 6;
    u64 *word = ports.lookup(&idx);
    return word && (*word & (1ULL << (port & 63)));
}

/* kread64/32/16/8: one value of that width at a kernel address, 0 if unreadable */
#define KREAD(bits) \
static __always_inline u##bits kread##bits(u64 addr) \
{ \
    u##bits v = 0; \
    bpf_probe_read_kernel(&v, sizeof(v), (void *)addr); \
    return v; \
}
KREAD(64)
KREAD(32)
KREAD(16)
KREAD(8)

static __always_inline bool is_selftest(u32 tid)
{
    int zero = 0;
    u32 *t = selftest.lookup(&zero);
    return t && *t && *t == tid;
}

TRACEPOINT_PROBE(syscalls, sys_enter_bind)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;

    if (!is_selftest(tid)) {
#if FILTER_PID
        if ((pid_tgid >> 32) != FILTER_PID_VALUE)
            return 0;
#endif
#if FILTER_UID
        if ((u32)bpf_get_current_uid_gid() != FILTER_UID_VALUE)
            return 0;
#endif
#if FILTER_COMM
        char comm[TASK_COMM_LEN] = {};
        char want[TASK_COMM_LEN] = FILTER_COMM_VALUE;
        bpf_get_current_comm(comm, sizeof(comm));
        #pragma unroll
        for (int i = 0; i < TASK_COMM_LEN; i++) {
            if (comm[i] != want[i])
                return 0;
            if (comm[i] == 0)
                break;
        }
#endif
    }
    struct inflight in = {};
    in.uaddr = (u64)args->umyaddr;
    in.fd = (u32)args->fd;
    in.addrlen = (u32)args->addrlen;
    if (inflight.update(&tid, &in))
        stat_inc(STAT_INFLIGHT_FULL);
    return 0;
}

/* bind.bpf.c's summary_add, in bcc's dialect: a client bind (port 0 asked on
 * a port protocol) is counted under its key without the port, with the range
 * of assigned ports in port_min/port_max */
static __always_inline bool port_proto(u16 proto)
{
    return proto == 6 || proto == 17 || proto == 132 || proto == 136 || proto == 262;
}

static __always_inline void stats_port(struct bind_stats *st, u16 port)
{
    if (port < st->port_min)
        st->port_min = port;
    if (port > st->port_max)
        st->port_max = port;
}

static __always_inline void summary_add(struct bind_key *k, u64 now)
{
    u16 port = k->port;
    u32 pid = k->pid, ppid = k->ppid;
    if (k->req_port == 0 && port_proto(k->proto)) {
        k->port = 0;
        k->pid = 0;
        k->ppid = 0;
    }
    struct bind_stats *st = summary.lookup(k);
    if (st) {
        __sync_fetch_and_add(&st->count, 1);
        st->last_ts = now;
        stats_port(st, port);
        return;
    }
    struct bind_stats init = {};
    init.count = 1;
    init.first_ts = now;
    init.last_ts = now;
    init.port_min = port;
    init.port_max = port;
    init.first_pid = pid;
    init.first_ppid = ppid;
    if (summary.insert(k, &init) == 0)
        return;
    /* another CPU inserted the same key meanwhile, or the map is full */
    st = summary.lookup(k);
    if (st) {
        __sync_fetch_and_add(&st->count, 1);
        st->last_ts = now;
        stats_port(st, port);
    } else {
        stat_inc(STAT_SUMMARY_FULL);
    }
}

#ifdef HAVE_SOCK
/* task -> files -> fdt -> fd[] -> file -> socket -> sock, offsets calibrated */
static __always_inline u64 fd_to_sock(u32 fd)
{
    u64 task = bpf_get_current_task();
    u64 files = kread64(task + OFF_TASK_FILES);
    if (!files)
        return 0;
    u64 fdt = kread64(files + OFF_FILES_FDT);
    if (!fdt || fd >= kread32(fdt + OFF_FDT_MAX))
        return 0;
    u64 fds = kread64(fdt + OFF_FDT_FD);
    u64 file = kread64(fds + (u64)fd * 8);
    if (!file)
        return 0;
    u64 sock = kread64(file + OFF_FILE_PRIVATE);
    /* private_data of a non-socket file is something else: a socket points back */
    if (!sock || kread64(sock + OFF_SOCKET_FILE) != file)
        return 0;
    return kread64(sock + OFF_SOCKET_SK);
}
#endif

TRACEPOINT_PROBE(syscalls, sys_exit_bind)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct inflight *in = inflight.lookup(&tid);
    if (!in)
        return 0;
    struct inflight call = *in;
    inflight.delete(&tid);
    bool self = is_selftest(tid);

    s32 ret = (s32)args->ret;
    if (!self && IGNORE_ERRORS && ret != 0)
        return 0;

    int zero = 0;
    struct bind_event *e = scratch.lookup(&zero);
    if (!e)
        return 0;
    struct bind_key *k = &e->key;
    __builtin_memset(k, 0, sizeof(*k));

    /* the requested sockaddr, as the caller passed it (user memory: reliable) */
    u16 req_family = 0;
    if (call.addrlen >= 4) {
        bpf_probe_read_user(&req_family, 2, (void *)call.uaddr);
        u16 rport = 0;
        bpf_probe_read_user(&rport, 2, (void *)(call.uaddr + 2));
        k->req_port = ntohs(rport);
        if (req_family == AF_INET6 && call.addrlen >= 24)
            bpf_probe_read_user(k->req_addr, 16, (void *)(call.uaddr + 8));
        else if (req_family == AF_INET && call.addrlen >= 8)
            bpf_probe_read_user(k->req_addr, 4, (void *)(call.uaddr + 4));
    }

    u16 family = req_family;
#ifdef HAVE_SOCK
    u64 sk = fd_to_sock(call.fd);
    if (!sk)
        return 0;
#ifdef OFF_SK_FAMILY
    family = kread16(sk + OFF_SK_FAMILY);
#endif
#endif
    if (family != AF_INET && family != AF_INET6)
        return 0; /* unix, netlink, packet...: not a network bind */
    k->family = family == AF_INET ? 4 : 6;
    if (family == AF_INET6 && req_family != AF_INET6)
        __builtin_memset(k->req_addr, 0, sizeof(k->req_addr));

#if defined(HAVE_SOCK) && defined(OFF_SK_NET) && defined(OFF_NET_INUM)
    k->netns = kread32(kread64(sk + OFF_SK_NET) + OFF_NET_INUM);
#endif
#if FILTER_NETNS
    if (!self && k->netns != FILTER_NETNS_VALUE)
        return 0;
#endif
#if defined(HAVE_SOCK) && defined(OFF_SK_NUM)
    k->port = kread16(sk + OFF_SK_NUM);
#endif
#if FILTER_PORTS
    if (!self && !port_wanted(k->port) && !port_wanted(k->req_port))
        return 0;
#endif
#ifdef HAVE_SOCK
    if (family == AF_INET) {
#ifdef OFF_SK_RCV_SADDR
        bpf_probe_read_kernel(k->addr, 4, (void *)(sk + OFF_SK_RCV_SADDR));
#endif
    } else {
#ifdef OFF_SK_V6_RCV_SADDR
        bpf_probe_read_kernel(k->addr, 16, (void *)(sk + OFF_SK_V6_RCV_SADDR));
#endif
    }
#ifdef OFF_SK_PROTOCOL
    k->proto = SK_PROTOCOL_SIZE == 1 ? kread8(sk + OFF_SK_PROTOCOL) : kread16(sk + OFF_SK_PROTOCOL);
#endif
#ifdef HAVE_OPTS
    u8 opts = 0;
    if (kread8(sk + OPT_REUSEADDR_BYTE) & (1 << OPT_REUSEADDR_BIT))
        opts |= OPT_REUSEADDR;
    if (kread8(sk + OPT_REUSEPORT_BYTE) & (1 << OPT_REUSEPORT_BIT))
        opts |= OPT_REUSEPORT;
    if (kread8(sk + OPT_FREEBIND_BYTE) & (1 << OPT_FREEBIND_BIT))
        opts |= OPT_FREEBIND;
    if (kread8(sk + OPT_TRANSPARENT_BYTE) & (1 << OPT_TRANSPARENT_BIT))
        opts |= OPT_TRANSPARENT;
    if (kread8(sk + OPT_NO_PORT_BYTE) & (1 << OPT_NO_PORT_BIT))
        opts |= OPT_NO_PORT;
    k->opts = opts;
#endif
#ifdef OFF_SK_BOUND_DEV_IF
    k->bound_dev_if = kread32(sk + OFF_SK_BOUND_DEV_IF);
#endif
#endif /* HAVE_SOCK */
    k->ret = ret;
    k->pid = pid_tgid >> 32;
    u64 ugid = bpf_get_current_uid_gid();
    k->uid = (u32)ugid;
    k->gid = ugid >> 32;
    u64 task = bpf_get_current_task();
#if defined(OFF_TASK_REAL_PARENT) && defined(OFF_TASK_TGID)
    k->ppid = kread32(kread64(task + OFF_TASK_REAL_PARENT) + OFF_TASK_TGID);
#endif
#if defined(OFF_TASK_NSPROXY) && defined(OFF_NSPROXY_MNT) && defined(OFF_MNT_INUM)
    k->mntns = kread32(kread64(kread64(task + OFF_TASK_NSPROXY) + OFF_NSPROXY_MNT) + OFF_MNT_INUM);
#endif
    k->cgroup_id = bpf_get_current_cgroup_id();
    bpf_get_current_comm(k->comm, sizeof(k->comm));

    u64 now = bpf_ktime_get_boot_ns();
    e->ts = now;
    e->tid = tid;
    if (self) {
        events.perf_submit(args, e, sizeof(*e));
        return 0;
    }
    stat_inc(STAT_SEEN);

#if MODE_SUMMARY
    summary_add(k, now);
    return 0;
#else
    if (events.perf_submit(args, e, sizeof(*e)))
        stat_inc(STAT_LOST);
    return 0;
#endif
}
"""


def c_string(text):
    """A C char-array initializer for a comm filter (no quoting pitfalls)."""
    data = list(text.encode("utf-8")[:15]) + [0]
    return "{" + ", ".join(str(b) for b in data) + "}"


def render_main(cfg, netns_inode, offsets, summary_entries):
    """MAIN_C with the filters and the verified offsets as defines."""
    defines = {
        "SUMMARY_ENTRIES": summary_entries,
        "MODE_SUMMARY": 1 if cfg.mode == "summary" else 0,
        "IGNORE_ERRORS": 1 if cfg.ignore_errors else 0,
        "FILTER_PID": 1 if cfg.pid else 0, "FILTER_PID_VALUE": "%du" % (cfg.pid or 0),
        "FILTER_UID": 1 if cfg.uid is not None else 0,
        "FILTER_UID_VALUE": "%du" % (cfg.uid or 0),
        "FILTER_NETNS": 1 if netns_inode else 0,
        "FILTER_NETNS_VALUE": "%du" % (netns_inode or 0),
        "FILTER_PORTS": 1 if cfg.ports else 0,
        "FILTER_COMM": 1 if cfg.comm else 0,
        "FILTER_COMM_VALUE": c_string(cfg.comm or ""),
    }
    for name, value in sorted(offsets.items()):
        defines[name] = value
    head = "".join("#define %s %s\n" % (k, v) for k, v in sorted(defines.items()))
    return head + MAIN_C
