// SPDX-License-Identifier: GPL-2.0
/* bindtrace kernel side: one record body (record_bind) behind three hooks,
 * the loader picks the cheapest the kernel allows (the hook ladder):
 *   fexit on inet_bind/inet6_bind  -> the socket and sockaddr as arguments
 *   kretprobe on the bind syscall  -> arguments from the saved user registers
 *   the sys_exit_bind tracepoint   -> arguments from the saved user registers
 * At syscall exit the call's arguments (fd, sockaddr pointer, addrlen) are
 * still in the caller's saved registers (bpf_task_pt_regs), so there is no
 * entry program and no per-thread map. The record reads the requested
 * sockaddr and the bound state from the socket (CO-RE), then either emits an
 * event (ring buffer) or counts it in the summary hash.
 * Built once per architecture: -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64
 * (core_types.h: where the saved registers hold the arguments). */
#include "core_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "bind.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define SOCK_BINDPORT_LOCK 8 /* include/net/sock.h: sk_userlocks */

/* inet_flags bit numbers (include/net/inet_sock.h, 6.6+) */
#define INET_FLAGS_FREEBIND 11
#define INET_FLAGS_TRANSPARENT 15
#define INET_FLAGS_BIND_ADDRESS_NO_PORT 18

const volatile struct bind_config cfg = {};

/* Linux 6.2+: turn a kernel address into a typed read-only BTF pointer, so
 * field reads are plain fault-safe loads instead of a helper call each (a
 * quarter of the per-bind cost). Weak: older kernels load bind_exit_compat. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define CAST(ptr, type) ((type *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bind_key);
	__type(value, struct bind_stats);
} summary SEC(".maps");

/* summary mode: each CPU's run of repeated binds (bind.h struct bind_run) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bind_run);
} runs SEC(".maps");

/* every socket that listened during the window (both modes): the host marks
 * the binds that became listeners, and keeps listeners that came and went */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listen_key);
	__type(value, struct listen_stats);
} listens SEC(".maps");

/* bitmap of ports to keep: 1024 x 64 bits */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* per-CPU scratch: the event under construction, and bulk copies of the
 * socket's sock_common and the caller's sockaddr (one helper call each
 * instead of one per field: the exit program is the whole per-bind cost) */
#define SKC_BUF 256
struct scratch {
	struct bind_event e;
	__u8 skc[SKC_BUF];
	__u64 uaddr[4]; /* words: the address copies below are two loads, not 16 */
	__u64 tick;      /* summary clock (tick_clock): the jiffy of the last read */
	__u64 tick_ns;   /* and the boot-time clock read then */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);
	if (v)
		*v += 1;
}

static __always_inline bool port_wanted(__u16 port)
{
	__u32 idx = port >> 6;
	__u64 *word = bpf_map_lookup_elem(&ports, &idx);
	return word && (*word & (1ULL << (port & 63)));
}

/* One 8-byte word of a NUL-terminated string, kept up to the first NUL and
 * zero from there (*end: a NUL was in an earlier word). Bytes lie in memory
 * order in a little-endian word (x86_64, arm64), so the first NUL is the
 * lowest zero byte: the lowest bit the borrow test sets (its false positives
 * only ever sit above a real zero byte). */
static __always_inline __u64 up_to_nul(__u64 w, bool *end)
{
	if (*end)
		return 0;
	__u64 z = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;
	if (!z)
		return w;
	*end = true;
	return w & (((z & -z) >> 7) - 1);
}

/* task->comm as bpf_get_current_comm gives it: up to the first NUL, zero
 * after, the last byte always NUL. Two 8-byte loads instead of a load and a
 * test per byte (29 of 525 instructions per bind on fexit, for a 9-byte name). */
static __always_inline void copy_comm(char *dst, const char *src)
{
	const __u64 *s = (const __u64 *)src;
	__u64 *d = (__u64 *)dst;
	bool end = false;
	_Static_assert(TASK_COMM_LEN == 16, "copy_comm copies two words");
	d[0] = up_to_nul(s[0], &end);
	d[1] = up_to_nul(s[1] & 0x00ffffffffffffffULL, &end);
}

static __always_inline bool comm_matches(const char *comm)
{
#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != cfg.comm[i])
			return false;
		if (comm[i] == 0)
			return true;
	}
	return true;
}

/* The socket open on fd in task (NULL if none), and its file in *filep. */
static __always_inline struct sock *fd_to_sock(struct task_struct *task, __u32 fd,
					       struct file **filep, bool fast)
{
	struct fdtable *fdt = task->files->fdt;  /* BTF pointers: plain loads */
	if (fd >= fdt->max_fds)
		return 0;
	struct file **slot = &fdt->fd[fd];
	struct file *file = 0;
	if (fast) {
		/* the slot read as the first entry of a files_struct's own fd array
		 * placed over it: a plain fault-safe load instead of a helper call */
		struct files_struct *over = CAST((char *)slot -
						 bpf_core_field_offset(struct files_struct, fd_array),
						 struct files_struct);
		file = over->fd_array[0];
	} else {
		bpf_probe_read_kernel(&file, sizeof(file), slot);
	}
	*filep = file;
	if (!file)
		return 0;
	if (fast) {
		struct socket *sock = CAST(CAST(file, struct file)->private_data, struct socket);
		/* private_data of a non-socket file is something else: a socket points back */
		if (!sock || sock->file != file)
			return 0;
		return sock->sk;
	}
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return 0;
	return BPF_CORE_READ(sock, sk);
}

/* in: the socket as an inet_sock (fast: the typed view); skc: its sock_common
 * (fast: within in; compat: the bulk copy) */
static __always_inline __u8 read_opts(struct inet_sock *in, struct sock_common *skc, bool fast)
{
	__u8 opts = 0;

	if (bpf_core_field_exists(in->inet_flags)) {
		unsigned long flags = fast ? in->inet_flags : BPF_CORE_READ(in, inet_flags);
		if (flags & (1UL << INET_FLAGS_FREEBIND))
			opts |= OPT_FREEBIND;
		if (flags & (1UL << INET_FLAGS_TRANSPARENT))
			opts |= OPT_TRANSPARENT;
		if (flags & (1UL << INET_FLAGS_BIND_ADDRESS_NO_PORT))
			opts |= OPT_NO_PORT;
	} else {
		struct inet_sock___o *old = (void *)in;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, freebind))
			opts |= OPT_FREEBIND;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, transparent))
			opts |= OPT_TRANSPARENT;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port))
			opts |= OPT_NO_PORT;
	}
	/* plain (relocated) loads: of the typed view, or of the bulk copy */
	if (BPF_CORE_READ_BITFIELD(skc, skc_reuse))
		opts |= OPT_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD(skc, skc_reuseport))
		opts |= OPT_REUSEPORT;
	return opts;
}

/* protocols whose binds name a port (a raw socket's "port" is its protocol) */
static __always_inline bool port_proto(__u16 proto)
{
	return proto == 6 || proto == 17 || proto == 132 || proto == 136 || proto == 262;
}

/* one more bind under an existing key. Not atomic beyond the count: threads
 * of one process binding on two CPUs in the same instant may leave the port
 * range or last_ts one update short (count is exact). */
static __always_inline void stats_update(struct bind_stats *st, __u64 now, __u16 port)
{
	__sync_fetch_and_add(&st->count, 1);
	if (now > st->last_ts)  /* two CPUs' tick stamps need not be in order */
		st->last_ts = now;
	if (port < st->port_min)
		st->port_min = port;
	if (port > st->port_max)
		st->port_max = port;
}

/* Summary mode's clock for first/last seen: the boot-time clock, read once per
 * tick per CPU and kept in the scratch map (bpf_jiffies64 is a plain load once
 * JITed; a clock read is a quarter of a bind's program cost with this
 * kernel's mitigations). A stamp is the boot-time clock at or before the bind,
 * less than one tick (1/CONFIG_HZ s) before it; events keep the exact clock. */
static __always_inline __u64 tick_clock(struct scratch *sc)
{
	__u64 tick = bpf_jiffies64();
	if (sc->tick != tick) {
		sc->tick = tick;
		sc->tick_ns = bpf_ktime_get_boot_ns();
	}
	return sc->tick_ns;
}

static __always_inline bool same_key(const struct bind_key *a, const struct bind_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
#pragma unroll
	for (int i = 0; i < sizeof(*a) / 8; i++)
		if (x[i] != y[i])
			return false;
	return true;
}
_Static_assert(sizeof(struct bind_key) % 8 == 0, "same_key compares 8 bytes at a time");

/* Summary mode: count the bind under its key. A client bind (port 0 asked,
 * the kernel picks one) is counted without its port, so a busy client makes
 * one key per identity instead of one per ephemeral port (bind.h).
 * A bind that repeats this CPU's run (same key, same tick) is only counted in
 * the run (bind.h struct bind_run); any other bind first adds the run to the
 * map, is counted in the map, and starts a new run. */
static __always_inline void summary_add(struct bind_key *k, __u64 now)
{
	__u16 port = k->port;
	__u32 pid = k->pid, ppid = k->ppid;
	if (k->req_port == 0 && port_proto(k->proto)) {
		k->port = 0;
		k->pid = 0;
		k->ppid = 0;
	}
	__u32 zero = 0;
	struct bind_run *run = bpf_map_lookup_elem(&runs, &zero);
	if (!run)
		return;
	struct bind_stats *rs = &run->stats;
	if (rs->last_ts == now && same_key(&run->key, k)) {
		rs->count++;
		if (port < rs->port_min)
			rs->port_min = port;
		if (port > rs->port_max)
			rs->port_max = port;
		return;
	}
	if (rs->count) {  /* the run ends: its binds go into the map */
		struct bind_stats *st = bpf_map_lookup_elem(&summary, &run->key);
		if (st) {
			__sync_fetch_and_add(&st->count, rs->count);
			if (rs->port_min < st->port_min)
				st->port_min = rs->port_min;
			if (rs->port_max > st->port_max)
				st->port_max = rs->port_max;
		}
	}
	rs->count = 0;
	rs->last_ts = 0;
	struct bind_stats *st = bpf_map_lookup_elem(&summary, k);
	if (!st) {
		struct bind_stats init = { .count = 1, .first_ts = now, .last_ts = now,
					   .port_min = port, .port_max = port, .first_pid = pid,
					   .first_ppid = ppid };
		if (bpf_map_update_elem(&summary, k, &init, BPF_NOEXIST) != 0) {
			/* another CPU inserted the same key meanwhile, or the map is full */
			st = bpf_map_lookup_elem(&summary, k);
			if (!st) {
				stat_inc(STAT_SUMMARY_FULL);
				return;
			}
			stats_update(st, now, port);
		}
	} else {
		stats_update(st, now, port);
	}
	__builtin_memcpy(&run->key, k, sizeof(*k));  /* this key is in the map: a new run */
	rs->last_ts = now;
	rs->port_min = port;
	rs->port_max = port;
}

/* A failed call with ignore_errors (the default) is dropped first, before
 * any helper call: it then costs its hook's floor and a compare. */
static __always_inline bool error_ignored(__s32 ret)
{
	return cfg.ignore_errors && ret != 0;
}

/* Filters that need no socket, cheapest first: is this caller's bind wanted? */
static __always_inline bool caller_wanted(struct task_struct *task)
{
	if (cfg.filter_pid && task->tgid != cfg.pid)
		return false;
	if (cfg.filter_uid && (__u32)bpf_get_current_uid_gid() != cfg.uid)
		return false;
	if (cfg.filter_comm) {
		char comm[TASK_COMM_LEN];
		bpf_get_current_comm(comm, sizeof(comm));
		if (!comm_matches(comm))
			return false;
	}
	return true;
}

static __always_inline long read_addr(void *dst, __u32 size, const void *src, bool user)
{
	return user ? bpf_probe_read_user(dst, size, src) : bpf_probe_read_kernel(dst, size, src);
}

/* The one record body every hook calls once it knows the socket: fills the
 * record and emits it (events) or counts it (summary).
 * sk: the socket after bind; uaddr/addrlen: the sockaddr the caller passed
 * (user memory for the syscall hooks, the kernel's copy for fexit). */
static __always_inline int record_bind(struct task_struct *task, struct sock *sk,
				       const void *uaddr, bool user_addr, __u32 addrlen,
				       __s32 ret, bool fast)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&scratch, &zero);
	if (!sc)
		return 0;
	/* fast: ONE typed view of the socket (an inet_sock begins with its sock,
	 * which begins with its sock_common), every field a plain fault-safe load */
	struct inet_sock *in = fast ? CAST(sk, struct inet_sock) : (struct inet_sock *)sk;
	struct sock_common *skc;
	if (fast) {
		skc = &in->sk.__sk_common;
	} else {
		/* one bulk copy instead of a helper call per field */
		__u32 skc_size = bpf_core_type_size(struct sock_common);
		if (skc_size > SKC_BUF)
			skc_size = SKC_BUF;
		if (bpf_probe_read_kernel(sc->skc, skc_size, sk))
			return 0;
		skc = (struct sock_common *)sc->skc;
	}
	__u16 family = skc->skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0; /* unix, netlink, packet...: not a network bind */

	struct bind_event *e = &sc->e;
	struct bind_key *k = &e->key;
	__builtin_memset(k, 0, sizeof(*k));

	k->netns = fast ? skc->skc_net.net->ns.inum : BPF_CORE_READ(skc, skc_net.net, ns.inum);
	if (cfg.filter_netns && k->netns != cfg.netns)
		return 0;

	k->port = bpf_ntohs(fast ? in->inet_sport : BPF_CORE_READ(in, inet_sport));
	if (family == AF_INET) {
		k->family = 4;
		__be32 a = skc->skc_rcv_saddr;
		__builtin_memcpy(k->addr, &a, 4);
	} else {
		k->family = 6;
		__builtin_memcpy(k->addr, &skc->skc_v6_rcv_saddr, 16);
	}
	k->proto = fast ? BPF_CORE_READ_BITFIELD(&in->sk, sk_protocol)
			: BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (ret == 0 && (k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP ||
			 k->proto == IPPROTO_UDPLITE)) {
		/* A successful TCP/UDP bind leaves exactly the requested sockaddr on
		 * the socket: inet_bind/inet6_bind store the requested address as
		 * the bound one, and set SOCK_BINDPORT_LOCK only when a port was
		 * asked for. No read of the caller's memory (the dearest step). */
		__u8 locks = fast ? BPF_CORE_READ_BITFIELD(&in->sk, sk_userlocks)
				  : BPF_CORE_READ_BITFIELD_PROBED(sk, sk_userlocks);
		k->req_port = (locks & SOCK_BINDPORT_LOCK) ? k->port : 0;
		__builtin_memcpy(k->req_addr, k->addr, 16);
	} else if (fast && !user_addr) {
		/* fexit: the kernel's own copy of the request, through a typed
		 * view: plain fault-safe loads instead of a helper call. addrlen
		 * says how much of it the caller gave. */
		const struct sockaddr_in6 *r = CAST(uaddr, struct sockaddr_in6);
		if (addrlen >= 4) {
			__u16 req_family = r->sin6_family;
			k->req_port = bpf_ntohs(r->sin6_port);
			if (req_family == AF_INET6 && addrlen >= 24) {
				const __u64 *a = (const __u64 *)r->sin6_addr.in6_u.u6_addr8;
				((__u64 *)k->req_addr)[0] = a[0];
				((__u64 *)k->req_addr)[1] = a[1];
			} else if (req_family == AF_INET && addrlen >= 8) {
				*(__u32 *)k->req_addr =
					CAST(uaddr, struct sockaddr_in)->sin_addr.s_addr;
			}
		}
	} else {
		/* the requested sockaddr, as the caller passed it: one fixed-size
		 * read (a sockaddr_in6); if that crosses the end of the caller's
		 * mapping, a sockaddr_in's worth. addrlen says how much of it is
		 * meaningful. On a failed bind this read is half the program's cost
		 * (~140 ns of ~300 here, bpf_stats; its size does not matter), and
		 * nothing else holds the request at syscall exit. */
		__u32 len = addrlen;
		if (read_addr(sc->uaddr, 28, uaddr, user_addr) != 0) {
			if (read_addr(sc->uaddr, 16, uaddr, user_addr) != 0)
				len = 0;
			else if (len > 16)
				len = 16;
		}
		if (len >= 4) {
			const __u8 *u = (const __u8 *)sc->uaddr;
			__u16 req_family = *(const __u16 *)u;
			k->req_port = bpf_ntohs(*(const __u16 *)(u + 2));
			if (req_family == AF_INET6 && len >= 24) {  /* sin6_addr: bytes 8..23 */
				((__u64 *)k->req_addr)[0] = sc->uaddr[1];
				((__u64 *)k->req_addr)[1] = sc->uaddr[2];
			} else if (req_family == AF_INET && len >= 8) {  /* sin_addr: 4..7 */
				*(__u32 *)k->req_addr = *(const __u32 *)(u + 4);
			}
		}
	}
	if (cfg.filter_ports && !port_wanted(k->port) && !port_wanted(k->req_port))
		return 0;

	k->opts = read_opts(in, skc, fast);
	k->bound_dev_if = skc->skc_bound_dev_if;
	k->ret = ret;
	k->pid = task->tgid;
	k->ppid = task->real_parent->tgid;
	k->mntns = task->nsproxy->mnt_ns->ns.inum;
	if (fast) {
		/* what the helpers return, read with plain loads (each helper call
		 * costs tens of ns with this kernel's call mitigations) */
		const struct cred *cred = task->cred;
		k->uid = cred->uid.val;
		k->gid = cred->gid.val;
		k->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
		copy_comm(k->comm, task->comm);
	} else {
		__u64 ugid = bpf_get_current_uid_gid();
		k->uid = (__u32)ugid;
		k->gid = ugid >> 32;
		k->cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(k->comm, sizeof(k->comm));
	}

	if (cfg.mode == BIND_MODE_SUMMARY) {
		summary_add(k, tick_clock(sc));
		return 0;
	}

	stat_inc(STAT_SEEN); /* events mode: delivered + lost == seen (summary: the counts) */
	e->ts = bpf_ktime_get_boot_ns();
	e->tid = task->pid;
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0))
		stat_inc(STAT_LOST);
	return 0;
}

/* Syscall-exit hooks (tracepoint, kretprobe on the syscall): the syscall has
 * returned, and its arguments are still in the caller's saved registers
 * (SYSCALL_ARG*: per architecture), so no entry program and no per-thread map.
 * Fills x with the caller and the socket open on the first argument's fd;
 * false: not wanted by the filters, or not a socket. */
struct syscall_exit {
	struct task_struct *task;
	struct pt_regs *regs;
	struct file *file;
	struct sock *sk;
};

static __always_inline bool syscall_exit_sock(struct syscall_exit *x, __s32 ret, bool fast)
{
	if (error_ignored(ret))
		return false;
	x->task = bpf_get_current_task_btf();
	if (!caller_wanted(x->task))
		return false;
	x->regs = (struct pt_regs *)bpf_task_pt_regs(x->task);
	x->sk = fd_to_sock(x->task, (__u32)SYSCALL_ARG1(x->regs), &x->file, fast);
	return x->sk != 0;
}

/* bind(2) has returned (tracepoint, kretprobe) */
static __always_inline int on_syscall_exit(__s32 ret, bool fast)
{
	struct syscall_exit x;
	if (!syscall_exit_sock(&x, ret, fast))
		return 0;
	return record_bind(x.task, x.sk, (const void *)SYSCALL_ARG2(x.regs), true,
			   (__u32)SYSCALL_ARG3(x.regs), ret, fast);
}

/* fexit on inet_bind / inet6_bind: the protocol's bind has returned; it gets
 * the socket itself and the kernel's copy of the sockaddr, so no fd walk and
 * no user memory read. It also sees binds that do not come from bind(2):
 * io_uring's IORING_OP_BIND (6.11+) and in-kernel callers (kernel_bind). */
static __always_inline int on_proto_bind(struct socket *sock, const void *uaddr, __u32 addrlen,
					 __s32 ret, bool fast)
{
	if (error_ignored(ret))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (!caller_wanted(task))
		return 0;
	struct sock *sk = fast ? sock->sk : BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	return record_bind(task, sk, uaddr, false, addrlen, ret, fast);
}

/* listen() succeeded on sk: count it in the listens map, keyed by who and
 * where (the same filters as binds; a listener's own port is matched). */
static __always_inline int record_listen(struct task_struct *task, struct sock *sk, struct file *file, __u32 backlog,
					 bool fast)
{
	struct listen_key k;
	__builtin_memset(&k, 0, sizeof(k));
	struct inet_sock *in = fast ? CAST(sk, struct inet_sock) : (struct inet_sock *)sk;
	struct sock_common *skc = &in->sk.__sk_common;  /* fast: the typed view (record_bind) */
	__u16 family = fast ? skc->skc_family : BPF_CORE_READ(&sk->__sk_common, skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	k.netns = fast ? skc->skc_net.net->ns.inum
		       : BPF_CORE_READ(&sk->__sk_common, skc_net.net, ns.inum);
	if (cfg.filter_netns && k.netns != cfg.netns)
		return 0;
	k.port = bpf_ntohs(fast ? in->inet_sport : BPF_CORE_READ(in, inet_sport));
	if (cfg.filter_ports && !port_wanted(k.port))
		return 0;
	if (family == AF_INET) {
		k.family = 4;
		__be32 a = fast ? skc->skc_rcv_saddr
				: BPF_CORE_READ(&sk->__sk_common, skc_rcv_saddr);
		__builtin_memcpy(k.addr, &a, 4);
	} else {
		k.family = 6;
		if (fast)
			__builtin_memcpy(k.addr, &skc->skc_v6_rcv_saddr, 16);
		else
			bpf_probe_read_kernel(k.addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	}
	k.proto = fast ? BPF_CORE_READ_BITFIELD(&in->sk, sk_protocol)
		       : BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	k.pid = task->tgid;
	k.uid = (__u32)bpf_get_current_uid_gid();
	k.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(k.comm, sizeof(k.comm));

	__u64 now = bpf_ktime_get_boot_ns();
	__u64 ino = fast ? CAST(file, struct file)->f_inode->i_ino
			 : BPF_CORE_READ(file, f_inode, i_ino);
	struct listen_stats *st = bpf_map_lookup_elem(&listens, &k);
	if (!st) {
		struct listen_stats init = { .first_ts = now };
		if (bpf_map_update_elem(&listens, &k, &init, BPF_NOEXIST) &&
		    bpf_map_lookup_elem(&listens, &k) == 0) {
			stat_inc(STAT_LISTENS_FULL);
			return 0;
		}
		st = bpf_map_lookup_elem(&listens, &k);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	st->last_ts = now;
	st->sock_ino = ino;
	st->backlog = backlog;
	return 0;
}

/* listen(2) has returned (tracepoint, kretprobe): fd and backlog are still in
 * the caller's saved registers. Failed listens (a UDP socket: EOPNOTSUPP)
 * opened nothing and are not recorded. */
static __always_inline int on_listen_exit(__s32 ret, bool fast)
{
	struct syscall_exit x;
	if (ret != 0 || !syscall_exit_sock(&x, 0, fast))
		return 0;
	return record_listen(x.task, x.sk, x.file, (__u32)SYSCALL_ARG2(x.regs), fast);
}

/* fexit on inet_listen(struct socket *, int backlog): also listens that do
 * not come from listen(2) (io_uring IORING_OP_LISTEN, kernel_listen). */
static __always_inline int on_proto_listen(struct socket *sock, int backlog, __s32 ret, bool fast)
{
	if (ret != 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (!caller_wanted(task))
		return 0;
	struct sock *sk = fast ? sock->sk : BPF_CORE_READ(sock, sk);
	struct file *file = fast ? sock->file : BPF_CORE_READ(sock, file);
	if (!sk || !file)
		return 0;
	return record_listen(task, sk, file, (__u32)backlog, fast);
}

/* Every entry point comes in two builds; the loader keeps one program:
 * NAME reads fields through bpf_rdonly_cast (Linux 6.2+), NAME_compat
 * through probe reads (5.15+). The kernel keeps 15 characters of a name.
 * ENTRY(section, name, context type, call): both builds of one entry point,
 * `call` evaluated with ctx and fast in scope. */
#ifndef BENCH_FLOOR  /* tests/bench/bench_hooks.py builds -DBENCH_FLOOR=1: the hook's */
#define BENCH_FLOOR 0 /* own cost with a program attached that returns at once */
#endif
#define ENTRY(sec, name, ctx_type, call)					\
	SEC(sec) int name(ctx_type ctx) { const bool fast = true; return BENCH_FLOOR ? 0 : call; } \
	SEC(sec) int name##_compat(ctx_type ctx)				\
	{ const bool fast = false; return BENCH_FLOOR ? 0 : call; }

/* Both syscall-exit rungs of one syscall, NAME_exit and NAME_kret:
 * rung "tracepoint": the syscall tracepoint (every kernel with
 *   CONFIG_FTRACE_SYSCALLS; but an enabled syscall tracepoint sends every
 *   syscall of every process through the slow tracing path);
 * rung "kprobe": a kretprobe on the syscall itself (only that syscall pays). */
#define SYSCALL_EXIT(name, on_exit)						\
	ENTRY("tracepoint/syscalls/sys_exit_" #name, name##_exit,			\
	      struct trace_event_raw_sys_exit *, on_exit((__s32)ctx->ret, fast))	\
	ENTRY("kretprobe/" SYSCALL_PREFIX #name, name##_kret, struct pt_regs *,	\
	      on_exit((__s32)REGS_RC(ctx), fast))

SYSCALL_EXIT(bind, on_syscall_exit)
SYSCALL_EXIT(listen, on_listen_exit)

/* rung "fexit": a BPF trampoline on the protocols' bind and listen (only
 * they pay, no kprobe trap); ctx: the function's arguments, then its return
 * value. The loader loads the listen program of the rung and build it chose
 * for bind. */
#define FEXIT_BIND(name, func)							\
	ENTRY("fexit/" #func, name, __u64 *,					\
	      on_proto_bind((struct socket *)ctx[0], (const void *)ctx[1], (__u32)ctx[2],	\
			    (__s32)ctx[3], fast))
FEXIT_BIND(bind_fexit4, inet_bind)
FEXIT_BIND(bind_fexit6, inet6_bind)
ENTRY("fexit/inet_listen", listen_fexit, __u64 *,
      on_proto_listen((struct socket *)ctx[0], (int)ctx[1], (__s32)ctx[2], fast))

char LICENSE[] SEC("license") = "GPL";
