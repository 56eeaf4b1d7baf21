/* Bind storm load generator: T threads, each doing N bind() calls.
 * Mode "einval": bind an already-bound socket again (the kernel's cheapest
 * complete bind path, returns EINVAL); mode "ok": bind a fresh SO_REUSEADDR
 * socket to a fixed port and close it (a successful bind); mode "client": bind
 * a fresh UDP socket to 127.0.0.1:0 and close it (an ephemeral client bind, as
 * a DNS or StatsD client makes; PORT is unused); mode "noport": bind one TCP socket
 * with IP_BIND_ADDRESS_NO_PORT to 127.0.0.1:0 again and again (no port is taken, so
 * each bind succeeds: the cheapest successful bind; PORT is unused); mode "getppid": no bind at all,
 * getppid() N times (a non-bind syscall: what a syscall tracepoint taxes host-wide).
 * Optional RATE (binds/s over all threads, 0 = as fast as possible) paces the
 * storm; optional "gate" waits for one byte on stdin before starting, so a
 * tracer can filter on this process's pid before the first bind.
 * Prints: offered seconds rate cpu_seconds (user+system CPU of the whole
 * process, which includes the BPF programs run inside its bind() calls). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PACE_CHUNK 128

static long per_thread;
static int ok_mode;
static int client_mode;
static int getppid_mode;
static int noport_mode;
static int port;
static double thread_rate; /* binds per second per thread, 0 = unpaced */
static struct timespec start;

static double since_start(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
}

/* Sleep until binds done so far match the target rate (no-op when unpaced). */
static void pace(long done)
{
	if (thread_rate <= 0 || done % PACE_CHUNK)
		return;
	double ahead = done / thread_rate - since_start();
	if (ahead > 0) {
		struct timespec ts = { (time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9) };
		nanosleep(&ts, NULL);
	}
}

static void *storm(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	(void)arg;
	if (noport_mode) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in any = { .sin_family = AF_INET };
		any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		for (long i = 0; i < per_thread; i++) {
			pace(i);
			if (bind(s, (struct sockaddr *)&any, sizeof(any)) != 0) {
				perror("bindstorm: noport bind");
				exit(1);
			}
		}
		close(s);
	} else if (getppid_mode) {
		for (long i = 0; i < per_thread; i++) {
			pace(i);
			syscall(SYS_getppid);
		}
	} else if (client_mode) {
		struct sockaddr_in any = { .sin_family = AF_INET };
		any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		for (long i = 0; i < per_thread; i++) {
			pace(i);
			int s = socket(AF_INET, SOCK_DGRAM, 0);
			bind(s, (struct sockaddr *)&any, sizeof(any));
			close(s);
		}
	} else if (ok_mode) {
		for (long i = 0; i < per_thread; i++) {
			pace(i);
			int s = socket(AF_INET, SOCK_STREAM, 0);
			setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
			bind(s, (struct sockaddr *)&a, sizeof(a));
			close(s);
		}
	} else {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in any = { .sin_family = AF_INET };
		any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bind(s, (struct sockaddr *)&any, sizeof(any));
		for (long i = 0; i < per_thread; i++) {
			pace(i);
			bind(s, (struct sockaddr *)&a, sizeof(a));
		}
		close(s);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bindstorm THREADS BINDS_PER_THREAD einval|ok|client|noport|getppid PORT [RATE [gate]]\n");
		return 2;
	}
	int threads = atoi(argv[1]);
	if (threads < 1 || threads > 64) {
		fprintf(stderr, "bindstorm: THREADS must be 1-64\n");
		return 2;
	}
	per_thread = atol(argv[2]);
	ok_mode = strcmp(argv[3], "ok") == 0;
	client_mode = strcmp(argv[3], "client") == 0;
	getppid_mode = strcmp(argv[3], "getppid") == 0;
	noport_mode = strcmp(argv[3], "noport") == 0;
	port = atoi(argv[4]);
	thread_rate = argc > 5 ? atof(argv[5]) / threads : 0;
	if (argc > 6 && strcmp(argv[6], "gate") == 0) {
		char c;
		if (read(0, &c, 1) != 1)
			return 3;
	}
	pthread_t t[64];
	struct rusage ru;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, storm, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double secs = since_start();
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		     ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	printf("%ld %.6f %.0f %.6f\n", per_thread * threads, secs, per_thread * threads / secs, cpu);
	return 0;
}
