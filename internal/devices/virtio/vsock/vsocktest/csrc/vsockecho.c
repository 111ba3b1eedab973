/*
 * vsockecho: the guest side of Vireo's vsock tests and benchmarks.
 *
 *   vsockecho serve PORT     accept connections on PORT and echo each one
 *   vsockecho dial PORT N    open N connections to the host (CID 2) PORT,
 *                            echo each; exit when the host has closed all
 *   vsockecho bulk PORT      serve benchmark requests (see bulk()) on
 *                            each connection accepted on PORT
 *   vsockecho portbulk DEV   serve benchmark requests on a character
 *                            device (a virtio-serial port), for comparison
 *
 * Echoing is one poll() loop over non-blocking sockets: guest kernel
 * code is slow on emulating hosts, so no thread or process per
 * connection. Built static (gcc -static) so it runs in a busybox guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define MAXCONN 256
#define ECHOBUF (16 * 1024)
#define BULKBUF (64 * 1024)

struct conn {
	int fd;
	int eof;
	size_t r, w;
	unsigned char buf[ECHOBUF];
};

static struct conn conns[MAXCONN];
static int nconns;
static unsigned char bulkbuf[BULKBUF];

static void die(const char *what)
{
	fprintf(stderr, "vsockecho: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl");
}

static int listen_on(unsigned port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static int dial(unsigned cid, unsigned port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	return fd;
}

static void add(int fd)
{
	if (nconns == MAXCONN) {
		close(fd);
		return;
	}
	nonblock(fd);
	conns[nconns].fd = fd;
	conns[nconns].eof = 0;
	conns[nconns].r = conns[nconns].w = 0;
	nconns++;
}

/* failed reports a connection that ended in an error (a reset). */
static int failed(void)
{
	printf("vsockecho: connection error: %s\n", strerror(errno));
	return 0;
}

/* step moves data for one connection; it returns 0 once the connection
 * is finished (its peer ended and everything was echoed, or an error). */
static int step(struct conn *c, short rev)
{
	if ((rev & (POLLIN | POLLHUP | POLLERR)) && !c->eof && c->w < ECHOBUF) {
		ssize_t n = read(c->fd, c->buf + c->w, ECHOBUF - c->w);
		if (n > 0)
			c->w += n;
		else if (n == 0)
			c->eof = 1;
		else if (errno != EAGAIN && errno != EINTR)
			return failed();
	}
	if (c->r < c->w) {
		ssize_t n = write(c->fd, c->buf + c->r, c->w - c->r);
		if (n > 0)
			c->r += n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			return failed();
	}
	if (c->r == c->w)
		c->r = c->w = 0;
	else if (c->w == ECHOBUF && c->r > 0) {
		memmove(c->buf, c->buf + c->r, c->w - c->r);
		c->w -= c->r;
		c->r = 0;
	}
	return !(c->eof && c->r == c->w);
}

/* echo serves the connections (and accepts on lfd when it is not -1)
 * until, without a listener, none is left. */
static void echo(int lfd)
{
	static struct pollfd p[MAXCONN + 1];
	for (;;) {
		int n = 0;
		if (lfd >= 0)
			p[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		else if (nconns == 0)
			return;
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			short ev = 0;
			if (!c->eof && c->w < ECHOBUF)
				ev |= POLLIN;
			if (c->r < c->w)
				ev |= POLLOUT;
			p[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		int base = 0;
		if (lfd >= 0) {
			base = 1;
			if (p[0].revents & POLLIN) {
				int fd = accept(lfd, NULL, NULL);
				if (fd >= 0)
					add(fd);
			}
		}
		/* Walk backwards so that removing a connection (moving the
		 * last one into its slot) keeps the poll entries aligned. */
		for (int i = n - base - 1; i >= 0; i--) {
			if (i >= nconns || conns[i].fd != p[base + i].fd)
				continue;
			if (!step(&conns[i], p[base + i].revents)) {
				close(conns[i].fd);
				nconns--;
				if (i != nconns)
					memcpy(&conns[i], &conns[nconns], sizeof(conns[i]));
			}
		}
	}
}

static int readfull(int fd, void *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, (char *)b + got, n - got);
		if (k <= 0)
			return -1;
		got += k;
	}
	return 0;
}

static int writefull(int fd, const void *b, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = write(fd, (const char *)b + done, n - done);
		if (k <= 0)
			return -1;
		done += k;
	}
	return 0;
}

static uint64_t le64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/* bulk serves benchmark requests on fd until it ends: a request is an
 * operation byte and a little-endian 64-bit count N.
 *   'W'  the host sends N bytes; the reply is the count received (8 bytes)
 *   'R'  the guest sends N bytes
 *   'E'  the host sends N bytes (N <= 64 KiB), the guest echoes them */
static void bulk(int fd)
{
	unsigned char req[9], le[8];
	for (size_t i = 0; i < sizeof(bulkbuf); i++)
		bulkbuf[i] = (unsigned char)(i * 7 + 1);
	while (readfull(fd, req, sizeof(req)) == 0) {
		uint64_t n = le64(req + 1), done = 0;
		switch (req[0]) {
		case 'W':
			while (done < n) {
				uint64_t want = n - done < sizeof(bulkbuf) ? n - done : sizeof(bulkbuf);
				ssize_t k = read(fd, bulkbuf, want);
				if (k <= 0)
					return;
				done += k;
			}
			for (int i = 0; i < 8; i++)
				le[i] = done >> (8 * i);
			if (writefull(fd, le, 8) < 0)
				return;
			break;
		case 'R':
			while (done < n) {
				uint64_t k = n - done < sizeof(bulkbuf) ? n - done : sizeof(bulkbuf);
				if (writefull(fd, bulkbuf, k) < 0)
					return;
				done += k;
			}
			break;
		case 'E':
			if (n > sizeof(bulkbuf) || readfull(fd, bulkbuf, n) < 0 || writefull(fd, bulkbuf, n) < 0)
				return;
			break;
		default:
			return;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: vsockecho serve|bulk PORT | dial PORT N | portbulk DEV\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(argv[1], "portbulk")) {
		int fd = open(argv[2], O_RDWR);
		if (fd < 0)
			die(argv[2]);
		printf("vsockecho: portbulk on %s\n", argv[2]);
		for (;;) {
			bulk(fd);
			usleep(100000); /* the host end is not connected */
		}
	}
	unsigned port = strtoul(argv[2], NULL, 10);
	if (!strcmp(argv[1], "dial") && argc == 4) {
		int n = atoi(argv[3]);
		for (int i = 0; i < n; i++)
			add(dial(VMADDR_CID_HOST, port));
		printf("vsockecho: dialed %d\n", n);
		echo(-1);
		printf("vsockecho: dial done\n");
		return 0;
	}
	if (strcmp(argv[1], "serve") && strcmp(argv[1], "bulk")) {
		fprintf(stderr, "vsockecho: unknown mode %s\n", argv[1]);
		return 2;
	}
	int lfd = listen_on(port);
	printf("vsockecho: %s on %u\n", argv[1], port);
	if (!strcmp(argv[1], "serve"))
		echo(lfd);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		bulk(fd);
		close(fd);
	}
}
