/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmctl: the trapvm command-line tool.  Each subcommand lives in its own
 * cmd-<name>.c and registers itself with VMCTL_COMMAND(), so adding one
 * means adding a file (the Makefile builds every .c here).
 */
#ifndef VMCTL_H
#define VMCTL_H

#include <stdbool.h>

struct vmctl_command {
	const char *name;
	const char *summary;		/* one line for `vmctl --help` */
	const char *usage;		/* `vmctl help NAME`: synopsis + options */
	int (*main)(int argc, char **argv);	/* argv[0] is the name */
	struct vmctl_command *next;
};

void vmctl_register(struct vmctl_command *cmd);

#define VMCTL_COMMAND(var)						\
	static void __attribute__((constructor)) var##_register(void)	\
	{								\
		vmctl_register(&var);					\
	}

/* Print `vmctl help NAME` text for the command to stdout. */
void vmctl_usage(const struct vmctl_command *cmd);

/*
 * Exit statuses of vmctl itself (a guest's own status, written to port
 * 0xf4, is passed through as v & 0xff and may collide with these).
 */
#define VMCTL_EXIT_ERROR	1	/* setup, loader or ioctl failure */
#define VMCTL_EXIT_USAGE	2	/* bad command line */
#define VMCTL_EXIT_SIGINT	130	/* 128 + SIGINT: stopped by Ctrl-C */
#define VMCTL_EXIT_SHUTDOWN	160	/* + TRAPVM_SHUTDOWN_* reason */
#define VMCTL_EXIT_INTERNAL	170	/* TRAPVM_EXIT_INTERNAL_ERROR */
#define VMCTL_EXIT_UNEXPECTED	171	/* an exit vmctl does not handle */

extern bool vmctl_verbose;

#endif /* VMCTL_H */
