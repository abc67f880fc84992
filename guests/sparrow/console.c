// SPDX-License-Identifier: GPL-2.0
/*
 * Console: a polled 16550 UART on COM1, a small printf, panic and poweroff.
 */
#include "sparrow.h"

#define COM1		TRAPVM_PORT_COM1
#define UART_THR	0
#define UART_IER	1
#define UART_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define LSR_THRE	0x20

void uart_init(void)
{
	outb(COM1 + UART_IER, 0x00);	/* polled: no UART interrupts */
	outb(COM1 + UART_LCR, 0x80);	/* DLAB */
	outb(COM1 + 0, 0x01);		/* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + UART_LCR, 0x03);	/* 8N1 */
	outb(COM1 + UART_FCR, 0x07);	/* FIFO on, cleared */
	outb(COM1 + UART_MCR, 0x03);	/* DTR, RTS */
}

static void uart_putc(char c)
{
	int spin = 100000;

	/* Bounded wait: a missing UART must not hang the kernel. */
	while (!(inb(COM1 + UART_LSR) & LSR_THRE) && --spin)
		;
	outb(COM1 + UART_THR, c);
}

void uart_write(const char *s, size_t n)
{
	for (; n; n--, s++) {
		if (*s == '\n')
			uart_putc('\r');
		uart_putc(*s);
	}
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void kprintf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	uart_write(buf, n);
}

void poweroff(u32 status)
{
	cli();
	/*
	 * isa-debug-exit (QEMU) / the vmctl exit port: QEMU exits with
	 * (status << 1) | 1, vmctl with status.
	 */
	outl(TRAPVM_PORT_EXIT, status);
	/* No exit device: HLT with IF=0 is a shutdown under trapvm. */
	for (;;)
		asm volatile("hlt");
}

void panic(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	cli();
	va_start(ap, fmt);
	kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf("sparrow: PANIC: %s\n", buf);
	poweroff(0x7f);
}
