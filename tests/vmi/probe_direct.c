/*
 * probe_direct.c - the benchmark's baseline: the smallest correct loops
 * against libxenctrl and friends, with no vmi layer in between, so that
 * the layer's figures can be set beside the hypervisor's own limit in the
 * same lab run. A test tool: the one file outside vmi/xen that includes
 * Xen headers, on purpose.
 *
 * Ring handling as xen/vm_event.h and xen/io/ring.h describe it (see
 * vmi/xen/xen.c for the same sequence with its reasons).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xenctrl.h>
#include <xendevicemodel.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/vm_event.h>

#include "probe.h"

/* The ring macros of xen/io/ring.h expand to GNU C (statement expressions,
 * typeof) in this file; clang's -Wpedantic would reject Xen's header code,
 * which gcc exempts as coming from a system header. */
#pragma GCC diagnostic ignored "-Wpedantic"

#define TRAP_DEBUG 1
#define TRAP_INT3 3
#define RFLAGS_TF 0x100ULL
#define DR6_BS (1ULL << 14)
#define WAIT_MS 10000

struct dring {
	uint32_t domid;
	xc_interface *xch;
	xenevtchn_handle *xce;
	xendevicemodel_handle *dmod;
	void *page;
	vm_event_back_ring_t back;
	evtchn_port_t port;
};

static int
neg(void)
{
	return errno ? -errno : -EIO;
}

static void
dring_close(struct dring *r)
{
	if (r->page != NULL) {
		xc_monitor_disable(r->xch, r->domid);
		xenevtchn_unbind(r->xce, r->port);
		munmap(r->page, XC_PAGE_SIZE);
	}
	if (r->dmod != NULL)
		xendevicemodel_close(r->dmod);
	if (r->xce != NULL)
		xenevtchn_close(r->xce);
	if (r->xch != NULL)
		xc_interface_close(r->xch);
	memset(r, 0, sizeof(*r));
}

static int
dring_open(struct dring *r, uint32_t domid)
{
	uint32_t remote;
	int port;

	memset(r, 0, sizeof(*r));
	r->domid = domid;
	r->xch = xc_interface_open(NULL, NULL, 0);
	r->xce = xenevtchn_open(NULL, 0);
	r->dmod = xendevicemodel_open(NULL, 0);
	if (r->xch == NULL || r->xce == NULL || r->dmod == NULL)
		goto fail;
	r->page = xc_monitor_enable(r->xch, domid, &remote);
	if (r->page == NULL)
		goto fail;
	port = xenevtchn_bind_interdomain(r->xce, domid, remote);
	if (port < 0)
		goto fail;
	r->port = (evtchn_port_t)port;
	SHARED_RING_INIT((vm_event_sring_t *)r->page);
	BACK_RING_INIT(&r->back, (vm_event_sring_t *)r->page, XC_PAGE_SIZE);
	return 0;
fail:
	port = neg();
	dring_close(r);
	return port;
}

/* One request, waiting for the event channel when the ring is empty. */
static int
dring_get(struct dring *r, vm_event_request_t *req)
{
	struct pollfd pfd = { .fd = xenevtchn_fd(r->xce), .events = POLLIN };

	while (!RING_HAS_UNCONSUMED_REQUESTS(&r->back)) {
		int n = poll(&pfd, 1, WAIT_MS);

		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0)
			return neg();
		xenevtchn_port_or_error_t p = xenevtchn_pending(r->xce);
		if (p >= 0)
			xenevtchn_unmask(r->xce, (evtchn_port_t)p);
	}
	RING_COPY_REQUEST(&r->back, r->back.req_cons, req);
	r->back.req_cons++;
	r->back.sring->req_event = r->back.req_cons + 1;
	return req->version == VM_EVENT_INTERFACE_VERSION ? 0 : -EPROTO;
}

static void
dring_put(struct dring *r, const vm_event_request_t *req, uint32_t flags,
    const struct vm_event_regs_x86 *regs)
{
	vm_event_response_t rsp;

	memset(&rsp, 0, sizeof(rsp));
	rsp.version = VM_EVENT_INTERFACE_VERSION;
	rsp.vcpu_id = req->vcpu_id;
	rsp.reason = req->reason;
	rsp.flags = (req->flags & VM_EVENT_FLAG_VCPU_PAUSED) | flags;
	if (regs != NULL)
		rsp.data.regs.x86 = *regs;
	memcpy(RING_GET_RESPONSE(&r->back, r->back.rsp_prod_pvt), &rsp,
	    sizeof(rsp));
	r->back.rsp_prod_pvt++;
	RING_PUSH_RESPONSES(&r->back);
	xenevtchn_notify(r->xce, r->port);
}

/* The guest's own traps go back to it: the benchmark must not break it. */
static void
give_back(struct dring *r, const vm_event_request_t *req)
{
	const struct vm_event_debug *d = &req->u.software_breakpoint;
	bool bp = req->reason == VM_EVENT_REASON_SOFTWARE_BREAKPOINT;

	if (!bp)
		d = &req->u.debug_exception;
	xendevicemodel_inject_event(r->dmod, (domid_t)r->domid,
	    (int)req->vcpu_id, bp ? TRAP_INT3 : TRAP_DEBUG, d->type, ~0u,
	    (uint8_t)d->insn_length, bp ? 0 : d->pending_dbg);
	dring_put(r, req, 0, NULL);
}

/* Answer what is left so no vCPU stays paused (XEN-LAB.md). */
static void
drain_all(struct dring *r)
{
	vm_event_request_t req;

	while (RING_HAS_UNCONSUMED_REQUESTS(&r->back) &&
	    dring_get(r, &req) == 0)
		dring_put(r, &req, 0, NULL);
}

int
direct_swbreak(uint32_t domid, uint64_t va, uint64_t gpa, unsigned n,
    struct probe_clock *t)
{
	xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
	xen_pfn_t pfn = gpa >> XC_PAGE_SHIFT;
	struct dring r;
	uint8_t *page, orig;
	int err = 0, rc;
	unsigned hits = 0;

	if (fm == NULL)
		return neg();
	page = xenforeignmemory_map(fm, domid, PROT_READ | PROT_WRITE, 1, &pfn,
	    &err);
	if (page == NULL || err != 0) {
		rc = page == NULL ? neg() : -err;
		xenforeignmemory_close(fm);
		return rc;
	}
	rc = dring_open(&r, domid);
	if (rc == 0)
		rc = xc_monitor_software_breakpoint(r.xch, domid, true) ? neg() : 0;
	if (rc != 0)
		goto out;
	orig = page[gpa & (XC_PAGE_SIZE - 1)];
	page[gpa & (XC_PAGE_SIZE - 1)] = 0xcc;
	probe_clock_start(t);
	while (hits < n) {
		vm_event_request_t req;

		rc = dring_get(&r, &req);
		if (rc != 0)
			break;
		if (req.reason == VM_EVENT_REASON_SOFTWARE_BREAKPOINT &&
		    req.data.regs.x86.rip == va) {
			hits++;
			/* Unchanged: the vCPU re-executes the int3. */
			if (hits < n)
				dring_put(&r, &req, 0, NULL);
			else {
				page[gpa & (XC_PAGE_SIZE - 1)] = orig;
				dring_put(&r, &req, 0, NULL);
			}
		} else {
			give_back(&r, &req);
		}
	}
	probe_clock_stop(t);
	page[gpa & (XC_PAGE_SIZE - 1)] = orig;
	xc_domain_pause(r.xch, domid);
	drain_all(&r);
	xc_monitor_software_breakpoint(r.xch, domid, false);
	xc_domain_unpause(r.xch, domid);
out:
	dring_close(&r);
	xenforeignmemory_unmap(fm, page, 1);
	xenforeignmemory_close(fm);
	return rc;
}

/*
 * Hold the first vCPU to reach va (an int3 at gpa, taken out again) and
 * answer its event with TF set: *vcpu is that vCPU. Everything else met
 * meanwhile goes back to the guest.
 */
static int
step_start_at(struct dring *r, uint64_t va, uint64_t gpa, unsigned *vcpu)
{
	xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
	xen_pfn_t pfn = gpa >> XC_PAGE_SHIFT;
	size_t off = gpa & (XC_PAGE_SIZE - 1);
	uint8_t *page = NULL, orig;
	int err = 0, rc;

	if (fm == NULL)
		return neg();
	page = xenforeignmemory_map(fm, r->domid, PROT_READ | PROT_WRITE, 1,
	    &pfn, &err);
	if (page == NULL || err != 0) {
		rc = page == NULL ? neg() : -err;
		goto out;
	}
	rc = xc_monitor_software_breakpoint(r->xch, r->domid, true) ? neg() : 0;
	if (rc != 0)
		goto out;
	orig = page[off];
	page[off] = 0xcc;
	for (;;) {
		vm_event_request_t req;

		rc = dring_get(r, &req);
		if (rc != 0)
			break;
		if (req.reason == VM_EVENT_REASON_SOFTWARE_BREAKPOINT &&
		    req.data.regs.x86.rip == va) {
			struct vm_event_regs_x86 regs = req.data.regs.x86;

			page[off] = orig;
			*vcpu = req.vcpu_id;
			regs.rflags |= RFLAGS_TF;
			dring_put(r, &req, VM_EVENT_FLAG_SET_REGISTERS, &regs);
			break;
		}
		give_back(r, &req);
	}
	page[off] = orig;
	xc_monitor_software_breakpoint(r->xch, r->domid, false);
out:
	if (page != NULL)
		xenforeignmemory_unmap(fm, page, 1);
	xenforeignmemory_close(fm);
	return rc;
}

/* Xen 4.17 panics on a setvcpucontext for a dying domain: the direct
 * loop asks first too, the same way (vmi/xen/xen.c, xen_refuse_dying: our
 * end of the vm_event channel still bound to the domain). */
static int
set_context_unless_dying(struct dring *r, unsigned vcpu,
    vcpu_guest_context_any_t *ctx)
{
	xc_evtchn_status_t st = { .dom = DOMID_SELF, .port = r->port };

	if (xc_evtchn_status(r->xch, &st) != 0)
		return neg();
	if (st.status != EVTCHNSTAT_interdomain ||
	    st.u.interdomain.dom != r->domid)
		return -ESRCH;
	return xc_vcpu_setcontext(r->xch, r->domid, vcpu, ctx) ? neg() : 0;
}

/* TF on vcpu through its context (no event holds it): the first step. */
static int
step_start_now(struct dring *r, unsigned vcpu)
{
	vcpu_guest_context_any_t ctx;
	int rc;

	/* The first TF goes in through the vCPU context (XEN-LAB.md), every
	 * later one in the response. */
	xc_domain_pause(r->xch, r->domid);
	if (xc_vcpu_getcontext(r->xch, r->domid, vcpu, &ctx) != 0) {
		rc = neg();
	} else {
		ctx.x64.user_regs.rflags |= RFLAGS_TF;
		rc = set_context_unless_dying(r, vcpu, &ctx);
	}
	xc_domain_unpause(r->xch, r->domid);
	return rc;
}

int
direct_step(uint32_t domid, unsigned vcpu, unsigned n, uint64_t va,
    uint64_t gpa, struct probe_clock *t)
{
	vcpu_guest_context_any_t ctx;
	struct dring r;
	unsigned steps = 0;
	int rc = dring_open(&r, domid);

	if (rc != 0)
		return rc;
	if (xc_monitor_debug_exceptions(r.xch, domid, true, true) != 0) {
		rc = neg();
		goto out;
	}
	rc = va != 0 ? step_start_at(&r, va, gpa, &vcpu) : step_start_now(&r, vcpu);
	if (rc != 0)
		goto off;
	probe_clock_start(t);
	while (steps < n) {
		vm_event_request_t req;

		rc = dring_get(&r, &req);
		if (rc != 0)
			break;
		if (req.reason != VM_EVENT_REASON_DEBUG_EXCEPTION ||
		    req.vcpu_id != vcpu) {
			give_back(&r, &req);
			continue;
		}
		struct vm_event_regs_x86 regs = req.data.regs.x86;

		steps++;
		if (steps < n)
			regs.rflags |= RFLAGS_TF;
		else
			regs.rflags &= ~RFLAGS_TF;
		dring_put(&r, &req, VM_EVENT_FLAG_SET_REGISTERS, &regs);
	}
	probe_clock_stop(t);
off:
	xc_domain_pause(r.xch, domid);
	/* Leave neither TF nor the steps' DR6.BS behind: the guest's own
	 * #DB handler would take BS for a step of its own. */
	if (xc_vcpu_getcontext(r.xch, domid, vcpu, &ctx) == 0) {
		ctx.x64.user_regs.rflags &= ~RFLAGS_TF;
		ctx.x64.debugreg[6] &= ~DR6_BS;
		set_context_unless_dying(&r, vcpu, &ctx);
	}
	drain_all(&r);
	xc_monitor_debug_exceptions(r.xch, domid, false, true);
	xc_domain_unpause(r.xch, domid);
out:
	dring_close(&r);
	return rc;
}

int
direct_mem(uint32_t domid, uint64_t gpa, size_t len, double *secs)
{
	xenforeignmemory_handle *fm = xenforeignmemory_open(NULL, 0);
	size_t frames = len / XC_PAGE_SIZE;
	xen_pfn_t *pfns = calloc(frames, sizeof(*pfns));
	int *errs = calloc(frames, sizeof(*errs));
	uint8_t *buf = malloc(len);
	int rc = 0;

	if (fm == NULL || pfns == NULL || errs == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < frames; i++)
		pfns[i] = (gpa >> XC_PAGE_SHIFT) + i;
	double t0 = probe_now();
	uint8_t *p = xenforeignmemory_map(fm, domid, PROT_READ, frames, pfns,
	    errs);
	if (p == NULL) {
		rc = neg();
		goto out;
	}
	for (size_t i = 0; i < frames; i++)
		if (errs[i] == 0)
			memcpy(buf + i * XC_PAGE_SIZE, p + i * XC_PAGE_SIZE,
			    XC_PAGE_SIZE);
		else
			rc = -errs[i];
	xenforeignmemory_unmap(fm, p, frames);
	*secs = probe_now() - t0;
out:
	free(buf);
	free(errs);
	free(pfns);
	if (fm != NULL)
		xenforeignmemory_close(fm);
	return rc;
}
