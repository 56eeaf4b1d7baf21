/* Record layout shared by bind.bpf.c, the bcc program and the Python side.
 * A new member needs its row in record.py (module_utils/bindtrace): `make bpf`
 * reads this layout from the object's BTF and fails when the two disagree.
 * All integers are host-endian except where noted. */
#ifndef BINDTRACE_BIND_H
#define BINDTRACE_BIND_H

#define TASK_COMM_LEN 16

/* opts bits (IG order: bit0 freebind .. bit4 reuseport) */
#define OPT_FREEBIND     (1 << 0)
#define OPT_TRANSPARENT  (1 << 1)
#define OPT_NO_PORT      (1 << 2)
#define OPT_REUSEADDR    (1 << 3)
#define OPT_REUSEPORT    (1 << 4)

/* stats slots (per-CPU array) */
#define STAT_LOST          0 /* ring buffer full: event not delivered */
#define STAT_SUMMARY_FULL  1 /* summary hash full: a new distinct bind not recorded */
#define STAT_INFLIGHT_FULL 2 /* unused since the entry program went away; slot kept for layout */
#define STAT_SEEN          3 /* events mode: binds that passed every filter */
#define STAT_LISTENS_FULL  4 /* listens hash full: a new listening socket not recorded */
#define STAT_MAX           5

#define BIND_MODE_EVENTS  0
#define BIND_MODE_SUMMARY 1

/* The identity of one bind: the summary map's key, and the head of every event. */
struct bind_key {
	__u64 cgroup_id;
	__u32 pid;          /* tgid, host pid namespace */
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 netns;        /* inode of the socket's network namespace */
	__u32 mntns;
	__u32 bound_dev_if;
	__s32 ret;          /* bind() return value: 0 or -errno */
	__u16 proto;        /* sk_protocol */
	__u16 port;         /* bound port after bind() */
	__u16 req_port;     /* port the caller asked for */
	__u8 family;        /* 4 or 6 */
	__u8 opts;          /* OPT_* bits */
	__u8 addr[16];      /* bound address (network order; v4 in the first 4 bytes) */
	__u8 req_addr[16];  /* requested address */
	char comm[TASK_COMM_LEN];
};

struct bind_event {
	struct bind_key key;
	__u64 ts;           /* bpf_ktime_get_boot_ns() at exit */
	__u32 tid;
	__u32 _pad;
};

/* A client bind (requested port 0 on a port protocol, e.g. a UDP client socket)
 * is counted in summary mode under its key without port, pid and ppid: one
 * record per identity (comm, uid, cgroup, namespaces, proto, address, options,
 * error), however many ports the kernel hands out and however many processes
 * a program is started as. port_min/port_max keep the range of ports,
 * first_pid/first_ppid the first binder's (for other keys: the key's own). */
struct bind_stats {
	__u64 count;
	__u64 first_ts;
	__u64 last_ts;
	__u16 port_min;
	__u16 port_max;
	__u32 first_pid;
	__u32 first_ppid;
	__u32 _pad;
};

/* Summary mode, one per CPU (the `runs` per-CPU array): the binds of one key
 * counted on that CPU within one tick and not yet added to the summary map.
 * A bind that repeats its CPU's last key in the same tick costs a key compare
 * instead of a hash lookup; the run goes into the map when another key or a
 * new tick comes, and the host adds what is left of each CPU's run when it
 * reads the summary. stats: count (binds of the run beyond its first, which
 * went into the map), last_ts (the run's tick stamp), port_min, port_max. */
struct bind_run {
	struct bind_key key;
	struct bind_stats stats;
};

/* One successful listen() of the window: the listens map's key. The host
 * joins it with the bind records on (netns, pid, proto, family, addr, port)
 * and with the listener snapshot on the socket inode. */
struct listen_key {
	__u64 cgroup_id;
	__u32 pid;          /* tgid */
	__u32 uid;
	__u32 netns;
	__u16 proto;
	__u16 port;         /* the listening port (listen() picks one when unbound) */
	__u8 family;
	__u8 _pad[3];
	__u8 addr[16];
	char comm[TASK_COMM_LEN];
};

struct listen_stats {
	__u64 count;        /* listen() calls with this key */
	__u64 first_ts;
	__u64 last_ts;
	__u64 sock_ino;     /* inode of the last socket that listened with this key */
	__u32 backlog;      /* its backlog argument, as the caller passed it */
	__u32 _pad;
};

/* Read-only configuration, set by the loader before load (the only .rodata). */
struct bind_config {
	__u32 mode;
	__u32 ignore_errors;
	__u32 filter_pid;
	__u32 pid;
	__u32 filter_uid;
	__u32 uid;
	__u32 filter_netns;
	__u32 netns;
	__u32 filter_ports;
	__u32 filter_comm;
	char comm[TASK_COMM_LEN];
};

#endif
