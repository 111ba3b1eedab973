/*
 * dirtier: the busy guest of the live-migration benchmark. It maps a
 * working set of MIB mebibytes, touches all of it, then writes one byte
 * of successive pages at RATE mebibytes per second, forever, so the
 * pages a migration has already sent keep changing at a known rate.
 *
 *   dirtier MIB RATE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: dirtier MIB RATE\n");
		return 2;
	}
	size_t pages = (size_t)atol(argv[1]) * 256;
	double rate = atof(argv[2]) * 256; /* pages per second */
	if (pages == 0 || rate <= 0) {
		fprintf(stderr, "dirtier: bad arguments\n");
		return 2;
	}
	unsigned char *buf = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("dirtier: mmap");
		return 1;
	}
	memset(buf, 1, pages * 4096);
	printf("dirtier: %s MiB at %s MiB/s\n", argv[1], argv[2]);
	fflush(stdout);
	struct timespec tick = {0, 10 * 1000 * 1000};
	double start = now();
	unsigned long done = 0, p = 0;
	for (;;) {
		unsigned long want = (unsigned long)((now() - start) * rate);
		for (; done < want; done++) {
			buf[p * 4096 + (done & 4095)]++;
			p = (p + 1) % pages;
		}
		nanosleep(&tick, NULL);
	}
}
