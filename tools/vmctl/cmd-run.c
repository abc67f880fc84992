// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl run: boot an ELF64 guest kernel (guest ABI of
 * <linux/trapvm_guest.h>) and emulate its devices: a 16550 UART on COM1
 * printing to stdout and the exit port 0xf4.
 *
 * Exit status: the value v the guest wrote to port 0xf4 (v & 0xff), or
 * one of vmctl's own (vmctl.h): 1 error, 2 usage, 130 Ctrl-C,
 * 160 + TRAPVM_SHUTDOWN_* reason for a shutdown (161 triple fault,
 * 162 HLT with interrupts disabled), 170 internal error, 171 an exit
 * vmctl does not handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <x86intrin.h>
#include <linux/trapvm_guest.h>
#include <linux/trapvm_stats.h>

#include "vmctl.h"
#include "vm.h"
#include "loader.h"
#include "uart.h"

#define DEFAULT_MEM	(64ULL << 20)
#define MAX_KERNEL_FILE	(1ULL << 30)
#define VERBOSE_LIMIT	20

#define MSR_IA32_CR_PAT		0x277
#define MSR_FS_BASE		0xc0000100
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102

/* Entry state of the guest ABI. */
#define ENTRY_CR0	0x80050033ULL	/* PG WP NE ET MP PE */
#define ENTRY_CR4	0x00000620ULL	/* OSXMMEXCPT OSFXSR PAE */
#define ENTRY_EFER	0x00000d01ULL	/* NXE LMA LME SCE */

struct run_state {
	struct vmctl_vm vm;
	struct vmctl_vcpu vcpu;
	struct vmctl_uart com1;
	uint64_t unknown_io, unknown_mmio, hypercalls;
	bool done;
	int status;
};

static volatile sig_atomic_t got_sigint;
static struct trapvm_run *volatile sig_run;

static void on_sigint(int sig)
{
	(void)sig;
	got_sigint = 1;
	/* RUN not entered yet: make it return at once. */
	if (sig_run)
		sig_run->immediate_exit = 1;
}

static int read_file(const char *path, void **buf, size_t *size)
{
	struct stat st;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "vmctl run: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > MAX_KERNEL_FILE) {
		fprintf(stderr, "vmctl run: %s: not a regular file of at most 1 GiB\n",
			path);
		close(fd);
		return -1;
	}
	*size = st.st_size;
	*buf = malloc(*size ? *size : 1);
	if (!*buf) {
		close(fd);
		return -1;
	}
	while (done < *size) {
		ssize_t n = read(fd, (char *)*buf + done, *size - done);

		if (n <= 0) {
			fprintf(stderr, "vmctl run: reading %s: %s\n", path,
				n ? strerror(errno) : "short file");
			free(*buf);
			close(fd);
			return -1;
		}
		done += n;
	}
	close(fd);
	return 0;
}

/*
 * TSC frequency for the boot info: the host kernel's calibration (which
 * the virtual APIC also uses), else measured against CLOCK_MONOTONIC.
 */
static uint64_t measure_tsc_khz(int dev_fd)
{
	struct timespec a, b, d = { 0, 20 * 1000 * 1000 };
	uint64_t t0, t1, ns;
	long khz = ioctl(dev_fd, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_TSC_KHZ);

	if (khz > 0)
		return khz;
	clock_gettime(CLOCK_MONOTONIC, &a);
	t0 = __rdtsc();
	nanosleep(&d, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	t1 = __rdtsc();
	ns = (b.tv_sec - a.tv_sec) * 1000000000ULL + b.tv_nsec - a.tv_nsec;
	if (!ns || t1 <= t0)
		return 0;
	return (t1 - t0) * 1000000ULL / ns;
}

static void seg(struct trapvm_segment *s, uint16_t sel, uint8_t type,
		uint8_t l, uint8_t db)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = l;
	s->db = db;
	s->g = 1;
}

static void unusable(struct trapvm_segment *s)
{
	memset(s, 0, sizeof(*s));
	s->unusable = 1;
}

static int setup_vcpu(struct run_state *rs, const struct vmctl_boot_layout *b)
{
	struct {
		struct trapvm_msrs hdr;
		struct trapvm_msr_entry e[4];
	} msrs = { .hdr.nmsrs = 4 };
	struct trapvm_sregs sr;
	struct trapvm_regs regs;
	int fd = rs->vcpu.fd;

	if (VMCTL_IOCTL(fd, TRAPVM_GET_SREGS, &sr) < 0)
		return -1;
	seg(&sr.cs, TRAPVM_GUEST_KERNEL_CS, 0xb, 1, 0);
	seg(&sr.ds, TRAPVM_GUEST_KERNEL_DS, 0x3, 0, 1);
	sr.es = sr.ss = sr.ds;
	unusable(&sr.fs);
	unusable(&sr.gs);
	unusable(&sr.tr);
	unusable(&sr.ldt);
	memset(&sr.gdt, 0, sizeof(sr.gdt));
	sr.gdt.base = b->gdt;
	sr.gdt.limit = b->gdt_limit;
	memset(&sr.idt, 0, sizeof(sr.idt));
	sr.cr0 = ENTRY_CR0;
	sr.cr2 = 0;
	sr.cr3 = b->pml4;
	sr.cr4 = ENTRY_CR4;
	sr.cr8 = 0;
	sr.efer = ENTRY_EFER;
	sr.cpl = 0;
	if (VMCTL_IOCTL(fd, TRAPVM_SET_SREGS, &sr) < 0)
		return -1;

	memset(&regs, 0, sizeof(regs));
	regs.rip = b->entry;
	regs.rdi = b->boot_info;
	regs.rsp = b->stack_top;
	regs.rflags = 0x2;
	if (VMCTL_IOCTL(fd, TRAPVM_SET_REGS, &regs) < 0)
		return -1;

	msrs.e[0].index = MSR_IA32_CR_PAT;
	msrs.e[0].data = 0x0007040600070406ULL;	/* power-on PAT */
	msrs.e[1].index = MSR_FS_BASE;
	msrs.e[2].index = MSR_GS_BASE;
	msrs.e[3].index = MSR_KERNEL_GS_BASE;
	if (VMCTL_IOCTL(fd, TRAPVM_SET_MSRS, &msrs) != 4) {
		fprintf(stderr, "vmctl run: TRAPVM_SET_MSRS refused an MSR\n");
		return -1;
	}
	return 0;
}

static void io_out(struct run_state *rs, uint16_t port, const uint8_t *p,
		   unsigned int size)
{
	uint32_t v = 0;
	unsigned int i;

	for (i = 0; i < size; i++)
		v |= (uint32_t)p[i] << (8 * i);

	if (port == TRAPVM_PORT_EXIT) {
		/* isa-debug-exit: the guest's status is the value written. */
		rs->done = true;
		rs->status = v & 0xff;
		if (vmctl_verbose)
			fprintf(stderr, "vmctl: guest exit port: %#x\n", v);
		return;
	}
	for (i = 0; i < size; i++) {
		if (vmctl_uart_owns(&rs->com1, port + i)) {
			vmctl_uart_write(&rs->com1, port + i, p[i]);
			continue;
		}
		if (vmctl_verbose && rs->unknown_io < VERBOSE_LIMIT)
			fprintf(stderr, "vmctl: OUT %#x <- %#x (ignored)\n",
				port + i, p[i]);
		rs->unknown_io++;
	}
}

static void io_in(struct run_state *rs, uint16_t port, uint8_t *p,
		  unsigned int size)
{
	unsigned int i;

	for (i = 0; i < size; i++) {
		if (vmctl_uart_owns(&rs->com1, port + i)) {
			p[i] = vmctl_uart_read(&rs->com1, port + i);
			continue;
		}
		/* Nothing there: the bus floats high. */
		p[i] = 0xff;
		if (vmctl_verbose && rs->unknown_io < VERBOSE_LIMIT)
			fprintf(stderr, "vmctl: IN %#x (no device)\n",
				port + i);
		rs->unknown_io++;
	}
}

static int handle_io(struct run_state *rs)
{
	struct trapvm_run *run = rs->vcpu.run;
	unsigned int size = run->io.size, count = run->io.count, i;
	uint8_t *data;

	if ((size != 1 && size != 2 && size != 4) || !count ||
	    run->io.data_offset > rs->vcpu.run_size ||
	    (rs->vcpu.run_size - run->io.data_offset) / size < count) {
		fprintf(stderr, "vmctl run: malformed I/O exit (port %#x size %u count %u)\n",
			run->io.port, size, count);
		return -1;
	}
	data = (uint8_t *)run + run->io.data_offset;
	for (i = 0; i < count && !rs->done; i++) {
		if (run->io.direction == TRAPVM_EXIT_IO_OUT)
			io_out(rs, run->io.port, data + i * size, size);
		else
			io_in(rs, run->io.port, data + i * size, size);
	}
	return 0;
}

static void handle_mmio(struct run_state *rs)
{
	struct trapvm_run *run = rs->vcpu.run;

	if (vmctl_verbose && rs->unknown_mmio < VERBOSE_LIMIT)
		fprintf(stderr, "vmctl: MMIO %s %#llx len %u (no device)\n",
			run->mmio.is_write ? "write" : "read",
			(unsigned long long)run->mmio.phys_addr, run->mmio.len);
	rs->unknown_mmio++;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
}

/* Hypercalls the module leaves to the VMM (guest ABI, trapvm_guest.h). */
static void handle_hypercall(struct run_state *rs)
{
	struct trapvm_run *run = rs->vcpu.run;
	struct trapvm_vcpu_stats st;

	rs->hypercalls++;
	switch (run->hypercall.nr) {
	case TRAPVM_HC_VERSION:
		run->hypercall.ret = TRAPVM_BOOT_VERSION;
		break;
	case TRAPVM_HC_EXIT_COUNT:
		if (ioctl(rs->vcpu.fd, TRAPVM_GET_STATS, &st) == 0 &&
		    st.nr > TRAPVM_STAT_ENTRIES)
			run->hypercall.ret = st.count[TRAPVM_STAT_ENTRIES];
		else
			run->hypercall.ret = (uint64_t)-ENOSYS;
		break;
	default:
		if (vmctl_verbose)
			fprintf(stderr, "vmctl: hypercall %llu (unknown)\n",
				(unsigned long long)run->hypercall.nr);
		run->hypercall.ret = (uint64_t)-ENOSYS;
		break;
	}
}

static void report_regs(int fd)
{
	struct trapvm_regs r;

	if (ioctl(fd, TRAPVM_GET_REGS, &r) == 0)
		fprintf(stderr, "vmctl: guest RIP %#llx RSP %#llx RFLAGS %#llx\n",
			(unsigned long long)r.rip, (unsigned long long)r.rsp,
			(unsigned long long)r.rflags);
}

static int run_loop(struct run_state *rs)
{
	struct trapvm_run *run = rs->vcpu.run;

	while (!rs->done) {
		if (ioctl(rs->vcpu.fd, TRAPVM_RUN, 0) < 0) {
			if (errno == EINTR) {
				if (got_sigint) {
					fflush(stdout);
					fprintf(stderr, "vmctl: interrupted\n");
					return VMCTL_EXIT_SIGINT;
				}
				run->immediate_exit = 0;
				continue;
			}
			fprintf(stderr, "vmctl: TRAPVM_RUN: %s\n", strerror(errno));
			return VMCTL_EXIT_ERROR;
		}

		switch (run->exit_reason) {
		case TRAPVM_EXIT_IO:
			if (handle_io(rs))
				return VMCTL_EXIT_ERROR;
			break;
		case TRAPVM_EXIT_MMIO:
			handle_mmio(rs);
			break;
		case TRAPVM_EXIT_HYPERCALL:
			handle_hypercall(rs);
			break;
		case TRAPVM_EXIT_INTR:
			break;
		case TRAPVM_EXIT_SHUTDOWN:
			fflush(stdout);
			fprintf(stderr, "vmctl: guest shut down: %s\n",
				run->shutdown.reason == TRAPVM_SHUTDOWN_TRIPLE_FAULT ?
				"triple fault" :
				run->shutdown.reason == TRAPVM_SHUTDOWN_HLT ?
				"HLT with interrupts disabled" : "unknown reason");
			report_regs(rs->vcpu.fd);
			return VMCTL_EXIT_SHUTDOWN + (run->shutdown.reason & 0xf);
		case TRAPVM_EXIT_INTERNAL_ERROR: {
			unsigned int i, n = run->internal.ndata;

			fflush(stdout);
			fprintf(stderr, "vmctl: internal error, suberror %u%s",
				run->internal.suberror,
				run->internal.suberror == TRAPVM_INTERNAL_ERROR_EMULATION ?
				" (emulation)" :
				run->internal.suberror == TRAPVM_INTERNAL_ERROR_MEMORY ?
				" (memory)" : "");
			for (i = 0; i < n && i < 16; i++)
				fprintf(stderr, " %#llx",
					(unsigned long long)run->internal.data[i]);
			fprintf(stderr, "\n");
			report_regs(rs->vcpu.fd);
			return VMCTL_EXIT_INTERNAL;
		}
		default:
			fflush(stdout);
			fprintf(stderr, "vmctl: unexpected exit reason %u\n",
				run->exit_reason);
			report_regs(rs->vcpu.fd);
			return VMCTL_EXIT_UNEXPECTED;
		}
	}
	fflush(stdout);
	return rs->status;
}

static const char run_usage[] =
	"usage: vmctl run [options] KERNEL.elf\n\n"
	"Boot an ELF64 guest kernel at its physical load addresses, in 64-bit\n"
	"mode as Documentation/guest-abi.rst describes.  COM1 (0x3f8) prints\n"
	"to stdout; a 32-bit OUT of v to port 0xf4 ends the guest and vmctl\n"
	"exits with status v & 0xff.\n\n"
	"Options:\n"
	"  -m, --mem SIZE       guest RAM (default 64M; K/M/G suffix, plain\n"
	"                       numbers are MiB; a multiple of 2 MiB)\n"
	"  -c, --cmdline STR    guest command line (boot info)\n"
	"  -s, --stats          print the vCPU's counters on exit (stderr)\n"
	"  -v, --verbose        report unknown ports, MMIO and hypercalls\n\n"
	"Exit status: the guest's, or 1 error, 2 usage, 130 Ctrl-C,\n"
	"161 triple fault, 162 HLT with interrupts off, 170 internal error,\n"
	"171 unhandled exit.\n";

static int run_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "stats", no_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct vmctl_boot_layout layout;
	struct sigaction sa;
	struct run_state rs;
	const char *cmdline = "";
	uint64_t mem = DEFAULT_MEM;
	bool stats = false;
	char err[256];
	size_t elf_size;
	void *elf;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:c:svh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (vmctl_parse_size(optarg, &mem) || !mem ||
			    mem % (2ULL << 20)) {
				fprintf(stderr, "vmctl run: --mem %s: need a multiple of 2 MiB, e.g. 64M\n",
					optarg);
				return VMCTL_EXIT_USAGE;
			}
			break;
		case 'c':
			cmdline = optarg;
			break;
		case 's':
			stats = true;
			break;
		case 'v':
			vmctl_verbose = true;
			break;
		case 'h':
			fputs(run_usage, stdout);
			return 0;
		default:
			fputs(run_usage, stderr);
			return VMCTL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fputs(run_usage, stderr);
		return VMCTL_EXIT_USAGE;
	}
	if (strlen(cmdline) > VMCTL_CMDLINE_MAX) {
		fprintf(stderr, "vmctl run: command line longer than %d bytes\n",
			VMCTL_CMDLINE_MAX);
		return VMCTL_EXIT_USAGE;
	}

	if (read_file(argv[optind], &elf, &elf_size))
		return VMCTL_EXIT_ERROR;

	if (vmctl_check_kernel(elf, elf_size, mem, err, sizeof(err))) {
		fprintf(stderr, "vmctl run: %s: %s\n", argv[optind], err);
		free(elf);
		return VMCTL_EXIT_ERROR;
	}

	memset(&rs, 0, sizeof(rs));
	if (vmctl_vm_create(&rs.vm, mem)) {
		free(elf);
		return VMCTL_EXIT_ERROR;
	}
	if (vmctl_load_kernel(rs.vm.mem, mem, elf, elf_size, cmdline,
			      measure_tsc_khz(rs.vm.dev_fd), &layout, err, sizeof(err))) {
		fprintf(stderr, "vmctl run: %s: %s\n", argv[optind], err);
		free(elf);
		vmctl_vm_destroy(&rs.vm);
		return VMCTL_EXIT_ERROR;
	}
	free(elf);
	if (vmctl_verbose)
		fprintf(stderr, "vmctl: kernel [%#llx, %#llx) entry %#llx, boot area [%#llx, %#llx), %llu MiB RAM\n",
			(unsigned long long)layout.kernel_start,
			(unsigned long long)layout.kernel_end,
			(unsigned long long)layout.entry,
			(unsigned long long)layout.area_start,
			(unsigned long long)(layout.area_start + layout.area_size),
			(unsigned long long)(mem >> 20));

	if (vmctl_vcpu_create(&rs.vm, &rs.vcpu, 0) ||
	    setup_vcpu(&rs, &layout)) {
		vmctl_vcpu_destroy(&rs.vcpu);
		vmctl_vm_destroy(&rs.vm);
		return VMCTL_EXIT_ERROR;
	}
	vmctl_uart_init(&rs.com1, TRAPVM_PORT_COM1, stdout);

	/* No SA_RESTART: Ctrl-C must make RUN return -EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sig_run = rs.vcpu.run;
	sigaction(SIGINT, &sa, NULL);

	ret = run_loop(&rs);

	signal(SIGINT, SIG_DFL);
	sig_run = NULL;
	if (vmctl_verbose && (rs.unknown_io || rs.unknown_mmio))
		fprintf(stderr, "vmctl: %llu accesses to unknown ports, %llu to unknown MMIO\n",
			(unsigned long long)rs.unknown_io,
			(unsigned long long)rs.unknown_mmio);
	if (stats) {
		fprintf(stderr, "vCPU 0 counters:\n");
		vmctl_print_stats(rs.vcpu.fd, 0, stderr);
	}
	vmctl_vcpu_destroy(&rs.vcpu);
	vmctl_vm_destroy(&rs.vm);
	return ret;
}

static struct vmctl_command run_cmd = {
	.name = "run",
	.summary = "boot an ELF64 guest kernel",
	.usage = run_usage,
	.main = run_main,
};
VMCTL_COMMAND(run_cmd)
