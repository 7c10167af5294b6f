/*
 * monitor.c - "monitor ..." commands (qRcmd, GDB manual "General Query
 * Packets") and the osdata tables behind "info os". The answer is the
 * command's output, hex encoded, in one reply.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"

#define OUT_MAX 8192

void
stub_text_add(struct stub_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->cap == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len = t->len + (size_t)n < t->cap ? t->len + (size_t)n :
		    t->cap - 1;
}

static int
mon_help(struct stub *s, const char *arg, struct stub_text *o);

static int
mon_info(struct stub *s, const char *arg, struct stub_text *o)
{
	struct vmi_info info;
	const char *why;
	enum vmi_step_mech m;
	struct vmi_stats vs;
	int r;

	if (s->v == NULL) {
		stub_text_add(o, "no domain attached\n");
		return 0;
	}
	r = vmi_info(s->v, &info);
	if (r < 0)
		return r;
	m = vmi_step_mechanism(s->v, &why);
	stub_text_add(o, "domain %u, %u vCPUs, driver %s, platform %s\n", s->domid,
	    s->nvcpus, info.driver, info.platform);
	stub_text_add(o, "capabilities:");
	for (int c = 0; c < VMI_CAP_COUNT; c++)
		if (vmi_has(s->v, (enum vmi_cap)c))
			stub_text_add(o, " %s", vmi_cap_name((enum vmi_cap)c));
	stub_text_add(o, "\nsingle-step: %s (%s)\n", vmi_step_mech_name(m), why);
	stub_text_add(o, "software breakpoints: int3 with the guest's own int3 %s\n",
	    vmi_has(s->v, VMI_CAP_REINJECT) ? "re-injected" : "NOT re-injected");
	stub_text_add(o, "hardware breakpoints/watchpoints: %s, %d of %d debug "
	    "registers free (DR%d holds stopped vCPUs)\n",
	    vmi_has(s->v, VMI_CAP_HWBREAK) ? "debug registers" : "none",
	    stub_hw_slots_free(s), STUB_GDB_SLOTS, STUB_PARK_SLOT);
	if (vmi_has(s->v, VMI_CAP_MEMACCESS)) {
		unsigned nw, nf;

		stub_watch_count(s, &nw, &nf);
		stub_text_add(o, "memory-access watchpoints: p2m access "
		    "restrictions for what the debug registers cannot take "
		    "(none free, or not 1/2/4/8 aligned bytes); %u in use on "
		    "%u frames\n", nw, nf);
	} else {
		stub_text_add(o, "memory-access watchpoints: not on this "
		    "platform (a watchpoint needs a free debug register)\n");
	}
	stub_text_add(o, "addresses: %s\n", s->phys ? "guest physical" :
	    "guest virtual (the selected vCPU's page tables)");
	stub_text_add(o, "events %" PRIu64 " (%" PRIu64 " found late, by the "
	    "timer), stops %" PRIu64 ", re-injected %" PRIu64 ", range steps %"
	    PRIu64 ", parks %" PRIu64 ", steps stopped by the watchdog %"
	    PRIu64 "\n", s->stats.events, s->stats.late_events,
	    s->stats.stops, s->stats.reinjected, s->stats.steps,
	    s->stats.parks, s->stats.step_timeouts);
	/* What the stub itself cost, without timing its hot paths: every
	 * hit's share is this over the hits (tests/stub/test_stub_figures.py). */
	stub_text_add(o, "CPU time since attach: %.1f ms\n",
	    (double)(stub_cpu_us() - s->cpu_us_at_attach) / 1e3);
	vmi_stats(s->v, &vs);
	stub_text_add(o, "hypervisor: register reads %" PRIu64 " (+%" PRIu64
	    " from cache), writes %" PRIu64 " full + %" PRIu64 " light (+%"
	    PRIu64 " folded into those, %" PRIu64 " failed), responses %"
	    PRIu64 ", notifications %" PRIu64 ", pauses %" PRIu64
	    ", unpauses %" PRIu64 "\n", vs.regs_reads, vs.regs_cached,
	    vs.regs_writes, vs.regs_light_writes, vs.regs_coalesced,
	    vs.regs_write_errors, vs.responses, vs.notifies, vs.pauses,
	    vs.unpauses);
	if (info.why[0] != '\0')
		stub_text_add(o, "probe: %s\n", info.why);
	return 0;
}

static int
mon_phys(struct stub *s, const char *arg, struct stub_text *o)
{
	if (strcmp(arg, "on") == 0)
		s->phys = true;
	else if (strcmp(arg, "off") == 0)
		s->phys = false;
	else if (*arg != '\0')
		return -EINVAL;
	stub_text_add(o, "physical addressing %s\n", s->phys ? "on" : "off");
	return 0;
}

static int
mon_translate(struct stub *s, const char *arg, struct stub_text *o)
{
	unsigned long long a, b = 0;
	unsigned vcpu = s->gvcpu;
	struct vmi_as as;
	struct vmi_xlate x;
	struct vmi_regs *regs;
	char *end;
	int r;

	/* Addresses are unsigned 64-bit: strtoull, not a signed %lli. */
	a = strtoull(arg, &end, 0);
	if (end == arg)
		return -EINVAL;
	if (*end == ' ') {
		const char *p = end + strspn(end, " ");

		b = strtoull(p, &end, 0);
		if (end == p || *end != '\0')
			return -EINVAL;
		vcpu = (unsigned)a;
		a = b;
	} else if (*end != '\0') {
		return -EINVAL;
	}
	r = stub_regs(s, vcpu, &regs);
	if (r == 0)
		r = vmi_as_from_regs(regs, &as);
	if (r < 0)
		return r;
	r = vmi_translate(s->v, &as, a, &x);
	stub_text_add(o, "vCPU %u cr3 %#" PRIx64 ": %#llx -> ", vcpu, as.cr3, a);
	if (r == 0)
		stub_text_add(o, "%#" PRIx64 " (%s page, %s%s)\n", x.gpa,
		    x.page_size == (1ULL << 30) ? "1G" : x.page_size ==
		    (1ULL << 21) ? "2M" : "4K", x.writable ? "rw" : "ro",
		    x.user ? " user" : "");
	else
		stub_text_add(o, "fails: %s at %s\n", vmi_xlate_errstr(x.err),
		    vmi_xlate_levelstr(x.level));
	return 0;
}

static int
mon_cache(struct stub *s, const char *arg, struct stub_text *o)
{
	struct vmi_cache_stats st;

	if (strcmp(arg, "flush") == 0) {
		vmi_cache_flush(s->v);
		stub_text_add(o, "mapping cache flushed\n");
	} else if (*arg != '\0' && strcmp(arg, "show") != 0) {
		return -EINVAL;
	}
	vmi_cache_stats(s->v, &st);
	stub_text_add(o, "mapping cache: %u of %u chunks of %u frames; hits %" PRIu64
	    ", misses %" PRIu64 ", map calls %" PRIu64 ", evictions %" PRIu64
	    "\n", st.chunks, st.max_chunks, st.chunk_frames, st.hits, st.misses,
	    st.map_calls, st.evictions);
	return 0;
}

static const char *
access_name(unsigned a)
{
	static const char *const names[8] = { "---", "r--", "-w-", "rw-",
	    "--x", "r-x", "-wx", "rwx" };

	return names[a & VMI_ACCESS_RWX];
}

/* A watchpoint by memory access: its frames and what they allow now. */
static void
mem_watch_line(struct stub *s, const struct stub_bp *b, struct stub_text *o)
{
	enum { SHOWN = 4 };

	stub_text_add(o, " len %u (memory access on %u frame%s:", b->len,
	    b->nframes, b->nframes == 1 ? "" : "s");
	for (unsigned k = 0; k < b->nframes && k < SHOWN; k++)
		stub_text_add(o, " %#" PRIx64 " %s", b->gfns[k],
		    access_name(stub_watch_frame_access(s->bps, STUB_MAX_BPS,
		    b->gfns[k])));
	stub_text_add(o, "%s)\n", b->nframes > SHOWN ? " ..." : "");
}

static int
mon_breakpoints(struct stub *s, const char *arg, struct stub_text *o)
{
	static const char *const kinds[] = { "sw", "hw", "watch", "rwatch",
	    "awatch" };
	unsigned n = 0;

	for (unsigned i = 0; i < STUB_MAX_BPS; i++) {
		const struct stub_bp *b = &s->bps[i];

		if (!b->used)
			continue;
		n++;
		stub_text_add(o, "%-6s %#" PRIx64, kinds[b->type], b->addr);
		if (b->type == RSP_BP_SOFTWARE)
			stub_text_add(o, " (int3 at gpa %#" PRIx64 ")\n", b->gpa);
		else if (stub_watch_by_mem(b))
			mem_watch_line(s, b, o);
		else
			stub_text_add(o, " len %u (DR%d on every vCPU)\n", b->len, b->slot);
	}
	for (unsigned i = 0; i < s->nvcpus; i++)
		if (s->vcpus[i].parked)
			stub_text_add(o, "park   vCPU %u held by DR%d\n", i, STUB_PARK_SLOT);
	if (n == 0)
		stub_text_add(o, "no breakpoints\n");
	return 0;
}

static const struct {
	const char *name;
	bool needs_target;
	int (*fn)(struct stub *s, const char *arg, struct stub_text *o);
	const char *help;
} commands[] = {
	{ "help", false, mon_help, "this list" },
	{ "info", false, mon_info,
	    "platform, capabilities and the mechanisms in use" },
	{ "phys", true, mon_phys,
	    "[on|off]: memory addresses are guest physical / virtual" },
	{ "translate", true, mon_translate,
	    "[VCPU] ADDR: walk the vCPU's page tables for ADDR" },
	{ "cache", true, mon_cache, "[show|flush]: the guest mapping cache" },
	{ "breakpoints", true, mon_breakpoints,
	    "breakpoints and parked vCPUs the stub holds" },
};

static int
mon_help(struct stub *s, const char *arg, struct stub_text *o)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		stub_text_add(o, "monitor %-12s %s\n", commands[i].name, commands[i].help);
	return 0;
}

int
stub_monitor(struct stub *s, const char *cmd, struct rsp_reply *r)
{
	struct stub_text o = { .buf = malloc(OUT_MAX), .cap = OUT_MAX };
	size_t n = strcspn(cmd, " ");
	const char *arg = cmd + n + strspn(cmd + n, " ");
	int ret = -ENOENT;

	if (o.buf == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].name) != n ||
		    strncmp(commands[i].name, cmd, n) != 0)
			continue;
		if (commands[i].needs_target && s->v == NULL)
			ret = -ESRCH;
		else if (commands[i].needs_target && s->running)
			ret = -EBUSY;
		else
			ret = commands[i].fn(s, arg, &o);
		break;
	}
	if (ret == -ENOENT)
		stub_text_add(&o, "unknown monitor command '%s'; try 'monitor help'\n", cmd);
	if (ret == -ENOENT || ret == 0)
		rsp_reply_hex(r, o.buf, o.len);
	free(o.buf);
	return ret == -ENOENT ? 0 : ret;
}

/* ---- info os (qXfer:osdata, GDB manual "Operating System Information") ---- */

int
stub_osdata(struct stub *s, const char *annex, size_t annex_len, char *buf,
    size_t cap)
{
	struct stub_domain doms[128];
	struct stub_text d = { .buf = buf, .cap = cap };
	int n;

	stub_text_add(&d, "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE target SYSTEM \"osdata.dtd\">\n");
	if (annex_len == 0) {
		stub_text_add(&d, "<osdata type=\"types\">\n<item>"
		    "<column name=\"Type\">processes</column>"
		    "<column name=\"Description\">Listing of Xen domains "
		    "vmistub can attach to</column>"
		    "<column name=\"Title\">Domains</column></item>\n"
		    "</osdata>\n");
		return (int)d.len;
	}
	if (annex_len != 9 || memcmp(annex, "processes", 9) != 0)
		return -ENOENT;
	n = stub_driver_list_domains(doms, 128);
	if (n < 0)
		return n;
	stub_text_add(&d, "<osdata type=\"processes\">\n");
	for (int i = 0; i < n; i++) {
		if (doms[i].domid == 0)
			continue;   /* dom0 runs vmistub itself */
		stub_text_add(&d, "<item><column name=\"pid\">%u</column>"
		    "<column name=\"user\">xen</column>"
		    "<column name=\"command\">%s</column>"
		    "<column name=\"cores\">%s</column></item>\n",
		    doms[i].domid, doms[i].name,
		    s->v != NULL && s->domid == doms[i].domid ? "attached" : "");
	}
	stub_text_add(&d, "</osdata>\n");
	return (int)d.len;
}
