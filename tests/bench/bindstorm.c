/* Bind storm load generator: T threads, each doing N bind() calls as fast as
 * the kernel allows. Mode "einval": bind an already-bound socket again (the
 * kernel's cheapest complete bind path, returns EINVAL); mode "ok": bind a
 * fresh SO_REUSEADDR socket to a fixed port and close it (a successful bind).
 * Prints the offered count and the rate. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long per_thread;
static int ok_mode;
static int port;

static void *storm(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	(void)arg;
	if (ok_mode) {
		for (long i = 0; i < per_thread; i++) {
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
		for (long i = 0; i < per_thread; i++)
			bind(s, (struct sockaddr *)&a, sizeof(a));
		close(s);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bindstorm THREADS BINDS_PER_THREAD einval|ok PORT\n");
		return 2;
	}
	int threads = atoi(argv[1]);
	per_thread = atol(argv[2]);
	ok_mode = strcmp(argv[3], "ok") == 0;
	port = atoi(argv[4]);
	pthread_t t[64];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, storm, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%ld %.6f %.0f\n", per_thread * threads, secs, per_thread * threads / secs);
	return 0;
}
