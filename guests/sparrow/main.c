// SPDX-License-Identifier: GPL-2.0
/*
 * sparrow's C entry.  _start64 (entry.S) calls kmain with the boot
 * information trapvm's loader built, or that the multiboot path built from
 * what QEMU passed (mbconv.c): from here on there is one boot protocol.
 */
#include "sparrow.h"

struct trapvm_boot_info boot_info;
char boot_cmdline[256];
int boot_mode;

/*
 * VMCALL with the trapvm convention (number in RAX, arguments in RBX, RCX,
 * RDX, RSI, result in RAX).  Only issued when the boot flags say trapvm;
 * should it still raise #UD (no hypervisor, or an old trapvm), trap()
 * skips the instruction and the call returns -ENOSYS.  noinline: the
 * label must exist exactly once.
 */
noinline long hypercall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	long ret;

	asm volatile(".globl hypercall_insn\n"
		     "hypercall_insn: vmcall"
		     : "=a"(ret)
		     : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3)
		     : "memory");
	return ret;
}

/*
 * The hypervisor's exit counter for this vCPU (bench mode reports exits per
 * operation), or -ENOSYS: natively there is none, and a trapvm that does
 * not know TRAPVM_HC_EXIT_COUNT answers -ENOSYS itself.
 */
u64 hv_exit_count(void)
{
	if (!(boot_info.flags & TRAPVM_BOOT_F_TRAPVM))
		return (u64)-SP_ENOSYS;
	return (u64)hypercall(TRAPVM_HC_EXIT_COUNT, 0, 0, 0, 0);
}

static const char *const mode_names[] = {
	[MODE_SELFTEST] = "selftest",
	[MODE_BENCH] = "bench",
	[MODE_DEMO] = "demo",
	[MODE_SELFTEST_FAIL] = "selftest-fail",
};

/*
 * The value of the first "key=" word of the command line (up to the next
 * space or the end), or NULL.
 */
const char *cmdline_value(const char *key)
{
	size_t n = strlen(key);
	const char *s;

	for (s = boot_cmdline; *s; s++)
		if ((s == boot_cmdline || s[-1] == ' ') &&
		    !strncmp(s, key, n) && s[n] == '=')
			return s + n + 1;
	return NULL;
}

/* The value of the first "mode=" word of the command line. */
static int cmdline_mode(void)
{
	const char *s = boot_cmdline;
	unsigned int i;

	for (; *s; s++) {
		if ((s != boot_cmdline && s[-1] != ' ') ||
		    strncmp(s, "mode=", 5))
			continue;
		s += 5;
		for (i = 0; i < ARRAY_SIZE(mode_names); i++) {
			size_t n = strlen(mode_names[i]);

			if (!strncmp(s, mode_names[i], n) &&
			    (s[n] == 0 || s[n] == ' '))
				return i;
		}
		kprintf("sparrow: unknown mode, running the self-test\n");
		break;
	}
	return MODE_SELFTEST;
}

void kmain(struct trapvm_boot_info *bi)
{
	uart_init();
	if (bi->magic != TRAPVM_BOOT_MAGIC || bi->version < 1)
		panic("bad boot info magic %x", bi->magic);
	boot_info = *bi;
	if (boot_info.nr_mem_ranges > TRAPVM_BOOT_MAX_MEM_RANGES)
		boot_info.nr_mem_ranges = TRAPVM_BOOT_MAX_MEM_RANGES;
	if (bi->cmdline_addr) {
		u32 n = bi->cmdline_len < sizeof(boot_cmdline) - 1 ?
			bi->cmdline_len : sizeof(boot_cmdline) - 1;

		memcpy(boot_cmdline, (const void *)bi->cmdline_addr, n);
		boot_cmdline[n] = 0;
	}
	boot_mode = cmdline_mode();
	kprintf("sparrow: booting on %s, %lu MiB, cmdline \"%s\", mode %s\n",
		(boot_info.flags & TRAPVM_BOOT_F_TRAPVM) ? "trapvm" : "bare metal",
		boot_info.mem_size >> 20, boot_cmdline, mode_names[boot_mode]);

	cpu_init();
	if (boot_info.flags & TRAPVM_BOOT_F_TRAPVM)
		kprintf("sparrow: trapvm hypercall version %ld\n",
			hypercall(TRAPVM_HC_VERSION, 0, 0, 0, 0));
	mm_init();
	mm_pv_init();
	proc_init();
	timer_init();
	start_init(boot_mode);
}
