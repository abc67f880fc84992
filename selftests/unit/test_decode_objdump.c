// SPDX-License-Identifier: GPL-2.0
/*
 * Randomized decoder lengths against an independent decoder: GNU
 * objdump (binutils), with -M intel64 so that vendor differences follow
 * Intel like trapvm does.  Random byte strings, biased towards prefixes
 * and multi-byte opcodes, go into 32-byte slots padded with INT3 (0xcc,
 * a one-byte instruction) so objdump resynchronises at every slot; the
 * length of the first instruction of each slot is compared.
 *
 * Not compared: objdump's "(bad)", WAIT (9B) which objdump merges into
 * the following x87 instruction, and its habit of printing prefixes it
 * could not attach (a REX that is not right before the opcode, which the
 * architecture ignores but counts in the instruction) as an instruction
 * of their own.  Skipped entirely when objdump is not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include <trapvm/decode.h>

#define SLOT	32
#define NSAMP	4000

static u64 s = 0x1234567887654321ULL;

static u64 rnd(void)
{
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

/*
 * Is this objdump text only prefix names ("gs rex.WB")?  That is how it
 * shows prefixes it did not attach to an instruction: not comparable.
 */
static bool only_prefixes(const char *text)
{
	static const char * const pfx[] = {
		"es", "cs", "ss", "ds", "fs", "gs", "data16", "addr32",
		"lock", "rep", "repz", "repnz", "repe", "repne", "bnd",
		"notrack", "xacquire", "xrelease",
	};
	char buf[64], *tok, *save = NULL;
	unsigned int i;

	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, " \t\n", &save); tok;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		bool is_pfx = !strncmp(tok, "rex", 3);

		for (i = 0; i < ARRAY_SIZE(pfx) && !is_pfx; i++)
			is_pfx = !strcmp(tok, pfx[i]);
		if (!is_pfx)
			return false;
	}
	return true;
}

static u8 samples[NSAMP][SLOT];
static int objlen[NSAMP];	/* -1: not compared */

static void run_mode(enum trapvm_cpu_mode mode, const char *arch)
{
	static const u8 pick[] = {
		0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x65, 0x48, 0x41, 0x0f,
		0x0f, 0x0f, 0x38, 0x3a, 0xc4, 0xc5, 0x62, 0xf6, 0xf7, 0xc7,
		0x81, 0x69, 0xa1, 0xb8, 0xc8, 0x01, 0x04, 0x05, 0x44, 0x84,
		0x24, 0x25, 0xff, 0x00, 0x8b, 0x89, 0xe8, 0xd8, 0xdd, 0x80,
	};
	char path[] = "/tmp/trapvm-decode-XXXXXX", cmd[256], line[512];
	unsigned int i, j, compared = 0, bad = 0;
	FILE *f, *p;
	int fd;

	for (i = 0; i < NSAMP; i++) {
		memset(samples[i], 0xcc, SLOT);
		for (j = 0; j < TRAPVM_INSN_MAX; j++)
			samples[i][j] = (rnd() & 1) ? pick[rnd() % sizeof(pick)] :
						      (u8)rnd();
		objlen[i] = -1;
	}
	fd = mkstemp(path);
	if (fd < 0) {
		EXPECT(0, "mkstemp");
		return;
	}
	f = fdopen(fd, "w");
	fwrite(samples, SLOT, NSAMP, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "objdump -D -b binary -m%s -M intel64 --insn-width=16 %s",
		 arch, path);
	p = popen(cmd, "r");
	if (!p) {
		unlink(path);
		EXPECT(0, "popen objdump");
		return;
	}
	/* lines "   addr:\tbytes\tmnemonic"; the next address ends it */
	{
		long prev = -1;
		char prevtext[64] = "";

		while (fgets(line, sizeof(line), p)) {
			char *colon = strchr(line, ':'), *tab, *text;
			long addr;

			if (!colon || colon[1] != '\t')
				continue;
			addr = strtol(line, NULL, 16);
			tab = strchr(colon + 2, '\t');
			text = tab ? tab + 1 : "";
			if (prev >= 0 && prev % SLOT == 0 && prev / SLOT < NSAMP &&
			    !strstr(prevtext, "(bad)") &&
			    !only_prefixes(prevtext))
				objlen[prev / SLOT] = addr - prev;
			prev = addr;
			snprintf(prevtext, sizeof(prevtext), "%s", text);
		}
	}
	pclose(p);
	unlink(path);

	for (i = 0; i < NSAMP; i++) {
		struct trapvm_insn insn;
		int r;

		if (objlen[i] < 0)
			continue;
		/* objdump folds WAIT (9B) into a following x87 insn */
		for (j = 0; j < TRAPVM_INSN_MAX - 1 &&
		     strchr("\x26\x2e\x36\x3e\x64\x65\x66\x67\xf0\xf2\xf3",
			    samples[i][j]) && samples[i][j]; j++)
			;
		if (samples[i][j] == 0x9b ||
		    ((samples[i][j] & 0xf0) == 0x40 && samples[i][j + 1] == 0x9b &&
		     mode == TRAPVM_MODE_64))
			continue;
		r = trapvm_decode(samples[i], TRAPVM_INSN_MAX, mode, &insn,
				  NULL);
		compared++;
		if ((r != TRAPVM_DECODE_OK && r != TRAPVM_DECODE_INVALID) ||
		    insn.len != objlen[i]) {
			if (bad++ < 10) {
				printf("# %s: ", arch);
				for (j = 0; j < TRAPVM_INSN_MAX; j++)
					printf("%02x", samples[i][j]);
				printf(" trapvm %d/%d objdump %d\n", r,
				       r ? 0 : insn.len, objlen[i]);
			}
		}
	}
	printf("# %s: %u compared with objdump, %u differ\n", arch, compared,
	       bad);
	EXPECT_EQ(bad, 0);
	EXPECT(compared > NSAMP / 2, "too few comparable samples");
}

static void test_objdump_64(void)
{
	run_mode(TRAPVM_MODE_64, "i386:x86-64");
}

static void test_objdump_32(void)
{
	run_mode(TRAPVM_MODE_32, "i386");
}

int main(void)
{
	if (system("objdump --version >/dev/null 2>&1")) {
		printf("ok 1 - objdump cross-check # SKIP objdump not installed\n1..1\n");
		return 0;
	}
	RUN(test_objdump_64);
	RUN(test_objdump_32);
	return tap_done();
}
