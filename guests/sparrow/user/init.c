// SPDX-License-Identifier: GPL-2.0
/*
 * init: the first user process.  Depending on the boot command line it runs
 * the self-test (TAP output, exit status = number of failures), the
 * benchmarks (one "bench ..." line per result) or the demo (several
 * processes printing, interleaved by preemption).  Its exit status becomes
 * the VM's exit status.
 */
#include "ulib.h"

#define HZ_EXPECTED 100

static struct sparrow_info info;
static int ntest, nfail;

static u64 free_pages(void)
{
	sys_info(&info);
	return info.free_pages;
}

/*
 * TSC ticks to picoseconds without overflowing 64 bits: whole
 * milliseconds (cycles / kHz) and the remainder separately.  The naive
 * cycles * 10^9 / kHz wraps after 2^64 / 10^9 cycles, 7 s at 2.6 GHz.
 */
static u64 tsc_to_ps(u64 cycles)
{
	u64 khz = info.tsc_khz;

	return cycles / khz * 1000000000ULL + cycles % khz * 1000000000ULL / khz;
}

static u64 tsc_to_ns(u64 cycles)
{
	return tsc_to_ps(cycles) / 1000;
}

static void ok(int cond, const char *desc)
{
	ntest++;
	if (!cond)
		nfail++;
	printf("%sok %d - %s\n", cond ? "" : "not ", ntest, desc);
}

/* Independent oracle: a generator and FNV-1a, recomputed from scratch. */
static u64 gen(u64 seed, u64 i)
{
	u64 x = seed * 0x9e3779b97f4a7c15ULL + i * 0xbf58476d1ce4e5b9ULL;

	x ^= x >> 31;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 29);
}

static void fill(u64 *p, u64 nwords, u64 seed)
{
	u64 i;

	for (i = 0; i < nwords; i++)
		p[i] = gen(seed, i);
}

static u64 fnv_step(u64 h, u64 w)
{
	int b;

	for (b = 0; b < 8; b++) {
		h ^= (w >> (8 * b)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static u64 checksum(const u64 *p, u64 nwords)
{
	u64 h = 0xcbf29ce484222325ULL, i;

	for (i = 0; i < nwords; i++)
		h = fnv_step(h, p[i]);
	return h;
}

static u64 expected_sum(u64 seed, u64 nwords)
{
	u64 h = 0xcbf29ce484222325ULL, i;

	for (i = 0; i < nwords; i++)
		h = fnv_step(h, gen(seed, i));
	return h;
}

static int wait_for(long pid)
{
	int st = -1;

	if (sys_wait(pid, &st) != pid)
		return -1;
	return st;
}

/* Fork a child that runs fn and exits with its return value. */
static long spawn(int (*fn)(long), long arg)
{
	long pid = sys_fork();

	if (pid == 0)
		sys_exit(fn(arg));
	return pid;
}

static int run_child(int (*fn)(long), long arg)
{
	long pid = spawn(fn, arg);

	return pid > 0 ? wait_for(pid) : -1;
}

/* ---- self-test ---------------------------------------------------- */

#define COW_PAGES	64
#define COW_WORDS	(COW_PAGES * 4096 / 8)
#define COW_SEED	0x1234
static u64 *cow_buf;

static int child_exit42(long arg)
{
	(void)arg;
	return 42;
}

static int child_pid_differs(long parent)
{
	return sys_getpid() != parent && sys_getpid() > 0 ? 0 : 1;
}

static int cow_child(long n)
{
	u64 before, after;

	/* The parent's data must be visible... */
	if (checksum(cow_buf, COW_WORDS) != expected_sum(COW_SEED, COW_WORDS))
		return 1;
	/*
	 * ...and writing it must fault once per page (the copies).  Count
	 * this process's faults: the free page count moves with the
	 * siblings running concurrently.
	 */
	sys_info(&info);
	before = info.nr_faults;
	fill(cow_buf, COW_WORDS, 100 + n);
	sys_info(&info);
	after = info.nr_faults;
	if (after - before < COW_PAGES || after - before > COW_PAGES + 4)
		return 2;
	if (checksum(cow_buf, COW_WORDS) != expected_sum(100 + n, COW_WORDS))
		return 3;
	return 0;
}

static int grandchild_cow(long arg)
{
	long pid;

	(void)arg;
	pid = sys_fork();
	if (pid == 0) {
		cow_buf[7] ^= 1;	/* private to the grandchild */
		cow_buf[7] ^= 1;
		return checksum(cow_buf, COW_WORDS) ==
		       expected_sum(COW_SEED, COW_WORDS) ? 9 : 1;
	}
	cow_buf[0] = 0;			/* private to the child */
	return wait_for(pid) == SP_W_EXITED(9) ? 0 : 1;
}

static void test_cow(void)
{
	long pids[4];
	int i, good = 1;

	cow_buf = (u64 *)sys_mmap(COW_PAGES * 4096);
	fill(cow_buf, COW_WORDS, COW_SEED);
	for (i = 0; i < 4; i++)
		pids[i] = spawn(cow_child, i);
	for (i = 0; i < 4; i++)
		if (pids[i] <= 0 || wait_for(pids[i]) != SP_W_EXITED(0))
			good = 0;
	ok(good, "cow: 4 children see the parent's pages, write private copies");
	ok(checksum(cow_buf, COW_WORDS) == expected_sum(COW_SEED, COW_WORDS),
	   "cow: parent's pages unchanged by the children's writes");
	ok(run_child(grandchild_cow, 0) == SP_W_EXITED(0) &&
	   checksum(cow_buf, COW_WORDS) == expected_sum(COW_SEED, COW_WORDS),
	   "cow: grandchild sees grandparent's data through two forks");
}

/*
 * Fork, exit, exec and munmap over more PTEs than one page table holds and
 * than one TRAPVM_HC_MMU_UPDATE batch takes (512): page j of big_buf holds
 * fill(seed + j), each page checked against the generator.
 */
#define BIG_PAGES	1100
#define BIG_A		0x5000
#define BIG_B		0x6000
#define BIG_C		0x7000
#define BIG_D		0x8000
static u64 *big_buf;
static int child_exec(long arg);

static u64 *big_page(u64 j)
{
	return big_buf + j * 512;
}

static void big_fill(int odd, u64 seed)
{
	u64 j;

	for (j = odd; j < BIG_PAGES; j += 2)
		fill(big_page(j), 512, seed + j);
}

/* Even pages hold seed even + j, odd pages seed odd + j. */
static int big_check(u64 even, u64 odd)
{
	u64 j;

	for (j = 0; j < BIG_PAGES; j++)
		if (checksum(big_page(j), 512) !=
		    expected_sum(((j & 1) ? odd : even) + j, 512))
			return 0;
	return 1;
}

static int big_grandchild(long arg)
{
	int i;

	(void)arg;
	/* Let the parent write first (it was writing before the fork). */
	for (i = 0; i < 4; i++)
		sys_yield();
	if (!big_check(BIG_A, BIG_B))
		return 1;
	big_fill(0, BIG_C);
	return big_check(BIG_C, BIG_B) ? 0 : 2;
}

static int big_child(long arg)
{
	long pid;

	(void)arg;
	if (!big_check(BIG_A, BIG_A))
		return 1;
	big_fill(1, BIG_B);		/* odd pages: private, writable */
	if (!big_check(BIG_A, BIG_B))
		return 2;
	pid = spawn(big_grandchild, 0);
	if (pid <= 0)
		return 3;
	/*
	 * Fork made those writable pages copy-on-write: stale writable TLB
	 * entries would let these writes reach the grandchild's pages.
	 */
	big_fill(1, BIG_D);
	if (wait_for(pid) != SP_W_EXITED(0))
		return 4;
	return big_check(BIG_A, BIG_D) ? 0 : 5;
}

/* Touch every page (TLB entries), munmap, then read: must be SIGSEGV. */
static int big_use_after_munmap(long pages)
{
	u64 *m = (u64 *)sys_mmap(pages * 4096);
	u64 j, sum = 0;

	if ((long)m <= 0)
		return 1;
	for (j = 0; j < (u64)pages; j++)
		m[j * 512] = j;
	for (j = 0; j < (u64)pages; j++)
		sum += m[j * 512];
	if (sys_munmap(m, pages * 4096))
		return 2;
	sum += m[(pages - 1) * 512];
	return 3 + (int)(sum & 1);
}

static void test_fork_tables(void)
{
	u64 f0;
	int good;

	big_buf = (u64 *)sys_mmap(BIG_PAGES * 4096);
	big_fill(0, BIG_A);
	big_fill(1, BIG_A);
	/* Page in the code the counts below would otherwise include. */
	good = big_check(BIG_A, BIG_A);
	ok(good, "1100 pages filled, each with its own seed");
	ok(run_child(big_child, 0) == SP_W_EXITED(0) &&
	   big_check(BIG_A, BIG_A),
	   "fork of 1100 pages: child and grandchild see the parent's data, COW after writes, parent intact");
	f0 = free_pages();
	good = run_child(child_exit42, 0) == SP_W_EXITED(42) &&
	       run_child(child_exit42, 0) == SP_W_EXITED(42) &&
	       run_child(child_exec, 5) == SP_W_EXITED(38);
	ok(good && big_check(BIG_A, BIG_A) && free_pages() == f0,
	   "fork+exit and fork+exec sharing 1100 pages: parent intact, no page leaked");
	f0 = free_pages();
	good = sys_munmap(big_buf, BIG_PAGES * 4096) == 0;
	ok(good && free_pages() == f0 + BIG_PAGES,
	   "munmap of the 1100 pages returns every one");
	ok(run_child(big_use_after_munmap, 600) == SP_W_SIGNALED(SP_SIGSEGV),
	   "munmap of 600 touched pages: a read afterwards is SIGSEGV");
	ok(run_child(big_use_after_munmap, 3) == SP_W_SIGNALED(SP_SIGSEGV),
	   "munmap of 3 touched pages: a read afterwards is SIGSEGV");
}

static void test_demand_zero(void)
{
	const u64 len = 4 << 20, words = len / 8;
	u64 f0, f1, f2, f3, i, nonzero = 0;
	u64 *p;
	long ret;

	f0 = free_pages();
	p = (u64 *)sys_mmap(len);
	f1 = free_pages();
	ok((long)p > 0 && f1 == f0, "demand-zero: mmap of 4 MiB allocates nothing");
	for (i = 0; i < words; i += 509)
		nonzero |= p[i];
	ok(nonzero == 0, "demand-zero: fresh pages read as zero");
	for (i = 0; i < words; i++)
		p[i] = gen(7, i);
	f2 = free_pages();
	ok(f1 - f2 >= len / 4096 && f1 - f2 <= len / 4096 + 8,
	   "demand-zero: touching 4 MiB allocates 1024 pages (+ tables)");
	ok(checksum(p, words) == expected_sum(7, words),
	   "demand-zero: 4 MiB read back with the right checksum");
	/* Right before: the code above may have paged in text meanwhile. */
	f2 = free_pages();
	ret = sys_munmap(p, len);
	f3 = free_pages();
	ok(ret == 0, "munmap of the 4 MiB mapping");
	ok(f3 >= f2 + len / 4096, "munmap returns the 1024 pages");
}

/* Launder a constant address so the compiler cannot reason about it. */
static void *addr(u64 a)
{
	return (void *)hide_value(a);
}

static int bad_null_write(long a)
{
	(void)a;
	*(int *)addr(0x10) = 1;
	return 0;
}

static int bad_kernel_read(long a)
{
	(void)a;
	return *(int *)addr(0x100000) == 0x12345678 ? 1 : 2;
}

static int bad_text_write(long a)
{
	(void)a;
	*(u8 *)addr((u64)bad_text_write) = 0xc3;
	return 0;
}

static int bad_hole_read(long a)
{
	(void)a;
	return *(int *)addr(0xffff800000001000ULL);
}

static int bad_nx_exec(long a)
{
	u8 *p = (u8 *)sys_mmap(4096);

	(void)a;
	p[0] = 0xc3;		/* ret */
	((void (*)(void))p)();
	return 0;
}

static int bad_hlt(long a)
{
	(void)a;
	asm volatile("hlt");
	return 0;
}

static int bad_ud2(long a)
{
	(void)a;
	asm volatile("ud2");
	return 0;
}

static noinline int bad_stack_overflow(long depth)
{
	long stop = (long)hide_value(-1UL);
	u8 pad[8192];

	pad[0] = (u8)depth;
	use_memory(pad);
	if (depth == stop)
		return 0;
	return bad_stack_overflow(depth + 1) + pad[0];
}

static void test_bad_access(void)
{
	static const struct {
		int (*fn)(long arg);
		int sig;
		const char *desc;
	} cases[] = {
		{ bad_null_write, SP_SIGSEGV, "bad access: write to 0x10 kills the child (SIGSEGV)" },
		{ bad_kernel_read, SP_SIGSEGV, "bad access: read of kernel memory kills the child" },
		{ bad_text_write, SP_SIGSEGV, "bad access: write to own text kills the child" },
		{ bad_hole_read, SP_SIGSEGV, "bad access: read in the trapvm hole kills the child" },
		{ bad_nx_exec, SP_SIGSEGV, "bad access: executing a data page (NX) kills the child" },
		{ bad_hlt, SP_SIGSEGV, "bad access: HLT at CPL3 is #GP, kills the child" },
		{ bad_ud2, SP_SIGILL, "bad access: UD2 kills the child with SIGILL" },
		{ bad_stack_overflow, SP_SIGSEGV, "bad access: stack overflow past 1 MiB kills the child" },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		ok(run_child(cases[i].fn, 0) == SP_W_SIGNALED(cases[i].sig),
		   cases[i].desc);
	ok(sys_getpid() == 1, "bad access: the parent survives all of them");
}

static void test_bad_pointers(void)
{
	u8 *page = (u8 *)sys_mmap(4096);
	u64 text_before = *(u64 *)addr((u64)test_bad_pointers);
	int st;

	ok(sys_write(1, 0x10, 5) == -SP_EFAULT, "write(NULL-ish buffer) = -EFAULT");
	ok(sys_write(1, 0x100000, 5) == -SP_EFAULT, "write(kernel buffer) = -EFAULT");
	ok(sys_write(1, 0xffff800000000000ULL, 4) == -SP_EFAULT,
	   "write(buffer in the hole) = -EFAULT");
	ok(sys_write(1, page + 4090, 100) == -SP_EFAULT,
	   "write(buffer running into a guard page) = -EFAULT");
	ok(sys_write(1, 0x7fffffffffffff00ULL, 0x200) == -SP_EFAULT,
	   "write(non-canonical buffer) = -EFAULT");
	ok(sys_write(1, page, -1L) == -SP_EINVAL, "write(huge length) = -EINVAL");
	ok(sys_info(0) == -SP_EFAULT, "info(NULL) = -EFAULT");
	ok(sys_info(0x100000) == -SP_EFAULT, "info(kernel address) = -EFAULT");
	ok(sys_info((void *)test_bad_pointers) == -SP_EFAULT &&
	   *(u64 *)addr((u64)test_bad_pointers) == text_before,
	   "info(read-only text) = -EFAULT, text intact");
	ok(sys_wait(-1, 0x100000) == -SP_EFAULT, "wait(kernel status pointer) = -EFAULT");
	ok(sys_wait(-1, &st) == -SP_ECHILD, "wait() without children = -ECHILD");
	ok(sys_exec(0x10, 0) == -SP_EFAULT, "exec(bad name pointer) = -EFAULT");
	ok(sys_exec("no-such-program", 0) == -SP_ENOEXEC, "exec(unknown program) = -ENOEXEC");
	ok(syscall3(999, 0, 0, 0) == -SP_ENOSYS, "unknown system call = -ENOSYS");
	ok(sys_munmap(page + 4096, 4096) == -SP_EINVAL, "munmap(unmapped) = -EINVAL");
	ok(sys_kill(12345) == -SP_ESRCH, "kill(no such pid) = -ESRCH");
	ok(sys_munmap(page, 4096) == 0, "munmap of a 1-page mapping");
}

static int child_exec(long arg)
{
	sys_exec("check", arg);
	return 99;
}

static int child_spin(long arg)
{
	for (;;)
		barrier();
	return 0;
}

static void test_exec_and_sched(void)
{
	u64 j0, t0, ns, ticks;
	char desc[96];
	long pid;

	ok(run_child(child_exit42, 0) == SP_W_EXITED(42),
	   "fork/exit/wait: exit status 42 reaches the parent");
	ok(run_child(child_pid_differs, sys_getpid()) == SP_W_EXITED(0),
	   "fork: child has its own pid");
	ok(run_child(child_exec, 5) == SP_W_EXITED(38),
	   "exec: 'check' sees its data and bss, exits with 5*7+3");

	/*
	 * The timer ticks at HZ, timed against the TSC: spin (with system
	 * calls to read the tick count) for at least 200 ms and 3 ticks,
	 * giving up after 3 s.  A busy host can lose ticks (they coalesce),
	 * never add any, so the rate is only bounded from above.
	 */
	sys_info(&info);
	j0 = info.jiffies;
	t0 = rdtsc();
	do {
		sys_info(&info);
		ns = tsc_to_ns(rdtsc() - t0);
	} while ((ns < 200000000ULL || info.jiffies - j0 < 3) &&
		 ns < 3000000000ULL);
	ticks = info.jiffies - j0;
	snprintf(desc, sizeof(desc),
		 "timer: %lu ticks in %lu ms (at least 3, at most HZ=%d + 25%%)",
		 ticks, ns / 1000000, HZ_EXPECTED);
	ok(ticks >= 3 &&
	   ticks * 1000000000ULL <= ns * HZ_EXPECTED / 4 * 5 + 2000000000ULL,
	   desc);

	/* Only preemption gives the CPU back from a child that never yields. */
	pid = spawn(child_spin, 0);
	sys_yield();
	ok(sys_kill(pid) == 0 && wait_for(pid) == SP_W_SIGNALED(SP_SIGKILL),
	   "preemption: parent runs again beside a spinning child, kills it");
}

static int child_work(long i)
{
	u64 *p = (u64 *)sys_mmap(16 * 4096);

	fill(p, 16 * 512, 1000 + i);
	sys_yield();
	return checksum(p, 16 * 512) == expected_sum(1000 + i, 16 * 512) ?
	       (int)(i & 0xff) : 255;
}

static void test_many(void)
{
	long pids[24];
	int i, good = 1;

	for (i = 0; i < 24; i++)
		pids[i] = spawn(child_work, i + 1);
	for (i = 23; i >= 0; i--)
		if (pids[i] <= 0 || wait_for(pids[i]) != SP_W_EXITED(i + 1))
			good = 0;
	ok(good, "24 concurrent children each checksum 64 KiB, exit statuses right");
}

static noinline u64 deep(int n)
{
	u64 pad[512];

	pad[0] = n;
	pad[511] = n * 3;
	use_memory(pad);
	if (n == 0)
		return pad[0] + pad[511];
	return deep(n - 1) + pad[0] + pad[511];
}

static int child_touch(long n)
{
	fill(cow_buf, COW_WORDS, n);
	return 0;
}

/* Touch more pages than are free: the kernel must kill only this child. */
static int child_hog(long a)
{
	u64 n = free_pages() + 256, i;
	u8 *p = (u8 *)sys_mmap(n * 4096);

	if ((long)p < 0)
		return 1;
	for (i = 0; i < n; i++)
		p[i * 4096] = 1;
	return 2;
}

static void test_stack_and_leaks(void)
{
	u64 f0, f1;
	int st;

	ok(deep(100) == 4 * (100 * 101 / 2), "stack: 400 KiB of recursion grows the stack on demand");

	f0 = free_pages();
	st = run_child(child_touch, 3);
	f1 = free_pages();
	ok(st == SP_W_EXITED(0) && f0 == f1,
	   "fork+write+exit+wait leaves the free page count unchanged");

	f0 = free_pages();
	st = run_child(child_hog, 0);
	f1 = free_pages();
	ok(st == SP_W_SIGNALED(SP_SIGKILL) && f0 == f1,
	   "out of memory kills only the hog, and all its pages come back");
	ok(run_child(child_exit42, 0) == SP_W_EXITED(42),
	   "fork/exit/wait still work after running out of memory");
}

static int run_selftest(int inject_failure)
{
	printf("TAP version 13\n");
	test_exec_and_sched();
	test_cow();
	test_fork_tables();
	test_demand_zero();
	test_bad_access();
	test_bad_pointers();
	test_many();
	test_stack_and_leaks();
	if (inject_failure)
		ok(0, "deliberately failing test (mode=selftest-fail)");
	printf("1..%d\n", ntest);
	if (nfail) {
		printf("sparrow-selftest: FAIL (%d of %d failed)\n", nfail, ntest);
		return nfail;
	}
	printf("sparrow-selftest: PASS (%d tests)\n", ntest);
	return 0;
}

/* ---- benchmarks --------------------------------------------------- */

static void report(const char *name, u64 iters, u64 cycles, long ex0, long ex1)
{
	u64 ps = tsc_to_ps(cycles) / iters;	/* picoseconds per op */

	if (ex0 >= 0 && ex1 >= 0)
		printf("bench %s iters=%lu ns_per_op=%lu.%03lu exits_per_op=%lu\n",
		       name, iters, ps / 1000, ps % 1000,
		       (u64)(ex1 - ex0) / iters);
	else
		printf("bench %s iters=%lu ns_per_op=%lu.%03lu\n",
		       name, iters, ps / 1000, ps % 1000);
}

#define BENCH(name, iters, body) do {				\
	long __e0 = sys_hv_exits(), __e1;			\
	u64 __t0 = rdtsc(), __i;				\
	for (__i = 0; __i < (iters); __i++) {			\
		body;						\
	}							\
	__t0 = rdtsc() - __t0;					\
	__e1 = sys_hv_exits();					\
	report(name, iters, __t0, __e0, __e1);			\
} while (0)

static int ctx_nproc;
static long ctx_rounds;

/*
 * lat_ctx without pipes: nproc processes yield in turn.  Child 0 times its
 * own rounds once everybody is running (after a warm-up round): between
 * two of its yields each of the nproc processes ran once, so one round is
 * nproc switches.  The parent sleeps in wait() meanwhile.
 */
static int child_yield(long id)
{
	long e0 = -1, e1, i;
	char name[32];
	u64 t0 = 0;

	for (i = 0; i < ctx_rounds + 2; i++) {
		if (i == 2) {
			e0 = sys_hv_exits();
			t0 = rdtsc();
		}
		sys_yield();
	}
	if (id == 0) {
		t0 = rdtsc() - t0;
		e1 = sys_hv_exits();
		snprintf(name, sizeof(name), "ctxsw_%dproc", ctx_nproc);
		report(name, ctx_nproc * ctx_rounds, t0, e0, e1);
	}
	return 0;
}

static void bench_ctx(int nproc, long rounds)
{
	long pids[16];
	int i;

	ctx_nproc = nproc;
	ctx_rounds = rounds;
	for (i = 0; i < nproc; i++)
		pids[i] = spawn(child_yield, i);
	for (i = 0; i < nproc; i++)
		wait_for(pids[i]);
}

static int child_nothing(long a)
{
	return a;
}

static u64 bench_sink;

static int run_bench(void)
{
	u64 *p;
	long i;

	printf("# sparrow bench: tsc %lu kHz, %s\n", info.tsc_khz,
	       (info.boot_flags & 2) ? "trapvm" : "bare metal");

	BENCH("null_syscall", 20000, sys_getpid());
	bench_ctx(2, 2000);
	bench_ctx(16, 250);

	p = (u64 *)sys_mmap(2048 * 4096);
	BENCH("page_fault", 2048, p[__i * 512] = __i);
	sys_munmap(p, 2048 * 4096);

	BENCH("fork_exit_wait", 100, run_child(child_nothing, 0));
	BENCH("fork_exec_wait", 100, run_child(child_exec, 0));

	/*
	 * Fork with 4 MiB written in the parent: 1024 PTEs (two tables) to
	 * write-protect in the parent and copy into the child, and to clear
	 * when the child exits (the page-table batch's case).
	 */
	p = (u64 *)sys_mmap(4 << 20);
	for (i = 0; i < (4 << 20) / 8; i += 512)
		p[i] = i;
	BENCH("fork_exit_wait_4m", 50, run_child(child_nothing, 0));
	/*
	 * The same with the parent writing its 4 MiB before each fork (a COW
	 * fault per page, taking the page back): every fork write-protects
	 * 1024 live PTEs again.
	 */
	BENCH("fork_touch_4m", 20, {
		for (i = 0; i < (4 << 20) / 8; i += 512)
			p[i] = i + __i;
		run_child(child_nothing, 0);
	});
	sys_munmap(p, 4 << 20);

	if (free_pages() < (64 << 20) / 4096 + 1024)
		printf("# bench map_touch_64m skipped: less than 68 MiB free\n");
	else
		BENCH("map_touch_64m", 2, {
			u64 *m = (u64 *)sys_mmap(64 << 20);

			for (i = 0; i < (64 << 20) / 8; i += 512)
				m[i] = i;
			sys_munmap(m, 64 << 20);
		});

	BENCH("cpu_loop_1m", 20, {
		u64 x = __i;

		for (i = 0; i < 1000000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x = hide_value(x);
		bench_sink += x;
	});
	printf("# sparrow bench: done\n");
	return 0;
}

/* ---- demo ---------------------------------------------------------- */

static int demo_worker(long id)
{
	int step;

	for (step = 0; step < 6; step++) {
		u64 t0 = rdtsc();

		printf("[%c] pid %ld step %d\n", (char)('A' + id), sys_getpid(),
		       step);
		/* Busy for 30 ms without yielding: only the timer switches. */
		while (tsc_to_ns(rdtsc() - t0) < 30000000ULL)
			;
	}
	return (int)id;
}

static int run_demo(void)
{
	long pids[4];
	int i;

	printf("sparrow demo: 4 processes spinning, preempted by the timer\n");
	for (i = 0; i < 4; i++)
		pids[i] = spawn(demo_worker, i);
	for (i = 0; i < 4; i++)
		printf("[init] %c exited with status %d\n", 'A' + i,
		       SP_WEXITSTATUS(wait_for(pids[i])));
	return 0;
}

int umain(unsigned long mode)
{
	int ret;
	int st;

	sys_info(&info);
	switch (mode) {
	case MODE_BENCH:
		ret = run_bench();
		break;
	case MODE_DEMO:
		ret = run_demo();
		break;
	default:
		ret = run_selftest(mode == MODE_SELFTEST_FAIL);
		break;
	}
	/* Reap orphans so nothing is left behind. */
	while (sys_wait(-1, &st) > 0)
		;
	return ret;
}
