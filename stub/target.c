/*
 * target.c - the debugged domain: attach and detach, the register cache
 * and its translation to gdb's amd64 register file, memory at guest
 * virtual (or, with "monitor phys on", physical) addresses, stop replies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "vmi_driver.h"

#define HOUSEKEEPING_S 0.5

static void on_vmi_event(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

int
stub_attach(struct stub *s, uint32_t domid)
{
	struct vmi_driver *drv;
	struct vmi_handler h = stub_handler_template;
	struct vmi_info info;
	int r, fd;

	if (s->v != NULL)
		return -EBUSY;
	r = stub_driver_open(domid, &drv);
	if (r == 0)
		r = vmi_open(&s->v, drv, NULL);
	if (r < 0) {
		log_error("cannot open domain %u: %s", domid, strerror(-r));
		return r;
	}
	h.ctx = s;
	vmi_set_handler(s->v, &h);
	s->domid = domid;
	s->nvcpus = vmi_nr_vcpus(s->v);
	s->vcpus = calloc(s->nvcpus, sizeof(*s->vcpus));
	if (s->tdesc == NULL) {
		size_t n = rsp_tdesc_write(NULL, 0);

		s->tdesc = malloc(n + 1);
		if (s->tdesc != NULL)
			s->tdesc_len = rsp_tdesc_write(s->tdesc, n + 1);
	}
	if (s->vcpus == NULL || s->tdesc == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	/* gdb expects a stopped target when it connects. */
	r = vmi_pause(s->v);
	if (r < 0)
		goto fail;
	fd = vmi_event_fd(s->v);
	if (fd >= 0) {
		ev_io_init(&s->event_w, on_vmi_event, fd, EV_READ);
		s->event_w.data = s;
		ev_io_start(s->loop, &s->event_w);
	}
	ev_timer_init(&s->timer, on_timer, HOUSEKEEPING_S, HOUSEKEEPING_S);
	ev_set_priority(&s->timer, EV_MINPRI);
	s->timer.data = s;
	stub_step_watch_init(s);
	ev_timer_start(s->loop, &s->timer);
	s->running = false;
	s->gone = false;
	s->gone_reason = -1;    /* destroyed, until a shutdown says why */
	s->phys = false;
	s->gvcpu = 0;
	s->last_stop_vcpu = 0;
	s->last_stop = (struct stub_stop){ .valid = true, .signo = 5 };
	memset(s->bps, 0, sizeof(s->bps));
	memset(&s->lift, 0, sizeof(s->lift));
	memset(&s->stats, 0, sizeof(s->stats));
	s->cpu_us_at_attach = stub_cpu_us();
	if (vmi_info(s->v, &info) == 0)
		log_info("attached to domain %u (%u vCPUs, %s); paused",
		    domid, s->nvcpus, info.platform);
	return 0;
fail:
	log_error("cannot attach domain %u: %s", domid, strerror(-r));
	vmi_close(s->v);
	s->v = NULL;
	free(s->vcpus);
	s->vcpus = NULL;
	return r;
}

/* The session's teardown puts everything back (vmi/session.c): breakpoint
 * bytes, debug registers, TF, frames' access, monitors, pending events,
 * pauses. */
void
stub_detach(struct stub *s)
{
	int r;

	if (s->v == NULL)
		return;
	ev_io_stop(s->loop, &s->event_w);
	ev_timer_stop(s->loop, &s->timer);
	ev_timer_stop(s->loop, &s->step_watch);
	r = vmi_teardown(s->v);
	if (r < 0)
		log_warn("detach from domain %u: %s", s->domid, strerror(-r));
	else
		log_info("detached from domain %u; it runs on", s->domid);
	vmi_close(s->v);
	s->v = NULL;
	free(s->vcpus);
	s->vcpus = NULL;
	s->nvcpus = 0;
	s->running = false;
	stub_watch_forget(s);
	memset(s->bps, 0, sizeof(s->bps));
}

static void
on_vmi_event(struct ev_loop *loop, ev_io *w, int revents)
{
	stub_on_events(w->data);
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct stub *s = w->data;
	int n;

	if (s->v != NULL && !s->gone)
		vmi_timeout(s->v);
	/* Events the event fd should have announced: the timer runs after
	 * the fd's watcher in one loop iteration (lower priority), so these
	 * waited up to HOUSEKEEPING_S for a wake-up that did not come (or
	 * whose upcall to dom0 was still on its way). */
	n = stub_on_events(s);
	if (n > 0) {
		s->stats.late_events += (uint64_t)n;
		log_debug("%d event(s) found by the timer, not the event fd", n);
	}
}

/* ---- registers ------------------------------------------------------------- */

int
stub_regs(struct stub *s, unsigned vcpu, struct vmi_regs **out)
{
	struct stub_vcpu *vc;
	int r;

	if (s->v == NULL)
		return -ESRCH;
	if (vcpu >= s->nvcpus)
		return -EINVAL;
	vc = &s->vcpus[vcpu];
	if (!vc->regs_valid || s->running) {
		r = vmi_get_regs(s->v, vcpu, &vc->regs);
		if (r < 0)
			return r;
		vc->regs_valid = !s->running;
	}
	*out = &vc->regs;
	return 0;
}

int
stub_regs_write(struct stub *s, unsigned vcpu, const struct vmi_regs *r)
{
	int ret;

	if (vcpu >= s->nvcpus)
		return -EINVAL;
	ret = vmi_set_regs(s->v, vcpu, r);
	s->vcpus[vcpu].regs_valid = false;
	return ret;
}

void
stub_regs_forget(struct stub *s)
{
	for (unsigned i = 0; i < s->nvcpus; i++)
		s->vcpus[i].regs_valid = false;
}

static uint16_t
fx16(const uint8_t *fx, unsigned off)
{
	return (uint16_t)(fx[off] | fx[off + 1] << 8);
}

static uint32_t
fx32(const uint8_t *fx, unsigned off)
{
	return fx16(fx, off) | (uint32_t)fx16(fx, off + 2) << 16;
}

static void
put16(uint8_t *fx, unsigned off, uint32_t v)
{
	fx[off] = (uint8_t)v;
	fx[off + 1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *fx, unsigned off, uint32_t v)
{
	put16(fx, off, v);
	put16(fx, off + 2, v >> 16);
}

/* FXSAVE keeps an abridged tag (one bit per register, 1 = in use); gdb's
 * ftag is the full x87 tag word (two bits each, 11 = empty). */
static uint32_t
full_tag(uint8_t abridged)
{
	uint32_t t = 0;

	for (unsigned i = 0; i < 8; i++)
		if (!(abridged & (1u << i)))
			t |= 3u << (2 * i);
	return t;
}

static uint8_t
abridged_tag(uint32_t full)
{
	uint8_t t = 0;

	for (unsigned i = 0; i < 8; i++)
		if (((full >> (2 * i)) & 3) != 3)
			t |= (uint8_t)(1u << i);
	return t;
}

void
stub_regfile_from(struct rsp_amd64_regfile *f, const struct vmi_regs *r)
{
	const uint64_t *g = &r->g.rax;
	const uint8_t *fx = r->fxsave;

	memset(f, 0, sizeof(*f));
	/* struct vmi_gregs starts with the 16 GPRs in gdb's order. */
	for (unsigned i = 0; i < 16; i++)
		f->gpr[i] = g[i];
	f->rip = r->g.rip;
	f->eflags = (uint32_t)r->g.rflags;
	for (unsigned i = 0; i < 6; i++)
		f->seg[i] = r->seg[i].sel;  /* VMI_SEG_CS.. match cs ss ds es fs gs */
	for (unsigned i = 0; i < 8; i++)
		memcpy(f->st[i], fx + VMI_FX_ST(i), 10);
	f->fpu[0] = fx16(fx, VMI_FX_FCW);
	f->fpu[1] = fx16(fx, VMI_FX_FSW);
	f->fpu[2] = full_tag(fx[VMI_FX_FTW]);
	f->fpu[3] = fx16(fx, VMI_FX_FIP + 4);   /* FCS */
	f->fpu[4] = fx32(fx, VMI_FX_FIP);
	f->fpu[5] = fx16(fx, VMI_FX_FDP + 4);   /* FDS */
	f->fpu[6] = fx32(fx, VMI_FX_FDP);
	f->fpu[7] = fx16(fx, VMI_FX_FOP) & 0x7ff;
	for (unsigned i = 0; i < 16; i++)
		memcpy(f->xmm[i], fx + VMI_FX_XMM(i), 16);
	f->mxcsr = fx32(fx, VMI_FX_MXCSR);
	f->fs_base = r->seg[VMI_SEG_FS].base;
	f->gs_base = r->seg[VMI_SEG_GS].base;
	f->cr0 = r->cr0;
	f->cr2 = r->cr2;
	f->cr3 = r->cr3;
	f->cr4 = r->cr4;
	f->efer = r->efer;
	f->kernel_gs_base = r->kernel_gs_base;
}

void
stub_regfile_to(struct vmi_regs *r, const struct rsp_amd64_regfile *f)
{
	uint64_t *g = &r->g.rax;
	uint8_t *fx = r->fxsave;

	for (unsigned i = 0; i < 16; i++)
		g[i] = f->gpr[i];
	r->g.rip = f->rip;
	r->g.rflags = (r->g.rflags & ~0xffffffffULL) | f->eflags;
	for (unsigned i = 0; i < 6; i++)
		r->seg[i].sel = (uint16_t)f->seg[i];
	for (unsigned i = 0; i < 8; i++)
		memcpy(fx + VMI_FX_ST(i), f->st[i], 10);
	put16(fx, VMI_FX_FCW, f->fpu[0]);
	put16(fx, VMI_FX_FSW, f->fpu[1]);
	fx[VMI_FX_FTW] = abridged_tag(f->fpu[2]);
	put16(fx, VMI_FX_FIP + 4, f->fpu[3]);
	put32(fx, VMI_FX_FIP, f->fpu[4]);
	put16(fx, VMI_FX_FDP + 4, f->fpu[5]);
	put32(fx, VMI_FX_FDP, f->fpu[6]);
	put16(fx, VMI_FX_FOP, f->fpu[7] & 0x7ff);
	for (unsigned i = 0; i < 16; i++)
		memcpy(fx + VMI_FX_XMM(i), f->xmm[i], 16);
	put32(fx, VMI_FX_MXCSR, f->mxcsr);
	r->seg[VMI_SEG_FS].base = f->fs_base;
	r->seg[VMI_SEG_GS].base = f->gs_base;
	r->cr0 = f->cr0;
	r->cr2 = f->cr2;
	r->cr3 = f->cr3;
	r->cr4 = f->cr4;
	r->efer = f->efer;
	r->kernel_gs_base = f->kernel_gs_base;
}

/* ---- memory ------------------------------------------------------------------ */

static int
as_of(struct stub *s, unsigned vcpu, struct vmi_as *as)
{
	struct vmi_regs *regs;
	int r = stub_regs(s, vcpu, &regs);

	return r ? r : vmi_as_from_regs(regs, as);
}

int
stub_translate(struct stub *s, unsigned vcpu, uint64_t va, uint64_t *gpa)
{
	struct vmi_as as;
	struct vmi_xlate x;
	int r = as_of(s, vcpu, &as);

	if (r == 0)
		r = vmi_translate(s->v, &as, va, &x);
	if (r == 0)
		*gpa = x.gpa;
	return r;
}

int
stub_mem_read(struct stub *s, uint64_t addr, void *buf, size_t len,
    size_t *done)
{
	struct vmi_as as;
	int r;

	*done = 0;
	if (s->v == NULL)
		return -ESRCH;
	if (s->phys)
		return vmi_read_phys(s->v, addr, buf, len, VMI_MEM_HIDE_PATCHES,
		    done);
	r = as_of(s, s->gvcpu, &as);
	if (r == 0)
		r = vmi_read_virt(s->v, &as, addr, buf, len,
		    VMI_MEM_HIDE_PATCHES, done, NULL);
	return r;
}

int
stub_mem_write(struct stub *s, uint64_t addr, const void *buf, size_t len)
{
	struct vmi_as as;
	size_t done = 0;
	int r;

	if (s->v == NULL)
		return -ESRCH;
	if (s->phys)
		return vmi_write_phys(s->v, addr, buf, len, &done);
	r = as_of(s, s->gvcpu, &as);
	if (r == 0)
		r = vmi_write_virt(s->v, &as, addr, buf, len, &done, NULL);
	return r;
}

/* ---- stop replies ------------------------------------------------------------- */

void
stub_stop_reply(struct stub *s, unsigned vcpu, const struct stub_stop *st,
    struct rsp_reply *r)
{
	/* The whole core set, not just rbp/rsp/rip: gdb then shows a frame's
	 * arguments (rdi, rsi, ...) and survives a memory write without a
	 * g packet after every stop (issue 5's packet budget). */
	static const uint16_t expedite[] = {
		RSP_AMD64_RAX, RSP_AMD64_RBX, RSP_AMD64_RCX, RSP_AMD64_RDX,
		RSP_AMD64_RSI, RSP_AMD64_RDI, RSP_AMD64_RBP, RSP_AMD64_RSP,
		RSP_AMD64_R8, RSP_AMD64_R9, RSP_AMD64_R10, RSP_AMD64_R11,
		RSP_AMD64_R12, RSP_AMD64_R13, RSP_AMD64_R14, RSP_AMD64_R15,
		RSP_AMD64_RIP, RSP_AMD64_EFLAGS, RSP_AMD64_CS, RSP_AMD64_SS,
		RSP_AMD64_DS, RSP_AMD64_ES, RSP_AMD64_FS, RSP_AMD64_GS,
	};
	enum { NEXP = sizeof(expedite) / sizeof(expedite[0]) };
	struct rsp_amd64_regfile f;
	struct rsp_expedited ex[NEXP];
	uint8_t scratch[16 * NEXP];
	struct vmi_regs *regs;
	uint32_t feat = s->conn ? s->conn->features : 0;
	struct rsp_stop stop = {
		.kind = RSP_STOP_SIGNAL, .code = st->signo ? st->signo : 5,
		.has_thread = true, .thread = { .tid = vcpu + 1 },
		.core = -1, .reason = st->reason, .watch_addr = st->addr,
		.regs = ex,
	};

	if ((stop.reason == RSP_STOP_SWBREAK && !(feat & RSP_GF_SWBREAK)) ||
	    (stop.reason == RSP_STOP_HWBREAK && !(feat & RSP_GF_HWBREAK)))
		stop.reason = RSP_STOP_NONE;
	if (stub_regs(s, vcpu, &regs) == 0) {
		stub_regfile_from(&f, regs);
		stop.nregs = rsp_regfile_expedite(&f, expedite, NEXP, ex,
		    scratch, sizeof(scratch));
	}
	rsp_reply_stop(r, &stop);
	s->last_stop_vcpu = (int)vcpu;
	s->last_stop = *st;
	s->gvcpu = vcpu;
}

/* W for a guest that shut down (its reason as the status), X09 for one
 * destroyed under us: gdb's "[Inferior 1 (process N) exited/killed]". */
void
stub_exit_reply(struct stub *s, struct rsp_reply *r)
{
	struct rsp_stop stop = { .core = -1 };

	if (s->gone_reason == VMI_SHUTDOWN_CRASH) {
		/* gdb: "Program terminated with signal SIGSEGV". */
		stop.kind = RSP_STOP_TERMINATED;
		stop.code = 11;
	} else if (s->gone_reason >= 0) {
		/* Powered off (0), rebooted (1), suspended (2)...: the
		 * reason as the exit code. */
		stop.kind = RSP_STOP_EXITED;
		stop.code = (uint8_t)s->gone_reason;
	} else {
		stop.kind = RSP_STOP_TERMINATED;
		stop.code = 9;
	}
	rsp_reply_stop(r, &stop);
}
