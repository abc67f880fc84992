// SPDX-License-Identifier: GPL-2.0
/*
 * vmctl version: vmctl's API version and the loaded module's versions.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmctl.h"
#include "vm.h"

static int version_main(int argc, char **argv)
{
	struct trapvm_module_info info;
	int fd, api;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "vmctl version: takes no arguments\n");
		return VMCTL_EXIT_USAGE;
	}

	printf("vmctl API version %d\n", TRAPVM_API_VERSION);
	fd = vmctl_open_dev();
	if (fd < 0)
		return VMCTL_EXIT_ERROR;

	api = VMCTL_IOCTL(fd, TRAPVM_GET_API_VERSION, 0);
	memset(&info, 0, sizeof(info));
	if (api < 0 || VMCTL_IOCTL(fd, TRAPVM_GET_MODULE_INFO, &info) < 0) {
		close(fd);
		return VMCTL_EXIT_ERROR;
	}
	info.version[sizeof(info.version) - 1] = '\0';
	printf("trapvm module %s, API version %d\n", info.version, api);
	close(fd);
	return 0;
}

static struct vmctl_command version_cmd = {
	.name = "version",
	.summary = "show the vmctl and trapvm module versions",
	.usage = "usage: vmctl version\n\n"
		 "Prints the API version vmctl was built for, then asks\n"
		 "/dev/trapvm for the module's version and API version.\n",
	.main = version_main,
};
VMCTL_COMMAND(version_cmd)
