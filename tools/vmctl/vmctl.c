// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl: command dispatch and help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmctl.h"

bool vmctl_verbose;

static struct vmctl_command *commands;

/* Keep the list sorted by name so that help output is stable. */
void vmctl_register(struct vmctl_command *cmd)
{
	struct vmctl_command **p = &commands;

	while (*p && strcmp((*p)->name, cmd->name) < 0)
		p = &(*p)->next;
	cmd->next = *p;
	*p = cmd;
}

static struct vmctl_command *find_command(const char *name)
{
	struct vmctl_command *c;

	for (c = commands; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

void vmctl_usage(const struct vmctl_command *cmd)
{
	printf("vmctl %s: %s\n\n%s", cmd->name, cmd->summary, cmd->usage);
}

static void usage(FILE *f)
{
	struct vmctl_command *c;

	fprintf(f,
		"usage: vmctl [-v] COMMAND [ARGS...]\n"
		"       vmctl help COMMAND\n\n"
		"Drive trapvm guests through /dev/trapvm.\n\n"
		"Commands:\n");
	for (c = commands; c; c = c->next)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nOptions:\n"
		"  -v, --verbose  more messages (unknown ports, exits)\n"
		"  -h, --help     this text; `vmctl COMMAND --help` for a command\n");
}

int main(int argc, char **argv)
{
	struct vmctl_command *cmd;
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-v") ||
			   !strcmp(argv[i], "--verbose")) {
			vmctl_verbose = true;
		} else {
			fprintf(stderr, "vmctl: unknown option %s\n", argv[i]);
			usage(stderr);
			return VMCTL_EXIT_USAGE;
		}
		i++;
	}
	if (i >= argc) {
		usage(stderr);
		return VMCTL_EXIT_USAGE;
	}

	if (!strcmp(argv[i], "help")) {
		if (i + 1 >= argc) {
			usage(stdout);
			return 0;
		}
		cmd = find_command(argv[i + 1]);
		if (!cmd) {
			fprintf(stderr, "vmctl: no command '%s'\n", argv[i + 1]);
			return VMCTL_EXIT_USAGE;
		}
		vmctl_usage(cmd);
		return 0;
	}

	cmd = find_command(argv[i]);
	if (!cmd) {
		fprintf(stderr, "vmctl: no command '%s' (see vmctl --help)\n",
			argv[i]);
		return VMCTL_EXIT_USAGE;
	}
	if (argc - i > 1 && (!strcmp(argv[i + 1], "--help") ||
			     !strcmp(argv[i + 1], "-h"))) {
		vmctl_usage(cmd);
		return 0;
	}
	return cmd->main(argc - i, argv + i);
}
