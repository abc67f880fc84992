// SPDX-License-Identifier: GPL-2.0
/*
 * api_test: the /dev/trapvm ioctl ABI, every ioctl's success and error
 * paths, file-descriptor lifetime and leaks.  Runs as root inside the test
 * host with trapvm.ko loaded.
 *
 * The oracles are independent of the module: the Intel SDM for reset and
 * validation rules, /sys/module for the version and parameters, the kernel's
 * own free-page accounting (/proc/zoneinfo) for leaks, and the pages this
 * test itself touched for the allocation counter.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>
#include <time.h>

#include <linux/trapvm.h>
#include <linux/trapvm_stats.h>

#include "kselftest_harness.h"

#define DEV	"/dev/trapvm"
#define MiB	(1024ULL * 1024)

/* SDM Vol. 3, Table 9-1 and the PAT chapter. */
#define RESET_CR0	0x60000010ULL
#define RESET_RIP	0xfff0ULL
#define RESET_RFLAGS	0x2ULL
#define RESET_PAT	0x0007040600070406ULL
#define APIC_DEFAULT	0xfee00000ULL
#define APIC_BSP	(1ULL << 8)
#define APIC_EN		(1ULL << 11)

#define MSR_IA32_APICBASE	0x1b
#define MSR_SYSENTER_CS		0x174
#define MSR_SYSENTER_ESP	0x175
#define MSR_SYSENTER_EIP	0x176
#define MSR_PAT			0x277
#define MSR_EFER		0xc0000080
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SFMASK		0xc0000084
#define MSR_FS_BASE		0xc0000100
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_TSC_AUX		0xc0000103

#define CR0_PE	(1ULL << 0)
#define CR0_ET	(1ULL << 4)
#define CR0_NE	(1ULL << 5)
#define CR0_WP	(1ULL << 16)
#define CR0_NW	(1ULL << 29)
#define CR0_CD	(1ULL << 30)
#define CR0_PG	(1ULL << 31)
#define CR4_PAE	(1ULL << 5)
#define CR4_VMXE (1ULL << 13)
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

static const char *stat_names[] = {
#define TRAPVM_STAT(id, name) name,
#include <linux/trapvm_stat_list.h>
};

static long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

static int open_dev(struct __test_metadata *_metadata)
{
	int fd = open(DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0 && (errno == ENOENT || errno == ENODEV))
		return -1;
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", DEV, strerror(errno));
	return fd;
}

#define OPEN_DEV_OR_SKIP(fd)						\
	do {								\
		fd = open_dev(_metadata);				\
		if (fd < 0)						\
			SKIP(return, "trapvm module not loaded");	\
	} while (0)

static int create_vm_mem(struct __test_metadata *_metadata, int dev,
			 uint64_t size)
{
	struct trapvm_memory m = { .size = size };
	int vm = ioctl(dev, TRAPVM_CREATE_VM, 0);

	ASSERT_LE(0, vm) TH_LOG("CREATE_VM: %s", strerror(errno));
	if (size)
		ASSERT_EQ(0, ioctl(vm, TRAPVM_SET_MEMORY, &m))
			TH_LOG("SET_MEMORY: %s", strerror(errno));
	return vm;
}

/* vCPU 0 of @vm, with @vm's @size bytes of RAM and the run area mapped. */
static int create_vcpu_mapped(struct __test_metadata *_metadata, int vm,
			      uint64_t size, uint8_t **ram,
			      struct trapvm_run **run)
{
	int vcpu = ioctl(vm, TRAPVM_CREATE_VCPU, 0);

	ASSERT_LE(0, vcpu);
	*ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vm, 0);
	ASSERT_NE(MAP_FAILED, *ram);
	*run = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_SHARED,
		    vcpu, 0);
	ASSERT_NE(MAP_FAILED, *run);
	return vcpu;
}

static int read_ulong_file(const char *path, unsigned long *val)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%lu", val) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static unsigned long meminfo_kb(const char *key)
{
	char line[256];
	unsigned long v = 0;
	FILE *f = fopen("/proc/meminfo", "r");
	size_t n = strlen(key);

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtoul(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * Free pages as the page allocator counts them, including the per-CPU
 * free lists that nr_free_pages leaves out: "pages free" plus every
 * pageset's "count:" in /proc/zoneinfo.
 */
static long free_pages_total(void)
{
	char line[256];
	long total = 0, v;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " pages free %ld", &v) == 1)
			total += v;
		else if (sscanf(line, " count: %ld", &v) == 1)
			total += v;
	}
	fclose(f);
	return total;
}

/* ---- /dev/trapvm ---- */

TEST(api_version)
{
	int dev;

	OPEN_DEV_OR_SKIP(dev);
	EXPECT_EQ(TRAPVM_API_VERSION, ioctl(dev, TRAPVM_GET_API_VERSION, 0));
	EXPECT_EQ(-1, ioctl(dev, TRAPVM_GET_API_VERSION, 1));
	EXPECT_EQ(EINVAL, errno);
	close(dev);
}

TEST(check_extension)
{
	unsigned long max_mb;
	int dev, n;

	OPEN_DEV_OR_SKIP(dev);

	n = ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_MAX_MEM_MB);
	EXPECT_LT(0, n);
	EXPECT_EQ(0, n % 2);	/* memory comes in 2 MiB units */
	if (!read_ulong_file("/sys/module/trapvm/parameters/max_mem_mb",
			     &max_mb))
		EXPECT_GE((long)max_mb, n);
	/* Never more than half of the host's RAM. */
	EXPECT_GE((long)(meminfo_kb("MemTotal") / 1024 / 2), n);

	n = ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_MAX_VCPUS);
	EXPECT_LE(1, n);
	EXPECT_EQ(page_size(), ioctl(dev, TRAPVM_CHECK_EXTENSION,
				     TRAPVM_CAP_VCPU_MMAP_SIZE));
	EXPECT_EQ(1, ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_IRQ_INJECT));
	EXPECT_EQ(1, ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_STATS));
	/* The host's TSC rate: 0 (unknown) or at least 1 MHz. */
	n = ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_TSC_KHZ);
	EXPECT_TRUE(n == 0 || n >= 1000) TH_LOG("tsc_khz %d", n);

	/* Unknown capabilities are absent, not errors. */
	EXPECT_EQ(0, ioctl(dev, TRAPVM_CHECK_EXTENSION, 0));
	EXPECT_EQ(0, ioctl(dev, TRAPVM_CHECK_EXTENSION, 1000));
	EXPECT_EQ(0, ioctl(dev, TRAPVM_CHECK_EXTENSION, -1L));
	close(dev);
}

TEST(vcpu_mmap_size)
{
	int dev;

	OPEN_DEV_OR_SKIP(dev);
	EXPECT_EQ(page_size(), ioctl(dev, TRAPVM_GET_VCPU_MMAP_SIZE, 0));
	EXPECT_LE((long)sizeof(struct trapvm_run),
		  ioctl(dev, TRAPVM_GET_VCPU_MMAP_SIZE, 0));
	close(dev);
}

TEST(module_info)
{
	struct trapvm_module_info info;
	char sysver[64] = "";
	FILE *f;
	int dev;

	OPEN_DEV_OR_SKIP(dev);
	memset(&info, 0xa5, sizeof(info));
	ASSERT_EQ(0, ioctl(dev, TRAPVM_GET_MODULE_INFO, &info));
	EXPECT_EQ(TRAPVM_API_VERSION, info.api_version);
	EXPECT_EQ(0, info.reserved);
	ASSERT_NE(NULL, memchr(info.version, 0, sizeof(info.version)));
	EXPECT_LT(0, strlen(info.version));

	/* The same string the module loader recorded from MODULE_VERSION. */
	f = fopen("/sys/module/trapvm/version", "r");
	if (f) {
		ASSERT_NE(NULL, fgets(sysver, sizeof(sysver), f));
		sysver[strcspn(sysver, "\n")] = 0;
		fclose(f);
		EXPECT_STREQ(sysver, info.version);
	}

	EXPECT_EQ(-1, ioctl(dev, TRAPVM_GET_MODULE_INFO, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	close(dev);
}

TEST(dev_bad_ioctls)
{
	int dev;

	OPEN_DEV_OR_SKIP(dev);
	/* VM and vCPU ioctls, unknown numbers, other magic: all ENOTTY. */
	EXPECT_EQ(-1, ioctl(dev, TRAPVM_CREATE_VCPU, 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(dev, TRAPVM_RUN, 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(dev, _IO(TRAPVMIO, 0xff), 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(dev, _IO(0x42, 0x00), 0));
	EXPECT_EQ(ENOTTY, errno);
	/* Wrong size encoded in the number is a different number. */
	EXPECT_EQ(-1, ioctl(dev, _IOR(TRAPVMIO, 0x05, uint64_t), 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size(), PROT_READ, MAP_SHARED,
				   dev, 0));
	close(dev);
}

TEST(create_vm)
{
	int dev, vm;

	OPEN_DEV_OR_SKIP(dev);
	EXPECT_EQ(-1, ioctl(dev, TRAPVM_CREATE_VM, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(dev, TRAPVM_CREATE_VM, -1L));
	EXPECT_EQ(EINVAL, errno);

	vm = ioctl(dev, TRAPVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	EXPECT_EQ(FD_CLOEXEC, fcntl(vm, F_GETFD) & FD_CLOEXEC);

	/* /dev/trapvm closed: the VM fd stays usable. */
	close(dev);
	{
		struct trapvm_vm_info info;

		memset(&info, 0xff, sizeof(info));
		ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
		EXPECT_EQ(0, info.mem_size);
		EXPECT_EQ(0, info.pages_allocated);
		EXPECT_EQ(0, info.nr_vcpus);
		for (int i = 0; i < 5; i++)
			EXPECT_EQ(0, info.reserved[i]);
	}
	close(vm);
	/* Use after close. */
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_GET_VM_INFO, NULL));
	EXPECT_EQ(EBADF, errno);
}

/* ---- VM fd ---- */

TEST(set_memory_errors)
{
	struct trapvm_vm_info info;
	struct trapvm_memory m;
	unsigned long max_mb = 0;
	uint64_t half_ram;
	int dev, vm, cap;

	OPEN_DEV_OR_SKIP(dev);
	vm = ioctl(dev, TRAPVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	cap = ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_MAX_MEM_MB);

#define EXPECT_SETMEM(err, sz, fl, rs) do {				\
		m.size = (sz); m.flags = (fl); m.reserved = (rs);	\
		EXPECT_EQ(-1, ioctl(vm, TRAPVM_SET_MEMORY, &m));	\
		EXPECT_EQ(err, errno) TH_LOG("size %llu",		\
					     (unsigned long long)(sz));	\
	} while (0)

	EXPECT_SETMEM(EINVAL, 0, 0, 0);
	EXPECT_SETMEM(EINVAL, 4096, 0, 0);
	EXPECT_SETMEM(EINVAL, 1 * MiB, 0, 0);
	EXPECT_SETMEM(EINVAL, 2 * MiB + 4096, 0, 0);
	EXPECT_SETMEM(EINVAL, 2 * MiB, 1, 0);
	EXPECT_SETMEM(EINVAL, 2 * MiB, 0x80000000, 0);
	EXPECT_SETMEM(EINVAL, 2 * MiB, 0, 1);
	EXPECT_SETMEM(E2BIG, 1ULL << 62, 0, 0);
	EXPECT_SETMEM(E2BIG, ~0ULL << 21, 0, 0);
	if (!read_ulong_file("/sys/module/trapvm/parameters/max_mem_mb",
			     &max_mb))
		EXPECT_SETMEM(E2BIG, (max_mb + 2) * MiB, 0, 0);

	/* Within the parameter but more than half the host: ENOMEM. */
	half_ram = meminfo_kb("MemTotal") * 1024 / 2;
	if (max_mb && half_ram + 2 * MiB <= max_mb * MiB)
		EXPECT_SETMEM(ENOMEM, (half_ram & ~(2 * MiB - 1)) + 2 * MiB,
			      0, 0);
	/* The capability is an upper bound that works. */
	EXPECT_LT(0, cap);

	EXPECT_EQ(-1, ioctl(vm, TRAPVM_SET_MEMORY, NULL));
	EXPECT_EQ(EFAULT, errno);

	/* None of the failures set anything. */
	ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
	EXPECT_EQ(0, info.mem_size);

	m.size = 2 * MiB;
	m.flags = 0;
	m.reserved = 0;
	EXPECT_EQ(0, ioctl(vm, TRAPVM_SET_MEMORY, &m));
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_SET_MEMORY, &m));
	EXPECT_EQ(EEXIST, errno);
	m.size = 4 * MiB;
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_SET_MEMORY, &m));
	EXPECT_EQ(EEXIST, errno);
	close(vm);
	close(dev);
}

TEST(set_memory_max)
{
	struct trapvm_memory m = { 0 };
	struct trapvm_vm_info info;
	int dev, vm, cap;

	OPEN_DEV_OR_SKIP(dev);
	cap = ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_MAX_MEM_MB);
	ASSERT_LT(0, cap);
	vm = ioctl(dev, TRAPVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	/* The largest VM is accepted: nothing is allocated up front. */
	m.size = (uint64_t)cap * MiB;
	ASSERT_EQ(0, ioctl(vm, TRAPVM_SET_MEMORY, &m));
	ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
	EXPECT_EQ(m.size, info.mem_size);
	EXPECT_EQ(0, info.pages_allocated);
	close(vm);
	close(dev);
}

TEST(create_vcpu)
{
	struct trapvm_memory m = { .size = 2 * MiB };
	struct trapvm_vm_info info;
	int dev, vm, max, i, fd;
	int fds[64];

	OPEN_DEV_OR_SKIP(dev);
	max = ioctl(dev, TRAPVM_CHECK_EXTENSION, TRAPVM_CAP_MAX_VCPUS);
	ASSERT_LE(1, max);
	ASSERT_GE(64, max);
	vm = create_vm_mem(_metadata, dev, 0);

	/* Memory first. */
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_CREATE_VCPU, 0));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, ioctl(vm, TRAPVM_SET_MEMORY, &m));

	EXPECT_EQ(-1, ioctl(vm, TRAPVM_CREATE_VCPU, max));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_CREATE_VCPU, -1L));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_CREATE_VCPU, 1UL << 32));
	EXPECT_EQ(EINVAL, errno);

	for (i = 0; i < max; i++) {
		fds[i] = ioctl(vm, TRAPVM_CREATE_VCPU, i);
		ASSERT_LE(0, fds[i]) TH_LOG("vcpu %d: %s", i, strerror(errno));
		EXPECT_EQ(FD_CLOEXEC, fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
	}
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_CREATE_VCPU, 0));
	EXPECT_EQ(EEXIST, errno);
	/* Closing a vCPU fd does not free its id (vCPUs live with the VM). */
	close(fds[0]);
	fd = ioctl(vm, TRAPVM_CREATE_VCPU, 0);
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(EEXIST, errno);

	ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
	EXPECT_EQ(max, info.nr_vcpus);

	for (i = 1; i < max; i++)
		close(fds[i]);
	close(vm);
	close(dev);
}

TEST(wrong_fd_type)
{
	struct trapvm_regs regs;
	struct trapvm_memory m = { .size = 2 * MiB };
	int dev, vm, vcpu;

	OPEN_DEV_OR_SKIP(dev);
	vm = create_vm_mem(_metadata, dev, 2 * MiB);
	vcpu = ioctl(vm, TRAPVM_CREATE_VCPU, 0);
	ASSERT_LE(0, vcpu);

	EXPECT_EQ(-1, ioctl(vm, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_RUN, 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_CREATE_VM, 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(vm, TRAPVM_GET_API_VERSION, 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(vcpu, TRAPVM_SET_MEMORY, &m));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(vcpu, TRAPVM_CREATE_VCPU, 1));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(vcpu, TRAPVM_CHECK_EXTENSION, 1));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(vcpu, _IO(TRAPVMIO, 0x2f), 0));
	EXPECT_EQ(ENOTTY, errno);

	close(vcpu);
	EXPECT_EQ(-1, ioctl(vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(EBADF, errno);
	close(vm);
	close(dev);
}

TEST(guest_ram_mmap)
{
	long ps = page_size();
	uint64_t size = 4 * MiB;
	struct trapvm_memory m = { .size = size };
	struct trapvm_vm_info info;
	uint8_t *a, *b;
	uint64_t i, touched = 0;
	int dev, vm;

	OPEN_DEV_OR_SKIP(dev);
	vm = create_vm_mem(_metadata, dev, 0);

	/* No RAM yet: nothing to map. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, ps, PROT_READ | PROT_WRITE,
				   MAP_SHARED, vm, 0));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, ioctl(vm, TRAPVM_SET_MEMORY, &m));

	/* Bounds and mapping type. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, size + ps, PROT_READ, MAP_SHARED,
				   vm, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * ps, PROT_READ, MAP_SHARED,
				   vm, size - ps));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, ps, PROT_READ, MAP_SHARED, vm, size));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, vm, 0));
	EXPECT_EQ(EINVAL, errno);

	a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vm, 0);
	ASSERT_NE(MAP_FAILED, a);
	/* A second mapping of the top 2 MiB. */
	b = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, vm,
		 2 * MiB);
	ASSERT_NE(MAP_FAILED, b);

	ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
	EXPECT_EQ(0, info.pages_allocated);

	/* Write every 3rd page's first and last byte through the first map. */
	for (i = 0; i < size / ps; i += 3) {
		a[i * ps] = (uint8_t)(i * 7 + 1);
		a[i * ps + ps - 1] = (uint8_t)(i * 13 + 5);
		touched++;
	}
	ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
	EXPECT_EQ(touched, info.pages_allocated);

	/* Read back through the second mapping; untouched pages are zero. */
	for (i = 2 * MiB / ps; i < size / ps; i++) {
		uint8_t *p = b + (i * ps - 2 * MiB);

		if (i % 3 == 0) {
			EXPECT_EQ((uint8_t)(i * 7 + 1), p[0]);
			EXPECT_EQ((uint8_t)(i * 13 + 5), p[ps - 1]);
		} else {
			EXPECT_EQ(0, p[0]);
			EXPECT_EQ(0, p[ps / 2]);
			touched++;	/* reading faults a page in too */
		}
	}
	/* Writes through the second mapping show in the first. */
	memset(b, 0x5a, 64);
	EXPECT_EQ(0x5a, a[2 * MiB + 63]);

	ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
	EXPECT_EQ(touched, info.pages_allocated);
	EXPECT_EQ(size, info.mem_size);

	/* Unmap and map again: contents are the module's, not the map's. */
	ASSERT_EQ(0, munmap(a, size));
	a = mmap(NULL, size, PROT_READ, MAP_SHARED, vm, 0);
	ASSERT_NE(MAP_FAILED, a);
	EXPECT_EQ(1, a[0]);
	EXPECT_EQ(0x5a, a[2 * MiB]);
	EXPECT_EQ((uint8_t)(3 * 7 + 1), a[3 * ps]);

	/* Guest RAM cannot grow through mremap(). */
	EXPECT_EQ(MAP_FAILED, mremap(b, 2 * MiB, 4 * MiB, MREMAP_MAYMOVE));

	munmap(a, size);
	munmap(b, 2 * MiB);
	close(vm);
	close(dev);
}

/* A forked child's writes land in the same guest RAM. */
TEST(guest_ram_fork)
{
	volatile uint8_t *a;
	int dev, vm, status;
	pid_t pid;

	OPEN_DEV_OR_SKIP(dev);
	vm = create_vm_mem(_metadata, dev, 2 * MiB);
	a = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, vm, 0);
	ASSERT_NE(MAP_FAILED, a);
	a[100] = 1;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		a[100] = 2;
		a[8192] = 3;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(2, a[100]);
	EXPECT_EQ(3, a[8192]);
	munmap((void *)a, 2 * MiB);
	close(vm);
	close(dev);
}

/*
 * Processes racing to touch the same never-touched pages: every page is
 * allocated exactly once and every process sees every other's writes.
 */
TEST(guest_ram_concurrent_first_touch)
{
	const int nproc = 4;
	const uint64_t size = 4 * MiB;
	long ps = page_size(), pages = size / ps;
	struct trapvm_vm_info info;
	volatile uint8_t *a;
	int dev, vm, p, status;
	long i;

	OPEN_DEV_OR_SKIP(dev);
	vm = create_vm_mem(_metadata, dev, size);
	a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vm, 0);
	ASSERT_NE(MAP_FAILED, a);

	for (p = 0; p < nproc; p++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0) {
			/* everyone walks all pages, each writes its own byte */
			for (i = 0; i < pages; i++)
				a[i * ps + p] = (uint8_t)(p + 1);
			_exit(0);
		}
	}
	for (p = 0; p < nproc; p++) {
		ASSERT_LT(0, wait(&status));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
	EXPECT_EQ((uint64_t)pages, info.pages_allocated);
	for (i = 0; i < pages; i++)
		for (p = 0; p < nproc; p++)
			if (a[i * ps + p] != (uint8_t)(p + 1)) {
				EXPECT_EQ(p + 1, a[i * ps + p])
					TH_LOG("page %ld byte %d lost", i, p);
				i = pages;
				break;
			}
	munmap((void *)a, size);
	close(vm);
	close(dev);
}

/* ---- vCPU fd ---- */

FIXTURE(vcpu) {
	int dev, vm, vcpu;
	struct trapvm_run *run;
	long run_size;
};

FIXTURE_SETUP(vcpu)
{
	self->dev = -1;
	self->vm = -1;
	self->vcpu = -1;
	self->run = MAP_FAILED;
	self->dev = open_dev(_metadata);
	if (self->dev < 0)
		SKIP(return, "trapvm module not loaded");
	self->vm = create_vm_mem(_metadata, self->dev, 2 * MiB);
	self->vcpu = ioctl(self->vm, TRAPVM_CREATE_VCPU, 0);
	ASSERT_LE(0, self->vcpu);
	self->run_size = ioctl(self->dev, TRAPVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LT(0, self->run_size);
	self->run = mmap(NULL, self->run_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->vcpu, 0);
	ASSERT_NE(MAP_FAILED, self->run);
}

FIXTURE_TEARDOWN(vcpu)
{
	if (self->run != MAP_FAILED)
		munmap(self->run, self->run_size);
	if (self->vcpu >= 0)
		close(self->vcpu);
	if (self->vm >= 0)
		close(self->vm);
	if (self->dev >= 0)
		close(self->dev);
}

TEST_F(vcpu, run_mmap)
{
	long ps = self->run_size;

	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * ps, PROT_READ, MAP_SHARED,
				   self->vcpu, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, ps, PROT_READ, MAP_SHARED,
				   self->vcpu, ps));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, self->vcpu, 0));
	EXPECT_EQ(EINVAL, errno);
	/* A fresh run area is zero. */
	EXPECT_EQ(0, self->run->exit_reason);
	EXPECT_EQ(0, self->run->immediate_exit);
}

TEST_F(vcpu, run_immediate_exit)
{
	struct trapvm_vcpu_stats st;
	struct trapvm_run *run2;

	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_RUN, 1));
	EXPECT_EQ(EINVAL, errno);

	/* Asked for through the mapping, answered through another one. */
	run2 = mmap(NULL, self->run_size, PROT_READ, MAP_SHARED,
		    self->vcpu, 0);
	ASSERT_NE(MAP_FAILED, run2);
	self->run->exit_reason = 0xdead;
	self->run->immediate_exit = 1;
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_RUN, 0));
	EXPECT_EQ(EINTR, errno);
	EXPECT_EQ(TRAPVM_EXIT_INTR, run2->exit_reason);

	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st));
	EXPECT_EQ(1, st.count[TRAPVM_STAT_EXIT_SIGNAL]);
	EXPECT_EQ(0, st.count[TRAPVM_STAT_ENTRIES]);
	munmap(run2, self->run_size);
}

TEST_F(vcpu, regs)
{
	struct trapvm_regs r, r2;
	uint64_t *p = (uint64_t *)&r;
	unsigned int i;

	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &r));
	EXPECT_EQ(RESET_RIP, r.rip);
	EXPECT_EQ(RESET_RFLAGS, r.rflags);

	for (i = 0; i < 16; i++)
		p[i] = 0x0101010101010101ULL * (i + 1);
	r.rip = 0xffffffff81000000ULL;
	r.rflags = 0x2 | (1 << 9) | (3 << 12) | (1 << 21);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_REGS, &r));
	memset(&r2, 0, sizeof(r2));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &r2));
	EXPECT_EQ(0, memcmp(&r, &r2, sizeof(r)));

	/* RFLAGS: bit 1 is one; bits 3, 5, 15, 22..63 are zero. */
	r2 = r;
	r2.rflags = 0;
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_REGS, &r2));
	EXPECT_EQ(EINVAL, errno);
	r2.rflags = 0x2 | (1 << 3);
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_REGS, &r2));
	EXPECT_EQ(EINVAL, errno);
	r2.rflags = 0x2 | (1 << 15);
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_REGS, &r2));
	EXPECT_EQ(EINVAL, errno);
	r2.rflags = 0x2 | (1ULL << 22);
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_REGS, &r2));
	EXPECT_EQ(EINVAL, errno);

	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_REGS, (void *)16));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_GET_REGS, (void *)16));
	EXPECT_EQ(EFAULT, errno);

	/* Failed sets changed nothing. */
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_REGS, &r2));
	EXPECT_EQ(0, memcmp(&r, &r2, sizeof(r)));
}

TEST_F(vcpu, sregs_reset)
{
	struct trapvm_sregs s;
	int vcpu1;

	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &s));
	EXPECT_EQ(RESET_CR0, s.cr0);
	EXPECT_EQ(0, s.cr2);
	EXPECT_EQ(0, s.cr3);
	EXPECT_EQ(0, s.cr4);
	EXPECT_EQ(0, s.efer);
	EXPECT_EQ(0, s.cpl);
	EXPECT_EQ(0xf000, s.cs.selector);
	EXPECT_EQ(0xffff0000ULL, s.cs.base);
	EXPECT_EQ(0xffff, s.cs.limit);
	EXPECT_EQ(1, s.cs.present);
	EXPECT_EQ(1, s.cs.s);
	EXPECT_EQ(0, s.ds.selector);
	EXPECT_EQ(0, s.ds.base);
	EXPECT_EQ(0xffff, s.ds.limit);
	EXPECT_EQ(0, s.gdt.base);
	EXPECT_EQ(0xffff, s.gdt.limit);
	EXPECT_EQ(0, s.idt.base);
	EXPECT_EQ(0xffff, s.idt.limit);
	/* vCPU 0 is the bootstrap processor; the APIC is enabled. */
	EXPECT_EQ(APIC_DEFAULT | APIC_BSP | APIC_EN, s.apic_base);

	vcpu1 = ioctl(self->vm, TRAPVM_CREATE_VCPU, 1);
	if (vcpu1 >= 0) {
		ASSERT_EQ(0, ioctl(vcpu1, TRAPVM_GET_SREGS, &s));
		EXPECT_EQ(APIC_DEFAULT | APIC_EN, s.apic_base);
		close(vcpu1);
	}
}

static void long_mode_sregs(struct trapvm_sregs *s)
{
	struct trapvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct trapvm_segment data = code;

	data.selector = 0x18;
	data.type = 0x3;
	data.l = 0;
	data.db = 1;

	memset(s, 0, sizeof(*s));
	s->cs = code;
	s->ds = s->es = s->ss = data;
	s->fs = s->gs = data;
	s->fs.selector = s->gs.selector = 0;
	s->tr.type = 0xb;
	s->tr.present = 1;
	s->tr.limit = 0x67;
	s->ldt.unusable = 1;
	s->gdt.base = 0x1000;
	s->gdt.limit = 0x3f;
	s->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	s->cr3 = 0x2000;
	s->cr4 = CR4_PAE;
	s->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
	s->apic_base = APIC_DEFAULT | APIC_BSP | APIC_EN;
}

TEST_F(vcpu, sregs_long_mode)
{
	struct trapvm_sregs s, s2;

	long_mode_sregs(&s);
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_SREGS, &s));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &s2));
	EXPECT_EQ(s.cr0, s2.cr0);
	EXPECT_EQ(s.cr3, s2.cr3);
	EXPECT_EQ(s.cr4, s2.cr4);
	EXPECT_EQ(s.efer, s2.efer);
	EXPECT_EQ(0, memcmp(&s.cs, &s2.cs, sizeof(s.cs)));
	EXPECT_EQ(0, memcmp(&s.ss, &s2.ss, sizeof(s.ss)));
	EXPECT_EQ(0, memcmp(&s.tr, &s2.tr, sizeof(s.tr)));
	EXPECT_EQ(1, s2.ldt.unusable);
	EXPECT_EQ(0, s2.ldt.present);
	EXPECT_EQ(s.gdt.base, s2.gdt.base);
	EXPECT_EQ(s.gdt.limit, s2.gdt.limit);

	/* CR0.ET is hardwired to 1. */
	s.cr0 &= ~CR0_ET;
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_SREGS, &s));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &s2));
	EXPECT_EQ(s.cr0 | CR0_ET, s2.cr0);
}

TEST_F(vcpu, sregs_invalid)
{
	struct trapvm_sregs s, good;

	long_mode_sregs(&good);

#define EXPECT_BAD_SREGS(what) do {					\
		s = good;						\
		what;							\
		EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_SREGS, &s))	\
			TH_LOG("accepted: %s", #what);			\
		EXPECT_EQ(EINVAL, errno) TH_LOG("%s", #what);		\
	} while (0)

	EXPECT_BAD_SREGS(s.cr0 &= ~CR0_PE);		/* PG without PE */
	EXPECT_BAD_SREGS(s.cr0 |= CR0_NW);		/* NW without CD */
	EXPECT_BAD_SREGS(s.cr0 |= 1ULL << 32);		/* reserved */
	EXPECT_BAD_SREGS(s.cr0 |= 1ULL << 6);		/* reserved */
	EXPECT_BAD_SREGS(s.cr4 |= 1ULL << 15);		/* reserved */
	EXPECT_BAD_SREGS(s.cr4 |= 1ULL << 40);		/* reserved */
	EXPECT_BAD_SREGS(s.cr4 |= CR4_VMXE);		/* no VMX inside */
	EXPECT_BAD_SREGS(s.cr4 &= ~CR4_PAE);		/* long mode needs PAE */
	EXPECT_BAD_SREGS(s.efer &= ~EFER_LMA);		/* LME+PG => LMA */
	EXPECT_BAD_SREGS(s.efer &= ~EFER_LME);		/* LMA without LME */
	EXPECT_BAD_SREGS(s.cr0 &= ~(CR0_PG));		/* LMA without PG */
	EXPECT_BAD_SREGS(s.efer |= 1ULL << 1);		/* reserved */
	EXPECT_BAD_SREGS(s.efer |= 1ULL << 63);		/* reserved */
	EXPECT_BAD_SREGS(s.cs.db = 1);			/* L and D both set */
	EXPECT_BAD_SREGS(s.gdt.base = 0x0000800000000000ULL);
	EXPECT_BAD_SREGS(s.idt.base = 0x8000000000000000ULL);
	EXPECT_BAD_SREGS(s.fs.base = 0x1234567890abcdefULL);
	EXPECT_BAD_SREGS(s.cr3 = 1ULL << 60);		/* beyond MAXPHYADDR */
	EXPECT_BAD_SREGS(s.cr8 = 16);
	EXPECT_BAD_SREGS(s.cpl = 4);
	EXPECT_BAD_SREGS(s.cpl = 1);			/* CS.RPL is 0 */
	EXPECT_BAD_SREGS(s.cpl = 3);			/* CS.RPL is 0 */
	EXPECT_BAD_SREGS(s.apic_base |= 1);		/* reserved */
	EXPECT_BAD_SREGS(s.apic_base &= ~APIC_EN;
			 s.apic_base |= 1ULL << 10);	/* x2APIC, disabled */
	EXPECT_BAD_SREGS(s.cs.type = 16);
	EXPECT_BAD_SREGS(s.ss.dpl = 4);
	EXPECT_BAD_SREGS(s.ds.g = 0);			/* 4G limit needs G */
	EXPECT_BAD_SREGS(s.ds.limit = 0xfffff000);	/* G=1: low 12 ones */
	EXPECT_BAD_SREGS(s.reserved[6] = 1);
	EXPECT_BAD_SREGS(s.gdt.padding[1] = 1);

	/* The good state still works, and failures did not change it. */
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_SREGS, &good));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &s));
	EXPECT_EQ(good.cr0, s.cr0);
	EXPECT_EQ(good.efer, s.efer);

	/* Rings 1 and 2 exist (far RET, IRET, gates reach them). */
	s = good;
	s.cpl = 1;
	s.cs.selector |= 1;
	s.cs.dpl = 1;
	EXPECT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_SREGS, &s));
	memset(&s, 0, sizeof(s));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &s));
	EXPECT_EQ(1, s.cpl);

	/* Real mode at reset values is valid too. */
	memset(&s, 0, sizeof(s));
	s.cr0 = RESET_CR0;
	s.cs.present = s.ds.present = 1;
	s.cs.limit = s.ds.limit = 0xffff;
	EXPECT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_SREGS, &s));

	/*
	 * FS/GS bases are MSRs: non-canonical is #GP in every mode (SDM
	 * WRMSR), not only in long mode.
	 */
	good = s;
	EXPECT_BAD_SREGS(s.fs.base = 0x8000000000000000ULL);
	EXPECT_BAD_SREGS(s.gs.base = 0x0000800000000000ULL);

	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_SREGS, NULL));
	EXPECT_EQ(EFAULT, errno);
}

static struct trapvm_msrs *msrs_alloc(unsigned int n)
{
	struct trapvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));

	m->nmsrs = n;
	return m;
}

TEST_F(vcpu, msrs)
{
	static const struct { uint32_t index; uint64_t value; } msrs[] = {
		{ MSR_EFER, EFER_SCE },
		{ MSR_STAR, 0x0023001000000000ULL },
		{ MSR_LSTAR, 0xffffffff81000000ULL },
		{ MSR_CSTAR, 0xffffffff81000100ULL },
		{ MSR_SFMASK, 0x47700 },
		{ MSR_FS_BASE, 0x00007fff12345000ULL },
		{ MSR_GS_BASE, 0xffff888000000000ULL },
		{ MSR_KERNEL_GS_BASE, 0x1000 },
		{ MSR_TSC_AUX, 0x12345678 },
		{ MSR_PAT, 0x0007010600070406ULL },
		{ MSR_IA32_APICBASE, APIC_DEFAULT | APIC_BSP | APIC_EN |
				     (1ULL << 10) },
		{ MSR_SYSENTER_CS, 0x10 },
		{ MSR_SYSENTER_ESP, 0xffffc90000000000ULL },
		{ MSR_SYSENTER_EIP, 0xffffffff81000200ULL },
	};
	unsigned int n = sizeof(msrs) / sizeof(msrs[0]), i;
	struct trapvm_msrs *m = msrs_alloc(n), *edge;
	struct trapvm_sregs s;
	long ps = page_size();
	char *pg;

	/* Reset: PAT has its power-on value, EFER is zero. */
	m->nmsrs = 2;
	m->entries[0].index = MSR_PAT;
	m->entries[1].index = MSR_EFER;
	m->entries[1].data = 0xdead;
	ASSERT_EQ(2, ioctl(self->vcpu, TRAPVM_GET_MSRS, m));
	EXPECT_EQ(RESET_PAT, m->entries[0].data);
	EXPECT_EQ(0, m->entries[1].data);

	m->nmsrs = n;
	for (i = 0; i < n; i++) {
		m->entries[i].index = msrs[i].index;
		m->entries[i].data = msrs[i].value;
	}
	ASSERT_EQ((int)n, ioctl(self->vcpu, TRAPVM_SET_MSRS, m));
	for (i = 0; i < n; i++)
		m->entries[i].data = 0;
	ASSERT_EQ((int)n, ioctl(self->vcpu, TRAPVM_GET_MSRS, m));
	for (i = 0; i < n; i++)
		EXPECT_EQ(msrs[i].value, m->entries[i].data)
			TH_LOG("MSR %#x", msrs[i].index);

	/* FS/GS base MSRs are the segment bases. */
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_SREGS, &s));
	EXPECT_EQ(0x00007fff12345000ULL, s.fs.base);
	EXPECT_EQ(0xffff888000000000ULL, s.gs.base);
	EXPECT_EQ(msrs[10].value, s.apic_base);

	/* SYSENTER_CS is 32 bits wide, as a guest's WRMSR finds it. */
	m->nmsrs = 1;
	m->entries[0].index = MSR_SYSENTER_CS;
	m->entries[0].data = 0xabcd00000010ULL;
	ASSERT_EQ(1, ioctl(self->vcpu, TRAPVM_SET_MSRS, m));
	m->entries[0].data = 0;
	ASSERT_EQ(1, ioctl(self->vcpu, TRAPVM_GET_MSRS, m));
	EXPECT_EQ(0x10, m->entries[0].data);

	/* Processing stops at the first unknown MSR. */
	m->nmsrs = 3;
	m->entries[0].index = MSR_STAR;
	m->entries[1].index = 0x10;	/* IA32_TIME_STAMP_COUNTER: not ours */
	m->entries[2].index = MSR_LSTAR;
	EXPECT_EQ(1, ioctl(self->vcpu, TRAPVM_GET_MSRS, m));
	EXPECT_EQ(1, ioctl(self->vcpu, TRAPVM_SET_MSRS, m));
	m->entries[0].index = 0xdeadbeef;
	EXPECT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_MSRS, m));

	/* ... and at the first value the architecture would #GP on. */
#define EXPECT_MSR_REFUSED(idx, val) do {				\
		m->nmsrs = 1;						\
		m->entries[0].index = (idx);				\
		m->entries[0].data = (val);				\
		EXPECT_EQ(0, ioctl(self->vcpu, TRAPVM_SET_MSRS, m))	\
			TH_LOG("MSR %#x = %#llx accepted", (idx),	\
			       (unsigned long long)(val));		\
	} while (0)

	EXPECT_MSR_REFUSED(MSR_LSTAR, 0x0000800000000000ULL);
	EXPECT_MSR_REFUSED(MSR_FS_BASE, 0x8000000000000000ULL);
	EXPECT_MSR_REFUSED(MSR_KERNEL_GS_BASE, 0x0001000000000000ULL);
	EXPECT_MSR_REFUSED(MSR_CSTAR, 0x0000800000000000ULL);
	EXPECT_MSR_REFUSED(MSR_GS_BASE, 0xffff7fffffffffffULL);
	EXPECT_MSR_REFUSED(MSR_SYSENTER_ESP, 0x8000000000000000ULL);
	EXPECT_MSR_REFUSED(MSR_SYSENTER_EIP, 0x0000800000000000ULL);
	EXPECT_MSR_REFUSED(MSR_PAT, 0x0007040600070402ULL);	/* type 2 */
	EXPECT_MSR_REFUSED(MSR_PAT, 0x0807040600070406ULL);	/* type 8 */
	EXPECT_MSR_REFUSED(MSR_TSC_AUX, 1ULL << 32);
	EXPECT_MSR_REFUSED(MSR_SFMASK, 1ULL << 32);	/* bits 63:32 reserved */
	EXPECT_MSR_REFUSED(MSR_EFER, 1ULL << 2);
	EXPECT_MSR_REFUSED(MSR_EFER, EFER_LMA);	/* paging is off */
	EXPECT_MSR_REFUSED(MSR_IA32_APICBASE, APIC_DEFAULT | (1ULL << 10));

	/* Header and entry validation. */
	m->nmsrs = TRAPVM_MAX_MSRS + 1;
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_GET_MSRS, m));
	EXPECT_EQ(E2BIG, errno);
	m->nmsrs = 1;
	m->pad = 1;
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_SET_MSRS, m));
	EXPECT_EQ(EINVAL, errno);
	m->pad = 0;
	m->entries[0].index = MSR_STAR;
	m->entries[0].reserved = 1;
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_GET_MSRS, m));
	EXPECT_EQ(EINVAL, errno);
	m->entries[0].reserved = 0;
	m->nmsrs = 0;
	EXPECT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_MSRS, m));
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_GET_MSRS, NULL));
	EXPECT_EQ(EFAULT, errno);

	/* Entries past the end of a mapping: EFAULT, not a crash. */
	pg = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, pg);
	ASSERT_EQ(0, munmap(pg + ps, ps));
	edge = (void *)(pg + ps - sizeof(*edge) - sizeof(edge->entries[0]));
	edge->nmsrs = 2;
	edge->pad = 0;
	edge->entries[0].index = MSR_STAR;
	edge->entries[0].reserved = 0;
	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_GET_MSRS, edge));
	EXPECT_EQ(EFAULT, errno);
	munmap(pg, ps);
	free(m);
}

TEST_F(vcpu, interrupt)
{
	struct trapvm_interrupt irq = { 0 };

#define EXPECT_IRQ(ret, vec, fl) do {					\
		irq.vector = (vec);					\
		irq.flags = (fl);					\
		EXPECT_EQ(ret, ioctl(self->vcpu, TRAPVM_INTERRUPT, &irq)) \
			TH_LOG("vector %u flags %#x", (vec), (fl));	\
	} while (0)

	EXPECT_IRQ(-1, 0, 0);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_IRQ(-1, 31, 0);	/* exceptions are not external interrupts */
	EXPECT_EQ(EINVAL, errno);
	EXPECT_IRQ(-1, 256, 0);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_IRQ(-1, 0xffffffffu, 0);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_IRQ(-1, 32, 1);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_IRQ(0, 32, 0);
	EXPECT_IRQ(0, 255, 0);
	EXPECT_IRQ(0, 255, 0);		/* already pending: still fine */

	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_INTERRUPT, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(vcpu, stats)
{
	struct trapvm_vcpu_stats st;
	unsigned int i;

	ASSERT_EQ(TRAPVM_STAT_NR, sizeof(stat_names) / sizeof(stat_names[0]));
	memset(&st, 0xff, sizeof(st));
	ASSERT_EQ(0, ioctl(self->vcpu, TRAPVM_GET_STATS, &st));
	EXPECT_EQ(TRAPVM_STAT_NR, st.nr);
	EXPECT_EQ(0, st.reserved);
	/*
	 * A vCPU that never ran has no entries and no exits (set-up work such
	 * as building shadow pages may count); unused slots are cleared.
	 */
	for (i = 0; i < TRAPVM_STAT_NR; i++)
		if (!strcmp(stat_names[i], "entries") ||
		    !strncmp(stat_names[i], "exit_", 5))
			EXPECT_EQ(0, st.count[i]) TH_LOG("counter %u", i);
	for (i = TRAPVM_STAT_NR; i < TRAPVM_STATS_MAX; i++)
		EXPECT_EQ(0, st.count[i]) TH_LOG("unused count[%u]", i);

	EXPECT_EQ(-1, ioctl(self->vcpu, TRAPVM_GET_STATS, NULL));
	EXPECT_EQ(EFAULT, errno);
}

/*
 * A 64-bit guest that spins forever at 2 MiB: identity-mapped 2 MiB pages,
 * a flat GDT, entry state as in the guest ABI.
 */
#define SPIN_RIP	0x200000ULL

static void setup_spin_guest(struct __test_metadata *_metadata, int vcpu,
			     uint8_t *ram)
{
	static const uint8_t spin[] = { 0xf3, 0x90, 0xeb, 0xfc }; /* pause; jmp */
	uint64_t *pml4 = (uint64_t *)(ram + 0x1000);
	uint64_t *pdpt = (uint64_t *)(ram + 0x2000);
	uint64_t *pd = (uint64_t *)(ram + 0x3000);
	uint64_t *gdt = (uint64_t *)(ram + 0x4000);
	struct trapvm_sregs s;
	struct trapvm_regs r;

	pml4[0] = 0x2000 | 3;
	pdpt[0] = 0x3000 | 3;
	pd[0] = 0x000000 | 0x83;
	pd[1] = 0x200000 | 0x83;
	gdt[2] = 0x00af9b000000ffffULL;		/* 0x10: 64-bit code */
	gdt[3] = 0x00cf93000000ffffULL;		/* 0x18: data */
	memcpy(ram + SPIN_RIP, spin, sizeof(spin));

	long_mode_sregs(&s);
	s.cr3 = 0x1000;
	s.cr4 |= (1 << 9) | (1 << 10);		/* OSFXSR, OSXMMEXCPT */
	s.gdt.base = 0x4000;
	s.gdt.limit = 0x1f;
	s.fs.unusable = s.gs.unusable = 1;
	s.tr.unusable = 1;
	s.tr.present = 0;
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_SET_SREGS, &s));
	memset(&r, 0, sizeof(r));
	r.rip = SPIN_RIP;
	r.rsp = 0x300000;
	r.rflags = 0x2;
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_SET_REGS, &r));
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

struct kicker {
	pthread_t target;
	int vcpu;
	int stats_ok;
	uint64_t entries_seen;
	long stats_ns;
};

/* While the vCPU runs: counters readable at once, then a signal stops it. */
static void *kicker_thread(void *arg)
{
	struct kicker *k = arg;
	struct timespec d = { 0, 300 * 1000 * 1000 }, a, b;
	struct trapvm_interrupt irq = { .vector = 0x40 };
	struct trapvm_vcpu_stats st;

	nanosleep(&d, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	k->stats_ok = ioctl(k->vcpu, TRAPVM_GET_STATS, &st) == 0;
	clock_gettime(CLOCK_MONOTONIC, &b);
	k->stats_ns = (b.tv_sec - a.tv_sec) * 1000000000L +
		      (b.tv_nsec - a.tv_nsec);
	k->entries_seen = st.count[TRAPVM_STAT_ENTRIES];
	/* An interrupt for a vCPU that has IF=0 only stays pending. */
	ioctl(k->vcpu, TRAPVM_INTERRUPT, &irq);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

TEST(run_signal)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };	/* no SA_RESTART */
	struct trapvm_vcpu_stats st;
	struct trapvm_regs r;
	struct kicker k;
	struct trapvm_run *run;
	pthread_t t;
	uint8_t *ram;
	int dev, vm, vcpu, ret;

	OPEN_DEV_OR_SKIP(dev);
	vm = create_vm_mem(_metadata, dev, 4 * MiB);
	vcpu = create_vcpu_mapped(_metadata, vm, 4 * MiB, &ram, &run);
	setup_spin_guest(_metadata, vcpu, ram);

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	k.target = pthread_self();
	k.vcpu = vcpu;
	k.stats_ok = 0;
	ASSERT_EQ(0, pthread_create(&t, NULL, kicker_thread, &k));
	ret = ioctl(vcpu, TRAPVM_RUN, 0);
	if (ret < 0 && errno == EOPNOTSUPP) {
		pthread_join(t, NULL);
		SKIP(return, "RUN cannot run guests in this build");
	}
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINTR, errno);
	EXPECT_EQ(TRAPVM_EXIT_INTR, run->exit_reason);
	pthread_join(t, NULL);

	/* GET_STATS did not wait for RUN (which held the vCPU for 300 ms). */
	EXPECT_TRUE(k.stats_ok);
	EXPECT_GT(200 * 1000 * 1000L, k.stats_ns);
	EXPECT_LT(0, k.entries_seen);

	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_GET_STATS, &st));
	EXPECT_EQ(1, st.count[TRAPVM_STAT_EXIT_SIGNAL]);
	EXPECT_LE(k.entries_seen, st.count[TRAPVM_STAT_ENTRIES]);

	/* The guest was in its loop, and RUN resumes it there. */
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_GET_REGS, &r));
	EXPECT_TRUE(r.rip >= SPIN_RIP && r.rip < SPIN_RIP + 4)
		TH_LOG("rip %#llx", (unsigned long long)r.rip);
	run->immediate_exit = 1;
	EXPECT_EQ(-1, ioctl(vcpu, TRAPVM_RUN, 0));
	EXPECT_EQ(EINTR, errno);
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_GET_STATS, &st));
	EXPECT_EQ(2, st.count[TRAPVM_STAT_EXIT_SIGNAL]);

	signal(SIGUSR1, SIG_DFL);
	munmap(run, page_size());
	munmap(ram, 4 * MiB);
	close(vcpu);
	close(vm);
	close(dev);
}

/*
 * Only 64-bit mode with paging can run (the guest executes as 64-bit code
 * on 4-level shadow tables): RUN in any other mode, the reset state
 * first, stops with an internal error instead of entering.
 */
static void expect_invalid_mode(struct __test_metadata *_metadata, int vcpu,
				struct trapvm_run *run, const char *what)
{
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_RUN, 0)) TH_LOG("%s", what);
	ASSERT_EQ(TRAPVM_EXIT_INTERNAL_ERROR, run->exit_reason)
		TH_LOG("%s: exit %u", what, run->exit_reason);
	EXPECT_EQ(TRAPVM_INTERNAL_ERROR_INVALID_STATE, run->internal.suberror)
		TH_LOG("%s", what);
	EXPECT_EQ(TRAPVM_INVALID_STATE_MODE, run->internal.data[0])
		TH_LOG("%s", what);
}

TEST(run_invalid_state)
{
	struct trapvm_vcpu_stats st;
	struct trapvm_sregs s, good;
	struct trapvm_run *run;
	uint8_t *ram;
	int dev, vm, vcpu;

	OPEN_DEV_OR_SKIP(dev);
	vm = create_vm_mem(_metadata, dev, 4 * MiB);
	vcpu = create_vcpu_mapped(_metadata, vm, 4 * MiB, &ram, &run);

	/* The reset state: real mode. */
	expect_invalid_mode(_metadata, vcpu, run, "reset state");
	EXPECT_EQ(RESET_CR0, run->internal.data[1]);
	EXPECT_EQ(0, run->internal.data[2]);
	/* Still refused on a second try; nothing was ever entered. */
	expect_invalid_mode(_metadata, vcpu, run, "reset state again");

	setup_spin_guest(_metadata, vcpu, ram);
	ram[SPIN_RIP] = 0xf4;			/* HLT with IF=0 */
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_GET_SREGS, &good));

	/* Compatibility mode: long mode, CS.L = 0. */
	s = good;
	s.cs.l = 0;
	s.cs.db = 1;
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_SET_SREGS, &s));
	expect_invalid_mode(_metadata, vcpu, run, "compatibility mode");
	EXPECT_EQ(0, run->internal.data[3] & (1 << 13));

	/* Protected mode without paging. */
	s = good;
	s.cs.l = 0;
	s.cs.db = 1;
	s.cr0 &= ~CR0_PG;
	s.efer &= ~(EFER_LME | EFER_LMA);
	s.cr4 = 0;
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_SET_SREGS, &s));
	expect_invalid_mode(_metadata, vcpu, run, "protected mode");

	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_GET_STATS, &st));
	EXPECT_EQ(0, st.count[TRAPVM_STAT_ENTRIES]);

	/* 64-bit mode runs: HLT with IF=0 ends it. */
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_SET_SREGS, &good));
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_RUN, 0));
	EXPECT_EQ(TRAPVM_EXIT_SHUTDOWN, run->exit_reason);
	EXPECT_EQ(TRAPVM_SHUTDOWN_HLT, run->shutdown.reason);

	munmap(run, page_size());
	munmap(ram, 4 * MiB);
	close(vcpu);
	close(vm);
	close(dev);
}

/* ---- lifetime ---- */

TEST(vm_fd_closed_first)
{
	struct trapvm_regs regs;
	volatile uint8_t *ram;
	struct trapvm_run *run;
	int dev, vm, vcpu;
	long ps = page_size();

	OPEN_DEV_OR_SKIP(dev);
	vm = create_vm_mem(_metadata, dev, 2 * MiB);
	vcpu = ioctl(vm, TRAPVM_CREATE_VCPU, 0);
	ASSERT_LE(0, vcpu);
	ram = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, vm, 0);
	ASSERT_NE(MAP_FAILED, ram);
	ram[12345] = 0x77;
	close(vm);
	close(dev);

	/* The vCPU fd and the mapping keep the VM alive. */
	ASSERT_EQ(0, ioctl(vcpu, TRAPVM_GET_REGS, &regs));
	EXPECT_EQ(RESET_RIP, regs.rip);
	run = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	ASSERT_NE(MAP_FAILED, run);
	run->immediate_exit = 1;
	EXPECT_EQ(-1, ioctl(vcpu, TRAPVM_RUN, 0));
	EXPECT_EQ(EINTR, errno);
	EXPECT_EQ(0x77, ram[12345]);
	ram[2 * MiB - 1] = 0x88;
	EXPECT_EQ(0x88, ram[2 * MiB - 1]);

	close(vcpu);
	/* Mappings outlive every fd. */
	EXPECT_EQ(0x77, ram[12345]);
	EXPECT_EQ(TRAPVM_EXIT_INTR, run->exit_reason);
	munmap(run, ps);
	munmap((void *)ram, 2 * MiB);
}

/*
 * Repeated create/destroy with memory touched, vCPUs and mappings, in
 * every closing order; the page allocator's free count must come back.
 */
TEST(create_destroy_no_leak)
{
	const int iters = 1000, touch = 16;
	long ps = page_size(), before, after, leak_per_vm;
	int dev, i, j;

	OPEN_DEV_OR_SKIP(dev);

	for (int pass = 0; pass < 2; pass++) {
		/* pass 0 warms caches (slabs, page tables), pass 1 measures */
		before = free_pages_total();
		ASSERT_LT(0, before);
		for (i = 0; i < (pass ? iters : 100); i++) {
			struct trapvm_vm_info info;
			int vm = create_vm_mem(_metadata, dev, 2 * MiB);
			int vcpu = ioctl(vm, TRAPVM_CREATE_VCPU, 0);
			uint8_t *ram, *run;

			ASSERT_LE(0, vcpu);
			ram = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE,
				   MAP_SHARED, vm, 0);
			ASSERT_NE(MAP_FAILED, ram);
			run = mmap(NULL, ps, PROT_READ | PROT_WRITE,
				   MAP_SHARED, vcpu, 0);
			ASSERT_NE(MAP_FAILED, run);
			for (j = 0; j < touch; j++)
				ram[j * 31 * ps + j] = (uint8_t)(i + j);
			run[0] = 1;
			ASSERT_EQ(0, ioctl(vm, TRAPVM_GET_VM_INFO, &info));
			ASSERT_EQ(touch, info.pages_allocated);

			switch (i % 3) {
			case 0:		/* VM fd first, then vCPU, then maps */
				close(vm);
				close(vcpu);
				munmap(ram, 2 * MiB);
				munmap(run, ps);
				break;
			case 1:		/* maps first */
				munmap(ram, 2 * MiB);
				munmap(run, ps);
				close(vcpu);
				close(vm);
				break;
			default:	/* fds closed, maps last */
				close(vcpu);
				close(vm);
				munmap(run, ps);
				munmap(ram, 2 * MiB);
				break;
			}
		}
		after = free_pages_total();
	}
	/*
	 * A leak of only the run page would be iters pages; of the guest
	 * pages, touch * iters.  Allow 1 MiB of noise (slab, page tables).
	 */
	leak_per_vm = (before - after) / iters;
	TH_LOG("free pages before %ld after %ld (%ld per VM)", before, after,
	       leak_per_vm);
	EXPECT_GT(256, before - after);
	close(dev);
}

/* The module cannot go away under an open VM. */
TEST(rmmod_refused_while_vm_open)
{
	struct trapvm_memory m = { .size = 2 * MiB };
	int dev, vm, ret;

	if (access("/sys/module/trapvm", F_OK))
		SKIP(return, "trapvm is not a loaded module");
	OPEN_DEV_OR_SKIP(dev);
	vm = ioctl(dev, TRAPVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	close(dev);

	ret = syscall(SYS_delete_module, "trapvm", O_NONBLOCK);
	if (ret && errno == EPERM) {
		close(vm);
		SKIP(return, "not allowed to unload modules");
	}
	EXPECT_EQ(-1, ret);
	/* delete_module reports a busy module as EWOULDBLOCK or EBUSY. */
	EXPECT_TRUE(errno == EWOULDBLOCK || errno == EBUSY)
		TH_LOG("errno %d (%s)", errno, strerror(errno));
	ASSERT_EQ(0, access("/sys/module/trapvm", F_OK));

	/* The VM still works. */
	EXPECT_EQ(0, ioctl(vm, TRAPVM_SET_MEMORY, &m));
	close(vm);
}

TEST_HARNESS_MAIN
