/*
 * vmi-probe - drive the vmi layer against a real Xen domain from dom0 and
 * print what happened, one JSON object per line, for the lab tests.
 *
 *   vmi-probe DOM info
 *   vmi-probe DOM state
 *   vmi-probe DOM regs VCPU
 *   vmi-probe DOM regs-roundtrip VCPU
 *   vmi-probe DOM set-reg VCPU NAME VALUE [SECONDS VALUE2]
 *   vmi-probe DOM set-reg-paused VCPU NAME VALUE SECONDS
 *   vmi-probe DOM read-phys ADDR LEN | write-phys ADDR HEX
 *   vmi-probe DOM read-virt VCPU ADDR LEN | write-virt VCPU ADDR HEX
 *   vmi-probe DOM translate VCPU ADDR
 *   vmi-probe DOM break ADDR COUNT [TIMEOUT]
 *   vmi-probe DOM step VCPU N [ADDR]
 *   vmi-probe DOM hwbreak ADDR COUNT [TIMEOUT]
 *   vmi-probe DOM watch ADDR LEN w|rw COUNT [TIMEOUT]
 *   vmi-probe DOM reinject-check SECONDS [ADDR...]
 *   vmi-probe DOM snapshot VCPU ADDR LEN FILE | compare VCPU ADDR LEN FILE
 *   vmi-probe DOM hold ADDR [HWADDR]      (for the SIGKILL test)
 *   vmi-probe DOM hold-all RELEASE_VCPU SECONDS [ADDR...]
 *   vmi-probe DOM monitor-check
 *   vmi-probe DOM bench swbreak ADDR N [direct-first] |
 *                     bench step VCPU N [ADDR [direct-first]] |
 *                     bench cycle ADDR N | bench mem GPA MIB
 *     (bench step ADDR: the steps start where the first vCPU to reach
 *     ADDR is, the same place for the layer and for the direct loop)
 *
 * DOM is a domain id or a name. ADDR are guest virtual addresses,
 * translated with vCPU 0's CR3 unless a VCPU is given. SIGINT/SIGTERM end
 * a command early through the session's own teardown.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"
#include "vmi.h"
#include "vmi_xen.h"

#define MAX_VCPUS 64
#define MAX_RECORD 4096

enum mode {
	M_NONE, M_BREAK, M_STEP, M_HW, M_WATCH, M_REINJECT, M_HOLD,
	M_HOLD_ALL, M_BENCH_BP, M_BENCH_STEP,
};

struct probe {
	struct vmi *v;
	uint32_t domid;
	const char *cmd;
	enum mode mode;
	uint64_t addr, gpa;
	unsigned len, want, count;
	int target;             /* vCPU being stepped, -1 until chosen */
	enum vmi_hw_kind kind;
	bool stepping_over[MAX_VCPUS];
	bool done, timed_out, gone;
	bool quiet;             /* benchmarks: no line per hit */
	struct probe_clock clock;       /* bench step: from the first step */
	uint64_t rips[MAX_RECORD];
	unsigned nrips;
	unsigned events, foreign, reinjected;
	unsigned late;          /* events found at a poll timeout, not by the fd */
	int err;
};

#define HW_SLOT 3       /* the tiny guest uses DR0 itself */
#define WATCH_SLOT 2

static struct vmi *signal_session;

static void
on_signal(int signo)
{
	if (signal_session != NULL)
		vmi_interrupt(signal_session, signo);
}

static int
fail(struct probe *p, int err, const char *what)
{
	struct jline j;

	j_begin(&j);
	j_str(&j, "cmd", p->cmd);
	j_str(&j, "error", strerror(-err));
	j_int(&j, "errno", -err);
	j_str(&j, "what", what);
	j_end(&j);
	return 1;
}

static uint64_t
num(const char *s)
{
	return strtoull(s, NULL, 0);
}

/* ---- events ---------------------------------------------------------------- */

static void
hit_line(struct probe *p, const char *what, const struct vmi_event *ev)
{
	struct jline j;

	if (p->quiet)
		return;
	j_begin(&j);
	j_str(&j, "event", what);
	j_int(&j, "n", p->count);
	j_int(&j, "vcpu", ev->vcpu);
	j_hex(&j, "rip", ev->regs.rip);
	if (ev->kind == VMI_EVENT_DEBUG) {
		j_str(&j, "cause", vmi_debug_cause_name(ev->u.debug.cause));
		j_int(&j, "slot", ev->u.debug.slot);
		j_hex(&j, "dr6", ev->u.debug.dr6);
	}
	if (p->mode == M_WATCH) {
		struct vmi_as as;
		uint8_t val[8] = { 0 };

		if (vmi_event_as(ev, &as) == 0 && vmi_read_virt(p->v, &as,
		    p->addr, val, p->len, 0, NULL, NULL) == 0)
			j_bytes(&j, "value", val, p->len);
	}
	j_end(&j);
}

static void
all_hw(struct probe *p, bool on)
{
	for (unsigned i = 0; i < vmi_nr_vcpus(p->v); i++) {
		unsigned slot = p->mode == M_WATCH ? WATCH_SLOT : HW_SLOT;
		int r = on ? vmi_hwbreak_set(p->v, i, slot, p->addr, p->kind,
		    p->len) : vmi_hwbreak_clear(p->v, i, slot);

		if (r != 0 && r != -ENOENT && p->err == 0)
			p->err = r;
	}
}

static void
step(struct probe *p, const struct vmi_event *ev, struct vmi_response *rsp,
    bool on)
{
	int r = vmi_response_step(p->v, ev, rsp, on);

	if (r != 0 && p->err == 0)
		p->err = r;
}

static int
on_break(struct probe *p, const struct vmi_event *ev, struct vmi_response *rsp)
{
	uint8_t b;

	if (ev->kind == VMI_EVENT_SWBREAK) {
		hit_line(p, "break", ev);
		p->count++;
		if (vmi_patched_original(p->v, p->gpa, &b) != 0)
			return VMI_RESUME;   /* removed meanwhile: re-execute */
		vmi_unpatch(p->v, p->gpa);
		if (p->count >= p->want) {
			p->done = true;
			return VMI_RESUME;
		}
		/* Step over the original instruction, then put the int3 back. */
		p->stepping_over[ev->vcpu] = true;
		step(p, ev, rsp, true);
		return VMI_RESUME;
	}
	if (ev->kind == VMI_EVENT_DEBUG && p->stepping_over[ev->vcpu]) {
		p->stepping_over[ev->vcpu] = false;
		step(p, ev, rsp, false);
		if (!p->done)
			vmi_patch(p->v, p->gpa, "\xcc", 1);
	}
	return VMI_RESUME;
}

static int
on_step(struct probe *p, const struct vmi_event *ev, struct vmi_response *rsp)
{
	if (ev->kind == VMI_EVENT_SWBREAK) {
		/* The start: the first vCPU to reach ADDR is the one stepped. */
		uint8_t b;

		if (p->target < 0 &&
		    vmi_patched_original(p->v, p->gpa, &b) == 0) {
			vmi_unpatch(p->v, p->gpa);
			p->target = (int)ev->vcpu;
			p->rips[p->nrips++] = ev->regs.rip;
			step(p, ev, rsp, true);
			probe_clock_start(&p->clock);
		}
		return VMI_RESUME;
	}
	if ((ev->kind == VMI_EVENT_DEBUG || ev->kind == VMI_EVENT_SINGLESTEP) &&
	    (int)ev->vcpu == p->target) {
		if (p->mode == M_STEP && p->nrips < MAX_RECORD)
			p->rips[p->nrips++] = ev->regs.rip;
		p->count++;
		if (p->count >= p->want) {
			step(p, ev, rsp, false);
			p->done = true;
		} else {
			step(p, ev, rsp, true);
		}
	}
	return VMI_RESUME;
}

static int
on_hw(struct probe *p, const struct vmi_event *ev, struct vmi_response *rsp)
{
	if (ev->kind != VMI_EVENT_DEBUG)
		return VMI_RESUME;
	if (ev->u.debug.cause == VMI_DEBUG_STEP && p->stepping_over[ev->vcpu]) {
		p->stepping_over[ev->vcpu] = false;
		step(p, ev, rsp, false);
		if (!p->done)
			vmi_hwbreak_set(p->v, ev->vcpu, HW_SLOT, p->addr,
			    VMI_HW_EXEC, 1);
		return VMI_RESUME;
	}
	if (ev->u.debug.cause != VMI_DEBUG_HWBREAK)
		return VMI_RESUME;
	hit_line(p, "hwbreak", ev);
	p->count++;
	if (p->count >= p->want) {
		p->done = true;
		all_hw(p, false);
		return VMI_RESUME;
	}
	/* An execution breakpoint is a fault: disarm it on this vCPU, step
	 * one instruction, re-arm (RF in the response does not suppress the
	 * re-trigger under Xen, XEN-LAB.md). */
	vmi_hwbreak_clear(p->v, ev->vcpu, HW_SLOT);
	p->stepping_over[ev->vcpu] = true;
	step(p, ev, rsp, true);
	return VMI_RESUME;
}

static int
on_watch(struct probe *p, const struct vmi_event *ev)
{
	if (ev->kind != VMI_EVENT_DEBUG || ev->u.debug.cause != VMI_DEBUG_WATCH)
		return VMI_RESUME;
	/* A data breakpoint is a trap: the write is done, RIP is past it. */
	hit_line(p, "watch", ev);
	p->count++;
	if (p->count >= p->want) {
		p->done = true;
		all_hw(p, false);
	}
	return VMI_RESUME;
}

static int
on_event(void *ctx, struct vmi *v, const struct vmi_event *ev,
    struct vmi_response *rsp)
{
	struct probe *p = ctx;
	int ours;

	if (rsp == NULL) {
		struct jline j;

		j_begin(&j);
		j_str(&j, "event", vmi_event_kind_name(ev->kind));
		if (ev->kind == VMI_EVENT_DOMAIN_SHUTDOWN)
			j_int(&j, "reason", ev->u.shutdown.reason);
		j_end(&j);
		p->gone = ev->kind == VMI_EVENT_DOMAIN_GONE;
		p->done = true;
		return 0;
	}
	p->events++;
	if (ev->kind == VMI_EVENT_DEBUG &&
	    ev->u.debug.cause == VMI_DEBUG_STALE_STEP) {
		step(p, ev, rsp, false);    /* a leftover TF of ours: off */
		return VMI_RESUME;
	}
	ours = vmi_event_ours(v, ev);
	if (ours <= 0 && p->mode != M_HOLD) {
		p->foreign++;
		if ((ev->kind == VMI_EVENT_SWBREAK || ev->kind == VMI_EVENT_DEBUG) &&
		    vmi_has(v, VMI_CAP_REINJECT)) {
			rsp->flags |= VMI_RSP_REINJECT;
			p->reinjected++;
		}
		/* Holding everything: the guest's own trap goes to the guest,
		 * and the step after its handler returns holds the vCPU. */
		if (p->mode == M_HOLD_ALL && !p->stepping_over[ev->vcpu])
			step(p, ev, rsp, true);
		return VMI_RESUME;
	}
	switch (p->mode) {
	case M_BREAK:
		return on_break(p, ev, rsp);
	case M_STEP:
	case M_BENCH_STEP:
		return on_step(p, ev, rsp);
	case M_HW:
		return on_hw(p, ev, rsp);
	case M_WATCH:
		return on_watch(p, ev);
	case M_BENCH_BP:
		if (ev->kind == VMI_EVENT_SWBREAK && ++p->count >= p->want) {
			vmi_unpatch(v, p->gpa);
			p->done = true;
		}
		return VMI_RESUME;
	case M_HOLD:
		if (ours <= 0) {
			rsp->flags |= VMI_RSP_REINJECT;
			return VMI_RESUME;
		}
		hit_line(p, "held", ev);
		return VMI_HOLD;
	case M_HOLD_ALL:
		return p->stepping_over[ev->vcpu] ? VMI_RESUME : VMI_HOLD;
	case M_REINJECT:
	case M_NONE:
		break;
	}
	return VMI_RESUME;
}

static bool
on_poll(void *ctx, struct vmi *v, int *result)
{
	struct probe *p = ctx;

	*result = p->err;
	/* Everything held ends run(), not the session: hold-all releases
	 * one vCPU next and runs on (a true here would finish the session,
	 * and the release would run for no time at all). */
	if (p->mode == M_HOLD_ALL && p->want == 0 &&
	    vmi_held_count(v) == vmi_nr_vcpus(v)) {
		p->done = true;
		return false;
	}
	return p->done;
}

static void
on_interrupted(void *ctx, struct vmi *v, int signo)
{
	((struct probe *)ctx)->done = true;
}

/* Wait for events until the handler is done, the time is up, a signal
 * came or the domain went away. */
static int
run(struct probe *p, double timeout)
{
	double end = probe_now() + timeout;
	struct pollfd pfd = { .events = POLLIN };
	unsigned rounds = 0;
	int r = 0;

	pfd.fd = vmi_event_fd(p->v);
	if (pfd.fd < 0)
		return pfd.fd;
	while (!p->done) {
		/* The clock is read now and then, not per event: in a PV dom0
		 * clock_gettime may be a system call through Xen, which the
		 * benchmarks would count as the layer's. */
		if ((r == 0 || ++rounds % 64 == 0) && probe_now() >= end) {
			p->timed_out = true;
			break;
		}
		r = poll(&pfd, 1, 100);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0) {
			/* As xen-access does: the ring is looked at after every
			 * timeout too, and what is found here counted (vmistub's
			 * timer does the same: "found late"). Once, in a full
			 * run, a benchmark loop waited its whole 600 s with no
			 * event it saw; the cause is not known. */
			r = vmi_timeout(p->v);
			if (r == 0 && (r = vmi_dispatch(p->v)) > 0)
				p->late += (unsigned)r;
		} else {
			r = vmi_dispatch(p->v);
		}
		if (r < 0 && r != -EPROTO && p->err == 0)
			p->err = r;
		if (vmi_finished(p->v, NULL) || p->gone)
			break;
	}
	return p->err;
}

/* ---- commands --------------------------------------------------------------- */

static int
virt_to_phys(struct probe *p, unsigned vcpu, uint64_t va, uint64_t *gpa)
{
	struct vmi_as as;
	struct vmi_xlate x;
	int r = vmi_as_of_vcpu(p->v, vcpu, &as);

	if (r == 0)
		r = vmi_translate(p->v, &as, va, &x);
	if (r == 0)
		*gpa = x.gpa;
	return r;
}

static int
cmd_info(struct probe *p)
{
	struct vmi_info info;
	struct jline j;
	const char *why;
	char caps[512];
	size_t n = 0;
	enum vmi_step_mech m = vmi_step_mechanism(p->v, &why);
	int r = vmi_info(p->v, &info);

	if (r != 0)
		return fail(p, r, "vmi_info");
	n += (size_t)snprintf(caps + n, sizeof(caps) - n, "{");
	for (int c = 0; c < VMI_CAP_COUNT; c++)
		n += (size_t)snprintf(caps + n, sizeof(caps) - n, "%s\"%s\": %s",
		    c ? ", " : "", vmi_cap_name((enum vmi_cap)c),
		    vmi_has(p->v, (enum vmi_cap)c) ? "true" : "false");
	snprintf(caps + n, sizeof(caps) - n, "}");
	j_begin(&j);
	j_str(&j, "cmd", "info");
	j_int(&j, "domid", info.domid);
	j_str(&j, "driver", info.driver);
	j_str(&j, "platform", info.platform);
	j_int(&j, "nr_vcpus", info.nr_vcpus);
	j_hex(&j, "max_gfn", info.max_gfn);
	j_raw(&j, "caps", caps);
	j_str(&j, "step", vmi_step_mech_name(m));
	j_str(&j, "step_why", why);
	j_str(&j, "why", info.why);
	j_end(&j);
	return 0;
}

static int
cmd_state(struct probe *p)
{
	static const char *const names[] = {
		"running", "paused", "shutdown", "gone"
	};
	struct jline j;
	int r = vmi_timeout(p->v);

	if (r != 0)
		return fail(p, r, "state");
	j_begin(&j);
	j_str(&j, "cmd", "state");
	j_str(&j, "state", names[vmi_domain_state(p->v)]);
	j_end(&j);
	return 0;
}

#define GREGS(X) X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rbp) X(rsp) \
	X(r8) X(r9) X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(rip) X(rflags)

static void
regs_json(struct jline *j, const struct vmi_regs *r)
{
	static const char *const segs[VMI_SEG_COUNT] = {
		"cs", "ss", "ds", "es", "fs", "gs", "tr", "ldtr"
	};
	char buf[160];

#define OUT(n) j_hex(j, #n, r->g.n);
	GREGS(OUT)
#undef OUT
	for (int i = 0; i < VMI_SEG_COUNT; i++) {
		snprintf(buf, sizeof(buf), "{\"sel\": \"0x%x\", \"base\": \"0x%"
		    PRIx64 "\", \"limit\": \"0x%x\", \"ar\": \"0x%x\"}",
		    r->seg[i].sel, r->seg[i].base, r->seg[i].limit, r->seg[i].ar);
		j_raw(j, segs[i], buf);
	}
	j_hex(j, "gdtr_base", r->gdtr_base);
	j_hex(j, "gdtr_limit", r->gdtr_limit);
	j_hex(j, "idtr_base", r->idtr_base);
	j_hex(j, "idtr_limit", r->idtr_limit);
	j_hex(j, "cr0", r->cr0);
	j_hex(j, "cr2", r->cr2);
	j_hex(j, "cr3", r->cr3);
	j_hex(j, "cr4", r->cr4);
	j_hex(j, "efer", r->efer);
	j_hex(j, "kernel_gs_base", r->kernel_gs_base);
	j_hex(j, "lstar", r->lstar);
	j_hex(j, "dr0", r->dr[0]);
	j_hex(j, "dr1", r->dr[1]);
	j_hex(j, "dr2", r->dr[2]);
	j_hex(j, "dr3", r->dr[3]);
	j_hex(j, "dr6", r->dr6);
	j_hex(j, "dr7", r->dr7);
	uint16_t fcw, fsw;
	uint32_t mxcsr;
	memcpy(&fcw, r->fxsave + VMI_FX_FCW, 2);
	memcpy(&fsw, r->fxsave + VMI_FX_FSW, 2);
	memcpy(&mxcsr, r->fxsave + VMI_FX_MXCSR, 4);
	j_hex(j, "fcw", fcw);
	j_hex(j, "fsw", fsw);
	j_hex(j, "mxcsr", mxcsr);
	j_bytes(j, "st0", r->fxsave + VMI_FX_ST(0), 10);
	j_bytes(j, "xmm0", r->fxsave + VMI_FX_XMM(0), 16);
	j_bytes(j, "fxsave", r->fxsave, VMI_FX_SIZE);
}

static int
cmd_regs(struct probe *p, unsigned vcpu)
{
	struct vmi_regs r;
	struct jline j;
	uint64_t cr8;
	int ret = vmi_get_regs(p->v, vcpu, &r);

	if (ret != 0)
		return fail(p, ret, "vmi_get_regs");
	ret = vmi_get_cr8(p->v, vcpu, &cr8);
	if (ret != 0)
		return fail(p, ret, "vmi_get_cr8");
	j_begin(&j);
	j_str(&j, "cmd", "regs");
	j_int(&j, "vcpu", vcpu);
	regs_json(&j, &r);
	j_hex(&j, "cr8", cr8);
	j_end(&j);
	return 0;
}

/* Read, write the same back, read again: a write that loses or changes
 * anything (segments, FPU, DRs) shows as a difference. */
static int
cmd_regs_roundtrip(struct probe *p, unsigned vcpu)
{
	struct vmi_regs a, b;
	struct jline j;
	int r = vmi_pause(p->v);

	if (r == 0)
		r = vmi_get_regs(p->v, vcpu, &a);
	if (r == 0)
		r = vmi_set_regs(p->v, vcpu, &a);
	if (r == 0)
		r = vmi_get_regs(p->v, vcpu, &b);
	vmi_unpause(p->v);
	if (r != 0)
		return fail(p, r, "regs-roundtrip");
	j_begin(&j);
	j_str(&j, "cmd", "regs-roundtrip");
	j_bool(&j, "equal", memcmp(&a, &b, sizeof(a)) == 0);
	j_bool(&j, "gregs_equal", memcmp(&a.g, &b.g, sizeof(a.g)) == 0);
	j_bool(&j, "fpu_equal", memcmp(a.fxsave, b.fxsave, sizeof(a.fxsave)) == 0);
	j_end(&j);
	return 0;
}

static uint64_t *
reg_field(struct vmi_regs *r, const char *name)
{
#define FIELD(n) if (strcmp(name, #n) == 0) return &r->g.n;
	GREGS(FIELD)
#undef FIELD
	if (strcmp(name, "dr7") == 0)
		return &r->dr7;
	for (int i = 0; i < 4; i++) {
		char n[4] = { 'd', 'r', (char)('0' + i), 0 };

		if (strcmp(name, n) == 0)
			return &r->dr[i];
	}
	/* Registers of the record path: */
	if (strcmp(name, "fs_base") == 0)
		return &r->seg[VMI_SEG_FS].base;
	if (strcmp(name, "efer") == 0)
		return &r->efer;
	return NULL;
}

/*
 * Pause, read the registers, write NAME = val from them, read them back,
 * unpause. wait_s > 0 says "paused" and waits that long between the read
 * and the write (the session keeps the registers it read while the domain
 * is paused): the write gdb makes when it sets a breakpoint at a stop.
 * A light write reaches Xen only when the unpause lets the vCPU run
 * (vmi_set_regs keeps it back until then), so the unpause's result is the
 * write's.
 */
static int
set_reg_once(struct probe *p, unsigned vcpu, const char *name, uint64_t val,
    time_t wait_s)
{
	struct timespec ts = { .tv_sec = wait_s };
	struct vmi_regs r;
	uint64_t *f;
	struct jline j;
	int unpaused;
	int ret = vmi_pause(p->v);

	if (ret == 0)
		ret = vmi_get_regs(p->v, vcpu, &r);
	f = reg_field(&r, name);
	if (ret == 0 && f == NULL)
		ret = -EINVAL;
	if (ret == 0 && wait_s > 0) {
		j_begin(&j);
		j_str(&j, "cmd", p->cmd);
		j_bool(&j, "paused", true);
		j_end(&j);
		nanosleep(&ts, NULL);
	}
	if (ret == 0) {
		*f = val;
		ret = vmi_set_regs(p->v, vcpu, &r);
	}
	if (ret == 0)
		ret = vmi_get_regs(p->v, vcpu, &r);
	unpaused = vmi_unpause(p->v);
	if (ret == 0)
		ret = unpaused;
	if (ret != 0)
		return fail(p, ret, "set-reg");
	j_begin(&j);
	j_str(&j, "cmd", p->cmd);
	j_str(&j, "name", name);
	j_hex(&j, "value", *reg_field(&r, name));
	j_end(&j);
	return 0;
}

/* set-reg VCPU NAME VALUE [SECONDS VALUE2]: VALUE2 written SECONDS later
 * in the same session (the TSC test: a second write through the record). */
static int
cmd_set_reg(struct probe *p, char **argv, int argc)
{
	unsigned vcpu = (unsigned)num(argv[0]);
	int r = set_reg_once(p, vcpu, argv[1], num(argv[2]), 0);

	if (r == 0 && argc >= 5) {
		struct timespec ts = { .tv_sec = (time_t)num(argv[3]) };

		nanosleep(&ts, NULL);
		r = set_reg_once(p, vcpu, argv[1], num(argv[4]), 0);
	}
	return r;
}

static void
xlate_fail_json(struct jline *j, const struct vmi_xlate *x)
{
	j_str(j, "fail", vmi_xlate_errstr(x->err));
	j_str(j, "fail_level", vmi_xlate_levelstr(x->level));
	j_hex_array(j, "entries", x->entries, x->nentries);
}

static int
cmd_read(struct probe *p, bool virt, unsigned vcpu, uint64_t addr, size_t len)
{
	struct vmi_xlate x = { 0 };
	struct vmi_as as;
	struct jline j;
	size_t done = 0;
	uint8_t *buf = calloc(1, len ? len : 1);
	int r = 0;

	if (buf == NULL)
		return fail(p, -ENOMEM, "calloc");
	if (virt)
		r = vmi_as_of_vcpu(p->v, vcpu, &as);
	if (r == 0)
		r = virt ? vmi_read_virt(p->v, &as, addr, buf, len, 0, &done, &x) :
		    vmi_read_phys(p->v, addr, buf, len, 0, &done);
	j_begin(&j);
	j_str(&j, "cmd", p->cmd);
	j_hex(&j, "addr", addr);
	j_int(&j, "len", (long long)len);
	j_int(&j, "done", (long long)done);
	j_bytes(&j, "hex", buf, done);
	if (r != 0) {
		j_str(&j, "error", strerror(-r));
		if (r == -EFAULT && virt && x.err != VMI_XLATE_OK)
			xlate_fail_json(&j, &x);
	}
	j_end(&j);
	free(buf);
	return r == 0 ? 0 : 1;
}

static int
unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = strlen(s);

	if (n % 2 != 0 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return (int)(n / 2);
}

static int
cmd_write(struct probe *p, bool virt, unsigned vcpu, uint64_t addr,
    const char *hex)
{
	uint8_t buf[4096];
	struct vmi_xlate x = { 0 };
	struct vmi_as as;
	struct jline j;
	size_t done = 0;
	int n = unhex(hex, buf, sizeof(buf)), r = 0;

	if (n < 0)
		return fail(p, n, "hex");
	if (virt)
		r = vmi_as_of_vcpu(p->v, vcpu, &as);
	if (r == 0)
		r = virt ? vmi_write_virt(p->v, &as, addr, buf, (size_t)n, &done, &x) :
		    vmi_write_phys(p->v, addr, buf, (size_t)n, &done);
	j_begin(&j);
	j_str(&j, "cmd", p->cmd);
	j_hex(&j, "addr", addr);
	j_int(&j, "done", (long long)done);
	if (r != 0)
		j_str(&j, "error", strerror(-r));
	j_end(&j);
	return r == 0 ? 0 : 1;
}

static int
cmd_translate(struct probe *p, unsigned vcpu, uint64_t va)
{
	struct vmi_xlate x;
	struct vmi_as as;
	struct jline j;
	int r = vmi_as_of_vcpu(p->v, vcpu, &as);

	if (r != 0)
		return fail(p, r, "address space");
	r = vmi_translate(p->v, &as, va, &x);
	j_begin(&j);
	j_str(&j, "cmd", "translate");
	j_hex(&j, "va", va);
	j_hex(&j, "cr3", as.cr3);
	j_int(&j, "levels", as.levels);
	if (r == 0) {
		j_hex(&j, "gpa", x.gpa);
		j_hex(&j, "page_size", x.page_size);
		j_str(&j, "leaf", vmi_xlate_levelstr(x.level));
		j_bool(&j, "writable", x.writable);
		j_bool(&j, "user", x.user);
		j_bool(&j, "nx", x.nx);
		j_hex_array(&j, "entries", x.entries, x.nentries);
	} else {
		j_str(&j, "error", strerror(-r));
		if (r == -EFAULT)
			xlate_fail_json(&j, &x);
	}
	j_end(&j);
	return r == 0 ? 0 : 1;
}

static void
summary(struct probe *p, double secs)
{
	struct jline j;

	j_begin(&j);
	j_str(&j, "cmd", p->cmd);
	j_int(&j, "count", p->count);
	j_int(&j, "events", p->events);
	j_int(&j, "foreign", p->foreign);
	j_int(&j, "reinjected", p->reinjected);
	j_bool(&j, "timed_out", p->timed_out);
	j_bool(&j, "domain_gone", p->gone);
	j_num(&j, "seconds", secs);
	if (p->mode == M_STEP) {
		j_int(&j, "vcpu", p->target);
		j_hex_array(&j, "rips", p->rips, p->nrips);
	}
	if (p->err != 0)
		j_str(&j, "error", strerror(-p->err));
	j_end(&j);
}

static int
run_and_report(struct probe *p, double timeout)
{
	double t0 = probe_now();

	run(p, timeout);
	summary(p, probe_now() - t0);
	return p->err == 0 && !p->timed_out ? 0 : 1;
}

static int
cmd_break(struct probe *p, uint64_t va, unsigned count, double timeout)
{
	int r;

	p->mode = M_BREAK;
	p->addr = va;
	p->want = count;
	r = virt_to_phys(p, 0, va, &p->gpa);
	if (r == 0)
		r = vmi_monitor(p->v, VMI_MON_SWBREAK, true);
	if (r == 0)
		r = vmi_patch(p->v, p->gpa, "\xcc", 1);
	if (r != 0)
		return fail(p, r, "arm breakpoint");
	return run_and_report(p, timeout);
}

/* Steps start where the first vCPU to reach va (vcpu's page tables) is:
 * an int3 there, taken out at the hit (on_step). */
static int
step_from(struct probe *p, unsigned vcpu, uint64_t va)
{
	int r = virt_to_phys(p, vcpu, va, &p->gpa);

	p->target = -1;
	if (r == 0)
		r = vmi_monitor(p->v, VMI_MON_SWBREAK, true);
	return r == 0 ? vmi_patch(p->v, p->gpa, "\xcc", 1) : r;
}

static int
cmd_step(struct probe *p, unsigned vcpu, unsigned n, int have_addr,
    uint64_t va, double timeout)
{
	int r = 0;

	p->mode = M_STEP;
	p->want = n < MAX_RECORD ? n : MAX_RECORD - 1;
	if (have_addr) {
		r = step_from(p, vcpu, va);
	} else {
		struct vmi_regs regs;

		p->target = (int)vcpu;
		r = vmi_pause(p->v);
		if (r == 0)
			r = vmi_get_regs(p->v, vcpu, &regs);
		if (r == 0) {
			p->rips[p->nrips++] = regs.g.rip;
			r = vmi_step_arm(p->v, vcpu, true);
		}
		vmi_unpause(p->v);
	}
	if (r != 0)
		return fail(p, r, "arm step");
	return run_and_report(p, timeout);
}

static int
cmd_hw(struct probe *p, enum mode m, uint64_t va, unsigned len,
    enum vmi_hw_kind kind, unsigned count, double timeout)
{
	int r;

	p->mode = m;
	p->addr = va;
	p->len = len;
	p->kind = kind;
	p->want = count;
	r = vmi_pause(p->v);
	if (r == 0) {
		all_hw(p, true);
		r = p->err;
		vmi_unpause(p->v);
	}
	if (r != 0)
		return fail(p, r, "arm debug registers");
	return run_and_report(p, timeout);
}

static int
read_u64s(struct probe *p, char **addrs, int n, uint64_t *out)
{
	struct vmi_as as;
	int r = vmi_as_of_vcpu(p->v, 0, &as);

	for (int i = 0; i < n && r == 0; i++)
		r = vmi_read_virt(p->v, &as, num(addrs[i]), &out[i], 8, 0, NULL,
		    NULL);
	return r;
}

/* Attach with int3 and #DB monitoring on and touch nothing: every event
 * is the guest's own and must reach the guest's handlers. */
static int
cmd_reinject_check(struct probe *p, double secs, char **addrs, int n)
{
	uint64_t before[16] = { 0 }, after[16] = { 0 };
	struct jline j;
	int r;

	if (n > 16)
		n = 16;
	p->mode = M_REINJECT;
	r = read_u64s(p, addrs, n, before);
	if (r == 0)
		r = vmi_monitor(p->v, VMI_MON_SWBREAK, true);
	if (r == 0)
		r = vmi_monitor(p->v, VMI_MON_DEBUG, true);
	if (r != 0)
		return fail(p, r, "monitor");
	run(p, secs);
	r = read_u64s(p, addrs, n, after);
	j_begin(&j);
	j_str(&j, "cmd", "reinject-check");
	j_int(&j, "events", p->events);
	j_int(&j, "foreign", p->foreign);
	j_int(&j, "reinjected", p->reinjected);
	j_hex_array(&j, "before", before, (size_t)n);
	j_hex_array(&j, "after", after, (size_t)n);
	if (r != 0 || p->err != 0)
		j_str(&j, "error", strerror(-(r ? r : p->err)));
	j_end(&j);
	return r == 0 && p->err == 0 ? 0 : 1;
}

static int
cmd_snapshot(struct probe *p, bool compare, unsigned vcpu, uint64_t va,
    size_t len, const char *file)
{
	uint8_t *now = malloc(len), *then = malloc(len);
	struct vmi_as as;
	struct jline j;
	size_t done = 0, diffs = 0, first = 0;
	FILE *f;
	int r;

	if (now == NULL || then == NULL)
		return fail(p, -ENOMEM, "malloc");
	r = vmi_pause(p->v);
	if (r == 0)
		r = vmi_as_of_vcpu(p->v, vcpu, &as);
	if (r == 0)
		r = vmi_read_virt(p->v, &as, va, now, len, 0, &done, NULL);
	vmi_unpause(p->v);
	if (r != 0)
		return fail(p, r, "read");
	f = fopen(file, compare ? "rb" : "wb");
	if (f == NULL)
		return fail(p, -errno, file);
	if (compare) {
		if (fread(then, 1, len, f) != len)
			r = -EIO;
		for (size_t i = 0; r == 0 && i < len; i++)
			if (now[i] != then[i] && diffs++ == 0)
				first = i;
	} else if (fwrite(now, 1, len, f) != len) {
		r = -EIO;
	}
	fclose(f);
	if (r != 0)
		return fail(p, r, file);
	j_begin(&j);
	j_str(&j, "cmd", p->cmd);
	j_hex(&j, "addr", va);
	j_int(&j, "len", (long long)len);
	if (compare) {
		j_bool(&j, "equal", diffs == 0);
		j_int(&j, "diffs", (long long)diffs);
		if (diffs)
			j_hex(&j, "first_diff", va + first);
	}
	j_end(&j);
	free(now);
	free(then);
	return 0;
}

/* Arm everything and hold every vCPU that hits, until killed. */
static int
cmd_hold(struct probe *p, uint64_t va, int have_hw, uint64_t hwva)
{
	struct jline j;
	int r;

	p->mode = M_HOLD;
	r = virt_to_phys(p, 0, va, &p->gpa);
	if (r == 0)
		r = vmi_monitor(p->v, VMI_MON_SWBREAK, true);
	if (r == 0)
		r = vmi_monitor(p->v, VMI_MON_DEBUG, true);
	if (r == 0)
		r = vmi_patch(p->v, p->gpa, "\xcc", 1);
	if (r == 0 && have_hw)
		r = vmi_hwbreak_set(p->v, 0, HW_SLOT, hwva, VMI_HW_EXEC, 1);
	if (r != 0)
		return fail(p, r, "arm");
	j_begin(&j);
	j_str(&j, "cmd", "hold");
	j_bool(&j, "ready", true);
	j_hex(&j, "gpa", p->gpa);
	j_int(&j, "pid", getpid());
	j_end(&j);
	run(p, 1e9);
	summary(p, 0);
	return 0;
}

/*
 * Hold every vCPU individually, then let one run while the others stay
 * held: the per-vCPU stop the stub needs, from unanswered events.
 * stepping_over[] marks the released vCPU, which then runs free.
 */
static int
cmd_hold_all(struct probe *p, unsigned release, double secs, char **addrs,
    int n)
{
	uint64_t held[16] = { 0 }, ran[16] = { 0 }, rips[MAX_VCPUS] = { 0 };
	uint64_t rip_after = 0;
	struct vmi_regs regs;
	struct vmi_response rsp;
	unsigned nr = vmi_nr_vcpus(p->v), nheld;
	struct jline j;
	int r;

	if (n > 16)
		n = 16;
	if (release >= nr || nr > MAX_VCPUS)
		return fail(p, -EINVAL, "vcpu");
	p->mode = M_HOLD_ALL;
	r = vmi_monitor(p->v, VMI_MON_SWBREAK, true);
	if (r == 0)
		r = vmi_hold_all(p->v);
	if (r != 0)
		return fail(p, r, "hold-all");
	run(p, 60);
	nheld = vmi_held_count(p->v);
	for (unsigned i = 0; i < nr; i++)
		if (vmi_pending(p->v, i) != NULL)
			rips[i] = vmi_pending(p->v, i)->regs.rip;
	r = read_u64s(p, addrs, n, held);
	if (r == 0 && nheld == nr) {
		/* Release one: the others stay held while it runs. */
		p->want = 1;
		p->done = false;
		p->stepping_over[release] = true;
		vmi_response_init(&rsp, vmi_pending(p->v, release));
		/* Held by the step after the guest's own trap (on_event), not
		 * by vmi_hold_all's: that step is ours to stop. Left on, the
		 * vCPU crawled one event per instruction. */
		r = vmi_response_step(p->v, vmi_pending(p->v, release), &rsp,
		    false);
		if (r == 0)
			r = vmi_respond(p->v, release, &rsp);
		if (r == 0) {
			run(p, secs);
			p->timed_out = false;
			r = read_u64s(p, addrs, n, ran);
		}
		/* Where the released vCPU is now: a livelock shows here. */
		if (r == 0 && vmi_get_regs(p->v, release, &regs) == 0)
			rip_after = regs.g.rip;
	}
	j_begin(&j);
	j_str(&j, "cmd", "hold-all");
	j_int(&j, "held", nheld);
	j_hex_array(&j, "rips", rips, nr);
	j_int(&j, "released", release);
	j_int(&j, "still_held", vmi_held_count(p->v));
	j_int(&j, "events", p->events);
	j_int(&j, "foreign", p->foreign);
	j_hex_array(&j, "at_hold", held, (size_t)n);
	j_hex_array(&j, "after_run", ran, (size_t)n);
	j_hex(&j, "released_rip_after", rip_after);
	if (r != 0 || p->err != 0)
		j_str(&j, "error", strerror(-(r ? r : p->err)));
	j_end(&j);
	return r == 0 && p->err == 0 && nheld == nr ? 0 : 1;
}

static int
cmd_monitor_check(struct probe *p)
{
	struct jline j;
	int r = vmi_monitor(p->v, VMI_MON_SWBREAK, true);

	j_begin(&j);
	j_str(&j, "cmd", "monitor-check");
	j_bool(&j, "ok", r == 0);
	if (r != 0) {
		j_str(&j, "error", strerror(-r));
		j_int(&j, "errno", -r);
	}
	j_end(&j);
	return 0;
}

/* ---- benchmarks ------------------------------------------------------------ */

/* A loop of 400 events takes about a second in the lab: one still running
 * after this has lost its events, and says so (bench_line_vmi). */
#define BENCH_TIMEOUT_S 120

static int open_session(struct probe *p, const struct vmi_config *cfg);

static void
bench_line(const char *what, const char *impl, unsigned n,
    const struct probe_clock *t, int err)
{
	struct jline j;

	j_begin(&j);
	j_str(&j, "bench", what);
	j_str(&j, "impl", impl);
	j_int(&j, "n", n);
	j_num(&j, "seconds", t->wall);
	if (n > 0 && t->wall > 0) {
		j_num(&j, "us_per_op", t->wall * 1e6 / n);
		j_num(&j, "per_second", n / t->wall);
		j_num(&j, "cpu_us_per_op", t->cpu * 1e6 / n);
		j_num(&j, "sys_us_per_op", t->sys * 1e6 / n);
	}
	if (err != 0)
		j_str(&j, "error", strerror(-err));
	j_end(&j);
}

/* The layer's line, and one more for events found only at a poll timeout
 * or a loop that ran out of time: that is an error, with what the session
 * saw meanwhile. */
static void
bench_line_vmi(struct probe *p, const char *what, const struct probe_clock *t)
{
	struct jline j;

	bench_line(what, "vmi", p->count, t, p->err);
	if (p->late == 0 && !p->timed_out)
		return;
	j_begin(&j);
	j_str(&j, "bench", what);
	j_int(&j, "found_late", p->late);
	if (p->timed_out) {
		j_str(&j, "error", "timed out");
		j_int(&j, "count", p->count);
		j_int(&j, "events", p->events);
		j_int(&j, "foreign", p->foreign);
		j_int(&j, "target", p->target);
	}
	j_end(&j);
}

/* An int3 at va (vCPU 0's page tables) for n hits in mode m, run until
 * done and timed in *t: 0, or -1 after reporting the failure. */
static int
run_swbreak(struct probe *p, enum mode m, uint64_t va, unsigned n,
    struct probe_clock *t)
{
	uint64_t gpa;
	int r;

	p->mode = m;
	p->want = n;
	r = virt_to_phys(p, 0, va, &gpa);
	p->gpa = gpa;
	if (r == 0)
		r = vmi_monitor(p->v, VMI_MON_SWBREAK, true);
	if (r == 0)
		r = vmi_patch(p->v, gpa, "\xcc", 1);
	if (r != 0) {
		fail(p, r, "arm");
		return -1;
	}
	probe_clock_start(t);
	run(p, BENCH_TIMEOUT_S);
	probe_clock_stop(t);
	return 0;
}

/* What the layer did for a benchmark: per event, the hypercalls it cost. */
static void
stats_line(struct probe *p, const char *what)
{
	struct vmi_stats st;
	struct jline j;

	vmi_stats(p->v, &st);
	j_begin(&j);
	j_str(&j, "bench", what);
	j_int(&j, "events", (long long)st.events);
	j_int(&j, "responses", (long long)st.responses);
	j_int(&j, "regs_reads", (long long)st.regs_reads);
	j_int(&j, "regs_light_writes", (long long)st.regs_light_writes);
	j_int(&j, "regs_coalesced", (long long)st.regs_coalesced);
	j_int(&j, "regs_writes", (long long)st.regs_writes);
	j_int(&j, "regs_cached", (long long)st.regs_cached);
	j_int(&j, "notifies", (long long)st.notifies);
	j_int(&j, "pauses", (long long)st.pauses);
	j_end(&j);
}

/* The direct libxenctrl loop of a benchmark, and its line. */
static void
bench_direct(struct probe *p, bool step, unsigned vcpu, uint64_t va,
    uint64_t gpa, unsigned n)
{
	struct probe_clock t;
	int r = step ? direct_step(p->domid, vcpu, n, va, gpa, &t) :
	    direct_swbreak(p->domid, va, gpa, n, &t);

	bench_line(step ? "step" : "swbreak", "direct", r == 0 ? n : 0, &t, r);
}

/* The direct loop before the layer's (the test alternates the order run
 * by run: the first loop of a run may meet the guest colder). The session
 * stays open meanwhile, without a monitor. */
static int
bench_direct_first(struct probe *p, bool step, unsigned vcpu, uint64_t va,
    unsigned n)
{
	uint64_t gpa;
	int r = virt_to_phys(p, vcpu, va, &gpa);

	if (r != 0)
		return fail(p, r, "translate");
	bench_direct(p, step, vcpu, va, gpa, n);
	return 0;
}

static int
bench_swbreak(struct probe *p, uint64_t va, unsigned n, bool direct_first)
{
	struct probe_clock t;

	if (direct_first && bench_direct_first(p, false, 0, va, n) != 0)
		return 1;
	if (run_swbreak(p, M_BENCH_BP, va, n, &t) != 0)
		return 1;
	bench_line_vmi(p, "swbreak", &t);
	stats_line(p, "swbreak-stats");
	vmi_close(p->v);
	p->v = NULL;
	if (!direct_first)
		bench_direct(p, false, 0, va, p->gpa, n);
	return 0;
}

/*
 * What a debugger does per breakpoint hit, at this layer: the hit, the
 * int3 taken out, one TF step over the original instruction, the int3
 * put back, the guest run to the next hit (other vCPUs run on). The
 * baseline for vmistub's breakpoint hits through gdb, which add gdb's
 * packets and the all-stop of the other vCPUs to exactly this.
 */
static int
bench_cycle(struct probe *p, uint64_t va, unsigned n)
{
	struct probe_clock t;

	p->quiet = true;
	if (run_swbreak(p, M_BREAK, va, n, &t) != 0)
		return 1;
	bench_line_vmi(p, "cycle", &t);
	stats_line(p, "cycle-stats");
	return 0;
}

static int
bench_step(struct probe *p, unsigned vcpu, unsigned n, int have_addr,
    uint64_t va, bool direct_first)
{
	int r = 0;

	/* Without ADDR the direct loop starts where the layer's left off. */
	direct_first = direct_first && have_addr;
	if (direct_first && bench_direct_first(p, true, vcpu, va, n) != 0)
		return 1;
	p->mode = M_BENCH_STEP;
	p->want = n;
	if (have_addr) {
		r = step_from(p, vcpu, va);
	} else {
		p->target = (int)vcpu;
		r = vmi_pause(p->v);
		if (r == 0)
			r = vmi_step_arm(p->v, vcpu, true);
		vmi_unpause(p->v);
		probe_clock_start(&p->clock);
	}
	if (r != 0)
		return fail(p, r, "arm step");
	run(p, BENCH_TIMEOUT_S);
	probe_clock_stop(&p->clock);
	bench_line_vmi(p, "step", &p->clock);
	stats_line(p, "step-stats");
	vmi_close(p->v);
	p->v = NULL;
	if (!direct_first)
		bench_direct(p, true, vcpu, have_addr ? va : 0, p->gpa, n);
	return 0;
}

static void
mem_line(const char *impl, size_t bytes, double secs, long long map_calls,
    int err)
{
	struct jline j;

	j_begin(&j);
	j_str(&j, "bench", "mem");
	j_str(&j, "impl", impl);
	j_int(&j, "bytes", (long long)bytes);
	j_num(&j, "seconds", secs);
	j_num(&j, "mb_per_s", secs > 0 ? bytes / secs / 1e6 : 0);
	if (map_calls >= 0)
		j_int(&j, "map_calls", map_calls);
	if (err != 0)
		j_str(&j, "error", strerror(-err));
	j_end(&j);
}

static int
bench_mem(struct probe *p, uint64_t gpa, unsigned mib)
{
	size_t len = (size_t)mib << 20;
	uint8_t *buf = malloc(len);
	struct vmi_cache_stats st;
	struct vmi_config cfg = { .cache_chunk_frames = 64,
	    .cache_max_chunks = (unsigned)(len / (64 * 4096)) + 16 };
	double t0, secs;
	size_t done;
	int r;

	if (buf == NULL)
		return fail(p, -ENOMEM, "malloc");
	/* A fresh session with a cache big enough to hold the range: the
	 * first pass maps (cold), the second only copies (warm). */
	vmi_close(p->v);
	p->v = NULL;
	r = open_session(p, &cfg);
	if (r != 0)
		return fail(p, r, "open");
	for (int pass = 0; pass < 2; pass++) {
		t0 = probe_now();
		r = vmi_read_phys(p->v, gpa, buf, len, 0, &done);
		secs = probe_now() - t0;
		vmi_cache_stats(p->v, &st);
		mem_line(pass ? "vmi-warm" : "vmi-cold", done, secs,
		    (long long)st.map_calls, r);
	}
	r = direct_mem(p->domid, gpa, len, &secs);
	mem_line("direct", r == 0 ? len : 0, secs, -1, r);
	free(buf);
	return 0;
}

/* ---- main ------------------------------------------------------------------ */

static int
open_session(struct probe *p, const struct vmi_config *cfg)
{
	struct vmi_driver *drv;
	struct vmi_handler h = { .ctx = p, .handle_event = on_event,
	    .handle_interrupted = on_interrupted, .poll = on_poll };
	int r = vmi_xen_open(p->domid, &drv);

	if (r == 0)
		r = vmi_open(&p->v, drv, cfg);
	if (r != 0)
		return r;
	vmi_set_handler(p->v, &h);
	signal_session = p->v;
	return 0;
}

static int
usage(void)
{
	fprintf(stderr, "usage: vmi-probe DOMID|NAME COMMAND [ARGS...]\n"
	    "see the head of tests/vmi/vmi_probe.c for the commands\n");
	return 2;
}

static int
dispatch(struct probe *p, int argc, char **argv)
{
	const char *c = p->cmd;

#define NEED(n) do { if (argc < (n)) return usage(); } while (0)
	if (strcmp(c, "info") == 0)
		return cmd_info(p);
	if (strcmp(c, "state") == 0)
		return cmd_state(p);
	if (strcmp(c, "regs") == 0) {
		NEED(1);
		return cmd_regs(p, (unsigned)num(argv[0]));
	}
	if (strcmp(c, "regs-roundtrip") == 0) {
		NEED(1);
		return cmd_regs_roundtrip(p, (unsigned)num(argv[0]));
	}
	if (strcmp(c, "set-reg") == 0) {
		NEED(3);
		return cmd_set_reg(p, argv, argc);
	}
	if (strcmp(c, "set-reg-paused") == 0) {
		NEED(4);
		return set_reg_once(p, (unsigned)num(argv[0]), argv[1],
		    num(argv[2]), (time_t)num(argv[3]));
	}
	if (strcmp(c, "read-phys") == 0) {
		NEED(2);
		return cmd_read(p, false, 0, num(argv[0]), num(argv[1]));
	}
	if (strcmp(c, "read-virt") == 0) {
		NEED(3);
		return cmd_read(p, true, (unsigned)num(argv[0]), num(argv[1]),
		    num(argv[2]));
	}
	if (strcmp(c, "write-phys") == 0) {
		NEED(2);
		return cmd_write(p, false, 0, num(argv[0]), argv[1]);
	}
	if (strcmp(c, "write-virt") == 0) {
		NEED(3);
		return cmd_write(p, true, (unsigned)num(argv[0]), num(argv[1]),
		    argv[2]);
	}
	if (strcmp(c, "translate") == 0) {
		NEED(2);
		return cmd_translate(p, (unsigned)num(argv[0]), num(argv[1]));
	}
	if (strcmp(c, "break") == 0) {
		NEED(2);
		return cmd_break(p, num(argv[0]), (unsigned)num(argv[1]),
		    argc > 2 ? atof(argv[2]) : 60);
	}
	if (strcmp(c, "step") == 0) {
		NEED(2);
		return cmd_step(p, (unsigned)num(argv[0]), (unsigned)num(argv[1]),
		    argc > 2, argc > 2 ? num(argv[2]) : 0, 120);
	}
	if (strcmp(c, "hwbreak") == 0) {
		NEED(2);
		return cmd_hw(p, M_HW, num(argv[0]), 1, VMI_HW_EXEC,
		    (unsigned)num(argv[1]), argc > 2 ? atof(argv[2]) : 60);
	}
	if (strcmp(c, "watch") == 0) {
		NEED(4);
		return cmd_hw(p, M_WATCH, num(argv[0]), (unsigned)num(argv[1]),
		    strcmp(argv[2], "rw") == 0 ? VMI_HW_RW : VMI_HW_WRITE,
		    (unsigned)num(argv[3]), argc > 4 ? atof(argv[4]) : 60);
	}
	if (strcmp(c, "reinject-check") == 0) {
		NEED(1);
		return cmd_reinject_check(p, atof(argv[0]), argv + 1, argc - 1);
	}
	if (strcmp(c, "snapshot") == 0 || strcmp(c, "compare") == 0) {
		NEED(4);
		return cmd_snapshot(p, c[0] == 'c', (unsigned)num(argv[0]),
		    num(argv[1]), num(argv[2]), argv[3]);
	}
	if (strcmp(c, "hold") == 0) {
		NEED(1);
		return cmd_hold(p, num(argv[0]), argc > 1, argc > 1 ? num(argv[1]) : 0);
	}
	if (strcmp(c, "monitor-check") == 0)
		return cmd_monitor_check(p);
	if (strcmp(c, "hold-all") == 0) {
		NEED(2);
		return cmd_hold_all(p, (unsigned)num(argv[0]), atof(argv[1]),
		    argv + 2, argc - 2);
	}
	if (strcmp(c, "bench") == 0) {
		NEED(3);
		if (strcmp(argv[0], "swbreak") == 0)
			return bench_swbreak(p, num(argv[1]), (unsigned)num(argv[2]),
			    argc > 3 && strcmp(argv[3], "direct-first") == 0);
		if (strcmp(argv[0], "cycle") == 0)
			return bench_cycle(p, num(argv[1]), (unsigned)num(argv[2]));
		if (strcmp(argv[0], "step") == 0)
			return bench_step(p, (unsigned)num(argv[1]),
			    (unsigned)num(argv[2]), argc > 3,
			    argc > 3 ? num(argv[3]) : 0,
			    argc > 4 && strcmp(argv[4], "direct-first") == 0);
		if (strcmp(argv[0], "mem") == 0)
			return bench_mem(p, num(argv[1]), (unsigned)num(argv[2]));
	}
#undef NEED
	return usage();
}

int
main(int argc, char **argv)
{
	static struct probe p;
	struct sigaction sa = { .sa_handler = on_signal };
	char *end;
	int r;

	if (argc < 3)
		return usage();
	p.cmd = argv[2];
	p.target = -1;
	p.domid = (uint32_t)strtoul(argv[1], &end, 0);
	if (*end != '\0') {
		r = vmi_xen_domid_by_name(argv[1], &p.domid);
		if (r != 0)
			return fail(&p, r, "domain name");
	}
	/* No SA_RESTART: poll() returns and the loop sees the request. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	r = open_session(&p, NULL);
	if (r != 0)
		return fail(&p, r, "open");
	r = dispatch(&p, argc - 3, argv + 3);
	signal_session = NULL;
	if (p.v != NULL) {
		int t = vmi_teardown(p.v);

		if (t != 0)
			fail(&p, t, "teardown");
		vmi_close(p.v);
	}
	return r;
}
