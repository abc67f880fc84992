// SPDX-License-Identifier: GPL-2.0
/*
 * Print the TSC rate in kHz, measured against CLOCK_MONOTONIC_RAW (the
 * median of five 100 ms samples).  make bench gives it to the test host's
 * kernel (tsc_early_khz=): under QEMU TCG a guest's RDTSC reads the build
 * machine's TSC, and the test host's own PIT calibration of it is
 * sometimes off by nearly 10x on a loaded machine, which would skew every
 * time measured inside the test host.
 */
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include <x86intrin.h>

static double ns_of(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1e9 + (b->tv_nsec - a->tv_nsec);
}

int main(void)
{
	struct timespec a, b, d = { 0, 100 * 1000 * 1000 };
	double khz[5], t;
	int i, j;

	for (i = 0; i < 5; i++) {
		uint64_t t0, t1;

		clock_gettime(CLOCK_MONOTONIC_RAW, &a);
		t0 = __rdtsc();
		nanosleep(&d, NULL);
		clock_gettime(CLOCK_MONOTONIC_RAW, &b);
		t1 = __rdtsc();
		khz[i] = (double)(t1 - t0) * 1e6 / ns_of(&a, &b);
	}
	/*
	 * Being preempted between a clock read and its RDTSC skews one
	 * sample either way: take the median.
	 */
	for (i = 1; i < 5; i++)
		for (j = i; j > 0 && khz[j - 1] > khz[j]; j--) {
			t = khz[j];
			khz[j] = khz[j - 1];
			khz[j - 1] = t;
		}
	printf("%.0f\n", khz[2]);
	return 0;
}
