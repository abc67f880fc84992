// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm vCPU objects: the vCPU file descriptor, its mmap()ed run area,
 * register access, statistics, interrupt injection and RUN plumbing.
 * The guest itself is run by trapvm_vcpu_run() (vcpu/run.c).
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/sched/signal.h>
#include <asm/cpufeature.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>
#include <trapvm/emulate.h>

#include "../trapvm.h"

/* Segment attribute bits (descriptor bits 40..55), see trapvm/cpu.h. */
#define SEG_ATTR_TYPE		0x000f
#define SEG_ATTR_S		BIT(4)
#define SEG_ATTR_DPL_SHIFT	5
#define SEG_ATTR_P		BIT(7)
#define SEG_ATTR_AVL		BIT(12)
#define SEG_ATTR_L		BIT(13)
#define SEG_ATTR_DB		BIT(14)
#define SEG_ATTR_G		BIT(15)

#define CR0_VALID	(X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | \
			 X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_AM | \
			 X86_CR0_NW | X86_CR0_CD | X86_CR0_PG)

#define EFER_VALID	(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX)

#define APIC_BASE_BSP		BIT_ULL(8)
#define APIC_BASE_EXTD		BIT_ULL(10)
#define APIC_BASE_EN		BIT_ULL(11)
#define APIC_BASE_DEFAULT	0xfee00000ULL

#define RFLAGS_FIXED1		X86_EFLAGS_FIXED
/* Bits 3, 5, 15 and 22..63 are reserved (zero). */
#define RFLAGS_RESERVED		(~0x3fffffULL | BIT_ULL(3) | BIT_ULL(5) | \
				 BIT_ULL(15))

#define PAT_RESET		0x0007040600070406ULL

static u64 trapvm_cr4_valid(void)
{
	/*
	 * What the virtual CPU implements.  The guest sees the host's CPUID
	 * (no CPUID faulting under TCG), so features that need the hardware
	 * follow the host.  No VME/PVI (no virtual-8086 mode), no LA57 and
	 * no PCID (the shadow MMU walks 4-level tables without PCIDs), no
	 * VMX/SMX, no protection keys, no CET.
	 */
	u64 valid = X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE |
		    X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE |
		    X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;

	if (boot_cpu_has(X86_FEATURE_UMIP))
		valid |= X86_CR4_UMIP;
	if (boot_cpu_has(X86_FEATURE_FSGSBASE))
		valid |= X86_CR4_FSGSBASE;
	if (boot_cpu_has(X86_FEATURE_XSAVE))
		valid |= X86_CR4_OSXSAVE;
	if (boot_cpu_has(X86_FEATURE_SMEP))
		valid |= X86_CR4_SMEP;
	if (boot_cpu_has(X86_FEATURE_SMAP))
		valid |= X86_CR4_SMAP;
	return valid;
}

static bool trapvm_is_canonical48(u64 va)
{
	return (u64)(((s64)va << 16) >> 16) == va;
}

static bool trapvm_gpa_bits_ok(u64 pa)
{
	return !(pa >> boot_cpu_data.x86_phys_bits);
}

/* x86 power-on state (SDM Vol. 3, "Processor State After Reset"). */
static void trapvm_vcpu_reset(struct trapvm_vcpu *vcpu)
{
	struct trapvm_cpu *cpu = &vcpu->cpu;
	int i;

	memset(cpu, 0, sizeof(*cpu));
	cpu->rip = 0xfff0;
	cpu->rflags = RFLAGS_FIXED1;
	cpu->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
	for (i = 0; i < SREG_NR; i++) {
		cpu->seg[i].limit = 0xffff;
		/* present, read/write data, accessed */
		cpu->seg[i].attr = SEG_ATTR_P | SEG_ATTR_S | 0x3;
	}
	cpu->seg[SREG_CS].selector = 0xf000;
	cpu->seg[SREG_CS].base = 0xffff0000;
	/* present, execute/read code, accessed */
	cpu->seg[SREG_CS].attr = SEG_ATTR_P | SEG_ATTR_S | 0xb;
	cpu->ldtr.limit = 0xffff;
	cpu->ldtr.attr = SEG_ATTR_P | 0x2;	/* LDT */
	cpu->tr.limit = 0xffff;
	cpu->tr.attr = SEG_ATTR_P | 0xb;	/* busy TSS */
	cpu->gdtr.limit = 0xffff;
	cpu->idtr.limit = 0xffff;
	cpu->xcr0 = 1;				/* x87 */
	cpu->pat = PAT_RESET;
	cpu->apic_base = APIC_BASE_DEFAULT | APIC_BASE_EN;
	if (vcpu->id == 0)
		cpu->apic_base |= APIC_BASE_BSP;

	/*
	 * The emulator's configuration: what a guest can reach with MOV to
	 * CR4 must be what TRAPVM_SET_SREGS accepts, or a GET_SREGS /
	 * SET_SREGS round trip of a running guest would fail.
	 */
	cpu->cr4_supported = trapvm_cr4_valid();
	/*
	 * The guest sees the host's CPUID, so its MAXPHYADDR: MOV to CR3 and
	 * WRMSR of IA32_APIC_BASE must check what SET_SREGS, the APIC model
	 * and the page-table walker check (the emulator's default is 52).
	 */
	cpu->maxphyaddr = boot_cpu_data.x86_phys_bits;
}

/* ---- registers ---- */

static int trapvm_vcpu_get_regs(struct trapvm_vcpu *vcpu,
				struct trapvm_regs __user *argp)
{
	struct trapvm_regs regs;

	BUILD_BUG_ON(offsetof(struct trapvm_regs, r15) !=
		     GPR_R15 * sizeof(u64));

	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	memcpy(&regs, vcpu->cpu.gpr, sizeof(vcpu->cpu.gpr));
	regs.rip = vcpu->cpu.rip;
	regs.rflags = vcpu->cpu.rflags;
	mutex_unlock(&vcpu->mutex);

	if (copy_to_user(argp, &regs, sizeof(regs)))
		return -EFAULT;
	return 0;
}

static int trapvm_vcpu_set_regs(struct trapvm_vcpu *vcpu,
				struct trapvm_regs __user *argp)
{
	struct trapvm_regs regs;

	if (copy_from_user(&regs, argp, sizeof(regs)))
		return -EFAULT;
	/* As the SDM's VM-entry checks on RFLAGS. */
	if ((regs.rflags & RFLAGS_RESERVED) || !(regs.rflags & RFLAGS_FIXED1))
		return -EINVAL;

	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	memcpy(vcpu->cpu.gpr, &regs, sizeof(vcpu->cpu.gpr));
	vcpu->cpu.rip = regs.rip;
	vcpu->cpu.rflags = regs.rflags;
	mutex_unlock(&vcpu->mutex);
	return 0;
}

static void trapvm_seg_to_user(const struct trapvm_seg *s,
			       struct trapvm_segment *u)
{
	memset(u, 0, sizeof(*u));
	u->base = s->base;
	u->limit = s->limit;
	u->selector = s->selector;
	u->type = s->attr & SEG_ATTR_TYPE;
	u->s = !!(s->attr & SEG_ATTR_S);
	u->dpl = (s->attr >> SEG_ATTR_DPL_SHIFT) & 3;
	u->present = !!(s->attr & SEG_ATTR_P);
	u->avl = !!(s->attr & SEG_ATTR_AVL);
	u->l = !!(s->attr & SEG_ATTR_L);
	u->db = !!(s->attr & SEG_ATTR_DB);
	u->g = !!(s->attr & SEG_ATTR_G);
	u->unusable = !u->present;
}

static int trapvm_seg_from_user(const struct trapvm_segment *u,
				struct trapvm_seg *s)
{
	if (u->type > 15 || u->dpl > 3 || u->present > 1 || u->s > 1 ||
	    u->db > 1 || u->l > 1 || u->g > 1 || u->avl > 1 ||
	    u->unusable > 1 || u->padding)
		return -EINVAL;

	s->base = u->base;
	s->limit = u->limit;
	s->selector = u->selector;
	s->attr = 0;
	/* An unusable segment is stored as a not-present one. */
	if (u->unusable || !u->present)
		return 0;

	/*
	 * The limit must be expressible by a descriptor: G=1 means the low
	 * 12 bits are ones, G=0 means the top 12 bits are zeroes.
	 */
	if (u->g ? (u->limit & 0xfff) != 0xfff : (u->limit >> 20) != 0)
		return -EINVAL;

	s->attr = u->type | (u->s ? SEG_ATTR_S : 0) |
		  (u->dpl << SEG_ATTR_DPL_SHIFT) | SEG_ATTR_P |
		  (u->avl ? SEG_ATTR_AVL : 0) | (u->l ? SEG_ATTR_L : 0) |
		  (u->db ? SEG_ATTR_DB : 0) | (u->g ? SEG_ATTR_G : 0);
	return 0;
}

static int trapvm_check_efer(u64 efer, u64 cr0)
{
	if (efer & ~EFER_VALID)
		return -EINVAL;
	if (cr0 & X86_CR0_PG) {
		/* Paging on: long mode is active exactly when enabled. */
		if (!!(efer & EFER_LMA) != !!(efer & EFER_LME))
			return -EINVAL;
	} else if (efer & EFER_LMA) {
		return -EINVAL;
	}
	return 0;
}

static int trapvm_check_apic_base(u64 apic_base)
{
	u64 reserved = 0xffULL | BIT_ULL(9);

	if ((apic_base & reserved) || !trapvm_gpa_bits_ok(apic_base))
		return -EINVAL;
	/* x2APIC mode requires the APIC to be enabled. */
	if ((apic_base & APIC_BASE_EXTD) && !(apic_base & APIC_BASE_EN))
		return -EINVAL;
	return 0;
}

/* Architectural consistency, as the SDM's guest-state checks for entry. */
static int trapvm_check_sregs(const struct trapvm_sregs *sr)
{
	bool lma = sr->efer & EFER_LMA;
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(sr->reserved); i++)
		if (sr->reserved[i])
			return -EINVAL;
	if (sr->gdt.padding[0] || sr->gdt.padding[1] || sr->gdt.padding[2] ||
	    sr->idt.padding[0] || sr->idt.padding[1] || sr->idt.padding[2])
		return -EINVAL;

	/* CR0 */
	if (sr->cr0 & ~(u64)CR0_VALID)
		return -EINVAL;
	if ((sr->cr0 & X86_CR0_PG) && !(sr->cr0 & X86_CR0_PE))
		return -EINVAL;
	if ((sr->cr0 & X86_CR0_NW) && !(sr->cr0 & X86_CR0_CD))
		return -EINVAL;

	/* CR4 */
	if (sr->cr4 & ~trapvm_cr4_valid())
		return -EINVAL;

	/* EFER and long mode */
	ret = trapvm_check_efer(sr->efer, sr->cr0);
	if (ret)
		return ret;
	if (lma && !(sr->cr4 & X86_CR4_PAE))
		return -EINVAL;

	/* CR3: no bits beyond MAXPHYADDR (32 bits outside long mode). */
	if (!trapvm_gpa_bits_ok(sr->cr3) || (!lma && (sr->cr3 >> 32)))
		return -EINVAL;

	if (sr->cr8 > 15)
		return -EINVAL;
	ret = trapvm_check_apic_base(sr->apic_base);
	if (ret)
		return ret;

	/*
	 * Guests mostly use rings 0 and 3, but far transfers, IRET and
	 * gates into DPL 1 or 2 code reach the others (the emulator follows
	 * the SDM), and GET_SREGS must round-trip through SET_SREGS.
	 */
	if (sr->cpl > 3)
		return -EINVAL;
	if ((sr->cr0 & X86_CR0_PE) && sr->cs.present && !sr->cs.unusable &&
	    (sr->cs.selector & 3) != sr->cpl)
		return -EINVAL;

	/*
	 * The FS and GS bases go into the hardware's MSRs on every entry,
	 * whatever the virtual mode: WRMSR of a non-canonical base would
	 * #GP in the host.  Outside long mode they cannot exceed 32 bits
	 * anyway, so this refuses nothing a real CPU could hold.
	 */
	if (!trapvm_is_canonical48(sr->fs.base) ||
	    !trapvm_is_canonical48(sr->gs.base))
		return -EINVAL;

	if (lma) {
		/* 64-bit code segments must have D clear. */
		if (sr->cs.l && sr->cs.db)
			return -EINVAL;
		if (!trapvm_is_canonical48(sr->tr.base) ||
		    !trapvm_is_canonical48(sr->ldt.base) ||
		    !trapvm_is_canonical48(sr->gdt.base) ||
		    !trapvm_is_canonical48(sr->idt.base))
			return -EINVAL;
	}
	return 0;
}

static int trapvm_vcpu_get_sregs(struct trapvm_vcpu *vcpu,
				 struct trapvm_sregs __user *argp)
{
	struct trapvm_cpu *cpu = &vcpu->cpu;
	struct trapvm_sregs sr;

	memset(&sr, 0, sizeof(sr));
	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	trapvm_seg_to_user(&cpu->seg[SREG_CS], &sr.cs);
	trapvm_seg_to_user(&cpu->seg[SREG_DS], &sr.ds);
	trapvm_seg_to_user(&cpu->seg[SREG_ES], &sr.es);
	trapvm_seg_to_user(&cpu->seg[SREG_FS], &sr.fs);
	trapvm_seg_to_user(&cpu->seg[SREG_GS], &sr.gs);
	trapvm_seg_to_user(&cpu->seg[SREG_SS], &sr.ss);
	trapvm_seg_to_user(&cpu->tr, &sr.tr);
	trapvm_seg_to_user(&cpu->ldtr, &sr.ldt);
	sr.gdt.base = cpu->gdtr.base;
	sr.gdt.limit = cpu->gdtr.limit;
	sr.idt.base = cpu->idtr.base;
	sr.idt.limit = cpu->idtr.limit;
	sr.cr0 = cpu->cr0;
	sr.cr2 = cpu->cr2;
	sr.cr3 = cpu->cr3;
	sr.cr4 = cpu->cr4;
	sr.cr8 = cpu->cr8;
	sr.efer = cpu->efer;
	sr.apic_base = cpu->apic_base;
	sr.cpl = cpu->cpl;
	mutex_unlock(&vcpu->mutex);

	if (copy_to_user(argp, &sr, sizeof(sr)))
		return -EFAULT;
	return 0;
}

static int trapvm_vcpu_set_sregs(struct trapvm_vcpu *vcpu,
				 struct trapvm_sregs __user *argp)
{
	struct trapvm_seg seg[SREG_NR], tr, ldtr;
	struct trapvm_cpu *cpu = &vcpu->cpu;
	struct trapvm_sregs sr;
	int ret;

	if (copy_from_user(&sr, argp, sizeof(sr)))
		return -EFAULT;
	ret = trapvm_check_sregs(&sr);
	if (ret)
		return ret;
	ret = trapvm_seg_from_user(&sr.cs, &seg[SREG_CS]) ?:
	      trapvm_seg_from_user(&sr.ds, &seg[SREG_DS]) ?:
	      trapvm_seg_from_user(&sr.es, &seg[SREG_ES]) ?:
	      trapvm_seg_from_user(&sr.fs, &seg[SREG_FS]) ?:
	      trapvm_seg_from_user(&sr.gs, &seg[SREG_GS]) ?:
	      trapvm_seg_from_user(&sr.ss, &seg[SREG_SS]) ?:
	      trapvm_seg_from_user(&sr.tr, &tr) ?:
	      trapvm_seg_from_user(&sr.ldt, &ldtr);
	if (ret)
		return ret;

	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	memcpy(cpu->seg, seg, sizeof(seg));
	cpu->tr = tr;
	cpu->ldtr = ldtr;
	cpu->gdtr.base = sr.gdt.base;
	cpu->gdtr.limit = sr.gdt.limit;
	cpu->idtr.base = sr.idt.base;
	cpu->idtr.limit = sr.idt.limit;
	/* CR0.ET is hardwired to 1 since the i486. */
	cpu->cr0 = sr.cr0 | X86_CR0_ET;
	cpu->cr2 = sr.cr2;
	cpu->cr3 = sr.cr3;
	cpu->cr4 = sr.cr4;
	cpu->cr8 = sr.cr8;
	cpu->efer = sr.efer;
	cpu->apic_base = sr.apic_base;
	cpu->cpl = sr.cpl;
	mutex_unlock(&vcpu->mutex);
	return 0;
}

/* ---- MSRs ---- */

static bool trapvm_pat_valid(u64 pat)
{
	int i;

	for (i = 0; i < 8; i++) {
		u8 type = pat >> (i * 8);

		/* 2 and 3 are reserved memory types, as is anything > 7. */
		if (type > 7 || type == 2 || type == 3)
			return false;
	}
	return true;
}

/* Returns 0, or -ENOENT for an MSR the vCPU lacks, -EINVAL for a value. */
static int trapvm_get_msr(struct trapvm_cpu *cpu, u32 index, u64 *data)
{
	enum trapvm_msr_rule rule;
	u64 *field;

	field = trapvm_msr_field(cpu, index, &rule);
	if (field) {
		*data = *field;
		return 0;
	}

	switch (index) {
	case MSR_EFER:
		*data = cpu->efer;
		break;
	case MSR_IA32_CR_PAT:
		*data = cpu->pat;
		break;
	case MSR_IA32_APICBASE:
		*data = cpu->apic_base;
		break;
	default:
		return -ENOENT;
	}
	return 0;
}

/* The emulator's WRMSR rules, but canonical means 48-bit whatever CR4. */
static int trapvm_set_msr_field(u64 *field, enum trapvm_msr_rule rule,
				u64 data)
{
	switch (rule) {
	case TRAPVM_MSR_RULE_ANY:
		break;
	case TRAPVM_MSR_RULE_CANONICAL:
		if (!trapvm_is_canonical48(data))
			return -EINVAL;
		break;
	case TRAPVM_MSR_RULE_HIGH_ZERO:
		if (data >> 32)
			return -EINVAL;
		break;
	case TRAPVM_MSR_RULE_TRUNC32:
		data = (u32)data;
		break;
	}
	*field = data;
	return 0;
}

static int trapvm_set_msr(struct trapvm_cpu *cpu, u32 index, u64 data)
{
	enum trapvm_msr_rule rule;
	u64 *field;

	field = trapvm_msr_field(cpu, index, &rule);
	if (field)
		return trapvm_set_msr_field(field, rule, data);

	switch (index) {
	case MSR_EFER:
		if (trapvm_check_efer(data, cpu->cr0))
			return -EINVAL;
		if ((data & EFER_LMA) && !(cpu->cr4 & X86_CR4_PAE))
			return -EINVAL;
		cpu->efer = data;
		break;
	case MSR_IA32_CR_PAT:
		if (!trapvm_pat_valid(data))
			return -EINVAL;
		cpu->pat = data;
		break;
	case MSR_IA32_APICBASE:
		if (trapvm_check_apic_base(data))
			return -EINVAL;
		cpu->apic_base = data;
		break;
	default:
		return -ENOENT;
	}
	return 0;
}

static long trapvm_vcpu_msrs(struct trapvm_vcpu *vcpu,
			     struct trapvm_msrs __user *argp, bool set)
{
	struct trapvm_msr_entry *entries;
	struct trapvm_msrs hdr;
	u32 i;
	long ret;

	if (copy_from_user(&hdr, argp, sizeof(hdr)))
		return -EFAULT;
	if (hdr.pad)
		return -EINVAL;
	if (hdr.nmsrs > TRAPVM_MAX_MSRS)
		return -E2BIG;
	if (!hdr.nmsrs)
		return 0;

	entries = memdup_user(argp->entries, hdr.nmsrs * sizeof(*entries));
	if (IS_ERR(entries))
		return PTR_ERR(entries);
	for (i = 0; i < hdr.nmsrs; i++) {
		if (entries[i].reserved) {
			kfree(entries);
			return -EINVAL;
		}
	}

	/* Killable: RUN may hold the mutex for as long as the guest halts. */
	if (mutex_lock_killable(&vcpu->mutex)) {
		kfree(entries);
		return -EINTR;
	}
	for (i = 0; i < hdr.nmsrs; i++) {
		if (set) {
			if (trapvm_set_msr(&vcpu->cpu, entries[i].index,
					   entries[i].data))
				break;
		} else {
			if (trapvm_get_msr(&vcpu->cpu, entries[i].index,
					   &entries[i].data))
				break;
		}
	}
	mutex_unlock(&vcpu->mutex);

	ret = i;
	if (!set && copy_to_user(argp->entries, entries, i * sizeof(*entries)))
		ret = -EFAULT;
	kfree(entries);
	return ret;
}

/* ---- statistics, interrupts, RUN ---- */

static int trapvm_vcpu_get_stats(struct trapvm_vcpu *vcpu,
				 struct trapvm_vcpu_stats __user *argp)
{
	u64 count[TRAPVM_STAT_NR];
	size_t tail = sizeof(argp->count) - sizeof(count);
	unsigned int i;

	BUILD_BUG_ON(TRAPVM_STAT_NR > TRAPVM_STATS_MAX);

	/* Counters only grow; a racing RUN just makes them slightly stale. */
	for (i = 0; i < TRAPVM_STAT_NR; i++)
		count[i] = READ_ONCE(vcpu->stats[i]);

	if (put_user((u32)TRAPVM_STAT_NR, &argp->nr) ||
	    put_user(0u, &argp->reserved) ||
	    copy_to_user(argp->count, count, sizeof(count)) ||
	    clear_user(&argp->count[TRAPVM_STAT_NR], tail))
		return -EFAULT;
	return 0;
}

void trapvm_vcpu_kick(struct trapvm_vcpu *vcpu)
{
	struct task_struct *task;

	wake_up_interruptible(&vcpu->wq);

	/*
	 * If the vCPU is in the guest on another CPU, an IPI makes it exit
	 * so that it sees the new work.  The task clears run_task before it
	 * leaves RUN, and task_structs are freed after an RCU grace period.
	 */
	rcu_read_lock();
	task = READ_ONCE(vcpu->run_task);
	if (task && task != current)
		kick_process(task);
	rcu_read_unlock();
}

static int trapvm_vcpu_interrupt(struct trapvm_vcpu *vcpu,
				 struct trapvm_interrupt __user *argp)
{
	struct trapvm_interrupt irq;

	if (copy_from_user(&irq, argp, sizeof(irq)))
		return -EFAULT;
	if (irq.flags || irq.vector < 32 || irq.vector > 255)
		return -EINVAL;

	set_bit(irq.vector, vcpu->pending_irqs);
	trapvm_vcpu_kick(vcpu);
	return 0;
}

static long trapvm_vcpu_ioctl_run(struct trapvm_vcpu *vcpu, unsigned long arg)
{
	struct trapvm_run *run = vcpu->run;
	long ret;

	if (arg)
		return -EINVAL;
	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;

	if (READ_ONCE(run->immediate_exit) || signal_pending(current)) {
		ret = -EINTR;
	} else {
		WRITE_ONCE(vcpu->run_task, current);
		ret = trapvm_vcpu_run(vcpu);
		WRITE_ONCE(vcpu->run_task, NULL);
	}
	if (ret == -EINTR) {
		run->exit_reason = TRAPVM_EXIT_INTR;
		trapvm_vcpu_stat_inc(vcpu, TRAPVM_STAT_EXIT_SIGNAL);
	}
	mutex_unlock(&vcpu->mutex);
	return ret;
}

static long trapvm_vcpu_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	struct trapvm_vcpu *vcpu = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case TRAPVM_RUN:
		return trapvm_vcpu_ioctl_run(vcpu, arg);
	case TRAPVM_GET_REGS:
		return trapvm_vcpu_get_regs(vcpu, argp);
	case TRAPVM_SET_REGS:
		return trapvm_vcpu_set_regs(vcpu, argp);
	case TRAPVM_GET_SREGS:
		return trapvm_vcpu_get_sregs(vcpu, argp);
	case TRAPVM_SET_SREGS:
		return trapvm_vcpu_set_sregs(vcpu, argp);
	case TRAPVM_GET_MSRS:
		return trapvm_vcpu_msrs(vcpu, argp, false);
	case TRAPVM_SET_MSRS:
		return trapvm_vcpu_msrs(vcpu, argp, true);
	case TRAPVM_INTERRUPT:
		return trapvm_vcpu_interrupt(vcpu, argp);
	case TRAPVM_GET_STATS:
		return trapvm_vcpu_get_stats(vcpu, argp);
	default:
		return -ENOTTY;
	}
}

/* ---- the vCPU file and its run area mapping ---- */

static vm_fault_t trapvm_run_fault(struct vm_fault *vmf)
{
	struct trapvm_vcpu *vcpu = vmf->vma->vm_file->private_data;
	struct page *page;

	if (vmf->pgoff != 0)
		return VM_FAULT_SIGBUS;
	page = virt_to_page(vcpu->run);
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct trapvm_run_vm_ops = {
	.fault = trapvm_run_fault,
};

static int trapvm_vcpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* A private copy would not see exits nor pass immediate_exit in. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff != 0 || vma_pages(vma) != 1)
		return -EINVAL;
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	vma->vm_ops = &trapvm_run_vm_ops;
	return 0;
}

static int trapvm_vcpu_file_release(struct inode *inode, struct file *file)
{
	struct trapvm_vcpu *vcpu = file->private_data;

	trapvm_vm_put(vcpu->vm);
	return 0;
}

static const struct file_operations trapvm_vcpu_fops = {
	.owner		= THIS_MODULE,
	.release	= trapvm_vcpu_file_release,
	.unlocked_ioctl	= trapvm_vcpu_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= trapvm_vcpu_mmap,
	.llseek		= noop_llseek,
};

int trapvm_vcpu_create(struct trapvm_vm *vm, u32 id)
{
	struct trapvm_vcpu *vcpu;
	int ret;

	mutex_lock(&vm->lock);
	/* Memory is fixed before the first vCPU exists. */
	if (!vm->mem.size) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (vm->vcpus[id]) {
		ret = -EEXIST;
		goto out_unlock;
	}

	ret = -ENOMEM;
	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);
	if (!vcpu)
		goto out_unlock;
	vcpu->run = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vcpu->run)
		goto out_free;
	vcpu->vm = vm;
	vcpu->id = id;
	mutex_init(&vcpu->mutex);
	init_waitqueue_head(&vcpu->wq);
	trapvm_vcpu_reset(vcpu);

	ret = trapvm_vcpu_arch_create(vcpu);
	if (ret)
		goto out_free_run;

	/* The vCPU file's reference on the VM. */
	trapvm_vm_get(vm);
	ret = anon_inode_getfd("trapvm-vcpu", &trapvm_vcpu_fops, vcpu,
			       O_RDWR | O_CLOEXEC);
	if (ret < 0) {
		/* Cannot be the last reference: the VM fd is in use. */
		trapvm_vm_put(vm);
		trapvm_vcpu_arch_destroy(vcpu);
		goto out_free_run;
	}
	vm->vcpus[id] = vcpu;
	vm->nr_vcpus++;
	mutex_unlock(&vm->lock);
	return ret;

out_free_run:
	free_page((unsigned long)vcpu->run);
out_free:
	kfree(vcpu);
out_unlock:
	mutex_unlock(&vm->lock);
	return ret;
}

/* Called when the VM is freed: no fds, no RUN, no mappings remain. */
void trapvm_vcpu_destroy(struct trapvm_vcpu *vcpu)
{
	trapvm_vcpu_arch_destroy(vcpu);
	free_page((unsigned long)vcpu->run);
	mutex_destroy(&vcpu->mutex);
	kfree(vcpu);
}
