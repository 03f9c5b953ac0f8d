/* bare_responder.c -- the kernel's floor for the resolver benchmark (bench/resolver/run.sh).
 *
 * One thread, one UDP socket: receives up to BATCH datagrams with recvmmsg, turns each into
 * an answer by setting QR (question, counts and any OPT record kept as they came) and sends
 * them back with sendmmsg. No parsing, no state: whatever CPU time this process spends per
 * query is what the kernel's UDP path costs on this machine, so a server's CPU time per
 * query minus this one's is its user-space cost.
 *
 * Usage: bare_responder ADDRESS PORT     (IPv4; runs until SIGTERM or SIGINT)
 * Build: cc -O2 -o bare_responder bare_responder.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32
#define BUFSZ 4096

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s ADDRESS PORT\n", argv[0]);
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "bare_responder: bad address %s\n", argv[1]);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("bare_responder: socket/bind");
		return 1;
	}
	/* No SA_RESTART: a signal interrupts the blocking recvmmsg so the loop can end. */
	struct sigaction act = { .sa_handler = on_signal };
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);

	static unsigned char bufs[BATCH][BUFSZ];
	static struct sockaddr_in peers[BATCH];
	static struct iovec iov[BATCH];
	static struct mmsghdr msgs[BATCH];
	unsigned long long answered = 0;

	fprintf(stderr, "bare_responder: serving on %s:%s\n", argv[1], argv[2]);
	while (!stop) {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], BUFSZ };
			msgs[i].msg_hdr = (struct msghdr){ .msg_name = &peers[i],
							   .msg_namelen = sizeof peers[i],
							   .msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		/* Blocks for the first datagram, then takes whatever else is already queued. */
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("bare_responder: recvmmsg");
			return 1;
		}
		int out = 0;
		for (int i = 0; i < n; i++) {
			unsigned len = msgs[i].msg_len;
			if (len < 12 || (bufs[i][2] & 0x80))
				continue; /* not a query */
			bufs[i][2] |= 0x80; /* QR: this is the answer */
			iov[i].iov_len = len;
			if (out != i) {
				msgs[out] = msgs[i];
			}
			out++;
		}
		for (int sent = 0; sent < out;) {
			int k = sendmmsg(fd, msgs + sent, (unsigned)(out - sent), 0);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				break; /* a full buffer loses the rest, like any UDP server */
			}
			sent += k;
		}
		answered += (unsigned long long)out;
	}
	fprintf(stderr, "bare_responder: %llu answers\n", answered);
	close(fd);
	return 0;
}
