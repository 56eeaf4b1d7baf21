/* The few kernel types bind.bpf.c reads, declared with preserve_access_index so
 * libbpf relocates every field against the running kernel's BTF (CO-RE).
 * Only the fields used are listed; layout/order here does not matter. */
#ifndef BINDTRACE_CORE_TYPES_H
#define BINDTRACE_CORE_TYPES_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};
enum { BPF_ANY = 0, BPF_NOEXIST = 1, BPF_EXIST = 2 };

#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)

struct ns_common { unsigned int inum; };
struct net { struct ns_common ns; };
typedef struct { struct net *net; } possible_net_t;
struct in6_addr { union { __u8 u6_addr8[16]; __u32 u6_addr32[4]; } in6_u; };
struct in_addr { __be32 s_addr; };
/* the request as the kernel copied it (fexit reads it through a typed view) */
struct sockaddr_in { unsigned short sin_family; __be16 sin_port; struct in_addr sin_addr; };
struct sockaddr_in6 {
	unsigned short sin6_family;
	__be16 sin6_port;
	struct in6_addr sin6_addr;
};

struct sock_common {
	__be32 skc_rcv_saddr;
	__u16 skc_num;
	unsigned short skc_family;
	unsigned char skc_reuse:4;
	unsigned char skc_reuseport:1;
	int skc_bound_dev_if;
	possible_net_t skc_net;
	struct in6_addr skc_v6_rcv_saddr;
};
struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u8 sk_userlocks;  /* a 4-bit bitfield on some kernels: read with BPF_CORE_READ_BITFIELD */
};
/* 6.6+: freebind/transparent/bind_address_no_port are bits of inet_flags */
struct inet_sock {
	struct sock sk;
	unsigned long inet_flags;
	__be16 inet_sport;
};
/* before 6.6: separate bitfields */
struct inet_sock___o {
	__u8 freebind:1;
	__u8 transparent:1;
	__u8 bind_address_no_port:1;
};

struct inode { unsigned long i_ino; };
struct file { void *private_data; struct inode *f_inode; };
struct socket { struct file *file; struct sock *sk; };
struct fdtable { unsigned int max_fds; struct file **fd; };
struct files_struct { struct fdtable *fdt; struct file *fd_array[64]; };
struct mnt_namespace { struct ns_common ns; };
struct nsproxy { struct mnt_namespace *mnt_ns; };
/* Registers saved at syscall entry (the caller's user registers), per
 * architecture: where a syscall's arguments are when it returns, and where a
 * kretprobe finds the return value. */
#if defined(__TARGET_ARCH_x86)
struct pt_regs { unsigned long dx; unsigned long si; unsigned long di; unsigned long ax; };
#define SYSCALL_ARG1(r) ((r)->di)
#define SYSCALL_ARG2(r) ((r)->si)
#define SYSCALL_ARG3(r) ((r)->dx)
#define REGS_RC(r) ((r)->ax)
#define SYSCALL_PREFIX "__x64_sys_"
#elif defined(__TARGET_ARCH_arm64)
/* regs[] sits in an anonymous struct of a union in the kernel's pt_regs:
 * CO-RE finds it there. x0 carries the return value once the syscall
 * returns; the first argument stays in orig_x0. */
struct pt_regs { unsigned long regs[31]; unsigned long orig_x0; };
#define SYSCALL_ARG1(r) ((r)->orig_x0)
#define SYSCALL_ARG2(r) ((r)->regs[1])
#define SYSCALL_ARG3(r) ((r)->regs[2])
#define REGS_RC(r) ((r)->regs[0])
#define SYSCALL_PREFIX "__arm64_sys_"
#else
#error "build with -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64"
#endif
/* identity read by plain loads in the fast build (a helper call each costs more) */
typedef struct { unsigned int val; } kuid_t;
typedef struct { unsigned int val; } kgid_t;
struct cred { kuid_t uid; kgid_t gid; };
struct kernfs_node { __u64 id; };
struct cgroup { struct kernfs_node *kn; };
struct css_set { struct cgroup *dfl_cgrp; };
struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct files_struct *files;
	struct nsproxy *nsproxy;
	const struct cred *cred;
	struct css_set *cgroups;
	char comm[16];
};

#pragma clang attribute pop

/* syscall tracepoint contexts (stable ABI: include/trace/events/syscalls.h) */
struct trace_event_raw_sys_enter { __u64 _common; long id; unsigned long args[6]; };
struct trace_event_raw_sys_exit { __u64 _common; long id; long ret; };

#endif
