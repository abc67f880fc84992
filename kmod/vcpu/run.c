// SPDX-License-Identifier: GPL-2.0
/*
 * trapvm world switch: placeholder until the world switch lands.
 *
 * RUN plumbing (locking, signals, immediate_exit) lives in vcpu.c; this
 * file only has to run the guest.  For now there is no way to do that,
 * so RUN reports -EOPNOTSUPP and vCPUs need no extra state.
 */
#include "../trapvm.h"

int trapvm_vcpu_run(struct trapvm_vcpu *vcpu)
{
	return -EOPNOTSUPP;
}

int trapvm_vcpu_arch_create(struct trapvm_vcpu *vcpu)
{
	return 0;
}

void trapvm_vcpu_arch_destroy(struct trapvm_vcpu *vcpu)
{
}
