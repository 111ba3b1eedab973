/*
 * vnetperf: the guest side of Vireo's network tests and benchmarks.
 *
 *   vnetperf send HOST PORT BYTES SEED   connect to HOST:PORT, send BYTES of
 *                                        the stream SEED, wait for the peer
 *                                        to close
 *   vnetperf recv PORT BYTES SEED        accept one connection on PORT and
 *                                        check that it carries exactly
 *                                        BYTES of the stream SEED
 *
 * The stream is xorshift64* output, eight little-endian bytes per step,
 * from the state SEED * 0x9E3779B97F4A7C15 + 1. Both commands print one
 * result line with the byte count, the time, the rate and the FNV-1a
 * 64-bit hash of the bytes; recv ends it with "ok" or reports the first
 * offset that differs. The hash runs over the bytes in little-endian 64-bit
 * words (FNV-1a with a word in place of a byte; a final partial word is
 * zero-padded), which keeps it off the critical path. Exit status 0 means
 * success.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

struct stream {
	uint64_t state, word;
	int left; /* bytes of word not yet emitted */
};

static void stream_init(struct stream *s, uint64_t seed)
{
	s->state = seed * 0x9E3779B97F4A7C15ULL + 1;
	s->left = 0;
}

static uint64_t stream_next(struct stream *s)
{
	uint64_t x = s->state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void stream_fill(struct stream *s, unsigned char *p, size_t n)
{
	while (n > 0 && s->left > 0) {
		*p++ = (unsigned char)(s->word >> (8 * (8 - s->left)));
		s->left--;
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w = stream_next(s);
		memcpy(p, &w, 8); /* x86 is little-endian */
	}
	if (n > 0) {
		s->word = stream_next(s);
		s->left = 8;
		stream_fill(s, p, n);
	}
}

/* hash is the word-wise FNV-1a state; partial holds a word being filled. */
struct hash {
	uint64_t h, partial;
	int have;
};

static void hash_init(struct hash *h)
{
	h->h = 0xcbf29ce484222325ULL;
	h->partial = 0;
	h->have = 0;
}

static void hash_word(struct hash *h, uint64_t w)
{
	h->h ^= w;
	h->h *= 0x100000001b3ULL;
}

static void hash_add(struct hash *h, const unsigned char *p, size_t n)
{
	while (n > 0 && h->have > 0) {
		h->partial |= (uint64_t)*p++ << (8 * h->have);
		n--;
		if (++h->have == 8) {
			hash_word(h, h->partial);
			h->partial = 0;
			h->have = 0;
		}
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		hash_word(h, w);
	}
	for (; n > 0; n--)
		h->partial |= (uint64_t)*p++ << (8 * h->have++);
}

static uint64_t hash_sum(struct hash *h)
{
	struct hash c = *h;
	if (c.have > 0)
		hash_word(&c, c.partial);
	return c.h;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
	printf("vnetperf: %s: %s\n", what, strerror(errno));
	return 1;
}

static void report(const char *verb, uint64_t n, double secs, uint64_t h, const char *tail)
{
	printf("vnetperf: %s %llu bytes in %.3f s (%.2f MB/s) fnv=%016llx%s\n", verb,
	       (unsigned long long)n, secs, secs > 0 ? n / secs / 1e6 : 0.0,
	       (unsigned long long)h, tail);
	fflush(stdout);
}

static int do_send(const char *host, int port, uint64_t total, uint64_t seed)
{
	static unsigned char buf[CHUNK];
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		printf("vnetperf: bad address %s\n", host);
		return 1;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return die("socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		return die("connect");
	struct stream s;
	stream_init(&s, seed);
	struct hash h;
	hash_init(&h);
	uint64_t sent = 0;
	double t0 = now();
	while (sent < total) {
		size_t n = total - sent < CHUNK ? total - sent : CHUNK;
		stream_fill(&s, buf, n);
		hash_add(&h, buf, n);
		for (size_t off = 0; off < n;) {
			ssize_t k = write(fd, buf + off, n - off);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return die("write");
			off += k;
		}
		sent += n;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof buf) > 0) /* the peer closes once it has it all */
		;
	report("sent", sent, now() - t0, hash_sum(&h), "");
	close(fd);
	return 0;
}

static int do_recv(int port, uint64_t total, uint64_t seed)
{
	static unsigned char buf[CHUNK], want[CHUNK];
	int one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		return die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0)
		return die("bind");
	if (listen(lfd, 1) < 0)
		return die("listen");
	printf("vnetperf: listening on %d\n", port);
	fflush(stdout);
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return die("accept");
	struct stream s;
	stream_init(&s, seed);
	struct hash h;
	hash_init(&h);
	uint64_t got = 0;
	double t0 = now();
	for (;;) {
		ssize_t k = read(fd, buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return die("read");
		if (k == 0)
			break;
		stream_fill(&s, want, k);
		if (memcmp(buf, want, k) != 0) {
			for (ssize_t i = 0; i < k; i++) {
				if (buf[i] != want[i]) {
					printf("vnetperf: MISMATCH at byte %llu\n", (unsigned long long)(got + i));
					return 1;
				}
			}
		}
		hash_add(&h, buf, k);
		got += k;
		if (got > total)
			break;
	}
	double secs = now() - t0;
	close(fd);
	if (got != total) {
		report("received", got, secs, hash_sum(&h), " SHORT");
		return 1;
	}
	report("received", got, secs, hash_sum(&h), " ok");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "send") == 0)
		return do_send(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0), strtoull(argv[5], NULL, 0));
	if (argc == 5 && strcmp(argv[1], "recv") == 0)
		return do_recv(atoi(argv[2]), strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	fprintf(stderr, "usage: vnetperf send HOST PORT BYTES SEED | recv PORT BYTES SEED\n");
	return 2;
}
