/* SPDX-License-Identifier: GPL-2.0 */
/* Empty on purpose: kshim.h provides what kmod/shadow/ uses. */
