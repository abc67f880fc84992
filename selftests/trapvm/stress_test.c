// SPDX-License-Identifier: GPL-2.0
/*
 * stress_test: volume and hostile guests.
 *
 * many_exits: n exits the module handles itself (emulated privileged
 * instructions), then n / 10 exits to userspace (port I/O); the guest
 * checks every result, the test checks the counts, and the host's kernel
 * log stays clean.  n is 200,000 by default, STRESS_EXITS=1000000 for the
 * full million: under TCG in the test host one emulated exit costs about
 * 0.1 ms, so a million takes ~2 minutes per boot, too long for every
 * configuration of `make check`.
 *
 * random_bytes: 100,000 times, random bytes executed at virtual CPL0
 * with random registers (STRESS_RANDOM_ITERS=n, STRESS_SEED=s).  Every
 * exception goes to a guest IDT stub that reports its vector with an OUT;
 * the state is reset for each iteration.  Afterwards: no kernel splat,
 * guest RAM that no guest page table maps is unchanged, another VM's RAM
 * and the test's own memory are unchanged, and a new VM still works.
 *
 *   tools/testhost/run -- selftests/trapvm/stress_test
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"
#include "trapvm_test.h"

/* ---- 1,000,000 exits ---- */

static void guest_many_exits(uint64_t n)
{
	uint64_t i, v;

	guest_wrmsr(0xc0000103, 0);		/* TSC_AUX */
	for (i = 0; i < n; i += 2) {
		/* Both trap (#GP at CPL3) and are emulated in the module. */
		asm volatile("mov %0, %%cr2" : : "r"(i));
		asm volatile("mov %%cr2, %0" : "=r"(v));
		GUEST_ASSERT_EQ_X(v, i, i);
	}
	GUEST_SYNC(i);
	/* Exits to userspace: OUT of a counter, the test checks it. */
	for (i = 0; i < n / 10; i++)
		asm volatile("outl %0, $0x99" : : "a"((uint32_t)i));
	GUEST_SYNC(i);
}

FIXTURE(stress) {
	int unused;
};

FIXTURE_SETUP(stress)
{
}

FIXTURE_TEARDOWN(stress)
{
}

TEST_F_TIMEOUT(stress, many_exits, 600)
{
	uint64_t n = tvm_env_u64("STRESS_EXITS", 200000);
	static struct trapvm_vcpu_stats before, after;
	struct tvm *vm = tvm_create(0);
	uint64_t t0, t1, t2, i = 0;
	struct ucall uc;
	char why[2048];

	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &before));
	tvm_enter(vm, guest_many_exits, n);
	t0 = tvm_now_ns();
	TVM_RUN_EXPECT(vm, &uc, UCALL_SYNC);
	t1 = tvm_now_ns();
	EXPECT_EQ(n, uc.args[0]);
	for (;;) {
		uint32_t v;

		ASSERT_EQ(0, tvm_run(vm));
		if (tvm_get_ucall(vm, &uc) != UCALL_NONE)
			break;
		ASSERT_EQ(TRAPVM_EXIT_IO, vm->run->exit_reason)
			TH_LOG("%s", tvm_describe(vm, &uc));
		ASSERT_EQ(0x99, vm->run->io.port);
		ASSERT_EQ(4, vm->run->io.size);
		memcpy(&v, (char *)vm->run + vm->run->io.data_offset, 4);
		ASSERT_EQ((uint32_t)i, v);
		i++;
	}
	t2 = tvm_now_ns();
	ASSERT_EQ(UCALL_SYNC, uc.cmd) TH_LOG("%s", tvm_describe(vm, &uc));
	EXPECT_EQ(n / 10, uc.args[0]);
	EXPECT_EQ(n / 10, i);
	ASSERT_EQ(0, ioctl(vm->vcpu, TRAPVM_GET_STATS, &after));
	TH_LOG("%llu emulated exits in %llu ms (%llu ns each), %llu exits to userspace in %llu ms (%llu ns each); module counted %llu entries",
	       (unsigned long long)n,
	       (unsigned long long)(t1 - t0) / 1000000,
	       (unsigned long long)((t1 - t0) / (n ?: 1)),
	       (unsigned long long)i,
	       (unsigned long long)(t2 - t1) / 1000000,
	       (unsigned long long)((t2 - t1) / (i ?: 1)),
	       (unsigned long long)(after.count[TRAPVM_STAT_ENTRIES] -
				    before.count[TRAPVM_STAT_ENTRIES]));
	/* At least one guest entry per exit. */
	EXPECT_LE(n + n / 10, after.count[TRAPVM_STAT_ENTRIES] -
			      before.count[TRAPVM_STAT_ENTRIES]);
	TVM_RUN_DONE(vm);
	tvm_free(vm);
	EXPECT_TRUE(tvm_host_clean(why, sizeof(why))) TH_LOG("%s", why);
}

/* ---- random bytes at virtual CPL0 ---- */

#define RND_CODE_VA	0x60000000ULL	/* random bytes, then INT3s */
#define RND_SCRATCH_VA	0x60001000ULL	/* RW page for memory operands */
#define RND_REPORT_PORT	0xe7
#define RND_CODE_BYTES	32
#define CANARY_PAGES	64
#define CANARY_BYTE	0xa5

/*
 * One IDT stub per vector, 16 bytes each: report the vector with an OUT
 * and stop.  The stubs write nothing (the image is read-only here).
 */
extern const unsigned char rnd_stubs[];
asm(".pushsection .text\n"
    ".balign 16\n"
    "rnd_stubs:\n"
    "vector = 0\n"
    ".rept 256\n"
    ".balign 16\n"
    "movl $vector, %eax\n\t"
    "outl %eax, $0xe7\n\t"
    "1: hlt\n\t"
    "jmp 1b\n"
    "vector = vector + 1\n"
    ".endr\n"
    ".popsection");

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Clear W on every leaf PTE except for the GPA ranges in @rw. */
static void make_readonly(struct tvm *vm, uint64_t table, int level,
			  const uint64_t (*rw)[2], int nrw)
{
	uint64_t *t = tvm_gpa(vm, table);
	int i, j;

	for (i = 0; i < 512; i++) {
		uint64_t gpa = t[i] & PTE_ADDR;
		bool w = false;

		if (!(t[i] & PTE_P))
			continue;
		if (level > 1) {
			make_readonly(vm, gpa, level - 1, rw, nrw);
			continue;
		}
		for (j = 0; j < nrw; j++)
			if (gpa >= rw[j][0] && gpa < rw[j][1])
				w = true;
		/* writable pages are not executable: W^X for the guest */
		if (!w)
			t[i] &= ~PTE_W;
		else
			t[i] |= PTE_NX;
		/* the page-table pages need not be mapped at all */
		if (gpa >= TVM_PT_GPA && gpa < TVM_PT_END)
			t[i] = 0;
	}
}

struct rnd_vm {
	struct tvm *vm;
	struct trapvm_sregs sregs;
	uint8_t *code;
	uint64_t canary_gpa;
};

static void rnd_vm_create(struct __test_metadata *_metadata,
			  struct rnd_vm *r)
{
	static const uint64_t rw[][2] = {
		{ TVM_UCALL_GPA, TVM_UCALL_GPA + 0x1000 },
		{ TVM_STACK_TOP - 0x20000, TVM_IST_TOP(7) },
	};
	uint64_t code, scratch;
	int v;

	r->vm = tvm_create(0);
	code = tvm_alloc(r->vm, 2);
	scratch = code + 0x1000;
	r->canary_gpa = tvm_alloc(r->vm, CANARY_PAGES);
	memset(tvm_gpa(r->vm, r->canary_gpa), CANARY_BYTE,
	       CANARY_PAGES * 4096);
	for (v = 0; v < 256; v++)
		tvm_set_gate(r->vm, v, (uint64_t)rnd_stubs + 16 * v,
			     GATE_INTR, 0, v == DF_VECTOR ? 1 : 0, true);
	make_readonly(r->vm, TVM_PT_GPA, 4, rw, 2);
	/*
	 * Only the random bytes (read-only) and the image are executable:
	 * the guest cannot write bytes it then runs.  That keeps the QEMU
	 * workaround in tcg_safe() complete (see there).
	 */
	tvm_map(r->vm, RND_CODE_VA, code, PTE_P);
	tvm_map(r->vm, RND_SCRATCH_VA, scratch, PTE_P | PTE_W | PTE_NX);
	r->code = tvm_gpa(r->vm, code);
	memset(r->code + RND_CODE_BYTES, 0xcc, 4096 - RND_CODE_BYTES);
	ASSERT_EQ(0, ioctl(r->vm->vcpu, TRAPVM_GET_SREGS, &r->sregs));
}

static bool canary_intact(struct rnd_vm *r)
{
	const uint8_t *p = tvm_gpa(r->vm, r->canary_gpa);
	size_t i;

	for (i = 0; i < CANARY_PAGES * 4096; i++)
		if (p[i] != CANARY_BYTE)
			return false;
	return true;
}

/*
 * The test host's CPU is QEMU 7.2 TCG, which aborts (killing the whole
 * test host, from any user process too) on VEX-encoded PINSR* whose
 * vector length is not 16 bytes and whose VEX.vvvv is not the
 * destination (gen_pinsr: "vec_len == 16"), e.g. c5 f0 c4 c8 00 (no
 * 66 prefix: MMX-sized).  The guest runs it natively, so this is QEMU's
 * bug, not trapvm's: after every C4/C5 byte, force VEX.L = 0 and
 * VEX.pp = 01 (66), which makes every vector 16 bytes.  The fetched
 * bytes stay random otherwise.
 */
static void tcg_safe(uint8_t *code, int len)
{
	int k;

	/* the INT3 padding after the bytes has bit 2 set: no VEX at the end */
	if (code[len - 1] == 0xc4 || code[len - 1] == 0xc5)
		code[len - 1] = 0x90;
	if (code[len - 2] == 0xc4)
		code[len - 2] = 0x90;
	for (k = 0; k < len; k++) {
		if (code[k] == 0xc5 && k + 1 < len)
			code[k + 1] = (code[k + 1] & ~7) | 1;
		if (code[k] == 0xc4 && k + 2 < len)
			code[k + 2] = (code[k + 2] & ~7) | 1;
	}
}

static void on_alarm(int sig)
{
}

enum { R_VECTOR, R_SHUTDOWN, R_IO, R_MMIO, R_HC, R_INTERNAL, R_INTR,
       R_LIMIT, R_NR };

static const char *const r_names[R_NR] = {
	"guest exception", "shutdown", "port I/O", "MMIO", "hypercall",
	"internal error", "signal (HLT/loop)", "exit limit",
};

/* Fill a pattern that tests can recognise. */
static void fill(void *p, size_t len, uint8_t b)
{
	memset(p, b, len);
}

static bool all(const void *p, size_t len, uint8_t b)
{
	const uint8_t *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (c[i] != b)
			return false;
	return true;
}

static void guest_alive(uint64_t x)
{
	GUEST_SYNC(x * 3);
}

TEST_F_TIMEOUT(stress, random_bytes, 600)
{
	uint64_t iters = tvm_env_u64("STRESS_RANDOM_ITERS", 100000);
	uint64_t seed = tvm_env_u64("STRESS_SEED", 0);
	uint64_t counts[R_NR] = { 0 }, vectors[256] = { 0 };
	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	struct sigaction sa = { .sa_handler = on_alarm };
	size_t host_canary_len = 1 << 20;
	uint8_t *host_canary = malloc(host_canary_len);
	struct tvm *bystander = tvm_create(0);
	unsigned int internal_logged = 0;
	uint64_t i, t0, recreated = 0;
	struct rnd_vm r;
	struct ucall uc;
	char why[2048];
	int k;

	if (!seed)
		seed = time(NULL) ^ ((uint64_t)getpid() << 32);
	rng_state = seed;
	TH_LOG("seed %#llx (STRESS_SEED=), %llu iterations",
	       (unsigned long long)seed, (unsigned long long)iters);
	ASSERT_NE(NULL, host_canary);
	fill(host_canary, host_canary_len, 0x5a);
	fill(bystander->ram + TVM_MiB * 4, TVM_MiB * 4, 0x3c);

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	rnd_vm_create(_metadata, &r);
	t0 = tvm_now_ns();

	for (i = 0; i < iters; i++) {
		struct trapvm_regs regs = { 0 };
		__u64 *gpr = &regs.rax;
		int exits = 0, intr = 0;
		bool next = false;

		for (k = 0; k < RND_CODE_BYTES; k += 8) {
			uint64_t b = rnd();

			memcpy(r.code + k, &b, 8);
		}
		tcg_safe(r.code, RND_CODE_BYTES);
		for (k = 0; k < 16; k++)
			gpr[k] = (rnd() & 1) ? rnd() :
				 RND_SCRATCH_VA + (rnd() & 0xff8);
		regs.rsp = TVM_STACK_TOP - 256;
		regs.rip = RND_CODE_VA;
		/* arithmetic flags and DF random; IF random */
		regs.rflags = 0x2 | (rnd() & 0x8d5) | (rnd() & 0x200);
		ASSERT_EQ(0, ioctl(r.vm->vcpu, TRAPVM_SET_REGS, &regs))
			TH_LOG("SET_REGS: %s", strerror(errno));
		ASSERT_EQ(0, ioctl(r.vm->vcpu, TRAPVM_SET_SREGS, &r.sregs))
			TH_LOG("SET_SREGS: %s", strerror(errno));

		while (!next) {
			struct trapvm_run *run = r.vm->run;
			int ret = tvm_run(r.vm);

			if (ret == -EINTR) {
				/* HLT with IF=1 or a loop: the timer ends it */
				if (++intr >= 2) {
					counts[R_INTR]++;
					next = true;
				}
				continue;
			}
			ASSERT_EQ(0, ret) TH_LOG("RUN: %s (iteration %llu)",
						 strerror(-ret),
						 (unsigned long long)i);
			if (++exits > 16) {
				counts[R_LIMIT]++;
				break;
			}
			switch (run->exit_reason) {
			case TRAPVM_EXIT_IO:
				if (run->io.port == RND_REPORT_PORT &&
				    run->io.direction == TRAPVM_EXIT_IO_OUT &&
				    run->io.size == 4) {
					uint32_t v;

					memcpy(&v, (char *)run +
					       run->io.data_offset, 4);
					vectors[v & 0xff]++;
					counts[R_VECTOR]++;
					next = true;
				} else {
					counts[R_IO]++;
				}
				break;
			case TRAPVM_EXIT_MMIO:
				counts[R_MMIO]++;
				break;
			case TRAPVM_EXIT_HYPERCALL:
				run->hypercall.ret = 0;
				counts[R_HC]++;
				break;
			case TRAPVM_EXIT_SHUTDOWN:
				counts[R_SHUTDOWN]++;
				next = true;
				break;
			case TRAPVM_EXIT_INTERNAL_ERROR:
				counts[R_INTERNAL]++;
				/* A fault in the world switch is the host's. */
				ASSERT_NE(TRAPVM_INTERNAL_ERROR_SWITCHER,
					  run->internal.suberror)
					TH_LOG("%s", tvm_describe(r.vm, &uc));
				if (internal_logged++ < 5) {
					char hex[3 * RND_CODE_BYTES + 1];

					for (k = 0; k < RND_CODE_BYTES; k++)
						sprintf(hex + 3 * k, "%02x ",
							r.code[k]);
					TH_LOG("iteration %llu: %s; code %s",
					       (unsigned long long)i,
					       tvm_describe(r.vm, &uc), hex);
				}
				next = true;
				break;
			default:
				ASSERT_TRUE(0) TH_LOG("iteration %llu: %s",
						      (unsigned long long)i,
						      tvm_describe(r.vm, &uc));
			}
		}
		/* A shut-down or killed vCPU stays so: a new VM. */
		if (r.vm->run->exit_reason == TRAPVM_EXIT_SHUTDOWN ||
		    r.vm->run->exit_reason == TRAPVM_EXIT_INTERNAL_ERROR) {
			ASSERT_TRUE(canary_intact(&r))
				TH_LOG("unmapped guest RAM changed (iteration %llu)",
				       (unsigned long long)i);
			tvm_free(r.vm);
			rnd_vm_create(_metadata, &r);
			recreated++;
		}
	}
	it.it_value.tv_usec = it.it_interval.tv_usec = 0;
	setitimer(ITIMER_REAL, &it, NULL);

	TH_LOG("%llu iterations in %llu ms, %llu VMs recreated",
	       (unsigned long long)iters,
	       (unsigned long long)(tvm_now_ns() - t0) / 1000000,
	       (unsigned long long)recreated);
	for (k = 0; k < R_NR; k++)
		TH_LOG("  %-18s %llu", r_names[k],
		       (unsigned long long)counts[k]);
	for (k = 0; k < 32; k++)
		if (vectors[k])
			TH_LOG("  vector %2d         %llu", k,
			       (unsigned long long)vectors[k]);

	/* No escape: nothing outside what the guest maps has changed. */
	EXPECT_TRUE(canary_intact(&r));
	EXPECT_TRUE(all(host_canary, host_canary_len, 0x5a));
	EXPECT_TRUE(all(bystander->ram + TVM_MiB * 4, TVM_MiB * 4, 0x3c));
	/* The host is clean and the module still runs guests. */
	EXPECT_TRUE(tvm_host_clean(why, sizeof(why))) TH_LOG("%s", why);
	tvm_free(r.vm);
	tvm_enter(bystander, guest_alive, 14);
	TVM_RUN_EXPECT(bystander, &uc, UCALL_SYNC);
	EXPECT_EQ(42, uc.args[0]);
	tvm_free(bystander);
	free(host_canary);
}

TEST_HARNESS_MAIN
