/*
 * blkbench: the guest side of Vireo's virtio-blk benchmark (bench/blk).
 *
 * It reads commands from standard input, one per line, and answers each
 * with one line that starts with RESULT (or ERROR):
 *
 *   seqread DEV MIB BLOCK_KIB    read MIB MiB from the start of DEV
 *   seqwrite DEV MIB BLOCK_KIB   write them, then fdatasync (a FLUSH)
 *   randread DEV SECONDS DEPTH   4 KiB reads at random aligned offsets
 *                                for SECONDS, by DEPTH threads, so that
 *                                DEPTH reads are in flight
 *   idle - SECONDS 0             do nothing for SECONDS
 *
 * All I/O uses O_DIRECT, so the guest's page cache stays out of the way.
 * The test guest's kernel has no Linux AIO (io_setup fails with ENOSYS),
 * hence one thread per request in flight. The program is built statically
 * (gcc -static -pthread) and needs no libraries in the guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 256
#define RAND_BLOCK 4096

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *aligned(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, n) != 0)
		return NULL;
	memset(p, 0x5a, n);
	return p;
}

static void seq(const char *dev, long mib, long kib, int writing)
{
	const char *op = writing ? "seqwrite" : "seqread";
	size_t bs = (size_t)kib * 1024;
	long n = mib * 1024 * 1024 / (long)bs;
	int fd = open(dev, (writing ? O_WRONLY : O_RDONLY) | O_DIRECT);
	void *buf = aligned(bs);

	if (fd < 0 || buf == NULL || n <= 0) {
		printf("ERROR %s: %s\n", op, fd < 0 ? strerror(errno) : "bad size");
		goto out;
	}
	double t0 = now();
	for (long i = 0; i < n; i++) {
		ssize_t r = writing ? pwrite(fd, buf, bs, (off_t)i * bs) : pread(fd, buf, bs, (off_t)i * bs);
		if (r != (ssize_t)bs) {
			printf("ERROR %s: block %ld: %s\n", op, i, r < 0 ? strerror(errno) : "short transfer");
			goto out;
		}
	}
	if (writing && fdatasync(fd) != 0) {
		printf("ERROR %s: fdatasync: %s\n", op, strerror(errno));
		goto out;
	}
	printf("RESULT %s bytes=%ld seconds=%.6f\n", op, n * (long)bs, now() - t0);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
}

struct reader {
	pthread_t thread;
	int fd;
	uint64_t blocks, rng;
	double end;
	long done;
	int err;
	char *buf;
};

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *reader_loop(void *arg)
{
	struct reader *r = arg;

	while (now() < r->end) {
		off_t off = (off_t)(next_rand(&r->rng) % r->blocks) * RAND_BLOCK;
		if (pread(r->fd, r->buf, RAND_BLOCK, off) != RAND_BLOCK) {
			r->err = errno ? errno : EIO;
			break;
		}
		r->done++;
	}
	return NULL;
}

static void randread(const char *dev, double seconds, int depth)
{
	static struct reader readers[MAX_DEPTH];
	uint64_t size = 0;
	long done = 0;
	int started = 0, err = 0;
	int fd = open(dev, O_RDONLY | O_DIRECT);
	char *bufs = NULL;

	if (depth < 1 || depth > MAX_DEPTH || fd < 0 || ioctl(fd, BLKGETSIZE64, &size) != 0 || size < RAND_BLOCK) {
		printf("ERROR randread: %s\n", fd < 0 ? strerror(errno) : "bad device or depth");
		goto out;
	}
	bufs = aligned((size_t)depth * RAND_BLOCK);
	if (bufs == NULL) {
		printf("ERROR randread: out of memory\n");
		goto out;
	}
	double t0 = now();
	for (int i = 0; i < depth; i++) {
		struct reader *r = &readers[i];
		memset(r, 0, sizeof(*r));
		r->fd = fd;
		r->blocks = size / RAND_BLOCK;
		r->rng = 88172645463325252ULL + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
		r->end = t0 + seconds;
		r->buf = bufs + (size_t)i * RAND_BLOCK;
		if (pthread_create(&r->thread, NULL, reader_loop, r) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(readers[i].thread, NULL);
		done += readers[i].done;
		if (readers[i].err != 0)
			err = readers[i].err;
	}
	if (err != 0 || started != depth) {
		printf("ERROR randread: %s\n", err ? strerror(err) : "cannot start the threads");
		goto out;
	}
	printf("RESULT randread ios=%ld bytes=%ld seconds=%.6f\n", done, done * RAND_BLOCK, now() - t0);
out:
	if (fd >= 0)
		close(fd);
	free(bufs);
}

int main(void)
{
	char line[512], op[32], dev[256];
	double a;
	long b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("blkbench: ready\n");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (sscanf(line, "%31s %255s %lf %ld", op, dev, &a, &b) != 4)
			continue;
		if (strcmp(op, "seqread") == 0)
			seq(dev, (long)a, b, 0);
		else if (strcmp(op, "seqwrite") == 0)
			seq(dev, (long)a, b, 1);
		else if (strcmp(op, "randread") == 0)
			randread(dev, a, (int)b);
		else if (strcmp(op, "idle") == 0) {
			double t0 = now();
			usleep((useconds_t)(a * 1e6));
			printf("RESULT idle bytes=0 seconds=%.6f\n", now() - t0);
		}
		else
			printf("ERROR unknown command %s\n", op);
	}
	return 0;
}
