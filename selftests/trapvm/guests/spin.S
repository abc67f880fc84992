/* SPDX-License-Identifier: GPL-2.0 */
/* A guest that never stops on its own: for Ctrl-C (SIGINT) tests. */
	.code64
	.text
	.globl	_start
_start:
1:	pause
	jmp	1b
