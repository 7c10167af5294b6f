/*
 * exec.c - execution control: breakpoints, all-stop resume and stop,
 * and the built-in VMI handler that turns events into stop replies.
 *
 * All-stop (GDB manual, "Stop Reply Packets"): while gdb thinks the target
 * is stopped the stub holds one pause of the domain. A vCPU that raised
 * one of the stub's events is also held by that event, unanswered
 * (VMI_HOLD), so it can later be resumed alone.
 *
 * Xen has no per-vCPU pause for a toolstack (XEN-LAB.md). A vCPU that gdb
 * leaves stopped while another runs (vCont;s:1 to step over a breakpoint)
 * and that holds no event is parked: DR3 is armed as an execution
 * breakpoint at its RIP. An instruction breakpoint is a fault (SDM vol. 3B
 * 17.3.1.1), so the vCPU traps before executing anything there and is held
 * by that event until gdb resumes it. Only one vCPU at a time runs through
 * code whose breakpoint gdb removed, and none passes it unnoticed.
 *
 * Events that arrive while the target is stopped (several vCPUs hit at
 * once) are held and queued per vCPU; each is reported when gdb resumes
 * that vCPU, one at a time, none lost.
 *
 * Watchpoints the debug registers cannot take are served by p2m memory
 * access where the platform has it (stub/watch.c): an access to a watched
 * frame raises a memory access event before it executes. One that no
 * watchpoint reports is emulated by Xen past the restriction. A hit is
 * reported once the access is done, as an x86 data breakpoint traps after
 * it (gdb compares the old and new values): the target stops, the frame
 * is lifted, and that vCPU alone executes the access with a step while
 * the others are parked; the step's end restores the frame and reports
 * the hit (watch_hit, lift_event).
 */
#include <errno.h>
#include <string.h>

#include "stub.h"

static int on_event(void *ctx, struct vmi *v, const struct vmi_event *ev,
    struct vmi_response *rsp);
static int park(struct stub *s, unsigned i, const uint64_t *also);

const struct vmi_handler stub_handler_template = {
	.handle_event = on_event,
};

/* ---- breakpoints ------------------------------------------------------------- */

static struct stub_bp *
bp_find(struct stub *s, enum rsp_bp_type type, uint64_t addr)
{
	for (unsigned i = 0; i < STUB_MAX_BPS; i++)
		if (s->bps[i].used && s->bps[i].type == type &&
		    s->bps[i].addr == addr)
			return &s->bps[i];
	return NULL;
}

static struct stub_bp *
bp_by_slot(struct stub *s, int slot)
{
	if (slot < 0)
		return NULL;
	for (unsigned i = 0; i < STUB_MAX_BPS; i++)
		if (s->bps[i].used && s->bps[i].type != RSP_BP_SOFTWARE &&
		    s->bps[i].slot == slot)
			return &s->bps[i];
	return NULL;
}

/* gdb's slots are taken in the order 1, 2, 0: guests that debug
 * themselves usually start with DR0 (the tiny guest's self-test does). */
static int
free_slot(struct stub *s)
{
	static const int order[STUB_GDB_SLOTS] = { 1, 2, 0 };

	for (unsigned i = 0; i < STUB_GDB_SLOTS; i++)
		if (bp_by_slot(s, order[i]) == NULL)
			return order[i];
	return -ENOSPC;
}

int
stub_hw_slots_free(const struct stub *s)
{
	int n = 0;

	for (int slot = 0; slot < STUB_GDB_SLOTS; slot++)
		if (bp_by_slot((struct stub *)s, slot) == NULL)
			n++;
	return n;
}

static int
hw_kind(enum rsp_bp_type t, enum vmi_hw_kind *k)
{
	switch (t) {
	case RSP_BP_HARDWARE:
		*k = VMI_HW_EXEC;
		return 0;
	case RSP_BP_WRITE_WATCH:
		*k = VMI_HW_WRITE;
		return 0;
	case RSP_BP_READ_WATCH:   /* x86 has no read-only data breakpoint */
	case RSP_BP_ACCESS_WATCH:
		*k = VMI_HW_RW;
		return 0;
	case RSP_BP_SOFTWARE:
		break;
	}
	return -EINVAL;
}

static int
hw_arm(struct stub *s, struct stub_bp *b, bool on)
{
	enum vmi_hw_kind k;
	int r = hw_kind(b->type, &k);

	for (unsigned i = 0; i < s->nvcpus && r == 0; i++) {
		r = on ? vmi_hwbreak_set(s->v, i, (unsigned)b->slot, b->addr, k,
		    b->len) : vmi_hwbreak_clear(s->v, i, (unsigned)b->slot);
		if (r == -ENOENT && !on)
			r = 0;
	}
	if (r != 0 && on)
		for (unsigned i = 0; i < s->nvcpus; i++)
			vmi_hwbreak_clear(s->v, i, (unsigned)b->slot);
	/* The registers cached for gdb hold DR0-3/DR7 as they were: a
	 * register write from gdb (P, G) built on them would take the slot
	 * back (with "set breakpoint always-inserted on", a "set $rax"
	 * after an hbreak disarmed it). */
	stub_regs_forget(s);
	return r;
}

/* A watchpoint takes a debug register when one is free and its range fits
 * one; otherwise memory access serves it where the platform has it, and
 * where it has not gdb gets the error it reports as "Could not insert
 * hardware watchpoint". */
static int
watch_insert(struct stub *s, struct stub_bp *b)
{
	bool dr = vmi_has(s->v, VMI_CAP_WATCH);
	int slot = dr ? free_slot(s) : -ENOSPC;

	if (vmi_has(s->v, VMI_CAP_MEMACCESS) &&
	    (slot < 0 || !stub_watch_fits_dr(b->addr, b->len)))
		return stub_watch_insert(s, b);
	if (!dr)
		return -EOPNOTSUPP;
	if (slot < 0)
		return slot;
	b->slot = slot;
	return hw_arm(s, b, true);
}

int
stub_bp_insert(struct stub *s, const struct rsp_command *c)
{
	enum rsp_bp_type type = c->u.bp.type;
	uint64_t addr = c->u.bp.addr;
	struct stub_bp *b = bp_find(s, type, addr);
	int r = 0;

	if (b != NULL)
		return 0;   /* gdb may insert twice (manual: "idempotent") */
	for (unsigned i = 0; i < STUB_MAX_BPS && b == NULL; i++)
		if (!s->bps[i].used)
			b = &s->bps[i];
	if (b == NULL)
		return -ENOSPC;
	*b = (struct stub_bp){ .type = type, .addr = addr,
	    .len = (unsigned)c->u.bp.kind, .slot = -1 };
	if (type == RSP_BP_SOFTWARE) {
		if (!vmi_has(s->v, VMI_CAP_SWBREAK))
			return -EOPNOTSUPP;
		if (s->phys)
			b->gpa = addr;
		else
			r = stub_translate(s, s->gvcpu, addr, &b->gpa);
		if (r == 0)
			r = vmi_monitor(s->v, VMI_MON_SWBREAK, true);
		if (r == 0)
			r = vmi_patch(s->v, b->gpa, "\xcc", 1);
	} else if (type != RSP_BP_HARDWARE) {
		r = watch_insert(s, b);
	} else {
		if (!vmi_has(s->v, VMI_CAP_HWBREAK))
			return -EOPNOTSUPP;
		b->len = 1;
		r = free_slot(s);
		if (r >= 0) {
			b->slot = r;
			r = hw_arm(s, b, true);
		}
	}
	if (r == 0) {
		b->used = true;
		log_debug("breakpoint type %d at %#llx inserted", type,
		    (unsigned long long)addr);
	}
	return r;
}

int
stub_bp_remove(struct stub *s, const struct rsp_command *c)
{
	struct stub_bp *b = bp_find(s, c->u.bp.type, c->u.bp.addr);
	int r;

	if (b == NULL)
		return 0;   /* already gone: the manual asks for idempotence */
	if (b->type == RSP_BP_SOFTWARE)
		r = vmi_unpatch(s->v, b->gpa);
	else if (stub_watch_by_mem(b))
		r = stub_watch_remove(s, b);
	else
		r = hw_arm(s, b, false);
	if (r == -ENOENT)
		r = 0;
	if (r == 0)
		b->used = false;
	return r;
}

/* ---- stops ------------------------------------------------------------------ */

static void
report(struct stub *s, unsigned vcpu)
{
	struct stub_conn *c = s->conn;
	struct stub_vcpu *vc = &s->vcpus[vcpu];

	s->stats.stops++;
	if (c != NULL && !c->dead) {
		rsp_reply_reset(&c->reply);
		stub_stop_reply(s, vcpu, &vc->stop, &c->reply);
		stub_conn_send(c);
	}
	vc->stop.valid = false;
}

/* The target no longer runs (its domain pause taken by the caller): no
 * step to watch, registers to be read afresh, no frame
 * left lifted (a step that had one and ends later is a queued stop; one
 * that never took its access faults again when it runs). */
static void
stopped(struct stub *s)
{
	if (s->lift.n > 0)
		stub_watch_lift_end(s);
	for (unsigned i = 0; i < s->nvcpus; i++)
		s->vcpus[i].mem_wait = false;
	s->running = false;
	ev_timer_stop(s->loop, &s->step_watch);
	stub_regs_forget(s);
}

/* The vCPU gdb asked to step (or range-step), or -1. */
static int
stepping_vcpu(const struct stub *s)
{
	for (unsigned i = 0; i < s->nvcpus; i++)
		if (s->vcpus[i].act == STUB_ACT_STEP ||
		    s->vcpus[i].act == STUB_ACT_RANGE)
			return (int)i;
	return -1;
}

/* The first stop while running stops everything (all-stop). */
static void
all_stop(struct stub *s, unsigned vcpu)
{
	int r = vmi_pause(s->v);

	if (r < 0)
		log_error("pause domain %u: %s", s->domid, strerror(-r));
	stopped(s);
	report(s, vcpu);
}

static bool
sw_patched(struct stub *s, const struct vmi_event *ev)
{
	struct vmi_as as;
	struct vmi_xlate x;
	uint8_t b;

	return vmi_event_as(ev, &as) == 0 &&
	    vmi_translate(s->v, &as, ev->regs.rip, &x) == 0 &&
	    vmi_patched_original(s->v, x.gpa, &b) == 0;
}

static enum rsp_stop_reason
reason_of(enum rsp_bp_type t)
{
	switch (t) {
	case RSP_BP_HARDWARE:
		return RSP_STOP_HWBREAK;
	case RSP_BP_WRITE_WATCH:
		return RSP_STOP_WATCH;
	case RSP_BP_READ_WATCH:
		return RSP_STOP_RWATCH;
	case RSP_BP_ACCESS_WATCH:
		return RSP_STOP_AWATCH;
	case RSP_BP_SOFTWARE:
		break;
	}
	return RSP_STOP_SWBREAK;
}

/* What gdb is told about one of the stub's events, or false when there is
 * nothing to tell (a breakpoint removed since the vCPU hit it). A memory
 * access is never a stop by itself: its hit is reported after the access
 * (watch_hit). */
static bool
classify_stop(struct stub *s, const struct vmi_event *ev,
    struct stub_stop *st)
{
	struct stub_bp *b;

	*st = (struct stub_stop){ .valid = true, .signo = 5 };
	switch (ev->kind) {
	case VMI_EVENT_SWBREAK:
		st->reason = RSP_STOP_SWBREAK;
		return sw_patched(s, ev);
	case VMI_EVENT_SINGLESTEP:
		return true;
	case VMI_EVENT_DEBUG:
		if (ev->u.debug.cause == VMI_DEBUG_STEP)
			return true;
		b = bp_by_slot(s, ev->u.debug.slot);
		if (b == NULL)
			return false;
		st->reason = reason_of(b->type);
		st->addr = b->addr;
		return true;
	default:
		return false;
	}
}

static bool
in_range(const struct stub_vcpu *vc, uint64_t rip)
{
	return vc->act == STUB_ACT_RANGE && rip >= vc->range_start &&
	    rip < vc->range_end;
}

/* ---- memory-access watchpoints ------------------------------------------------ */

static const struct stub_bp *
hit(struct stub *s, const struct vmi_event *ev)
{
	return stub_watch_hit(s->bps, STUB_MAX_BPS, ev);
}

/* The access must run natively, not be emulated past the restriction:
 * on a vCPU that steps (after an instruction Xen emulated, the MTF stop
 * comes one instruction late: vmi/REVIEW-intel.md, finding 2), or where
 * a debug-register watchpoint may cover it (Xen's emulation raises no
 * data breakpoint). */
static bool
native(struct stub *s, const struct vmi_event *ev, bool stepping)
{
	return stepping || stub_watch_dr_overlap(s->bps, STUB_MAX_BPS, ev);
}

/*
 * An access on a watched frame that no memory-access watchpoint reports:
 * Xen emulates it past the restriction and the vCPU runs on, or, where it
 * must run natively, the frame is lifted for a step whose end restores it
 * (lift_event). Emulated too when no lift can be had.
 */
static void
mem_pass(struct stub *s, const struct vmi_event *ev, struct vmi_response *rsp,
    bool stepping)
{
	bool fresh = s->lift.n == 0;
	int r = -EAGAIN;

	if (native(s, ev, stepping)) {
		r = stub_watch_lift(s, ev->vcpu, ev->u.mem.gfn);
		if (r == 0)
			r = vmi_response_step(s->v, ev, rsp, true);
		if (r < 0 && fresh)
			stub_watch_lift_end(s);
	}
	if (r < 0)
		rsp->flags |= VMI_RSP_EMULATE;
}

static struct stub_stop
hit_stop(const struct stub_bp *b)
{
	return (struct stub_stop){ .valid = true, .signo = 5,
	    .reason = reason_of(b->type), .addr = b->addr };
}

/*
 * ev's vCPU is about to make an access that watchpoint b reports. gdb
 * must see it done, as after an x86 data breakpoint's trap: the others
 * are parked as for gdb's own step over a breakpoint, the frame is
 * lifted, and rsp steps this vCPU over the access (MTF); lift_event
 * restores the frame and reports the hit when the step ends. Until then
 * the target runs as far as gdb knows, and other vCPUs' events are held
 * and queued as if it were stopped.
 */
static int
watch_hit(struct stub *s, const struct vmi_event *ev, const struct stub_bp *b,
    struct vmi_response *rsp)
{
	struct stub_vcpu *vc = &s->vcpus[ev->vcpu];
	int r = vmi_pause(s->v);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < s->nvcpus; i++)
		if (i != ev->vcpu && vmi_pending(s->v, i) == NULL &&
		    !s->vcpus[i].parked)
			park(s, i, NULL);
	/* Parked while its access waited (parked by another vCPU's hit
	 * before its event arrived): its park would stop the step before
	 * the access. */
	if (vc->parked) {
		r = vmi_unpark(s->v, ev->vcpu);
		vc->parked = false;
	}
	if (r == 0)
		r = stub_watch_lift(s, ev->vcpu, ev->u.mem.gfn);
	if (r == 0)
		r = vmi_response_step(s->v, ev, rsp, true);
	if (r == 0) {
		s->lift.report = true;
		s->lift.stop = hit_stop(b);
		ev_timer_again(s->loop, &s->step_watch);
		log_debug("vCPU %u hits watchpoint %#llx: stepping its access",
		    ev->vcpu, (unsigned long long)b->addr);
	} else {
		stub_watch_lift_end(s);
	}
	vmi_unpause(s->v);
	return r;
}

/* A hit is better late than a vCPU that faults for ever. */
static void
watch_hit_failed(const struct vmi_event *ev, struct vmi_response *rsp, int r)
{
	log_warn("vCPU %u: cannot step over the access to watched frame %#llx "
	    "(%s): emulated, the hit is not reported", ev->vcpu,
	    (unsigned long long)ev->u.mem.gfn, strerror(-r));
	rsp->flags |= VMI_RSP_EMULATE;
}

/* rsp for a memory access event, the target running and no frame lifted. */
static void
answer_access(struct stub *s, const struct vmi_event *ev,
    struct vmi_response *rsp, bool stepping)
{
	const struct stub_bp *b = hit(s, ev);
	int r;

	if (b == NULL) {
		mem_pass(s, ev, rsp, stepping);
		return;
	}
	r = watch_hit(s, ev, b, rsp);
	if (r < 0)
		watch_hit_failed(ev, rsp, r);
}

/* A memory access event while the target runs, with no vCPU stepping over
 * a watchpoint hit. One lift at a time: an access that needs one while
 * another vCPU has it waits until that step ends (serve_waiters). */
static int
mem_event(struct stub *s, const struct vmi_event *ev, struct vmi_response *rsp)
{
	bool stepping = vmi_stepping(s->v, ev->vcpu);

	if (s->lift.n > 0 && (hit(s, ev) != NULL || native(s, ev, stepping))) {
		s->vcpus[ev->vcpu].mem_wait = true;
		return VMI_HOLD;
	}
	answer_access(s, ev, rsp, stepping);
	return VMI_RESUME;
}

/*
 * An event of the vCPU that steps with frames lifted. Another access that
 * faults before its step ends (one instruction on several watched frames)
 * lifts that frame too. Anything else ends the step: the frames get their
 * restriction back, and a watchpoint hit is reported now that its access
 * is done. false: the event is to be handled as usual (the end of a step
 * gdb asked for); true: *verdict is the answer.
 */
static bool
lift_event(struct stub *s, const struct vmi_event *ev, struct vmi_response *rsp,
    int *verdict)
{
	struct stub_vcpu *vc = &s->vcpus[ev->vcpu];
	const struct stub_bp *b;
	struct stub_stop st = s->lift.stop;
	bool report = s->lift.report;

	if (ev->kind == VMI_EVENT_MEMACCESS) {
		b = hit(s, ev);
		if (b != NULL && !report) {
			s->lift.report = true;
			s->lift.stop = hit_stop(b);
		}
		mem_pass(s, ev, rsp, true);
		*verdict = VMI_RESUME;
		return true;
	}
	stub_watch_lift_end(s);
	if (!report)
		return false;
	vc->stop = st;
	if (s->running)
		all_stop(s, ev->vcpu);
	*verdict = VMI_HOLD;
	return true;
}

/* Memory access events held while another vCPU had frames lifted (the
 * step that had them is over): the first to need a lift has it, the
 * others wait for that one in turn. */
static void
serve_waiters(struct stub *s)
{
	for (unsigned i = 0; i < s->nvcpus && s->running && s->lift.n == 0;
	    i++) {
		const struct vmi_event *ev = vmi_pending(s->v, i);
		struct vmi_response rsp;
		int r;

		if (!s->vcpus[i].mem_wait)
			continue;
		s->vcpus[i].mem_wait = false;
		if (ev == NULL || ev->kind != VMI_EVENT_MEMACCESS)
			continue;
		vmi_response_init(&rsp, ev);
		answer_access(s, ev, &rsp, vmi_stepping(s->v, i));
		r = vmi_respond(s->v, i, &rsp);
		if (r < 0)
			log_warn("vCPU %u: answer to its memory access: %s", i,
			    strerror(-r));
	}
}

static int
on_event(void *ctx, struct vmi *v, const struct vmi_event *ev,
    struct vmi_response *rsp)
{
	struct stub *s = ctx;
	struct stub_vcpu *vc;
	struct stub_stop st;
	int ours, verdict;

	s->stats.events++;
	if (rsp == NULL) {
		if (ev->kind == VMI_EVENT_DOMAIN_SHUTDOWN) {
			/* Over for the debugger too, whatever the toolstack does
			 * next: a crashed domain kept for inspection
			 * (on_crash="preserve") never goes away by itself, and
			 * gdb would wait for a stop forever. */
			log_info("domain %u shut down (reason %d)", s->domid,
			    ev->u.shutdown.reason);
			s->gone_reason = ev->u.shutdown.reason;
			s->gone = true;
		} else if (ev->kind == VMI_EVENT_DOMAIN_GONE) {
			if (!s->gone)
				log_info("domain %u is gone", s->domid);
			s->gone = true;
		}
		return 0;
	}
	vc = &s->vcpus[ev->vcpu];
	log_debug("event %s vcpu %u rip %#llx cause %s slot %d%s",
	    vmi_event_kind_name(ev->kind), ev->vcpu,
	    (unsigned long long)ev->regs.rip,
	    ev->kind == VMI_EVENT_DEBUG ?
	    vmi_debug_cause_name(ev->u.debug.cause) : "-",
	    ev->kind == VMI_EVENT_DEBUG ? ev->u.debug.slot : -1,
	    s->running ? "" : " (stopped)");
	if (ev->kind == VMI_EVENT_MEMACCESS)
		log_debug("access %s%s%s frame %#llx+%#llx linear %#llx%s",
		    ev->u.mem.access & VMI_ACCESS_R ? "r" : "",
		    ev->u.mem.access & VMI_ACCESS_W ? "w" : "",
		    ev->u.mem.access & VMI_ACCESS_X ? "x" : "",
		    (unsigned long long)ev->u.mem.gfn,
		    (unsigned long long)ev->u.mem.offset,
		    (unsigned long long)ev->u.mem.gla,
		    ev->u.mem.gla_valid ? "" : " (not valid)");
	if (ev->sync && s->lift.n > 0 && s->lift.vcpu == ev->vcpu &&
	    lift_event(s, ev, rsp, &verdict))
		return verdict;
	/* Parked: held until gdb resumes it. A #DB of unknown cause on a
	 * parked vCPU is the park too: in the lab a vCPU that comes back from
	 * the guest's own #BP handler with RF set traps one instruction past
	 * DR3 (seen at the tiny guest's self-test int3), and re-injecting it
	 * would hand the guest a #DB with no cause and let the vCPU run on. */
	if (vc->parked && (ev->kind == VMI_EVENT_SINGLESTEP ||
	    ev->kind == VMI_EVENT_MEMACCESS || (ev->kind == VMI_EVENT_DEBUG &&
	    ev->u.debug.cause != VMI_DEBUG_WATCH)))
		return VMI_HOLD;
	if (ev->kind == VMI_EVENT_DEBUG &&
	    ev->u.debug.cause == VMI_DEBUG_STALE_STEP) {
		/* Not a stop and not the guest's: just take TF off. */
		vmi_response_step(v, ev, rsp, false);
		return VMI_RESUME;
	}
	ours = vmi_event_ours(v, ev);
	if (ours <= 0) {
		if ((ev->kind == VMI_EVENT_SWBREAK ||
		    ev->kind == VMI_EVENT_DEBUG) && vmi_has(v, VMI_CAP_REINJECT)) {
			rsp->flags |= VMI_RSP_REINJECT;
			s->stats.reinjected++;
		}
		return VMI_RESUME;
	}
	if (!s->running || s->lift.report) {
		/* Judged when gdb resumes this vCPU: by then gdb has put its
		 * breakpoints back, and a hit on one it removed for good is
		 * dropped (stub_resume). */
		classify_stop(s, ev, &vc->stop);
		vc->stop.valid = true;
		return VMI_HOLD;
	}
	if (ev->kind == VMI_EVENT_MEMACCESS)
		return mem_event(s, ev, rsp);
	if (!classify_stop(s, ev, &st)) {
		/* Not a stop (a breakpoint gdb removed): re-execute. */
		if (vmi_stepping(v, ev->vcpu) && vc->act == STUB_ACT_CONT)
			vmi_response_step(v, ev, rsp, false);
		return VMI_RESUME;
	}
	if (st.reason == RSP_STOP_NONE && (ev->kind == VMI_EVENT_DEBUG ||
	    ev->kind == VMI_EVENT_SINGLESTEP)) {
		if (in_range(vc, ev->regs.rip)) {
			s->stats.steps++;
			ev_timer_again(s->loop, &s->step_watch);
			vmi_response_step(v, ev, rsp, true);
			return VMI_RESUME;
		}
		if (vc->act == STUB_ACT_CONT) {
			/* A step asked for before gdb changed its mind. */
			vmi_response_step(v, ev, rsp, false);
			return VMI_RESUME;
		}
	}
	vc->stop = st;
	all_stop(s, ev->vcpu);
	return VMI_HOLD;
}

/* The events handled (0 when none), for the timer's count of late ones. */
int
stub_on_events(struct stub *s)
{
	int r = 0;

	if (s->v == NULL)
		return 0;
	if (!s->gone) {
		r = vmi_dispatch(s->v);
		if (r < 0 && r != -ESRCH)
			log_warn("events: %s", strerror(-r));
	}
	if (!s->gone && vmi_domain_state(s->v) == VMI_DOM_GONE)
		s->gone = true;
	if (!s->gone)
		serve_waiters(s);
	if (s->gone) {
		bool tell = s->running;

		stub_detach(s);
		if (tell && s->conn != NULL) {
			rsp_reply_reset(&s->conn->reply);
			stub_exit_reply(s, &s->conn->reply);
			stub_conn_send(s->conn);
		}
	}
	return r > 0 ? r : 0;
}

/* ---- resume ------------------------------------------------------------------ */

static bool
matches(const struct rsp_vcont_action *a, unsigned vcpu)
{
	if (!a->has_thread)
		return true;
	return a->thread.tid == RSP_ID_ALL || a->thread.tid == RSP_ID_ANY ||
	    a->thread.tid == (int64_t)vcpu + 1;
}

static void
assign(struct stub *s, const struct rsp_vcont_action *acts, size_t n)
{
	for (unsigned i = 0; i < s->nvcpus; i++) {
		struct stub_vcpu *vc = &s->vcpus[i];

		vc->act = STUB_ACT_STOP;
		/* The leftmost action that matches the thread applies. */
		for (size_t k = 0; k < n; k++) {
			if (!matches(&acts[k], i))
				continue;
			switch (acts[k].op) {
			case RSP_VCONT_CONTINUE:
			case RSP_VCONT_CONTINUE_SIG:
				vc->act = STUB_ACT_CONT;
				break;
			case RSP_VCONT_STEP:
			case RSP_VCONT_STEP_SIG:
				vc->act = STUB_ACT_STEP;
				break;
			case RSP_VCONT_RANGE:
				vc->act = STUB_ACT_RANGE;
				vc->range_start = acts[k].start;
				vc->range_end = acts[k].end;
				break;
			case RSP_VCONT_STOP:
				vc->act = STUB_ACT_STOP;
				break;
			}
			break;
		}
	}
}

/* A queued stop still stands if the breakpoint or watchpoint that caused
 * it is still there (gdb re-inserts before resuming). */
static bool
still_stands(struct stub *s, unsigned vcpu)
{
	const struct vmi_event *ev = vmi_pending(s->v, vcpu);
	struct stub_stop st;

	if (ev == NULL)
		return false;
	return classify_stop(s, ev, &st);
}

/*
 * DR3 at the vCPU's RIP traps before anything there runs; a single step
 * as well, because the RIP a paused vCPU reports is not always where it
 * goes next: with a trap still to be delivered (the guest's own int3,
 * re-injected) it enters the guest's handler and comes back elsewhere
 * (seen in the lab: vCPU 0 ran past a removed breakpoint).
 */
/*
 * A park holds a vCPU only if it gets back to its RIP first, and it may
 * not: an interrupt on the way back to user space can schedule another
 * task, which then runs where gdb took a breakpoint out to step another
 * vCPU over it (seen in the lab: calls of the hot function passed
 * unreported, every time from a park at a user-space RIP). So while a
 * vCPU steps, the parked ones also stop where it steps from (also, from
 * stub_resume); held there, they meet the breakpoint gdb puts back as
 * soon as they are resumed.
 */
static int
park(struct stub *s, unsigned i, const uint64_t *also)
{
	int r = vmi_park(s->v, i, STUB_PARK_SLOT, also);
	struct vmi_regs regs;

	if (r == 0) {
		s->vcpus[i].parked = true;
		s->stats.parks++;
		if (stub_log_level >= STUB_LOG_DEBUG &&
		    vmi_get_regs(s->v, i, &regs) == 0)
			log_debug("vCPU %u parked at %#llx", i,
			    (unsigned long long)regs.g.rip);
	} else if (r == -ENODATA) {
		/* Down: it runs nothing to hold. */
		log_debug("vCPU %u is offline, not parked", i);
	} else {
		log_warn("cannot hold vCPU %u while others run: %s", i,
		    strerror(-r));
	}
	return r;
}

static int
release(struct stub *s, unsigned i)
{
	struct stub_vcpu *vc = &s->vcpus[i];
	const struct vmi_event *ev;
	struct vmi_response rsp;
	bool step = vc->act == STUB_ACT_STEP || vc->act == STUB_ACT_RANGE;
	int r = 0;

	if (vc->parked) {
		r = vmi_unpark(s->v, i);
		vc->parked = false;
	}
	/* gdb steps a thread over a breakpoint it took out: should the
	 * vCPU take an interrupt first and come back to that address from
	 * elsewhere (another task), it stops there, not passes it. */
	if (vc->act == STUB_ACT_STEP)
		vmi_step_guard_next(s->v, i);
	ev = vmi_pending(s->v, i);
	if (ev != NULL) {
		vmi_response_init(&rsp, ev);
		if (step || vmi_stepping(s->v, i))
			r = vmi_response_step(s->v, ev, &rsp, step);
		if (r == 0 && ev->kind == VMI_EVENT_MEMACCESS)
			mem_pass(s, ev, &rsp, step);
		if (r == 0)
			r = vmi_respond(s->v, i, &rsp);
	} else if (step || vmi_stepping(s->v, i)) {
		r = vmi_step_arm(s->v, i, step);
	}
	return r;
}

/* The domain's stop pause given back: the target runs until its next
 * stop reply. */
static int
go(struct stub *s)
{
	int r;

	stub_regs_forget(s);
	s->running = true;
	r = vmi_unpause(s->v);
	if (r < 0) {
		s->running = false;
		return r;
	}
	if (stepping_vcpu(s) >= 0 || s->lift.n > 0)
		ev_timer_again(s->loop, &s->step_watch);
	return STUB_REPLY_LATER;
}

/* A vCPU gdb resumes is held by a memory access that hits a watchpoint
 * (raised while the target was stopping): it steps over it alone first,
 * and the hit is the stop reply. Returns -ENOENT if there is none (or it
 * cannot be stepped: release() then has Xen emulate it). */
static int
resume_hit(struct stub *s)
{
	for (unsigned i = 0; i < s->nvcpus; i++) {
		const struct vmi_event *ev = vmi_pending(s->v, i);
		const struct stub_bp *b;
		struct vmi_response rsp;
		int r;

		if (s->vcpus[i].act == STUB_ACT_STOP || ev == NULL ||
		    ev->kind != VMI_EVENT_MEMACCESS || (b = hit(s, ev)) == NULL)
			continue;
		vmi_response_init(&rsp, ev);
		r = watch_hit(s, ev, b, &rsp);
		if (r < 0) {
			watch_hit_failed(ev, &rsp, r);
			return -ENOENT;
		}
		r = vmi_respond(s->v, i, &rsp);
		return r < 0 ? r : go(s);
	}
	return -ENOENT;
}

/* Returns STUB_REPLY_LATER when the reply is a stop reply to send later, 0 when
 * one was written now (a queued stop, or the domain gone). */
int
stub_resume(struct stub *s, const struct rsp_vcont_action *acts, size_t n)
{
	struct rsp_reply *out = &s->conn->reply;
	struct vmi_regs sregs;
	int r = 0, stepper;

	if (s->v == NULL) {
		if (!s->gone)
			return -ESRCH;
		stub_exit_reply(s, out);
		return 0;
	}
	if (s->running)
		return -EBUSY;
	/* Events still in the ring join the queue first. */
	vmi_dispatch(s->v);
	if (s->gone) {
		stub_detach(s);
		stub_exit_reply(s, out);
		return 0;
	}
	assign(s, acts, n);
	for (unsigned i = 0; i < s->nvcpus; i++) {
		struct stub_vcpu *vc = &s->vcpus[i];

		if (!vc->stop.valid || vc->act == STUB_ACT_STOP)
			continue;
		if (still_stands(s, i)) {
			stub_stop_reply(s, i, &vc->stop, out);
			vc->stop.valid = false;
			s->stats.stops++;
			return 0;
		}
		vc->stop.valid = false;
	}
	r = resume_hit(s);
	if (r != -ENOENT)
		return r;
	r = 0;
	stepper = stepping_vcpu(s);
	if (stepper >= 0 && vmi_get_regs(s->v, (unsigned)stepper, &sregs) != 0)
		stepper = -1;
	for (unsigned i = 0; i < s->nvcpus && r == 0; i++) {
		struct stub_vcpu *vc = &s->vcpus[i];

		if (vc->act == STUB_ACT_STOP) {
			if (vmi_pending(s->v, i) == NULL && !vc->parked)
				park(s, i, stepper >= 0 ? &sregs.g.rip : NULL);
			continue;
		}
		r = release(s, i);
	}
	if (r < 0) {
		log_error("resume: %s", strerror(-r));
		return r;
	}
	return go(s);
}

int
stub_interrupt(struct stub *s)
{
	struct stub_stop st = { .valid = true, .signo = 2 };
	unsigned vcpu;
	int r;

	/* A watchpoint hit being stepped over is one instruction from its
	 * stop reply, which answers the interrupt as well. */
	if (s->v == NULL || !s->running || s->lift.report)
		return 0;
	r = vmi_pause(s->v);
	if (r < 0) {
		log_error("interrupt: pause: %s", strerror(-r));
		return r;
	}
	stopped(s);
	vcpu = s->gvcpu < s->nvcpus ? s->gvcpu : 0;
	if (s->conn != NULL) {
		rsp_reply_reset(&s->conn->reply);
		stub_stop_reply(s, vcpu, &st, &s->conn->reply);
		stub_conn_send(s->conn);
	}
	return 0;
}

/*
 * A step that never ends. A vCPU stepped while gdb keeps the others
 * stopped (gdb steps one thread over a breakpoint) can be sent by an
 * interrupt into code that waits for one of the stopped vCPUs (an IPI, a
 * lock): seen in the lab, a Linux vCPU stepped from vfs_read went idle
 * while its partner was parked, and gdb waited for ever. After
 * STEP_WATCH_S without a step event the target is stopped where it is and
 * the stepping vCPU reported, as if the step had ended there: gdb looks at
 * where it is and goes on, and the guest gets its other vCPUs back.
 */
#define STEP_WATCH_S 0.5

static void
on_step_watch(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct stub *s = w->data;
	struct stub_stop st = { .valid = true, .signo = 5 };
	int step = s->lift.n > 0 ? (int)s->lift.vcpu : stepping_vcpu(s);
	unsigned vcpu = step < 0 ? 0 : (unsigned)step;
	int r;

	if (s->lift.report)
		st = s->lift.stop;
	ev_timer_stop(loop, w);
	if (s->v == NULL || !s->running)
		return;
	log_warn("vCPU %u did not finish its step in %.1f s (waiting for a "
	    "stopped vCPU?): stopped where it is", vcpu, STEP_WATCH_S);
	s->stats.step_timeouts++;
	r = vmi_pause(s->v);
	if (r < 0) {
		log_error("step watchdog: pause: %s", strerror(-r));
		return;
	}
	stopped(s);
	s->vcpus[vcpu].stop = st;
	report(s, vcpu);
}

void
stub_step_watch_init(struct stub *s)
{
	ev_timer_init(&s->step_watch, on_step_watch, STEP_WATCH_S,
	    STEP_WATCH_S);
	s->step_watch.data = s;
}
