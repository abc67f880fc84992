// SPDX-License-Identifier: GPL-2.0
/*
 * A module whose only job is to WARN when loaded.  The test host runner's
 * self-test loads it to prove that a kernel warning fails the run (status
 * 126) even though the command that loaded it succeeded.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init warn_mod_init(void)
{
	/* Deliberate: this is the splat the runner must catch. */
	WARN_ON(1);
	return 0;
}

static void __exit warn_mod_exit(void)
{
}

module_init(warn_mod_init);
module_exit(warn_mod_exit);

MODULE_DESCRIPTION("trapvm test host self-test: WARN on load");
MODULE_LICENSE("GPL");
