/*
 * probe.h - what vmi-probe's files share: a one-line JSON writer and the
 * direct libxenctrl loops (probe_direct.c) the benchmark compares the
 * vmi layer against.
 */
#ifndef VMI_PROBE_H
#define VMI_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One JSON object on one stdout line, built field by field. */
struct jline {
	char *buf;
	size_t len;
	void *f;        /* FILE * from open_memstream */
	bool first;     /* next field needs no comma */
};

void j_begin(struct jline *j);
void j_str(struct jline *j, const char *k, const char *v);
void j_int(struct jline *j, const char *k, long long v);
void j_hex(struct jline *j, const char *k, uint64_t v);
void j_bool(struct jline *j, const char *k, bool v);
void j_num(struct jline *j, const char *k, double v);
void j_bytes(struct jline *j, const char *k, const void *p, size_t n);
/* "k": [ ... ] of hex strings */
void j_hex_array(struct jline *j, const char *k, const uint64_t *v, size_t n);
/* Raw, already-JSON value. */
void j_raw(struct jline *j, const char *k, const char *json);
void j_end(struct jline *j);

double probe_now(void);

/* A benchmark's timed part: wall seconds, and the CPU seconds this process
 * used meanwhile (user and system, hypercalls included). The CPU figure is
 * what the layer itself costs per event, whatever pace the guest and the
 * shared machine set for the wall clock. */
struct probe_clock {
	double wall, cpu, sys;          /* sys: the system-call part of cpu */
};
void probe_clock_start(struct probe_clock *c);
void probe_clock_stop(struct probe_clock *c);   /* start values -> elapsed */

/*
 * The hypervisor's own limit: the same measurements as the vmi layer's,
 * written straight against libxenctrl/libxenevtchn/libxenforeignmemory
 * with nothing in between. 0 or -errno; *t is the timed part.
 */
int direct_swbreak(uint32_t domid, uint64_t va, uint64_t gpa, unsigned n,
    struct probe_clock *t);
/* va != 0: the steps start where the first vCPU to reach va (gpa) is;
 * else on vcpu wherever it is. */
int direct_step(uint32_t domid, unsigned vcpu, unsigned n, uint64_t va,
    uint64_t gpa, struct probe_clock *t);
int direct_mem(uint32_t domid, uint64_t gpa, size_t len, double *secs);

#endif
