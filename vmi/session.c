/*
 * session.c - one introspection session: capabilities, events and their
 * answers, held vCPUs, registers, stepping, hardware breakpoints, and the
 * teardown that puts the guest back as it was.
 *
 * Teardown order (vmi_teardown):
 *   1. handler cleanup   - the handler removes what it owns (breakpoints)
 *   2. pause the domain  - nothing runs while state is put back; events
 *                          still in the ring join the held vCPUs
 *   3. restore           - patched bytes, p2m access, DR0-3/DR7, TF
 *   4. answer pending    - every held vCPU, plus events still in the ring;
 *                          the guest's own int3/#DB are re-injected; then
 *                          MTF off on every vCPU (mtf_all_off)
 *   5. monitors off      - after step 4: a vCPU paused by a synchronous
 *                          event stays paused after xc_monitor_disable
 *                          unless its request was answered (XEN-LAB.md)
 *   6. unpause           - the teardown's pause and every pause still held
 *   7. close             - mappings, then the driver
 * Restoring (3) before answering (4) lets step 4 decide, from the restored
 * memory, whether an int3 under a held vCPU is the guest's own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "vmi_insn.h"

#define DRAIN_BATCH 64
#define DISPATCH_ROUNDS 8
#define INT3 0xCC

/* DR7 fields (SDM vol. 3B, 17.2.4): L/G enable pairs, R/W and LEN. */
#define DR7_ENABLE(slot)  (3ULL << (2 * (slot)))
#define DR7_RW_SHIFT(slot)  (16 + 4 * (slot))
#define DR7_LEN_SHIFT(slot) (18 + 4 * (slot))
#define DR7_SLOT_MASK(slot) (DR7_ENABLE(slot) | (15ULL << DR7_RW_SHIFT(slot)))
#define DR7_GE_LE         (3ULL << 8)
#define DR6_BS            (1ULL << 14)
#define STEP_BIT          (1u << VMI_STEP_SLOT)
/* CS.L in the attribute format of hvm_hw_cpu (Xen's segment_register:
 * type 4, s 1, dpl 2, p 1, avl 1, l 1, db 1, g 1). */
#define CS_AR_L           (1u << 9)

static void note_signal(struct vmi *v);
static void domain_lost(struct vmi *v, enum vmi_domstate st, int reason);
static int slot_clear(struct vmi *v, unsigned vcpu, unsigned slot,
    uint64_t dr6_mask);
static void arm_slot(struct vmi_vcpu *vc, struct vmi_regs *regs,
    unsigned slot, uint64_t addr, enum vmi_hw_kind kind, uint64_t lenbits);
static void slot_armed(struct vmi_vcpu *vc, unsigned slot, uint64_t addr,
    enum vmi_hw_kind kind);
static void slot_restore(const struct vmi_vcpu *vc, struct vmi_regs *regs,
    unsigned slot);
static void slot_given_back(struct vmi_vcpu *vc, unsigned slot);
static int step_arm(struct vmi *v, unsigned vcpu, bool on, bool use_slot);

int
vmi_check_live(const struct vmi *v)
{
	if (v->torn_down)
		return -ESHUTDOWN;
	if (v->state == VMI_DOM_GONE)
		return -ESRCH;
	return 0;
}

/* An -ESRCH from the driver means the domain went away under us: turn it
 * into one DOMAIN_GONE event instead of a stream of errors. */
static int
drv_result(struct vmi *v, int r)
{
	if (r == -ESRCH)
		domain_lost(v, VMI_DOM_GONE, 0);
	return r;
}

/* The vCPU cannot run, so its registers cannot change under us. */
static bool
frozen(const struct vmi *v, unsigned vcpu)
{
	return v->pauses > 0 || v->vcpus[vcpu].has_pending;
}

static void
regs_forget(struct vmi *v, unsigned vcpu)
{
	v->vcpus[vcpu].regs_cached = false;
	v->vcpus[vcpu].regs_dirty = false;
}

/* Give the driver the light write vmi_set_regs() kept back, before the
 * vCPU may run. */
static int
regs_flush(struct vmi *v, unsigned vcpu)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];
	int r;

	if (!vc->regs_dirty)
		return 0;
	vc->regs_dirty = false;
	v->st.regs_light_writes++;
	r = drv_result(v, v->ops->set_light_regs(v->drv, vcpu, &vc->regs_cache));
	if (r != 0) {
		v->st.regs_write_errors++;
		regs_forget(v, vcpu);
	}
	return r;
}

static void
regs_remember(struct vmi *v, unsigned vcpu, const struct vmi_regs *r)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];

	vc->regs_cached = frozen(v, vcpu);
	if (vc->regs_cached)
		vc->regs_cache = *r;
}

/* ---- open / capabilities ------------------------------------------------ */

int
vmi_open(struct vmi **out, struct vmi_driver *drv,
    const struct vmi_config *cfg)
{
	const struct vmi_driver_ops *ops = drv->ops;
	struct vmi_info info;
	struct vmi *v;
	int r, reason = 0;

	*out = NULL;
	if (ops->close == NULL || ops->info == NULL || ops->get_regs == NULL ||
	    ops->map == NULL || ops->unmap == NULL || ops->pause == NULL ||
	    ops->unpause == NULL || ops->domain_state == NULL) {
		ops->close(drv);
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		ops->close(drv);
		return -ENOMEM;
	}
	v->drv = drv;
	v->ops = ops;
	r = ops->info(drv, &info);
	if (r == 0 && info.nr_vcpus == 0)
		r = -EPROTO;
	if (r == 0) {
		v->nr_vcpus = info.nr_vcpus;
		v->vcpus = calloc(info.nr_vcpus, sizeof(*v->vcpus));
		if (v->vcpus == NULL)
			r = -ENOMEM;
		for (unsigned i = 0; r == 0 && i < info.nr_vcpus; i++)
			v->vcpus[i].park_slot = v->vcpus[i].park_also = -1;
	}
	if (r == 0)
		r = vmi_cache_init(&v->cache, drv,
		    cfg && cfg->cache_chunk_frames ? cfg->cache_chunk_frames : 64,
		    cfg && cfg->cache_max_chunks ? cfg->cache_max_chunks : 256);
	if (r == 0)
		r = ops->domain_state(drv, &v->state, &reason);
	if (r == 0 && v->state == VMI_DOM_GONE)
		r = -ESRCH;
	if (r != 0) {
		vmi_cache_fini(&v->cache);
		free(v->vcpus);
		free(v);
		ops->close(drv);
		return r;
	}
	*out = v;
	return 0;
}

void
vmi_set_handler(struct vmi *v, const struct vmi_handler *h)
{
	v->has_handler = h != NULL;
	if (h != NULL)
		v->h = *h;
}

static bool
events(const struct vmi_driver_ops *o)
{
	return o->drain != NULL && o->respond != NULL && o->flush != NULL &&
	    o->event_fd != NULL;
}

bool
vmi_has(const struct vmi *v, enum vmi_cap cap)
{
	const struct vmi_driver_ops *o = v->ops;

	switch (cap) {
	case VMI_CAP_WRITE_MEM:
		return o->write_mem;
	case VMI_CAP_SET_REGS:
		return o->set_regs != NULL;
	case VMI_CAP_SWBREAK:
		return events(o) && o->monitor_swbreak != NULL;
	case VMI_CAP_DEBUG_EXC:
		return events(o) && o->monitor_debug != NULL;
	case VMI_CAP_HWBREAK:
	case VMI_CAP_WATCH:
		return vmi_has(v, VMI_CAP_DEBUG_EXC) && o->set_regs != NULL;
	case VMI_CAP_MTF:
		return events(o) && o->monitor_mtf != NULL && o->mtf_arm != NULL;
	case VMI_CAP_STEP:
		return vmi_has(v, VMI_CAP_MTF) || vmi_has(v, VMI_CAP_HWBREAK);
	case VMI_CAP_REINJECT:
		return o->reinject != NULL;
	case VMI_CAP_MEMACCESS:
		return events(o) && o->set_mem_access != NULL;
	case VMI_CAP_COUNT:
		break;
	}
	return false;
}

const char *
vmi_cap_name(enum vmi_cap cap)
{
	static const char *const names[VMI_CAP_COUNT] = {
		"write-mem", "set-regs", "swbreak", "debug-exception", "hwbreak",
		"watch", "mtf", "step", "reinject", "mem-access",
	};

	return cap < VMI_CAP_COUNT ? names[cap] : "?";
}

enum vmi_step_mech
vmi_step_mechanism(const struct vmi *v, const char **why)
{
	enum vmi_step_mech m = VMI_STEP_NONE;
	const char *w = "neither monitor single-step nor #DB events with "
	    "register writes are available";

	if (vmi_has(v, VMI_CAP_MTF)) {
		m = VMI_STEP_MTF;
		w = "the hypervisor offers monitor single-step (MTF)";
	} else if (vmi_has(v, VMI_CAP_HWBREAK)) {
		m = VMI_STEP_TF;
		w = "no monitor single-step; RFLAGS.TF with #DB events";
	}
	if (v->ops->step_why != NULL && m != VMI_STEP_NONE)
		w = v->ops->step_why;
	if (why != NULL)
		*why = w;
	return m;
}

const char *
vmi_step_mech_name(enum vmi_step_mech m)
{
	switch (m) {
	case VMI_STEP_MTF: return "mtf";
	case VMI_STEP_TF:  return "tf";
	case VMI_STEP_NONE: break;
	}
	return "none";
}

int
vmi_info(struct vmi *v, struct vmi_info *out)
{
	int r = vmi_check_live(v);

	return r ? r : drv_result(v, v->ops->info(v->drv, out));
}

unsigned
vmi_nr_vcpus(const struct vmi *v)
{
	return v->nr_vcpus;
}

enum vmi_domstate
vmi_domain_state(const struct vmi *v)
{
	return v->state;
}

/* ---- events -------------------------------------------------------------- */

void
vmi_response_init(struct vmi_response *r, const struct vmi_event *ev)
{
	r->flags = 0;
	r->regs = ev->regs;
}

int
vmi_event_as(const struct vmi_event *ev, struct vmi_as *as)
{
	struct vmi_regs r = { .cr0 = ev->cr0, .cr3 = ev->cr3, .cr4 = ev->cr4,
	    .efer = ev->efer };

	return vmi_as_from_regs(&r, as);
}

const char *
vmi_event_kind_name(enum vmi_event_kind k)
{
	switch (k) {
	case VMI_EVENT_SWBREAK:         return "swbreak";
	case VMI_EVENT_DEBUG:           return "debug";
	case VMI_EVENT_SINGLESTEP:      return "singlestep";
	case VMI_EVENT_MEMACCESS:       return "memaccess";
	case VMI_EVENT_DOMAIN_SHUTDOWN: return "domain-shutdown";
	case VMI_EVENT_DOMAIN_GONE:     return "domain-gone";
	case VMI_EVENT_OTHER:           break;
	}
	return "other";
}

const char *
vmi_debug_cause_name(enum vmi_debug_cause c)
{
	switch (c) {
	case VMI_DEBUG_STEP:    return "step";
	case VMI_DEBUG_HWBREAK: return "hwbreak";
	case VMI_DEBUG_WATCH:   return "watch";
	case VMI_DEBUG_STALE_STEP: return "stale-step";
	case VMI_DEBUG_UNKNOWN: break;
	}
	return "unknown";
}

/*
 * Decide what raised a #DB. DR6 (or the VT-x style pending_dbg) in the
 * event would name it if the hypervisor filled them in. Xen 4.17 does on
 * neither vendor: vm_event_fill_regs (xen/arch/x86/vm_event.c) copies dr6
 * from a context that neither vmx_save_vmcs_ctxt nor svm_save_vmcb_ctxt
 * fills, and both #DB intercepts pass pending_dbg as a literal 0
 * (xen/arch/x86/hvm/vmx/vmx.c, hvm/svm/svm.c); the lab sees 0 on AMD
 * (XEN-LAB.md). So the session uses what it armed itself: an execution
 * breakpoint of its own at this RIP; for its data watchpoints the live
 * DR6 of the vCPU, whose Bn bit the hardware set (the event's copy is 0,
 * the vCPU's is not; the session clears its own bits after each hit, see
 * consume_dr6, so a set bit is new); then a step it asked for. Anything
 * else is the guest's own, even while the session has slots armed (seen
 * in the lab: the tiny guest's own DR0 breakpoint, taken for a watchpoint
 * hit before this check read DR6).
 */
/* An execution breakpoint of the guest's own (not a slot the session
 * armed) is enabled at rip in these debug registers. */
static bool
guest_exec_bp_at(const struct vmi_vcpu *vc, const struct vmi_regs *regs,
    uint64_t rip)
{
	for (int s = 0; s < 4; s++) {
		if ((vc->hw_used & (1u << s)) || !(regs->dr7 & DR7_ENABLE(s)))
			continue;
		if (((regs->dr7 >> DR7_RW_SHIFT(s)) & 3) == VMI_HW_EXEC &&
		    regs->dr[s] == rip)
			return true;
	}
	return false;
}

/*
 * A #DB while the session steps by TF is its step, except the fault of an
 * execution breakpoint of the guest's own at the RIP the vCPU resumed
 * from: that fault comes before the instruction runs, so the vCPU did not
 * move and the step has not happened. Taken for the step, the guest's #DB
 * was never delivered and every further step faulted again at the same
 * RIP (seen in the lab: stepping into the tiny guest's tiny_hw_target,
 * where its DR0 sits, never got past the first instruction; vmi-probe's
 * hold-all livelocked there). Without DR6 from the event (above), the
 * vCPU's own DR7 and DR0-3 are the evidence; a RIP that did not move with
 * no guest breakpoint there (a rep iteration) is still a step.
 */
static bool
guest_exec_fault(struct vmi *v, const struct vmi_vcpu *vc,
    const struct vmi_event *ev)
{
	struct vmi_regs regs;

	return ev->regs.rip == vc->tf_rip &&
	    v->ops->get_regs(v->drv, ev->vcpu, &regs) == 0 &&
	    guest_exec_bp_at(vc, &regs, ev->regs.rip);
}

static void
classify(struct vmi *v, struct vmi_event *ev)
{
	struct vmi_vcpu *vc = &v->vcpus[ev->vcpu];
	uint64_t status = ev->u.debug.dr6 | ev->u.debug.pending_dbg;
	uint8_t watch = 0, used = vc->hw_used;
	struct vmi_regs regs;
	bool step_here = vc->dr_step &&
	    vc->hw_addr[VMI_STEP_SLOT] == ev->regs.rip;

	ev->u.debug.cause = VMI_DEBUG_UNKNOWN;
	ev->u.debug.slot = -1;
	vc->dr_step_hit = false;
	if (vc->dr_step)
		used &= (uint8_t)~STEP_BIT;   /* not a breakpoint: see below */
	for (int s = 0; s < 4; s++) {
		if (!(used & (1u << s)))
			continue;
		if (vc->hw_kind[s] != VMI_HW_EXEC)
			watch |= (uint8_t)(1u << s);
		else if (vc->hw_addr[s] == ev->regs.rip && !step_here)
			status |= 1ULL << s;
	}
	if (watch && !(status & used) &&
	    v->ops->get_regs(v->drv, ev->vcpu, &regs) == 0)
		status |= regs.dr6 & watch;
	for (int s = 0; s < 4; s++) {
		if ((status & (1ULL << s)) && (used & (1u << s))) {
			ev->u.debug.slot = s;
			ev->u.debug.cause = vc->hw_kind[s] == VMI_HW_EXEC ?
			    VMI_DEBUG_HWBREAK : VMI_DEBUG_WATCH;
			return;
		}
	}
	/* The step breakpoint after an instruction Xen completes itself
	 * (VMI_STEP_SLOT): a step, as TF would have reported it, even where
	 * an execution breakpoint of the session's sits too (TF's trap comes
	 * before that fault). A watchpoint the instruction hit comes first;
	 * the step breakpoint then faults on the next resume. */
	if (step_here) {
		ev->u.debug.cause = VMI_DEBUG_STEP;
		vc->dr_step_hit = true;
		/* A guard's hit: the step's TF went into an interrupt frame
		 * that has not come back yet, on whichever vCPU that context
		 * next runs. */
		if (vc->guard)
			for (unsigned i = 0; i < v->nr_vcpus; i++)
				v->vcpus[i].tf_stale = true;
		vc->dr6_dirty |= 1ULL << VMI_STEP_SLOT;
		return;
	}
	if (vc->tf) {
		if (!guest_exec_fault(v, vc, ev))
			ev->u.debug.cause = VMI_DEBUG_STEP;
	} else if (vc->tf_stale && (ev->regs.rflags & VMI_RFLAGS_TF)) {
		/* Seen in the lab: a parked Linux vCPU took an interrupt
		 * before its step trap, TF went off with the park, and the
		 * copy in the interrupt frame trapped later; re-injected,
		 * that #DB hit the kernel's NMI-like exc_debug path and
		 * panicked it. Once: the guest's own stepping stays its own. */
		ev->u.debug.cause = VMI_DEBUG_STALE_STEP;
		/* A kernel keeps copies in nested frames (interrupt inside
		 * interrupt, exception entry): stay on the watch there. In
		 * user space one copy at most, and after it the guest's own
		 * stepping (ptrace) is its own again. */
		if (!(ev->regs.rip >> 63))
			vc->tf_stale = false;
	}
}

/*
 * Whose int3 trapped? The session's if it is patched in now. If it is not,
 * the guest's own only if an int3 is still in memory there: the guest's
 * int3s stay put, while a byte that is no longer 0xCC means the session
 * removed its breakpoint after this vCPU hit it (the event was queued
 * meanwhile), and re-injecting that would make the guest skip a byte of
 * a real instruction.
 */
static int
swbreak_ours(struct vmi *v, const struct vmi_event *ev)
{
	struct vmi_as as;
	struct vmi_xlate x;
	uint8_t b;
	int r = vmi_event_as(ev, &as);

	if (r == 0)
		r = vmi_translate(v, &as, ev->regs.rip, &x);
	if (r != 0)
		return r;
	if (vmi_patched_original(v, x.gpa, &b) == 0)
		return 1;
	r = vmi_read_phys(v, x.gpa, &b, 1, 0, NULL);
	if (r != 0)
		return r;
	return b != INT3;
}

int
vmi_event_ours(struct vmi *v, const struct vmi_event *ev)
{
	switch (ev->kind) {
	case VMI_EVENT_SWBREAK:
		return swbreak_ours(v, ev);
	case VMI_EVENT_DEBUG:
		return ev->u.debug.cause != VMI_DEBUG_UNKNOWN;
	case VMI_EVENT_SINGLESTEP:
		return ev->vcpu < v->nr_vcpus && v->vcpus[ev->vcpu].mtf;
	default:
		return 1;
	}
}

/* Without a handler: give the guest back its own traps and hold the vCPUs
 * that stopped on the session's, for whoever drives it to answer. */
static int
default_verdict(struct vmi *v, const struct vmi_event *ev,
    struct vmi_response *rsp)
{
	int ours = vmi_event_ours(v, ev);

	if (ours == 0 && vmi_has(v, VMI_CAP_REINJECT) &&
	    (ev->kind == VMI_EVENT_SWBREAK || ev->kind == VMI_EVENT_DEBUG)) {
		rsp->flags |= VMI_RSP_REINJECT;
		return VMI_RESUME;
	}
	return ours == 1 ? VMI_HOLD : VMI_RESUME;
}

static void
report(struct vmi *v, const struct vmi_event *ev)
{
	if (v->has_handler && v->h.handle_event != NULL)
		v->h.handle_event(v->h.ctx, v, ev, NULL);
}

static void
domain_lost(struct vmi *v, enum vmi_domstate st, int reason)
{
	struct vmi_event ev = { .kind = VMI_EVENT_DOMAIN_GONE };

	if (st == VMI_DOM_GONE) {
		v->state = VMI_DOM_GONE;
		/* A dead domain answers nothing: forget what it held. */
		for (unsigned i = 0; i < v->nr_vcpus; i++)
			v->vcpus[i].has_pending = false;
		if (v->gone_reported)
			return;
		v->gone_reported = true;
	} else {
		if (v->state != VMI_DOM_GONE)
			v->state = st;
		if (st != VMI_DOM_SHUTDOWN || v->shutdown_reported)
			return;
		v->shutdown_reported = true;
		ev.kind = VMI_EVENT_DOMAIN_SHUTDOWN;
		ev.u.shutdown.reason = reason;
	}
	report(v, &ev);
}

/*
 * The step breakpoint fired: give the slot back (and its DR6 bit) before
 * the handler sees the stop, so the breakpoint cannot fire again and the
 * vCPU is left as a TF step would leave it. The vCPU is held, so the
 * registers read here serve the handler's reads too.
 */
static int
step_dr_done(struct vmi *v, unsigned vcpu)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];

	/* A guard goes at the vCPU's next event, hit or not. */
	if (!vc->dr_step || !(vc->dr_step_hit || vc->guard))
		return 0;
	return slot_clear(v, vcpu, VMI_STEP_SLOT, 1ULL << VMI_STEP_SLOT);
}

static int
deliver(struct vmi *v, struct vmi_event *ev)
{
	struct vmi_response rsp;
	struct vmi_vcpu *vc;
	int verdict, done, r = 0;

	if (ev->kind == VMI_EVENT_DOMAIN_GONE ||
	    ev->kind == VMI_EVENT_DOMAIN_SHUTDOWN) {
		domain_lost(v, ev->kind == VMI_EVENT_DOMAIN_GONE ?
		    VMI_DOM_GONE : VMI_DOM_SHUTDOWN, ev->u.shutdown.reason);
		return 0;
	}
	if (ev->vcpu >= v->nr_vcpus) {
		/* Never leave a vCPU stuck, even on nonsense. */
		if (ev->sync) {
			vmi_response_init(&rsp, ev);
			v->ops->respond(v->drv, ev, &rsp);
			v->need_flush = true;
		}
		return -EPROTO;
	}
	if (ev->kind == VMI_EVENT_DEBUG)
		classify(v, ev);
	vc = &v->vcpus[ev->vcpu];
	v->st.events++;
	vc->deferred = false;   /* it ran: the last answer's registers are in */
	vc->reinjected = false; /* and took what was re-injected */
	/* A dirty cache was read after this event was raised (the vCPU has
	 * not run since, or it would have been written): it stays. */
	if (!vc->regs_dirty)
		vc->regs_cached = false;
	if (ev->sync && vc->holding) {
		/* Whatever stopped it first, it is held now (vmi_hold_all). */
		vc->holding = false;
		vc->hold_tf = true;
		if (ev->kind == VMI_EVENT_DEBUG &&
		    ev->u.debug.cause == VMI_DEBUG_STEP && !vc->has_pending) {
			vc->pending = *ev;
			vc->has_pending = true;
			return step_dr_done(v, ev->vcpu);
		}
	}
	if (ev->sync) {
		/* A paused vCPU cannot raise a second synchronous event; if a
		 * driver says otherwise, answer the old one so none is lost. */
		if (vc->has_pending) {
			vmi_response_init(&rsp, &vc->pending);
			vmi_respond(v, ev->vcpu, &rsp);
			r = -EPROTO;
		}
		vc->pending = *ev;
		vc->has_pending = true;
		ev = &vc->pending;
	}
	done = step_dr_done(v, ev->vcpu);
	if (done < 0 && r == 0)
		r = done;
	vmi_response_init(&rsp, ev);
	if (v->has_handler && v->h.handle_event != NULL)
		verdict = v->h.handle_event(v->h.ctx, v, ev, &rsp);
	else
		verdict = default_verdict(v, ev, &rsp);
	if (verdict < 0 && r == 0)
		r = verdict;
	if (ev->sync && verdict != VMI_HOLD && vc->has_pending) {
		int rr = vmi_respond(v, vc->pending.vcpu, &rsp);

		if (rr < 0 && r == 0)
			r = rr;
	}
	return r;
}

static void
poll_handler(struct vmi *v)
{
	int res = 0;

	if (v->finished || !v->has_handler || v->h.poll == NULL)
		return;
	if (v->h.poll(v->h.ctx, v, &res)) {
		v->finished = true;
		v->result = res;
	}
}

static int
flush(struct vmi *v)
{
	if (!v->need_flush)
		return 0;
	v->need_flush = false;
	v->st.notifies++;
	return drv_result(v, v->ops->flush(v->drv));
}

int
vmi_dispatch(struct vmi *v)
{
	struct vmi_event evs[DRAIN_BATCH];
	int total = 0, err = 0;

	if (v->torn_down)
		return -ESHUTDOWN;
	note_signal(v);
	if (v->ops->drain == NULL || v->state == VMI_DOM_GONE)
		goto out;
	/* Rounds of drain, deliver, answer: the vCPUs just answered often
	 * raise their next events (steps) before the answers' notification
	 * has returned, and a next round takes them from the ring with no
	 * wait and no system call. Bounded, so that a guest stepped without
	 * end still lets the caller's loop see its other file descriptors. */
	for (unsigned round = 0; round < DISPATCH_ROUNDS; round++) {
		int n = 0, r;

		if (round > 0 && (v->finished || v->state == VMI_DOM_GONE))
			break;
		v->in_dispatch = true;
		for (;;) {
			n = v->ops->drain(v->drv, evs, DRAIN_BATCH);
			if (n < 0) {
				r = drv_result(v, n);
				if (err == 0)
					err = r;
				break;
			}
			for (int i = 0; i < n; i++) {
				r = deliver(v, &evs[i]);
				if (r < 0 && err == 0)
					err = r;
			}
			total += n;
			if (n < DRAIN_BATCH)
				break;
		}
		v->in_dispatch = false;
		r = flush(v);
		if (r < 0 && err == 0)
			err = r;
		if (n <= 0 || err != 0)
			break;
		poll_handler(v);
	}
out:
	poll_handler(v);
	return err ? err : total;
}

static int
refresh_state(struct vmi *v)
{
	enum vmi_domstate st;
	int reason = 0;
	int r = v->ops->domain_state(v->drv, &st, &reason);

	if (r == -ESRCH) {
		domain_lost(v, VMI_DOM_GONE, 0);
		return 0;
	}
	if (r < 0)
		return r;
	if (st == VMI_DOM_GONE || st == VMI_DOM_SHUTDOWN)
		domain_lost(v, st, reason);
	else if (v->state != VMI_DOM_GONE)
		v->state = st;
	return 0;
}

int
vmi_timeout(struct vmi *v)
{
	int r;

	if (v->torn_down)
		return -ESHUTDOWN;
	note_signal(v);
	r = v->state == VMI_DOM_GONE ? 0 : refresh_state(v);
	if (v->has_handler && v->h.handle_timeout != NULL)
		v->h.handle_timeout(v->h.ctx, v);
	poll_handler(v);
	return r;
}

int
vmi_event_fd(struct vmi *v)
{
	int r = vmi_check_live(v);

	if (r != 0)
		return r;
	if (v->ops->event_fd == NULL)
		return -EOPNOTSUPP;
	return v->ops->event_fd(v->drv);
}

void
vmi_interrupt(struct vmi *v, int signo)
{
	v->signo = signo;
}

bool
vmi_interrupted(const struct vmi *v)
{
	return v->signo != 0;
}

static void
note_signal(struct vmi *v)
{
	int s = v->signo;

	if (s == 0 || v->signo_seen != 0)
		return;
	v->signo_seen = s;
	if (v->has_handler && v->h.handle_interrupted != NULL)
		v->h.handle_interrupted(v->h.ctx, v, s);
	if (!v->has_handler || v->h.poll == NULL) {
		v->finished = true;
		v->result = -EINTR;
	}
}

bool
vmi_finished(struct vmi *v, int *result)
{
	note_signal(v);
	if (v->finished && result != NULL)
		*result = v->result;
	return v->finished;
}

const struct vmi_event *
vmi_pending(const struct vmi *v, unsigned vcpu)
{
	if (vcpu >= v->nr_vcpus || !v->vcpus[vcpu].has_pending)
		return NULL;
	return &v->vcpus[vcpu].pending;
}

/* Clear DR6 status bits, if set, on a vCPU (held or paused). */
static int
clear_dr6(struct vmi *v, unsigned vcpu, uint64_t mask)
{
	struct vmi_regs regs;
	int r = vmi_get_regs(v, vcpu, &regs);

	if (r != 0 || !(regs.dr6 & mask))
		return r;
	regs.dr6 &= ~mask;
	return vmi_set_regs(v, vcpu, &regs);
}

/*
 * A #DB the session caused leaves its status bits (BS for a step, Bn for
 * its DR slot) in the vCPU's DR6, which is sticky (SDM 17.2.3): the
 * guest's own next #DB handler would read them as its own (seen in the
 * lab: the tiny guest counted a single-step of its own after every
 * stepping session). Clear them once the session stops stepping this
 * vCPU, not after every step, so stepping stays one round trip.
 */
static int
consume_dr6(struct vmi *v, unsigned vcpu, const struct vmi_response *r)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];
	const struct vmi_event *ev = &vc->pending;
	bool tf_after = (r->flags & VMI_RSP_SET_REGS) ?
	    (r->regs.rflags & VMI_RFLAGS_TF) != 0 : vc->tf;
	bool mtf_after = vc->mtf != ((r->flags & VMI_RSP_TOGGLE_MTF) != 0);
	uint64_t mask;
	int ret;

	/* A step by breakpoint set B3, not BS, and step_dr_done cleared it. */
	if (ev->u.debug.cause == VMI_DEBUG_STEP && !vc->dr_step_hit)
		vc->dr6_dirty |= DR6_BS;
	else if (ev->u.debug.slot >= 0)
		vc->dr6_dirty |= 1ULL << ev->u.debug.slot;
	vc->dr_step_hit = false;
	/* Still stepping, the bits can wait, unless the guest is about to
	 * read DR6 in its own #DB handler: its breakpoint's fault while we
	 * step (guest_exec_fault) would otherwise count as a step of its
	 * own (seen in the lab: tiny's step counter moved). */
	if (vc->dr6_dirty == 0 || ((tf_after || mtf_after || vc->dr_step) &&
	    !(r->flags & VMI_RSP_REINJECT)))
		return 0;
	mask = vc->dr6_dirty;
	vc->dr6_dirty = 0;
	ret = clear_dr6(v, vcpu, mask);
	return ret == -EOPNOTSUPP ? 0 : ret;
}

int
vmi_respond(struct vmi *v, unsigned vcpu, const struct vmi_response *r)
{
	struct vmi_response hold_rsp;
	struct vmi_vcpu *vc;
	int ret;

	if (v->torn_down)
		return -ESHUTDOWN;
	if (vcpu >= v->nr_vcpus)
		return -EINVAL;
	vc = &v->vcpus[vcpu];
	if (!vc->has_pending)
		return -ENOENT;
	if ((r->flags & VMI_RSP_REINJECT) && v->ops->reinject == NULL)
		return -EOPNOTSUPP;
	if ((r->flags & VMI_RSP_TOGGLE_MTF) && !vmi_has(v, VMI_CAP_MTF))
		return -EOPNOTSUPP;
	/* Xen emulates only for a mem_access answer (or with instruction
	 * bytes the session never supplies) and ignores the flag otherwise
	 * (vm_event_emulate_check, xen/arch/x86/vm_event.c): say so rather
	 * than resume a vCPU the caller believes emulated. */
	if ((r->flags & VMI_RSP_EMULATE) &&
	    vc->pending.kind != VMI_EVENT_MEMACCESS)
		return -EINVAL;
	if (vc->hold_tf && !vc->step_req) {
		/* Released from vmi_hold_all() without a step asked for: take
		 * the holding step back off (its TF is in the live RFLAGS the
		 * event reported, so any register write would keep it). */
		hold_rsp = *r;
		if (vc->mtf) {
			hold_rsp.flags |= VMI_RSP_TOGGLE_MTF;
		} else {
			if (!(hold_rsp.flags & VMI_RSP_SET_REGS))
				hold_rsp.regs = vc->pending.regs;
			hold_rsp.flags |= VMI_RSP_SET_REGS;
			hold_rsp.regs.rflags &= ~VMI_RFLAGS_TF;
		}
		r = &hold_rsp;
	}
	vc->hold_tf = false;
	vc->step_req = false;
	if ((r->flags & VMI_RSP_SET_REGS) && !(r->regs.rflags & VMI_RFLAGS_TF))
		vc->tf = false;
	if (vc->tf)
		vc->tf_rip = (r->flags & VMI_RSP_SET_REGS) ? r->regs.rip :
		    vc->pending.regs.rip;
	if (vc->pending.kind == VMI_EVENT_DEBUG) {
		ret = consume_dr6(v, vcpu, r);
		if (ret < 0)
			return ret;
	}
	ret = regs_flush(v, vcpu);
	if (ret < 0)
		return ret;
	/* Inject before the response releases the vCPU, so the trap is
	 * delivered on the very resume that answers the event. */
	if (r->flags & VMI_RSP_REINJECT) {
		vc->reinjected = true;
		ret = v->ops->reinject(v->drv, &vc->pending);
		if (ret < 0)
			return drv_result(v, ret);
	}
	ret = v->ops->respond(v->drv, &vc->pending, r);
	if (ret < 0)
		return drv_result(v, ret);
	v->st.responses++;
	/* The response may change them, and the vCPU may run from now on. */
	regs_forget(v, vcpu);
	/* Xen applies a response's registers when the vCPU next resumes
	 * (hvm_vm_event_do_resume), and drops them if monitoring is disabled
	 * first (vm_event_cleanup_domain frees them). Teardown writes them
	 * itself, see apply_deferred. */
	if (r->flags & VMI_RSP_SET_REGS) {
		vc->deferred = true;
		vc->deferred_regs = r->regs;
		vc->deferred_from = vc->pending.regs;
	}
	if (r->flags & VMI_RSP_TOGGLE_MTF)
		vc->mtf = !vc->mtf;
	vc->has_pending = false;
	v->need_flush = true;
	return v->in_dispatch ? 0 : flush(v);
}

/* ---- execution control ---------------------------------------------------- */

int
vmi_pause(struct vmi *v)
{
	int r = vmi_check_live(v);

	if (r == 0)
		r = drv_result(v, v->ops->pause(v->drv));
	if (r == 0) {
		v->pauses++;
		v->st.pauses++;
	}
	return r;
}

int
vmi_unpause(struct vmi *v)
{
	int r = vmi_check_live(v);

	if (r != 0)
		return r;
	if (v->pauses == 0)
		return -EINVAL;  /* not ours to release */
	/* The vCPUs no event holds run once the last pause goes: their
	 * kept-back writes first. One that fails is counted (regs_flush)
	 * and the unpause goes on: a guest left paused is worse, and the
	 * domain is most likely going away. */
	for (unsigned i = 0; v->pauses == 1 && i < v->nr_vcpus; i++)
		if (!v->vcpus[i].has_pending && regs_flush(v, i) == -ESRCH)
			return -ESRCH;
	r = drv_result(v, v->ops->unpause(v->drv));
	if (r == 0) {
		v->pauses--;
		v->st.unpauses++;
	}
	/* vCPUs that no event holds may run from now on. */
	for (unsigned i = 0; r == 0 && v->pauses == 0 && i < v->nr_vcpus; i++)
		if (!v->vcpus[i].has_pending)
			regs_forget(v, i);
	return r;
}

unsigned
vmi_pause_count(const struct vmi *v)
{
	return v->pauses;
}

static int (*monitor_fn(const struct vmi *v, enum vmi_monitor m))
    (struct vmi_driver *, bool)
{
	switch (m) {
	case VMI_MON_SWBREAK: return events(v->ops) ? v->ops->monitor_swbreak : NULL;
	case VMI_MON_DEBUG:   return events(v->ops) ? v->ops->monitor_debug : NULL;
	case VMI_MON_MTF:     return events(v->ops) ? v->ops->monitor_mtf : NULL;
	case VMI_MON_COUNT:   break;
	}
	return NULL;
}

int
vmi_monitor(struct vmi *v, enum vmi_monitor m, bool on)
{
	int (*fn)(struct vmi_driver *, bool) = monitor_fn(v, m);
	int r = vmi_check_live(v);

	if (r != 0)
		return r;
	if (fn == NULL)
		return -EOPNOTSUPP;
	if (v->monitors[m] == on)
		return 0;
	r = drv_result(v, fn(v->drv, on));
	if (r == 0)
		v->monitors[m] = on;
	return r;
}

bool
vmi_monitoring(const struct vmi *v, enum vmi_monitor m)
{
	return m < VMI_MON_COUNT && v->monitors[m];
}

/*
 * Length of the instruction at rip if Xen completes it itself
 * (vmi_insn.h), else 0 and TF or MTF step it as before. The bytes come
 * through the mapping cache: no hypercall once the page is mapped; bytes
 * that cannot be read are "not special". regs: the vCPU's registers if
 * the caller has them (for CS.L); otherwise they are read only when the
 * answer depends on the mode (a 40-4F byte before an opcode of the set).
 * Instructions in an unreadable or MMIO-backed page are not seen here,
 * and MMIO accesses Xen emulates are not in the set (vmi/README.md).
 */
static unsigned
intercepted_len(struct vmi *v, unsigned vcpu, const struct vmi_as *as,
    uint64_t rip, uint64_t efer, const struct vmi_regs *regs)
{
	uint8_t b[VMI_INSN_MAX];
	struct vmi_regs live;
	size_t n = 0;
	unsigned l32, l64;

	if (!vmi_has(v, VMI_CAP_HWBREAK))
		return 0;
	vmi_read_virt(v, as, rip, b, sizeof(b), 0, &n, NULL);
	l32 = vmi_insn_intercepted(b, n, false);
	if (!(efer & VMI_EFER_LMA))
		return l32;
	l64 = vmi_insn_intercepted(b, n, true);
	if (l64 == l32)
		return l64;
	if (regs == NULL) {
		if (vmi_get_regs(v, vcpu, &live) != 0)
			return 0;
		regs = &live;
	}
	return (regs->seg[VMI_SEG_CS].ar & CS_AR_L) ? l64 : l32;
}

/* The step may take VMI_STEP_SLOT on this vCPU: free, or its own. */
static bool
step_slot_free(const struct vmi_vcpu *vc)
{
	return !(vc->hw_used & STEP_BIT) || vc->dr_step;
}

static void
step_slot_taken(struct vmi_vcpu *vc, uint64_t at)
{
	slot_armed(vc, VMI_STEP_SLOT, at, VMI_HW_EXEC);
	vc->dr_step = true;
}

/*
 * A held vCPU steps over an instruction Xen completes itself: the step
 * breakpoint at its end, written now (the response carries only the
 * general registers), and TF/MTF off in the response, as a step that
 * stops would have them. step_req stays false so that vmi_respond also
 * takes off a vmi_hold_all() step.
 */
static int
step_over_held(struct vmi *v, unsigned vcpu, struct vmi_response *r,
    uint64_t at)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];
	struct vmi_regs regs;
	int ret = step_slot_free(vc) ? 0 : -EBUSY;

	if (ret == 0)
		ret = vmi_monitor(v, VMI_MON_DEBUG, true);
	if (ret == 0)
		ret = vmi_get_regs(v, vcpu, &regs);
	if (ret != 0)
		return ret;
	arm_slot(vc, &regs, VMI_STEP_SLOT, at, VMI_HW_EXEC, 0);
	ret = vmi_set_regs(v, vcpu, &regs);
	if (ret != 0)
		return ret;
	step_slot_taken(vc, at);
	vc->step_req = false;
	if (vc->mtf)
		r->flags |= VMI_RSP_TOGGLE_MTF;
	else
		r->flags &= ~(unsigned)VMI_RSP_TOGGLE_MTF;
	if (vc->tf) {
		r->flags |= VMI_RSP_SET_REGS;
		r->regs.rflags &= ~VMI_RFLAGS_TF;
		vc->tf = false;
	}
	return 0;
}

void
vmi_step_guard_next(struct vmi *v, unsigned vcpu)
{
	if (vcpu < v->nr_vcpus)
		v->vcpus[vcpu].guard_next = true;
}

/* Take the guard asked for (vmi_step_guard_next): once, and only with
 * the step slot free (dropping: a step breakpoint of the vCPU's that this
 * write takes back), and not where the guest has an execution breakpoint
 * of its own: the guard's RF would keep that one from firing (seen in the
 * lab: a gdb stepi from tiny_hw_target, where tiny keeps DR0, and the
 * guest lost that hit). There the step goes without a guard. */
static bool
guard_want(struct vmi_vcpu *vc, bool dropping, const struct vmi_regs *regs,
    uint64_t rip)
{
	bool want = vc->guard_next && (dropping || step_slot_free(vc)) &&
	    !guest_exec_bp_at(vc, regs, rip);

	vc->guard_next = false;
	return want;
}

/* The guard of a held vCPU's TF step, at the RIP it resumes at (the
 * response's): the breakpoint written now (a response carries no debug
 * registers), RF in the response. */
static int
guard_held(struct vmi *v, unsigned vcpu, struct vmi_response *r)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];
	struct vmi_regs regs;
	int ret;

	if (!vc->guard_next)
		return 0;
	ret = vmi_get_regs(v, vcpu, &regs);
	if (ret != 0)
		vc->guard_next = false;
	if (ret != 0 || !guard_want(vc, false, &regs, r->regs.rip))
		return ret;
	arm_slot(vc, &regs, VMI_STEP_SLOT, r->regs.rip, VMI_HW_EXEC, 0);
	ret = vmi_set_regs(v, vcpu, &regs);
	if (ret != 0)
		return ret;
	step_slot_taken(vc, r->regs.rip);
	vc->guard = true;
	r->regs.rflags |= VMI_RFLAGS_RF;
	return 0;
}

int
vmi_response_step(struct vmi *v, const struct vmi_event *ev,
    struct vmi_response *r, bool on)
{
	struct vmi_vcpu *vc;
	struct vmi_as as;
	unsigned len = 0;
	int ret = 0;

	if (ev->vcpu >= v->nr_vcpus)
		return -EINVAL;
	vc = &v->vcpus[ev->vcpu];
	if (on && vmi_event_as(ev, &as) == 0)
		len = intercepted_len(v, ev->vcpu, &as, ev->regs.rip, ev->efer,
		    NULL);
	if (len > 0)
		return step_over_held(v, ev->vcpu, r, ev->regs.rip + len);
	/* A step breakpoint that never fired (the vCPU stopped elsewhere
	 * first): this step replaces it. */
	if (vc->dr_step) {
		ret = slot_clear(v, ev->vcpu, VMI_STEP_SLOT, 0);
		if (ret != 0)
			return ret;
	}
	vc->step_req = on;
	switch (vmi_step_mechanism(v, NULL)) {
	case VMI_STEP_MTF:
		if (on)
			ret = vmi_monitor(v, VMI_MON_MTF, true);
		if (ret == 0 && vc->mtf != on)
			r->flags |= VMI_RSP_TOGGLE_MTF;
		else
			r->flags &= ~(unsigned)VMI_RSP_TOGGLE_MTF;
		return ret;
	case VMI_STEP_TF:
		if (on)
			ret = vmi_monitor(v, VMI_MON_DEBUG, true);
		if (ret == 0 && on && vc->guard_next)
			ret = guard_held(v, ev->vcpu, r);
		if (ret != 0)
			return ret;
		r->flags |= VMI_RSP_SET_REGS;
		if (on)
			r->regs.rflags |= VMI_RFLAGS_TF;
		else
			r->regs.rflags &= ~VMI_RFLAGS_TF;
		vc->tf = on;
		return 0;
	case VMI_STEP_NONE:
		break;
	}
	return -EOPNOTSUPP;
}

bool
vmi_stepping(const struct vmi *v, unsigned vcpu)
{
	return vcpu < v->nr_vcpus && (v->vcpus[vcpu].tf ||
	    v->vcpus[vcpu].mtf || v->vcpus[vcpu].dr_step);
}

/* ---- registers ------------------------------------------------------------ */

/* The session is live and vcpu one of the domain's. */
static int
check_vcpu(struct vmi *v, unsigned vcpu)
{
	int ret = vmi_check_live(v);

	if (ret == 0 && vcpu >= v->nr_vcpus)
		ret = -EINVAL;
	return ret;
}

int
vmi_get_regs(struct vmi *v, unsigned vcpu, struct vmi_regs *r)
{
	int ret = check_vcpu(v, vcpu);

	if (ret != 0)
		return ret;
	if (v->vcpus[vcpu].regs_cached && frozen(v, vcpu)) {
		*r = v->vcpus[vcpu].regs_cache;
		v->st.regs_cached++;
		return 0;
	}
	v->st.regs_reads++;
	ret = drv_result(v, v->ops->get_regs(v->drv, vcpu, r));
	if (ret == 0)
		regs_remember(v, vcpu, r);
	return ret;
}

int
vmi_get_cr8(struct vmi *v, unsigned vcpu, uint64_t *cr8)
{
	int ret = check_vcpu(v, vcpu);

	if (ret != 0)
		return ret;
	if (v->ops->get_cr8 == NULL)
		return -EOPNOTSUPP;
	return drv_result(v, v->ops->get_cr8(v->drv, vcpu, cr8));
}

bool
vmi_regs_light_change(const struct vmi_regs *a, const struct vmi_regs *b)
{
	struct vmi_regs x = *a, y = *b;

	memset(&x.g, 0, sizeof(x.g));
	memset(&y.g, 0, sizeof(y.g));
	memset(x.dr, 0, sizeof(x.dr));
	memset(y.dr, 0, sizeof(y.dr));
	x.dr6 = y.dr6 = x.dr7 = y.dr7 = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

int
vmi_set_regs(struct vmi *v, unsigned vcpu, const struct vmi_regs *r)
{
	struct vmi_regs cur;
	int ret = check_vcpu(v, vcpu);

	if (ret != 0)
		return ret;
	if (v->ops->set_regs == NULL)
		return -EOPNOTSUPP;
	/* Breakpoints, watchpoints and TF change only the light part: one
	 * cheap write instead of the driver's full path, kept back while the
	 * vCPU cannot run (regs_dirty). */
	if (v->ops->set_light_regs != NULL &&
	    vmi_get_regs(v, vcpu, &cur) == 0 &&
	    vmi_regs_light_change(&cur, r)) {
		if (frozen(v, vcpu)) {
			/* regs_remember() below keeps r in the cache. */
			if (v->vcpus[vcpu].regs_dirty)
				v->st.regs_coalesced++;
			v->vcpus[vcpu].regs_dirty = true;
		} else {
			v->st.regs_light_writes++;
			ret = drv_result(v, v->ops->set_light_regs(v->drv,
			    vcpu, r));
		}
	} else {
		/* The full path writes every register: a write kept back
		 * goes first, in its order. */
		ret = regs_flush(v, vcpu);
		v->st.regs_writes++;
		if (ret == 0)
			ret = drv_result(v, v->ops->set_regs(v->drv, vcpu, r));
	}
	if (ret == 0)
		regs_remember(v, vcpu, r);
	else
		regs_forget(v, vcpu);
	/* A held vCPU's event carries the registers a later response writes
	 * back: keep them current so that response does not undo this. */
	if (ret == 0 && v->vcpus[vcpu].has_pending)
		v->vcpus[vcpu].pending.regs = r->g;
	return ret;
}

void
vmi_stats(const struct vmi *v, struct vmi_stats *out)
{
	*out = v->st;
}

/* A paused vCPU steps over an instruction Xen completes itself: the step
 * breakpoint and TF off in one register write, MTF off. */
static int
step_over_paused(struct vmi *v, unsigned vcpu, struct vmi_regs *regs,
    uint64_t at)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];
	int r = step_slot_free(vc) ? 0 : -EBUSY;

	if (r == 0)
		r = vmi_monitor(v, VMI_MON_DEBUG, true);
	if (r == 0 && vc->mtf) {
		r = drv_result(v, v->ops->mtf_arm(v->drv, vcpu, false));
		if (r == 0)
			vc->mtf = false;
	}
	if (r != 0)
		return r;
	arm_slot(vc, regs, VMI_STEP_SLOT, at, VMI_HW_EXEC, 0);
	if (vc->tf)
		regs->g.rflags &= ~VMI_RFLAGS_TF;
	r = vmi_set_regs(v, vcpu, regs);
	if (r == 0) {
		step_slot_taken(vc, at);
		vc->tf = false;
	}
	return r;
}

/* vmi_step_arm; use_slot false: never by breakpoint (vmi_park's own
 * breakpoint has VMI_STEP_SLOT). */
static int
step_arm(struct vmi *v, unsigned vcpu, bool on, bool use_slot)
{
	enum vmi_step_mech mech = vmi_step_mechanism(v, NULL);
	struct vmi_vcpu *vc;
	struct vmi_regs regs;
	struct vmi_as as;
	bool drop, guard;
	unsigned len = 0;
	int r = 0;

	if (vcpu >= v->nr_vcpus)
		return -EINVAL;
	vc = &v->vcpus[vcpu];
	if (vc->has_pending)
		return -EBUSY;   /* use vmi_response_step() on its event */
	if (mech == VMI_STEP_NONE)
		return -EOPNOTSUPP;
	/* TF goes through the registers anyway; deciding needs RIP and the
	 * address space, and an old step breakpoint goes away with them. */
	if (mech == VMI_STEP_TF || on || vc->dr_step)
		r = vmi_get_regs(v, vcpu, &regs);
	if (r != 0)
		return r;
	if (on && use_slot && vmi_as_from_regs(&regs, &as) == 0)
		len = intercepted_len(v, vcpu, &as, regs.g.rip, regs.efer, &regs);
	if (len > 0)
		return step_over_paused(v, vcpu, &regs, regs.g.rip + len);
	drop = vc->dr_step;
	if (drop)
		slot_restore(vc, &regs, VMI_STEP_SLOT);
	if (mech == VMI_STEP_MTF) {
		if (drop) {
			r = vmi_set_regs(v, vcpu, &regs);
			if (r != 0)
				return r;
			slot_given_back(vc, VMI_STEP_SLOT);
		}
		r = on ? vmi_monitor(v, VMI_MON_MTF, true) : 0;
		if (r == 0)
			r = drv_result(v, v->ops->mtf_arm(v->drv, vcpu, on));
		if (r == 0)
			vc->mtf = on;
		return r;
	}
	r = on ? vmi_monitor(v, VMI_MON_DEBUG, true) : 0;
	if (r != 0)
		return r;
	if (on)
		regs.g.rflags |= VMI_RFLAGS_TF;
	else
		regs.g.rflags &= ~VMI_RFLAGS_TF;
	guard = on && guard_want(vc, drop, &regs, regs.g.rip);
	if (guard) {
		arm_slot(vc, &regs, VMI_STEP_SLOT, regs.g.rip, VMI_HW_EXEC, 0);
		regs.g.rflags |= VMI_RFLAGS_RF;
	}
	r = vmi_set_regs(v, vcpu, &regs);
	if (r == 0) {
		/* Off without the trap having come (no event holds it): it
		 * may have left a copy in an interrupt frame. */
		if (!on && vc->tf && !vc->has_pending)
			vc->tf_stale = true;
		vc->tf = on;
		vc->tf_rip = regs.g.rip;
		if (drop)
			slot_given_back(vc, VMI_STEP_SLOT);
		if (guard) {
			step_slot_taken(vc, regs.g.rip);
			vc->guard = true;
		}
	}
	return r;
}

int
vmi_step_arm(struct vmi *v, unsigned vcpu, bool on)
{
	return step_arm(v, vcpu, on, true);
}

int
vmi_hold_all(struct vmi *v)
{
	int r = vmi_pause(v), r2;

	if (r != 0)
		return r;
	for (unsigned i = 0; i < v->nr_vcpus && r == 0; i++) {
		struct vmi_vcpu *vc = &v->vcpus[i];

		if (vc->has_pending || vc->holding)
			continue;
		r = vmi_step_arm(v, i, true);
		if (r == 0)
			vc->holding = true;
	}
	r2 = vmi_unpause(v);
	return r ? r : r2;
}

unsigned
vmi_held_count(const struct vmi *v)
{
	unsigned n = 0;

	for (unsigned i = 0; i < v->nr_vcpus; i++)
		n += v->vcpus[i].has_pending;
	return n;
}

static int
dr7_len(unsigned len, uint64_t *bits)
{
	switch (len) {
	case 1: *bits = 0; return 0;
	case 2: *bits = 1; return 0;
	case 8: *bits = 2; return 0;
	case 4: *bits = 3; return 0;
	}
	return -EINVAL;
}

/* Put DR[slot] into regs, the guest's own DR0-3/DR7 saved first (marked
 * saved at once: a second slot in the same write must not save the first
 * as the guest's; restoring them after a failed write is harmless). */
static void
arm_slot(struct vmi_vcpu *vc, struct vmi_regs *regs, unsigned slot,
    uint64_t addr, enum vmi_hw_kind kind, uint64_t lenbits)
{
	if (!vc->dr_saved) {
		memcpy(vc->dr_orig, regs->dr, sizeof(vc->dr_orig));
		vc->dr7_orig = regs->dr7;
		vc->dr_saved = true;
	}
	regs->dr[slot] = addr;
	regs->dr7 &= ~(DR7_SLOT_MASK(slot));
	regs->dr7 |= DR7_ENABLE(slot) | DR7_GE_LE |
	    ((uint64_t)kind << DR7_RW_SHIFT(slot)) |
	    (lenbits << DR7_LEN_SHIFT(slot));
}

/* The slot is armed in the vCPU now: teardown must undo it. Whoever arms
 * VMI_STEP_SLOT takes it from a step breakpoint there. */
static void
slot_armed(struct vmi_vcpu *vc, unsigned slot, uint64_t addr,
    enum vmi_hw_kind kind)
{
	vc->dr_saved = true;
	vc->hw_used |= (uint8_t)(1u << slot);
	vc->hw_addr[slot] = addr;
	vc->hw_kind[slot] = (uint8_t)kind;
	if (slot == VMI_STEP_SLOT)
		vc->dr_step = vc->guard = false;
}

/* Put the guest's own DR[slot] and its DR7 bits back into regs, and its
 * GE/LE once no slot of the session's is left. */
static void
slot_restore(const struct vmi_vcpu *vc, struct vmi_regs *regs, unsigned slot)
{
	regs->dr[slot] = vc->dr_orig[slot];
	regs->dr7 &= ~(DR7_SLOT_MASK(slot));
	regs->dr7 |= vc->dr7_orig & DR7_SLOT_MASK(slot);
	if (!(vc->hw_used & ~(1u << slot) & 15u)) {
		regs->dr7 &= ~DR7_GE_LE;
		regs->dr7 |= vc->dr7_orig & DR7_GE_LE;
	}
}

/* The slot's restore is in the vCPU now. */
static void
slot_given_back(struct vmi_vcpu *vc, unsigned slot)
{
	vc->hw_used &= (uint8_t)~(1u << slot);
	if (slot == VMI_STEP_SLOT)
		vc->dr_step = vc->guard = false;
}

int
vmi_hwbreak_set(struct vmi *v, unsigned vcpu, unsigned slot, uint64_t addr,
    enum vmi_hw_kind kind, unsigned len)
{
	struct vmi_regs regs;
	uint64_t lenbits;
	int r;

	if (vcpu >= v->nr_vcpus || slot >= 4 || dr7_len(len, &lenbits) != 0 ||
	    (kind != VMI_HW_EXEC && kind != VMI_HW_WRITE && kind != VMI_HW_RW))
		return -EINVAL;
	/* SDM 17.2.5: execution breakpoints use LEN 00; data breakpoints
	 * must be aligned to their length. */
	if ((kind == VMI_HW_EXEC && len != 1) || (addr & (len - 1)) != 0)
		return -EINVAL;
	if (!vmi_has(v, kind == VMI_HW_EXEC ? VMI_CAP_HWBREAK : VMI_CAP_WATCH))
		return -EOPNOTSUPP;
	r = vmi_monitor(v, VMI_MON_DEBUG, true);
	if (r == 0)
		r = vmi_get_regs(v, vcpu, &regs);
	if (r != 0)
		return r;
	arm_slot(&v->vcpus[vcpu], &regs, slot, addr, kind, lenbits);
	r = vmi_set_regs(v, vcpu, &regs);
	if (r == 0)
		slot_armed(&v->vcpus[vcpu], slot, addr, kind);
	return r;
}

/*
 * The park's step is for a vCPU that does not execute RIP next, or does
 * without the breakpoint's fault (RF set by the guest's IRET: seen in the
 * lab, stub/exec.c). Over an instruction Xen completes itself TF would
 * send the #DB to the guest and free the vCPU, so there it is the step
 * breakpoint after the instruction when the park uses another slot, and
 * nothing but the park's breakpoint when it uses VMI_STEP_SLOT. MTF is
 * at worst late, so it stays when there is no slot for the breakpoint.
 */
/* A slot for vmi_park's second address: not the session's, not enabled
 * by the guest (regs: its DR7 as the vCPU has it now); -1 if none. */
static int
park_also_slot(const struct vmi_vcpu *vc, const struct vmi_regs *regs)
{
	for (int s = 2; s >= 0; s--)
		if (!(vc->hw_used & (1u << s)) && !((regs->dr7 >> (2 * s)) & 3))
			return s;
	return -1;
}

int
vmi_park(struct vmi *v, unsigned vcpu, unsigned slot, const uint64_t *also)
{
	struct vmi_regs regs;
	struct vmi_vcpu *vc;
	struct vmi_as as;
	uint64_t rip;
	unsigned len = 0;
	bool use_slot, drop, tf;
	int r, also_slot = -1;

	if (vcpu >= v->nr_vcpus || slot >= 4)
		return -EINVAL;
	vc = &v->vcpus[vcpu];
	if (vc->has_pending)
		return -EBUSY;    /* held already */
	if (!vmi_has(v, VMI_CAP_HWBREAK))
		return -EOPNOTSUPP;
	vc->park_slot = vc->park_also = -1;
	if (vmi_step_mechanism(v, NULL) == VMI_STEP_MTF) {
		r = vmi_get_regs(v, vcpu, &regs);
		if (r == 0)
			r = vmi_hwbreak_set(v, vcpu, slot, regs.g.rip,
			    VMI_HW_EXEC, 1);
		if (r == 0)
			vc->park_slot = (int8_t)slot;
		if (r == 0 && also != NULL &&
		    (also_slot = park_also_slot(vc, &regs)) >= 0 &&
		    vmi_hwbreak_set(v, vcpu, (unsigned)also_slot, *also,
		    VMI_HW_EXEC, 1) == 0)
			vc->park_also = (int8_t)also_slot;
		return r == 0 ? step_arm(v, vcpu, true,
		    slot != VMI_STEP_SLOT && step_slot_free(vc)) : r;
	}
	/* TF: the breakpoint and the step in one register write. */
	r = vmi_monitor(v, VMI_MON_DEBUG, true);
	if (r == 0)
		r = vmi_get_regs(v, vcpu, &regs);
	if (r != 0)
		return r;
	rip = regs.g.rip;
	if (vmi_as_from_regs(&regs, &as) == 0)
		len = intercepted_len(v, vcpu, &as, rip, regs.efer, &regs);
	use_slot = len > 0 && slot != VMI_STEP_SLOT && step_slot_free(vc);
	drop = vc->dr_step && slot != VMI_STEP_SLOT && !use_slot;
	if (drop)
		slot_restore(vc, &regs, VMI_STEP_SLOT);
	arm_slot(vc, &regs, slot, rip, VMI_HW_EXEC, 0);
	if (use_slot)
		arm_slot(vc, &regs, VMI_STEP_SLOT, rip + len, VMI_HW_EXEC, 0);
	if (also != NULL) {
		/* The slots just armed are not in hw_used yet. */
		uint8_t used = vc->hw_used;

		vc->hw_used |= (uint8_t)((1u << slot) |
		    (use_slot ? 1u << VMI_STEP_SLOT : 0));
		also_slot = park_also_slot(vc, &regs);
		vc->hw_used = used;
		if (also_slot >= 0)
			arm_slot(vc, &regs, (unsigned)also_slot, *also,
			    VMI_HW_EXEC, 0);
	}
	/* TF only for a vCPU with a re-injected trap still to take: that one
	 * goes into the guest's handler, not to RIP, and DR3 alone would let
	 * it run on. Otherwise DR3 alone: a TF the vCPU carries into an
	 * interrupt frame or to user space outlives the park, and such
	 * leftovers killed the lab's Linux guest (a user-mode #DB for init,
	 * Xen's own #DB after an intercepted instruction). */
	tf = len == 0 && vc->reinjected;
	if (tf)
		regs.g.rflags |= VMI_RFLAGS_TF;
	else if (vc->tf)
		regs.g.rflags &= ~VMI_RFLAGS_TF;
	r = vmi_set_regs(v, vcpu, &regs);
	if (r == 0) {
		slot_armed(vc, slot, rip, VMI_HW_EXEC);
		vc->park_slot = (int8_t)slot;
		if (also_slot >= 0) {
			slot_armed(vc, (unsigned)also_slot, *also, VMI_HW_EXEC);
			vc->park_also = (int8_t)also_slot;
		}
		if (use_slot)
			step_slot_taken(vc, rip + len);
		if (drop)
			slot_given_back(vc, VMI_STEP_SLOT);
		vc->tf = tf;
		vc->tf_rip = rip;
	}
	return r;
}

int
vmi_unpark(struct vmi *v, unsigned vcpu)
{
	struct vmi_vcpu *vc;
	struct vmi_regs regs;
	int slots[2], n = 0, r;
	uint8_t used;

	if (vcpu >= v->nr_vcpus)
		return -EINVAL;
	vc = &v->vcpus[vcpu];
	if (vc->park_slot >= 0 && (vc->hw_used & (1u << vc->park_slot)))
		slots[n++] = vc->park_slot;
	if (vc->park_also >= 0 && (vc->hw_used & (1u << vc->park_also)))
		slots[n++] = vc->park_also;
	vc->park_slot = vc->park_also = -1;
	if (n == 0)
		return 0;
	r = vmi_get_regs(v, vcpu, &regs);
	if (r != 0)
		return r;
	/* Each restore sees the slots restored before it as gone (GE/LE). */
	used = vc->hw_used;
	for (int i = 0; i < n; i++) {
		slot_restore(vc, &regs, (unsigned)slots[i]);
		vc->hw_used &= (uint8_t)~(1u << slots[i]);
	}
	vc->hw_used = used;
	r = vmi_set_regs(v, vcpu, &regs);
	if (r == 0)
		for (int i = 0; i < n; i++)
			slot_given_back(vc, (unsigned)slots[i]);
	return r;
}

/* Give DR[slot] back to the guest, and the DR6 bits in dr6_mask. */
static int
slot_clear(struct vmi *v, unsigned vcpu, unsigned slot, uint64_t dr6_mask)
{
	struct vmi_vcpu *vc = &v->vcpus[vcpu];
	struct vmi_regs regs;
	int r = vmi_get_regs(v, vcpu, &regs);

	if (r != 0)
		return r;
	slot_restore(vc, &regs, slot);
	regs.dr6 &= ~dr6_mask;
	r = vmi_set_regs(v, vcpu, &regs);
	if (r == 0) {
		slot_given_back(vc, slot);
		vc->dr6_dirty &= ~dr6_mask;
	}
	return r;
}

int
vmi_hwbreak_clear(struct vmi *v, unsigned vcpu, unsigned slot)
{
	if (vcpu >= v->nr_vcpus || slot >= 4)
		return -EINVAL;
	if (!(v->vcpus[vcpu].hw_used & (1u << slot)))
		return -ENOENT;
	return slot_clear(v, vcpu, slot, 0);
}

/* ---- p2m access ------------------------------------------------------------ */

int
vmi_set_mem_access(struct vmi *v, uint64_t gfn, unsigned access)
{
	int r = vmi_check_live(v);
	size_t i;

	if (r != 0)
		return r;
	if (!vmi_has(v, VMI_CAP_MEMACCESS))
		return -EOPNOTSUPP;
	for (i = 0; i < v->naccess && v->access_gfns[i] != gfn; i++)
		;
	if (i == v->naccess && access != VMI_ACCESS_RWX &&
	    v->naccess == v->access_cap) {
		size_t cap = v->access_cap ? v->access_cap * 2 : 16;
		uint64_t *n = realloc(v->access_gfns, cap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		v->access_gfns = n;
		v->access_cap = cap;
	}
	r = drv_result(v, v->ops->set_mem_access(v->drv, gfn, access));
	if (r != 0)
		return r;
	if (access == VMI_ACCESS_RWX && i < v->naccess)
		v->access_gfns[i] = v->access_gfns[--v->naccess];
	else if (access != VMI_ACCESS_RWX && i == v->naccess)
		v->access_gfns[v->naccess++] = gfn;
	return 0;
}

/* ---- teardown ---------------------------------------------------------------- */

static void
keep_first(int *first, int r)
{
	if (r < 0 && r != -ESRCH && *first == 0)
		*first = r;
}

/*
 * Has the vCPU run since its last answer? If not, it still has exactly
 * the registers it was held with and Xen still holds the answer's. Once
 * it has run, the answer's registers are in and writing them again would
 * rewind it (seen in the lab: a vCPU sent back to an old RIP crashed).
 */
static bool
still_unapplied(const struct vmi_vcpu *vc, const struct vmi_regs *live)
{
	return vc->deferred &&
	    memcmp(&live->g, &vc->deferred_from, sizeof(live->g)) == 0;
}

static void
restore_vcpu(struct vmi *v, unsigned i, int *first)
{
	struct vmi_vcpu *vc = &v->vcpus[i];
	struct vmi_regs regs;
	int r;

	if (vc->dr_saved || vc->tf || vc->dr6_dirty || vc->deferred) {
		r = vmi_get_regs(v, i, &regs);
		if (r == 0) {
			if (still_unapplied(vc, &regs))
				regs.g = vc->deferred_regs;
			if (vc->dr_saved) {
				memcpy(regs.dr, vc->dr_orig, sizeof(regs.dr));
				regs.dr7 = vc->dr7_orig;
			}
			if (vc->tf)
				regs.g.rflags &= ~VMI_RFLAGS_TF;
			regs.dr6 &= ~vc->dr6_dirty;
			r = vmi_set_regs(v, i, &regs);
		}
		keep_first(first, r);
		vc->dr_saved = false;
		vc->hw_used = 0;
		vc->dr_step = false;
		vc->dr_step_hit = false;
		vc->guard = vc->guard_next = false;
		vc->park_slot = vc->park_also = -1;
		vc->tf = false;
		vc->dr6_dirty = 0;
		vc->deferred = false;
	}
}

/*
 * MTF off on every vCPU, whatever the session believes (REVIEW-intel.md,
 * finding 6). MTF is a per-vCPU flag that a response can only toggle, so
 * one answer lost or misjudged leaves a vCPU stepping after the session,
 * and Xen blocks interrupt injection into a vCPU with MTF set
 * (vmx_intr_assist, xen/arch/x86/hvm/vmx/intr.c): it would hang. Turning
 * the monitor off clears no vCPU's flag (xen/arch/x86/monitor.c).
 * XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_OFF sets it, never flips it, and works
 * on a held vCPU too (hvm_debug_op pauses just that vCPU; pauses nest).
 * Done after the last answers went out, so no toggle can follow it.
 */
static void
mtf_all_off(struct vmi *v, int *first)
{
	if (!vmi_has(v, VMI_CAP_MTF))
		return;
	for (unsigned i = 0; i < v->nr_vcpus && v->state != VMI_DOM_GONE; i++) {
		keep_first(first, drv_result(v, v->ops->mtf_arm(v->drv, i, false)));
		v->vcpus[i].mtf = false;
	}
}

/* Answer a held vCPU for good: give the guest its own trap back (an int3
 * still in memory after restoring is the guest's). MTF is not toggled
 * here: mtf_all_off sets it off once every answer is out. */
static void
release_vcpu(struct vmi *v, unsigned i, int *first)
{
	struct vmi_vcpu *vc = &v->vcpus[i];
	struct vmi_response rsp;

	if (!vc->has_pending)
		return;
	vmi_response_init(&rsp, &vc->pending);
	if (vc->pending.kind == VMI_EVENT_SWBREAK && v->ops->reinject != NULL &&
	    swbreak_ours(v, &vc->pending) == 0)
		rsp.flags |= VMI_RSP_REINJECT;
	if (vc->pending.kind == VMI_EVENT_DEBUG &&
	    vc->pending.u.debug.cause == VMI_DEBUG_UNKNOWN &&
	    v->ops->reinject != NULL)
		rsp.flags |= VMI_RSP_REINJECT;
	keep_first(first, vmi_respond(v, i, &rsp));
	vc->has_pending = false;
}

static void
apply_deferred(struct vmi *v, unsigned i, int *first)
{
	struct vmi_vcpu *vc = &v->vcpus[i];
	struct vmi_regs regs;
	int r;

	if (!vc->deferred)
		return;
	r = vmi_get_regs(v, i, &regs);
	if (r == 0 && still_unapplied(vc, &regs)) {
		regs.g = vc->deferred_regs;
		r = vmi_set_regs(v, i, &regs);
	}
	keep_first(first, r == -EOPNOTSUPP ? 0 : r);
	vc->deferred = false;
}

/* DR6 bits of the session's own traps that the last answers left: an
 * answer that keeps a step on defers them (consume_dr6), and teardown's
 * answers keep MTF as it is, for mtf_all_off to take it off after them
 * (seen on the Intel path of the host tests: a vCPU parked with DR3 and
 * MTF kept its B3 after a detach). */
static void
dr6_leftover(struct vmi *v, unsigned i, int *first)
{
	uint64_t mask = v->vcpus[i].dr6_dirty;
	int r;

	if (mask == 0)
		return;
	v->vcpus[i].dr6_dirty = 0;
	r = clear_dr6(v, i, mask);
	keep_first(first, r == -EOPNOTSUPP ? 0 : r);
}

/* Pull whatever is still in the ring into the held set, unhandled. */
static void
collect_remaining(struct vmi *v, int *first)
{
	struct vmi_event evs[DRAIN_BATCH];
	int n;

	if (v->ops->drain == NULL)
		return;
	do {
		n = drv_result(v, v->ops->drain(v->drv, evs, DRAIN_BATCH));
		keep_first(first, n);
		for (int i = 0; i < n; i++) {
			struct vmi_event *ev = &evs[i];

			if (!ev->sync || ev->vcpu >= v->nr_vcpus)
				continue;
			if (ev->kind == VMI_EVENT_DEBUG)
				classify(v, ev);
			if (v->vcpus[ev->vcpu].has_pending)
				release_vcpu(v, ev->vcpu, first);
			v->vcpus[ev->vcpu].pending = *ev;
			v->vcpus[ev->vcpu].has_pending = true;
		}
	} while (n == DRAIN_BATCH);
}

int
vmi_teardown(struct vmi *v)
{
	int first = 0, r;
	bool paused = false;

	if (v == NULL || v->torn_down)
		return 0;
	if (v->has_handler && v->h.cleanup != NULL) {
		void (*cleanup)(void *, struct vmi *) = v->h.cleanup;

		v->h.cleanup = NULL;   /* once, even if teardown is re-entered */
		cleanup(v->h.ctx, v);
	}
	if (v->state != VMI_DOM_GONE)
		keep_first(&first, refresh_state(v));
	if (v->state != VMI_DOM_GONE) {
		r = drv_result(v, v->ops->pause(v->drv));
		keep_first(&first, r);
		paused = r == 0;
	}
	/* Events still in the ring join the held set before anything is
	 * restored: what caused them is judged against the state they were
	 * raised in (a step is ours only while the session's TF is set). */
	if (v->state != VMI_DOM_GONE)
		collect_remaining(v, &first);
	while (v->npatches > 0)
		keep_first(&first, vmi_unpatch(v, v->patches[v->npatches - 1].gpa));
	while (v->naccess > 0 && v->state != VMI_DOM_GONE) {
		uint64_t gfn = v->access_gfns[v->naccess - 1];

		keep_first(&first, vmi_set_mem_access(v, gfn, VMI_ACCESS_RWX));
		if (v->naccess > 0 && v->access_gfns[v->naccess - 1] == gfn)
			v->naccess--;   /* failed: do not loop on it */
	}
	for (unsigned i = 0; i < v->nr_vcpus && v->state != VMI_DOM_GONE; i++)
		restore_vcpu(v, i, &first);
	if (v->state != VMI_DOM_GONE) {
		/* Every vCPU restored before any is answered. */
		for (unsigned i = 0; i < v->nr_vcpus; i++)
			keep_first(&first, regs_flush(v, i));
		for (unsigned i = 0; i < v->nr_vcpus; i++)
			release_vcpu(v, i, &first);
		keep_first(&first, flush(v));
		/* The answers' registers would be lost with the monitor (see
		 * vmi_respond): write them now, while the domain is paused. */
		for (unsigned i = 0; i < v->nr_vcpus; i++) {
			apply_deferred(v, i, &first);
			dr6_leftover(v, i, &first);
			/* Written now, while the monitor still runs, not by the
			 * last vmi_unpause below. */
			keep_first(&first, regs_flush(v, i));
		}
		mtf_all_off(v, &first);
	}
	for (int m = VMI_MON_COUNT - 1; m >= 0; m--) {
		if (v->monitors[m] && v->state != VMI_DOM_GONE)
			keep_first(&first, vmi_monitor(v, (enum vmi_monitor)m, false));
		v->monitors[m] = false;
	}
	if (v->ops->monitor_stop != NULL)
		keep_first(&first, drv_result(v, v->ops->monitor_stop(v->drv)));
	if (paused)
		keep_first(&first, drv_result(v, v->ops->unpause(v->drv)));
	while (v->pauses > 0 && v->state != VMI_DOM_GONE) {
		r = vmi_unpause(v);
		keep_first(&first, r);
		if (r != 0)
			break;
	}
	v->pauses = 0;
	vmi_cache_fini(&v->cache);
	v->ops->close(v->drv);
	v->drv = NULL;
	v->torn_down = true;
	return first;
}

bool
vmi_torn_down(const struct vmi *v)
{
	return v->torn_down;
}

void
vmi_close(struct vmi *v)
{
	if (v == NULL)
		return;
	vmi_teardown(v);
	free(v->vcpus);
	free(v->patches);
	free(v->access_gfns);
	free(v);
}
