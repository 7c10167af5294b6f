/*
 * rsp_tdesc_dump - test helper: "xml" prints the generated target.xml,
 * "table" prints one line per register row (name regno g_offset bytes) so
 * the pytest suite can compare the table with what the real gdb reports.
 */
#include <stdio.h>
#include <string.h>

#include "rsp.h"

int main(int argc, char **argv)
{
	static char xml[65536];

	if (argc == 2 && strcmp(argv[1], "xml") == 0) {
		size_t n = rsp_tdesc_write(xml, sizeof(xml));

		if (n >= sizeof(xml))
			return 1;
		fwrite(xml, 1, n, stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "table") == 0) {
		for (unsigned i = 0; i < RSP_AMD64_NREGS; i++) {
			const struct rsp_reg *r = &rsp_amd64_regs[i];

			printf("%s %u %u %u\n", r->name, r->regno, r->g_offset,
			       r->bitsize / 8);
		}
		printf("g_size %zu\n", rsp_amd64_g_size());
		return 0;
	}
	fprintf(stderr, "usage: %s xml|table\n", argv[0]);
	return 2;
}
