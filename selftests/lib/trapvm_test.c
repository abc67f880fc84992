// SPDX-License-Identifier: GPL-2.0
/*
 * Test side of the library: VM creation with the guest's own page tables,
 * GDT, IDT and TSS, the executable's image in guest RAM, and ucalls.
 * See trapvm_test.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/trapvm.h>
#include <linux/trapvm_guest.h>

#include "trapvm_test.h"

extern const char __executable_start[];

static void __attribute__((noreturn, format(printf, 1, 2)))
tvm_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "# trapvm_test: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

void *tvm_gpa(struct tvm *vm, uint64_t gpa)
{
	if (gpa >= vm->mem_size)
		tvm_fatal("gpa %#llx outside RAM", (unsigned long long)gpa);
	return vm->ram + gpa;
}

static uint64_t pt_alloc(struct tvm *vm)
{
	uint64_t gpa = vm->next_pt;

	if (gpa >= TVM_PT_END)
		tvm_fatal("out of page-table pages");
	vm->next_pt += 4096;
	memset(vm->ram + gpa, 0, 4096);
	return gpa;
}

uint64_t *tvm_pte(struct tvm *vm, uint64_t gva, bool alloc)
{
	uint64_t table = TVM_PT_GPA;
	int level;

	for (level = 3; level > 0; level--) {
		uint64_t *e = (uint64_t *)(vm->ram + table) +
			      ((gva >> (12 + 9 * level)) & 511);

		if (!(*e & PTE_P)) {
			if (!alloc)
				return NULL;
			*e = pt_alloc(vm) | PTE_P | PTE_W | PTE_U;
		}
		if (*e & PTE_PS)
			return NULL;
		table = *e & PTE_ADDR;
	}
	return (uint64_t *)(vm->ram + table) + ((gva >> 12) & 511);
}

void tvm_map(struct tvm *vm, uint64_t gva, uint64_t gpa, uint64_t flags)
{
	*tvm_pte(vm, gva, true) = (gpa & PTE_ADDR) | flags;
}

void *tvm_gva(struct tvm *vm, uint64_t gva)
{
	uint64_t *pte = tvm_pte(vm, gva, false);

	if (!pte || !(*pte & PTE_P))
		return NULL;
	return tvm_gpa(vm, (*pte & PTE_ADDR) + (gva & 4095));
}

uint64_t tvm_alloc(struct tvm *vm, uint64_t npages)
{
	uint64_t gpa = vm->next_free;

	if (gpa + npages * 4096 > vm->mem_size)
		tvm_fatal("out of guest RAM");
	vm->next_free += npages * 4096;
	memset(vm->ram + gpa, 0, npages * 4096);
	return gpa;
}

uint64_t tvm_seg_desc(uint32_t base, uint32_t limit, unsigned int type,
		      unsigned int s, unsigned int dpl, unsigned int p,
		      unsigned int l, unsigned int db, unsigned int g)
{
	return (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) |
	       ((uint64_t)type << 40) | ((uint64_t)s << 44) |
	       ((uint64_t)dpl << 45) | ((uint64_t)p << 47) |
	       ((uint64_t)((limit >> 16) & 0xf) << 48) |
	       ((uint64_t)l << 53) | ((uint64_t)db << 54) |
	       ((uint64_t)g << 55) | ((uint64_t)(base >> 24) << 56);
}

void tvm_set_gdt_entry(struct tvm *vm, unsigned int sel, uint64_t desc)
{
	((uint64_t *)tvm_gpa(vm, TVM_GDT_GPA))[sel >> 3] = desc;
}

void tvm_set_gate(struct tvm *vm, unsigned int vector, uint64_t handler,
		  unsigned int type, unsigned int dpl, unsigned int ist,
		  bool present)
{
	uint64_t *g = tvm_gpa(vm, TVM_IDT_GPA + 16 * vector);

	g[0] = (handler & 0xffff) | ((uint64_t)TVM_KCS << 16) |
	       ((uint64_t)ist << 32) | ((uint64_t)type << 40) |
	       ((uint64_t)dpl << 45) | ((uint64_t)present << 47) |
	       (((handler >> 16) & 0xffff) << 48);
	g[1] = handler >> 32;
}

/* Copy every PT_LOAD segment of the executable, same virtual addresses. */
static int map_image_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct tvm *vm = data;
	int i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t start, end, va;

		if (ph->p_type != PT_LOAD)
			continue;
		start = (info->dlpi_addr + ph->p_vaddr) & ~4095ULL;
		end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095) &
		      ~4095ULL;
		for (va = start; va < end; va += 4096) {
			uint64_t *pte = tvm_pte(vm, va, true);

			if (*pte & PTE_P)
				continue;	/* shared with a segment */
			*pte = tvm_alloc(vm, 1) | PTE_P | PTE_W | PTE_U;
			memcpy(vm->ram + (*pte & PTE_ADDR), (void *)va, 4096);
		}
	}
	return 1;	/* the first object is the executable */
}

static void vm_setup_tables(struct tvm *vm)
{
	uint64_t *tss = tvm_gpa(vm, TVM_TSS_GPA);
	uint64_t a;
	int v;

	vm->next_pt = TVM_PT_GPA;
	pt_alloc(vm);			/* the PML4 */
	for (a = 0x1000; a < TVM_IDMAP_END; a += 4096)
		tvm_map(vm, a, a, PTE_P | PTE_W | PTE_U);

	/* GDT: Linux's layout, plus a TSS. */
	tvm_set_gdt_entry(vm, TVM_KCS, tvm_seg_desc(0, 0xfffff, 0xb, 1, 0, 1,
						    1, 0, 1));
	tvm_set_gdt_entry(vm, TVM_KDS, tvm_seg_desc(0, 0xfffff, 0x3, 1, 0, 1,
						    0, 1, 1));
	tvm_set_gdt_entry(vm, TVM_UCS32, tvm_seg_desc(0, 0xfffff, 0xb, 1, 3,
						      1, 0, 1, 1));
	tvm_set_gdt_entry(vm, TVM_UDS, tvm_seg_desc(0, 0xfffff, 0x3, 1, 3, 1,
						    0, 1, 1));
	tvm_set_gdt_entry(vm, TVM_UCS, tvm_seg_desc(0, 0xfffff, 0xb, 1, 3, 1,
						    1, 0, 1));
	/* 64-bit TSS, busy (TR is loaded with it), base < 4 GiB. */
	tvm_set_gdt_entry(vm, TVM_TSS_SEL, tvm_seg_desc(TVM_TSS_GPA, 0x67, 0xb,
							0, 0, 1, 0, 0, 0));
	tvm_set_gdt_entry(vm, TVM_TSS_SEL + 8, 0);

	/* TSS: RSP0 at offset 4, IST1..7 at 36, no I/O bitmap. */
	memset(tss, 0, 4096);
	memcpy((uint8_t *)tss + 4, &(uint64_t){ TVM_RSP0_TOP }, 8);
	for (v = 1; v <= 7; v++)
		memcpy((uint8_t *)tss + 36 + 8 * (v - 1),
		       &(uint64_t){ TVM_IST_TOP(v) }, 8);
	*(uint16_t *)((uint8_t *)tss + 102) = 104;

	/* IDT: interrupt gates to the stubs; #DF on IST1; user return DPL3. */
	for (v = 0; v < 256; v++)
		tvm_set_gate(vm, v, (uint64_t)guest_idt_stubs + 16 * v,
			     GATE_INTR, v == TVM_USER_RETURN_VECTOR ? 3 : 0,
			     v == DF_VECTOR ? 1 : 0, true);
}

static void vm_setup_sregs(struct tvm *vm)
{
	struct trapvm_segment code = {
		.limit = 0xffffffff, .selector = TVM_KCS, .type = 0xb,
		.present = 1, .s = 1, .l = 1, .g = 1,
	};
	struct trapvm_segment data = {
		.limit = 0xffffffff, .selector = TVM_KDS, .type = 0x3,
		.present = 1, .s = 1, .db = 1, .g = 1,
	};
	struct trapvm_sregs sr;

	if (ioctl(vm->vcpu, TRAPVM_GET_SREGS, &sr))
		tvm_fatal("GET_SREGS: %s", strerror(errno));
	sr.cs = code;
	sr.ds = sr.es = sr.ss = data;
	sr.fs = sr.gs = data;
	sr.fs.selector = sr.gs.selector = 0;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.base = TVM_TSS_GPA;
	sr.tr.limit = 0x67;
	sr.tr.selector = TVM_TSS_SEL;
	sr.tr.type = 0xb;
	sr.tr.present = 1;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.unusable = 1;
	sr.gdt.base = TVM_GDT_GPA;
	sr.gdt.limit = 0xfff;
	sr.idt.base = TVM_IDT_GPA;
	sr.idt.limit = 0xfff;
	sr.cr0 = 0x80010033ULL;		/* PG WP NE ET MP PE */
	sr.cr2 = 0;
	sr.cr3 = TVM_PT_GPA;
	sr.cr4 = (1ULL << 5) | (1ULL << 9) | (1ULL << 10); /* PAE OSFXSR XMM */
	sr.efer = (1ULL << 0) | (1ULL << 8) | (1ULL << 10) | (1ULL << 11);
	sr.cr8 = 0;
	sr.cpl = 0;
	if (ioctl(vm->vcpu, TRAPVM_SET_SREGS, &sr))
		tvm_fatal("SET_SREGS: %s", strerror(errno));
}

/*
 * Where this process's part of the host log starts (tvm_host_clean()):
 * taken by its first tvm_create().  The kselftest harness runs every test
 * in a process of its own, so this is per test.
 */
static long long tvm_log_mark = -1;
static bool tvm_log_marked;

struct tvm *tvm_create(uint64_t mem_size)
{
	struct trapvm_memory mem = { .size = mem_size ?: TVM_MEM_DEFAULT };
	struct tvm *vm = calloc(1, sizeof(*vm));

	if (!tvm_log_marked) {
		tvm_log_mark = tvm_host_log_mark();
		tvm_log_marked = true;
	}
	if (!vm)
		tvm_fatal("out of memory");
	vm->mem_size = mem.size;
	vm->dev = open("/dev/trapvm", O_RDWR | O_CLOEXEC);
	if (vm->dev < 0)
		tvm_fatal("open /dev/trapvm: %s", strerror(errno));
	vm->vm = ioctl(vm->dev, TRAPVM_CREATE_VM, 0);
	if (vm->vm < 0)
		tvm_fatal("CREATE_VM: %s", strerror(errno));
	if (ioctl(vm->vm, TRAPVM_SET_MEMORY, &mem))
		tvm_fatal("SET_MEMORY: %s", strerror(errno));
	vm->vcpu = ioctl(vm->vm, TRAPVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		tvm_fatal("CREATE_VCPU: %s", strerror(errno));
	vm->ram = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vm, 0);
	if (vm->ram == MAP_FAILED)
		tvm_fatal("mmap RAM: %s", strerror(errno));
	vm->run_size = ioctl(vm->dev, TRAPVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0)
		tvm_fatal("GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		tvm_fatal("mmap run: %s", strerror(errno));

	vm_setup_tables(vm);
	vm->next_free = TVM_IMAGE_GPA;
	dl_iterate_phdr(map_image_cb, vm);
	vm_setup_sregs(vm);
	return vm;
}

void tvm_free(struct tvm *vm)
{
	if (!vm)
		return;
	munmap(vm->run, vm->run_size);
	munmap(vm->ram, vm->mem_size);
	close(vm->vcpu);
	close(vm->vm);
	close(vm->dev);
	free(vm);
}

/* fn(arg) at virtual CPL0, IF=0, on the kernel stack; returning = DONE. */
void tvm_enter(struct tvm *vm, void *fn, uint64_t arg)
{
	struct tvm_vcpu v0;
	int err;

	tvm_vcpu0(vm, &v0, 0);
	err = tvm_vcpu_enter(&v0, fn, arg, TVM_STACK_TOP);
	if (err)
		tvm_fatal("SET_REGS: %s", strerror(-err));
}

int tvm_run(struct tvm *vm)
{
	return ioctl(vm->vcpu, TRAPVM_RUN, 0) ? -errno : 0;
}

uint64_t tvm_get_ucall(struct tvm *vm, struct ucall *uc)
{
	struct trapvm_run *run = vm->run;
	uint32_t gpa;

	memset(uc, 0, sizeof(*uc));
	if (run->exit_reason != TRAPVM_EXIT_IO ||
	    run->io.port != TVM_UCALL_PORT ||
	    run->io.direction != TRAPVM_EXIT_IO_OUT || run->io.size != 4)
		return UCALL_NONE;
	memcpy(&gpa, (char *)run + run->io.data_offset, 4);
	if (gpa + sizeof(*uc) > vm->mem_size)
		return UCALL_NONE;
	memcpy(uc, vm->ram + gpa, sizeof(*uc));
	return uc->cmd;
}

uint64_t tvm_run_ucall(struct tvm *vm, struct ucall *uc)
{
	int ret = tvm_run(vm);

	memset(uc, 0, sizeof(*uc));
	if (ret) {
		snprintf(vm->desc, sizeof(vm->desc), "RUN: %s", strerror(-ret));
		return UCALL_NONE;
	}
	return tvm_get_ucall(vm, uc);
}

static const char *exit_name(uint32_t reason)
{
	static const char *const names[] = {
		"UNKNOWN", "IO", "MMIO", "SHUTDOWN", "HYPERCALL",
		"INTERNAL_ERROR", "INTR", "DEBUG", "IRQ_WINDOW_OPEN",
	};

	return reason < sizeof(names) / sizeof(names[0]) ?
	       names[reason] : "?";
}

const char *tvm_describe(struct tvm *vm, struct ucall *uc)
{
	struct trapvm_run *run = vm->run;
	struct trapvm_regs regs = { 0 };
	char *d = vm->desc;
	size_t n = sizeof(vm->desc);

	if (!strncmp(d, "RUN:", 4))
		return d;
	ioctl(vm->vcpu, TRAPVM_GET_REGS, &regs);
	switch (uc->cmd) {
	case UCALL_ABORT:
		if (uc->args[2] == 2)
			snprintf(d, n, "guest assertion %s:%llu: %s (%#llx vs %#llx, at %llu)",
				 uc->file, (unsigned long long)uc->line,
				 uc->text, (unsigned long long)uc->args[0],
				 (unsigned long long)uc->args[1],
				 (unsigned long long)uc->args[3]);
		else if (uc->args[2] == 1)
			snprintf(d, n, "guest assertion %s:%llu: %s (%#llx vs %#llx)",
				 uc->file, (unsigned long long)uc->line,
				 uc->text, (unsigned long long)uc->args[0],
				 (unsigned long long)uc->args[1]);
		else
			snprintf(d, n, "guest assertion %s:%llu: %s",
				 uc->file, (unsigned long long)uc->line,
				 uc->text);
		return d;
	case UCALL_UNHANDLED:
		snprintf(d, n, "unexpected guest exception %llu error %#llx at rip %#llx (image+%#llx; cr2/cs %#llx)",
			 (unsigned long long)uc->args[0],
			 (unsigned long long)uc->args[1],
			 (unsigned long long)uc->args[2],
			 (unsigned long long)(uc->args[2] -
					      (uint64_t)__executable_start),
			 (unsigned long long)uc->args[3]);
		return d;
	case UCALL_SYNC:
	case UCALL_DONE:
		snprintf(d, n, "ucall %llu (%s:%llu) arg %#llx",
			 (unsigned long long)uc->cmd, uc->file,
			 (unsigned long long)uc->line,
			 (unsigned long long)uc->args[0]);
		return d;
	}
	switch (run->exit_reason) {
	case TRAPVM_EXIT_IO:
		snprintf(d, n, "exit IO %s port %#x size %u count %u, rip %#llx",
			 run->io.direction ? "out" : "in", run->io.port,
			 run->io.size, run->io.count,
			 (unsigned long long)regs.rip);
		break;
	case TRAPVM_EXIT_MMIO:
		snprintf(d, n, "exit MMIO %#llx len %u write %u, rip %#llx",
			 (unsigned long long)run->mmio.phys_addr,
			 run->mmio.len, run->mmio.is_write,
			 (unsigned long long)regs.rip);
		break;
	case TRAPVM_EXIT_SHUTDOWN:
		snprintf(d, n, "exit SHUTDOWN reason %u, rip %#llx",
			 run->shutdown.reason, (unsigned long long)regs.rip);
		break;
	case TRAPVM_EXIT_INTERNAL_ERROR:
		snprintf(d, n, "exit INTERNAL_ERROR %u data %#llx %#llx %#llx %#llx, rip %#llx",
			 run->internal.suberror,
			 (unsigned long long)run->internal.data[0],
			 (unsigned long long)run->internal.data[1],
			 (unsigned long long)run->internal.data[2],
			 (unsigned long long)run->internal.data[3],
			 (unsigned long long)regs.rip);
		break;
	default:
		snprintf(d, n, "exit %s (%u), rip %#llx",
			 exit_name(run->exit_reason), run->exit_reason,
			 (unsigned long long)regs.rip);
	}
	return d;
}

int tvm_set_msr(struct tvm *vm, uint32_t index, uint64_t data)
{
	struct {
		struct trapvm_msrs h;
		struct trapvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = index, .e.data = data };

	return ioctl(vm->vcpu, TRAPVM_SET_MSRS, &m) == 1 ? 0 : -1;
}

uint64_t tvm_tsc_khz(struct tvm *vm)
{
	int r = ioctl(vm->dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_TSC_KHZ);

	return r > 0 ? r : 0;
}

uint64_t tvm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t tvm_env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

/*
 * The host's kernel log (/dev/kmsg).  Scan the records after sequence
 * number @mark; with @why, stop at the first one that shows a splat or a
 * trapvm vCPU diagnostic and copy it there.  Returns the last sequence
 * number seen, or -1 on a hit.
 */
static long long kmsg_scan(long long mark, char *why, size_t len)
{
	static const char *const bad[] = {
		"WARNING:", "Oops", "BUG:", "general protection",
		"Call Trace:", "kernel BUG", "double fault", "trapvm: vcpu",
		"stack-protector", "UBSAN", "KASAN", "soft lockup",
	};
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	long long last = mark, seq;
	char buf[2048];
	ssize_t r;
	size_t i;

	if (fd < 0)
		return last;
	while ((r = read(fd, buf, sizeof(buf) - 1)) != 0) {
		char *c;

		if (r < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		buf[r] = 0;
		c = strchr(buf, ',');
		if (!c)
			continue;
		seq = strtoll(c + 1, NULL, 10);
		if (seq > last)
			last = seq;
		if (seq <= mark || !why)
			continue;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (strstr(buf, bad[i])) {
				snprintf(why, len, "%s", buf);
				close(fd);
				return -1;
			}
	}
	close(fd);
	return last;
}

long long tvm_host_log_mark(void)
{
	return kmsg_scan(-1, NULL, 0);
}

bool tvm_host_clean_since(long long mark, char *why, size_t len)
{
	return kmsg_scan(mark, why, len) >= 0;
}

bool tvm_host_clean(char *why, size_t len)
{
	return tvm_host_clean_since(tvm_log_mark, why, len);
}
