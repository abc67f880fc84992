/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal TAP output for the unit tests: one "ok N - name" line per test
 * function, "# file:line: ..." diagnostics for each failed expectation.
 *
 *	static void test_foo(void) { EXPECT_EQ(f(1), 2); }
 *	int main(void) { RUN(test_foo); return tap_done(); }
 */
#ifndef _UNIT_TAP_H
#define _UNIT_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_run, tap_failed, tap_cur_failed;

static inline void tap_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_cur_failed++;
	printf("# %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

#define EXPECT(cond, ...)						\
	do {								\
		if (!(cond))						\
			tap_fail(__FILE__, __LINE__, __VA_ARGS__);	\
	} while (0)

#define EXPECT_EQ(a, b)							\
	do {								\
		unsigned long long _a = (a), _b = (b);			\
		if (_a != _b)						\
			tap_fail(__FILE__, __LINE__,			\
				 "%s = %#llx, expected %s = %#llx",	\
				 #a, _a, #b, _b);			\
	} while (0)

static inline void tap_result(int failed, const char *name)
{
	tap_run++;
	if (failed)
		tap_failed++;
	printf("%sok %d - %s\n", failed ? "not " : "", tap_run, name);
	fflush(stdout);
}

static inline void tap_run_test(void (*fn)(void), const char *name)
{
	tap_cur_failed = 0;
	fn();
	tap_result(tap_cur_failed, name);
}

#define RUN(fn) tap_run_test(fn, #fn)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_run);
	return tap_failed ? 1 : 0;
}

#endif /* _UNIT_TAP_H */
