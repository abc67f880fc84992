/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmctl: a 16550 UART on COM1 (0x3f8-0x3ff), enough of it for polled and
 * interrupt-less drivers.  Transmitted bytes go to an output stream; there
 * is no receive path yet (RBR reads 0, LSR.DR stays clear), except in
 * loopback mode where transmitted bytes come back.
 */
#ifndef VMCTL_UART_H
#define VMCTL_UART_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define UART_NR_PORTS	8

struct vmctl_uart {
	uint16_t base;
	FILE *out;
	uint8_t ier, iir_thri, fcr, lcr, mcr, scr, dll, dlm;
	uint8_t rbr;
	bool rx_ready;
	uint64_t tx_bytes;
};

void vmctl_uart_init(struct vmctl_uart *u, uint16_t base, FILE *out);
bool vmctl_uart_owns(const struct vmctl_uart *u, uint16_t port);
uint8_t vmctl_uart_read(struct vmctl_uart *u, uint16_t port);
void vmctl_uart_write(struct vmctl_uart *u, uint16_t port, uint8_t val);

#endif /* VMCTL_UART_H */
