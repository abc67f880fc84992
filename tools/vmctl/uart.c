// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl: 16550 UART register semantics (National Semiconductor PC16550D
 * data sheet).  Transmission is instantaneous: THR and the shift register
 * are always empty again by the time the guest looks.
 */
#include "uart.h"

/* register offsets */
#define UART_RBR_THR	0	/* DLAB=0; DLL with DLAB=1 */
#define UART_IER	1	/* DLAB=0; DLM with DLAB=1 */
#define UART_IIR_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define LCR_DLAB	0x80
#define IER_RDI		0x01	/* received data available */
#define IER_THRI	0x02	/* transmitter holding register empty */
#define IIR_NO_INT	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_FIFO	0xc0	/* FIFOs enabled */
#define FCR_FIFO_EN	0x01
#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80

void vmctl_uart_init(struct vmctl_uart *u, uint16_t base, FILE *out)
{
	*u = (struct vmctl_uart){ .base = base, .out = out };
	/* Power-on values; a common default divisor (115200 baud). */
	u->dll = 1;
}

bool vmctl_uart_owns(const struct vmctl_uart *u, uint16_t port)
{
	return port >= u->base && port < u->base + UART_NR_PORTS;
}

static uint8_t uart_iir(struct vmctl_uart *u)
{
	uint8_t fifo = (u->fcr & FCR_FIFO_EN) ? IIR_FIFO : 0;

	if ((u->ier & IER_RDI) && u->rx_ready)
		return IIR_RDI | fifo;
	if ((u->ier & IER_THRI) && u->iir_thri) {
		/* Reading IIR with THRE as its source clears that source. */
		u->iir_thri = 0;
		return IIR_THRI | fifo;
	}
	return IIR_NO_INT | fifo;
}

static uint8_t uart_msr(struct vmctl_uart *u)
{
	if (u->mcr & MCR_LOOP)
		return ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
		       ((u->mcr & MCR_RTS) ? MSR_CTS : 0) |
		       ((u->mcr & MCR_OUT1) ? MSR_RI : 0) |
		       ((u->mcr & MCR_OUT2) ? MSR_DCD : 0);
	/* A terminal is attached and ready. */
	return MSR_DCD | MSR_DSR | MSR_CTS;
}

uint8_t vmctl_uart_read(struct vmctl_uart *u, uint16_t port)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (port - u->base) {
	case UART_RBR_THR:
		if (dlab)
			return u->dll;
		u->rx_ready = false;
		return u->rbr;
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR_FCR:
		return uart_iir(u);
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (u->rx_ready ? LSR_DR : 0);
	case UART_MSR:
		return uart_msr(u);
	default:
		return u->scr;
	}
}

void vmctl_uart_write(struct vmctl_uart *u, uint16_t port, uint8_t val)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (port - u->base) {
	case UART_RBR_THR:
		if (dlab) {
			u->dll = val;
			break;
		}
		if (u->mcr & MCR_LOOP) {
			u->rbr = val;
			u->rx_ready = true;
		} else {
			fputc(val, u->out);
			if (val == '\n')
				fflush(u->out);
			u->tx_bytes++;
		}
		/* Sent at once: THR is empty again. */
		u->iir_thri = 1;
		break;
	case UART_IER:
		if (dlab) {
			u->dlm = val;
		} else {
			/* Enabling THRI with THR empty raises it at once. */
			if ((val & IER_THRI) && !(u->ier & IER_THRI))
				u->iir_thri = 1;
			u->ier = val & 0x0f;
		}
		break;
	case UART_IIR_FCR:
		/* Bits 1 and 2 clear the FIFOs and read back as 0. */
		u->fcr = val & 0xc9;
		if (val & 0x02)
			u->rx_ready = false;
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		u->mcr = val & 0x1f;
		break;
	case UART_LSR:
	case UART_MSR:
		break;		/* read-only (factory test only) */
	default:
		u->scr = val;
		break;
	}
}
