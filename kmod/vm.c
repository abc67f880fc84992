// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm VM objects: the VM file descriptor returned by TRAPVM_CREATE_VM.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "trapvm.h"

#define TRAPVM_MEM_ALIGN	(2ULL << 20)

void trapvm_vm_get(struct trapvm_vm *vm)
{
	kref_get(&vm->users);
}

static void trapvm_vm_release(struct kref *kref)
{
	struct trapvm_vm *vm = container_of(kref, struct trapvm_vm, users);
	unsigned int i;

	for (i = 0; i < TRAPVM_MAX_VCPUS; i++) {
		if (vm->vcpus[i])
			trapvm_vcpu_destroy(vm->vcpus[i]);
	}
	trapvm_guest_mem_free(&vm->mem);
	mutex_destroy(&vm->lock);
	kfree(vm);
}

void trapvm_vm_put(struct trapvm_vm *vm)
{
	kref_put(&vm->users, trapvm_vm_release);
}

static int trapvm_vm_set_memory(struct trapvm_vm *vm,
				struct trapvm_memory __user *argp)
{
	struct trapvm_memory m;
	int ret;

	if (copy_from_user(&m, argp, sizeof(m)))
		return -EFAULT;
	if (m.flags || m.reserved)
		return -EINVAL;
	if (!m.size || !IS_ALIGNED(m.size, TRAPVM_MEM_ALIGN))
		return -EINVAL;
	if (m.size > (u64)trapvm_max_mem_mb << 20)
		return -E2BIG;
	/* Never let one VM ask for more than half of the host. */
	if (m.size > ((u64)totalram_pages() << PAGE_SHIFT) / 2)
		return -ENOMEM;

	mutex_lock(&vm->lock);
	if (vm->mem.size)
		ret = -EEXIST;
	else
		ret = trapvm_guest_mem_alloc(&vm->mem, m.size);
	mutex_unlock(&vm->lock);
	return ret;
}

static int trapvm_vm_get_info(struct trapvm_vm *vm,
			      struct trapvm_vm_info __user *argp)
{
	struct trapvm_vm_info info;

	memset(&info, 0, sizeof(info));
	mutex_lock(&vm->lock);
	info.mem_size = vm->mem.size;
	info.nr_vcpus = vm->nr_vcpus;
	mutex_unlock(&vm->lock);
	info.pages_allocated = trapvm_guest_mem_nr_pages(&vm->mem);

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long trapvm_vm_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct trapvm_vm *vm = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case TRAPVM_SET_MEMORY:
		return trapvm_vm_set_memory(vm, argp);
	case TRAPVM_CREATE_VCPU:
		if (arg >= TRAPVM_MAX_VCPUS)
			return -EINVAL;
		return trapvm_vcpu_create(vm, arg);
	case TRAPVM_GET_VM_INFO:
		return trapvm_vm_get_info(vm, argp);
	default:
		return -ENOTTY;
	}
}

static int trapvm_vm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct trapvm_vm *vm = file->private_data;

	return trapvm_guest_mem_mmap(vm, vma);
}

static int trapvm_vm_file_release(struct inode *inode, struct file *file)
{
	trapvm_vm_put(file->private_data);
	return 0;
}

static const struct file_operations trapvm_vm_fops = {
	.owner		= THIS_MODULE,
	.release	= trapvm_vm_file_release,
	.unlocked_ioctl	= trapvm_vm_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= trapvm_vm_mmap,
	.llseek		= noop_llseek,
};

int trapvm_create_vm(unsigned long type)
{
	struct trapvm_vm *vm;
	struct file *file;
	int fd;

	if (type)
		return -EINVAL;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		return -ENOMEM;
	kref_init(&vm->users);
	mutex_init(&vm->lock);
	trapvm_guest_mem_init(&vm->mem);

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto err_free;

	file = anon_inode_getfile("trapvm-vm", &trapvm_vm_fops, vm, O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		fd = PTR_ERR(file);
		goto err_free;
	}
	/*
	 * Give the file its own address_space: the anon inode is shared by
	 * every anon file in the system, and page freeing/merging must be
	 * able to zap this VM's user mappings only.
	 */
	vm->mem.mapping.host = file_inode(file);
	file->f_mapping = &vm->mem.mapping;
	fd_install(fd, file);
	return fd;

err_free:
	mutex_destroy(&vm->lock);
	kfree(vm);
	return fd;
}
