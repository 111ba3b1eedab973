/*
 * blkbench: the guest side of Vireo's virtio-blk benchmark (bench/blk).
 *
 * It reads commands from standard input, one per line, and answers each
 * with one line that starts with RESULT (or ERROR):
 *
 *   seqread DEV MIB BLOCK_KIB    read MIB MiB from the start of DEV
 *   seqwrite DEV MIB BLOCK_KIB   write them, then fdatasync (a FLUSH)
 *   randread DEV SECONDS DEPTH   4 KiB reads at random aligned offsets,
 *                                DEPTH in flight (Linux AIO), for SECONDS
 *
 * All I/O uses O_DIRECT, so the guest's page cache stays out of the way.
 * The program is built statically (gcc -static) and talks to the kernel's
 * AIO interface with raw system calls, so it needs no libraries.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
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

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void randread(const char *dev, double seconds, int depth)
{
	aio_context_t ctx = 0;
	struct iocb cbs[MAX_DEPTH], *ptrs[MAX_DEPTH];
	struct io_event ev[MAX_DEPTH];
	char *bufs = NULL;
	uint64_t size = 0, blocks;
	long done = 0;
	int inflight = 0;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (depth < 1 || depth > MAX_DEPTH || fd < 0 || ioctl(fd, BLKGETSIZE64, &size) != 0 || size < RAND_BLOCK) {
		printf("ERROR randread: %s\n", fd < 0 ? strerror(errno) : "bad device or depth");
		goto out;
	}
	blocks = size / RAND_BLOCK;
	bufs = aligned((size_t)depth * RAND_BLOCK);
	if (bufs == NULL || syscall(SYS_io_setup, depth, &ctx) != 0) {
		printf("ERROR randread: io_setup: %s\n", strerror(errno));
		goto out;
	}
	for (int i = 0; i < depth; i++) {
		memset(&cbs[i], 0, sizeof(cbs[i]));
		cbs[i].aio_fildes = fd;
		cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
		cbs[i].aio_buf = (uint64_t)(uintptr_t)(bufs + (size_t)i * RAND_BLOCK);
		cbs[i].aio_nbytes = RAND_BLOCK;
		cbs[i].aio_offset = (int64_t)(next_rand() % blocks) * RAND_BLOCK;
		cbs[i].aio_data = i;
		ptrs[i] = &cbs[i];
	}
	double t0 = now(), end = t0 + seconds;
	if (syscall(SYS_io_submit, ctx, depth, ptrs) != depth) {
		printf("ERROR randread: io_submit: %s\n", strerror(errno));
		goto out;
	}
	inflight = depth;
	while (inflight > 0) {
		long got = syscall(SYS_io_getevents, ctx, 1, depth, ev, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			printf("ERROR randread: io_getevents: %s\n", strerror(errno));
			goto out;
		}
		int resubmit = 0;
		int more = now() < end;
		for (long i = 0; i < got; i++) {
			if (ev[i].res != RAND_BLOCK) {
				printf("ERROR randread: a read returned %lld\n", (long long)ev[i].res);
				goto out;
			}
			done++;
			inflight--;
			if (more) {
				struct iocb *cb = &cbs[ev[i].data];
				cb->aio_offset = (int64_t)(next_rand() % blocks) * RAND_BLOCK;
				ptrs[resubmit++] = cb;
			}
		}
		if (resubmit > 0) {
			if (syscall(SYS_io_submit, ctx, resubmit, ptrs) != resubmit) {
				printf("ERROR randread: io_submit: %s\n", strerror(errno));
				goto out;
			}
			inflight += resubmit;
		}
	}
	printf("RESULT randread ios=%ld bytes=%ld seconds=%.6f\n", done, done * RAND_BLOCK, now() - t0);
out:
	if (ctx != 0)
		syscall(SYS_io_destroy, ctx);
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
		else
			printf("ERROR unknown command %s\n", op);
	}
	return 0;
}
