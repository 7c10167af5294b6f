/*
 * xen.c - the Xen 4.17 driver: domain control with libxenctrl, guest
 * memory with libxenforeignmemory, vm_event ring with libxenevtchn,
 * trap re-injection with libxendevicemodel, names with libxenstore,
 * the vCPU extended-state domctls with libxencall (xen_regs.c).
 *
 * The ring follows the sequence of xen/vm_event.h and Xen's own monitor
 * tools: xc_monitor_enable() maps the ring page and gives the event
 * channel port; bind it; SHARED_RING_INIT/BACK_RING_INIT (xen/io/ring.h).
 * On each wake-up: take the pending port, unmask, copy out every request,
 * check its version, and for each answer copy VM_EVENT_FLAG_VCPU_PAUSED
 * into the response (that is what unpauses the vCPU), push the responses
 * and notify once per batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* xenctrl.h (via xen_private.h) first: it defines __XEN_TOOLS__, which
 * the other Xen public headers need to show their tools-only parts. */
#include "xen_private.h"
#include "vmi_xen.h"

#include <xenstore.h>
#include <xen/sched.h>

/* The session reports Xen's shutdown reasons as they are. */
_Static_assert(VMI_SHUTDOWN_POWEROFF == SHUTDOWN_poweroff &&
    VMI_SHUTDOWN_REBOOT == SHUTDOWN_reboot &&
    VMI_SHUTDOWN_SUSPEND == SHUTDOWN_suspend &&
    VMI_SHUTDOWN_CRASH == SHUTDOWN_crash &&
    VMI_SHUTDOWN_WATCHDOG == SHUTDOWN_watchdog &&
    VMI_SHUTDOWN_SOFT_RESET == SHUTDOWN_soft_reset,
    "enum vmi_shutdown_reason must match xen/sched.h");

/* The ring macros of xen/io/ring.h expand to GNU C (statement expressions,
 * typeof) in this file; clang's -Wpedantic would reject Xen's header code,
 * which gcc exempts as coming from a system header. */
#pragma GCC diagnostic ignored "-Wpedantic"

/* xen/arch-x86/cpufeatureset.h: XEN_CPUFEATURE(VMX, 1*32+5) and
 * XEN_CPUFEATURE(SVM, 3*32+2); physinfo.hw_cap is that feature set. */
#define HWCAP_VMX_WORD 1
#define HWCAP_VMX_BIT  5
#define HWCAP_SVM_WORD 3
#define HWCAP_SVM_BIT  2

/* x86 vectors (SDM vol. 3A, 6.3.1). */
#define TRAP_DEBUG 1
#define TRAP_INT3  3

_Static_assert(sizeof(xen_pfn_t) == sizeof(uint64_t),
    "the gfn arrays are passed to xenforeignmemory_map as they are");

static const struct vmi_driver_ops xen_ops;

/* ---- life ------------------------------------------------------------------ */

static void
xen_close(struct vmi_driver *d)
{
	struct xen_drv *x = xen_of(d);

	if (x == NULL)
		return;
	if (x->ops.monitor_stop != NULL)
		x->ops.monitor_stop(d);
	if (x->virq_port >= 0)
		xenevtchn_unbind(x->xce, (evtchn_port_t)x->virq_port);
	if (x->dmod != NULL)
		xendevicemodel_close(x->dmod);
	if (x->fmem != NULL)
		xenforeignmemory_close(x->fmem);
	if (x->xce != NULL)
		xenevtchn_close(x->xce);
	if (x->xch != NULL)
		xc_interface_close(x->xch);
	xen_regs_fini(x);
	xen_dr7_fini(x);
	free(x);
}

static int
getinfo(struct xen_drv *x, xc_dominfo_t *info)
{
	int n = xc_domain_getinfo(x->xch, x->domid, 1, info);

	if (n < 0)
		return xen_err(n);
	/* getinfo returns the next domain at or above domid. */
	if (n == 0 || info->domid != x->domid)
		return -ESRCH;
	return 0;
}

/*
 * -ESRCH if the domain is being destroyed, else 0 (or -errno). Xen 4.17
 * takes XEN_DOMCTL_setvcpucontext for a dying domain, whose vCPUs have
 * already lost their emulation cache to hvm_domain_relinquish_resources:
 * arch_set_info_guest -> hvmemul_cancel then dereferences NULL and the
 * hypervisor panics (it ended a CI run), so every light write asks this
 * first (xen_regs.c, set_by_vcpu_context). The microseconds between the
 * question and the write stay open; dom0 cannot close them (a destroy
 * does not wait for a pause). getdomaininfo alone cannot tell: its
 * "dying" flag comes only once the teardown is over. domain_kill closes the domain's event channels before it frees
 * anything, though, so our end of the vm_event channel still bound to the
 * domain says the teardown has not got that far. It is a question about
 * our own port: it touches no vCPU of the guest (hvm_save_one would tell
 * too, it refuses a dying domain, but it pauses the vCPU it reads).
 * Without the ring, getdomaininfo's late flag is all there is.
 */
int
xen_refuse_dying(struct xen_drv *x)
{
	xc_evtchn_status_t st = { .dom = DOMID_SELF, .port = x->local_port };
	xc_dominfo_t info;
	int r;

	if (!x->ring_on) {
		r = getinfo(x, &info);
		return r < 0 ? r : info.dying ? -ESRCH : 0;
	}
	if (xc_evtchn_status(x->xch, &st) < 0)
		return xen_err(-1);
	return st.status == EVTCHNSTAT_interdomain &&
	    st.u.interdomain.dom == x->domid ? 0 : -ESRCH;
}

/*
 * Decide what this machine and domain offer. Monitor capabilities come
 * from Xen (xc_monitor_get_capabilities: 1 << XEN_DOMCTL_MONITOR_EVENT_*,
 * xen/domctl.h); MTF is reported there only on VMX. p2m access
 * restrictions (mem_access) need VMX with EPT in Xen 4.17: on SVM
 * xc_set_mem_access fails with EINVAL (XEN-LAB.md), so it is not offered.
 */
static int
xen_probe(struct xen_drv *x)
{
	xc_physinfo_t phys = { 0 };
	bool swb, dbg, mtf, mem;
	int r;

	r = xen_err(xc_physinfo(x->xch, &phys));
	if (r < 0)
		return r;
	x->vmx = phys.hw_cap[HWCAP_VMX_WORD] & (1u << HWCAP_VMX_BIT);
	x->svm = phys.hw_cap[HWCAP_SVM_WORD] & (1u << HWCAP_SVM_BIT);
	x->hap = phys.capabilities & XEN_SYSCTL_PHYSCAP_hap;
	r = xen_err(xc_monitor_get_capabilities(x->xch, x->domid,
	    &x->monitor_caps));
	if (r < 0)
		return r;
	swb = x->monitor_caps & (1u << XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT);
	dbg = x->monitor_caps & (1u << XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION);
	mtf = x->monitor_caps & (1u << XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP);
	mem = x->vmx && x->hap;

	x->ops = xen_ops;
	if (!swb)
		x->ops.monitor_swbreak = NULL;
	if (!dbg)
		x->ops.monitor_debug = NULL;
	if (!mtf) {
		x->ops.monitor_mtf = NULL;
		x->ops.mtf_arm = NULL;
	}
	if (!mem)
		x->ops.set_mem_access = NULL;
	x->ops.step_why = mtf ?
	    "Xen reports monitor single-step (MTF, VMX): stepping by MTF" :
	    dbg ? "Xen reports no monitor single-step (no MTF on this CPU): "
	    "stepping by RFLAGS.TF with #DB monitor events" :
	    "Xen reports neither MTF nor #DB monitoring: no stepping";

	snprintf(x->platform, sizeof(x->platform), "xen-%d.%d %s%s",
	    xc_version(x->xch, XENVER_version, NULL) >> 16,
	    xc_version(x->xch, XENVER_version, NULL) & 0xffff,
	    x->vmx ? "vmx" : x->svm ? "svm" : "unknown-cpu",
	    x->hap ? " hap" : "");
	snprintf(x->why, sizeof(x->why),
	    "monitor caps 0x%x: swbreak %s, debug-exception %s, singlestep(MTF) "
	    "%s; mem_access %s (needs VMX+HAP); vm_event v%d",
	    x->monitor_caps, swb ? "yes" : "no", dbg ? "yes" : "no",
	    mtf ? "yes" : "no", mem ? "yes" : "no", VM_EVENT_INTERFACE_VERSION);
	return 0;
}

int
vmi_xen_open(uint32_t domid, struct vmi_driver **out)
{
	xc_dominfo_t info;
	xen_pfn_t max_gpfn = 0;
	struct xen_drv *x;
	int r, fd, ver;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	x->base.ops = &x->ops;
	x->ops = xen_ops;
	x->domid = domid;
	x->virq_port = -1;
	x->xch = xc_interface_open(NULL, NULL, 0);
	x->xce = xenevtchn_open(NULL, 0);
	x->fmem = xenforeignmemory_open(NULL, 0);
	x->dmod = xendevicemodel_open(NULL, 0);
	if (x->xch == NULL || x->xce == NULL || x->fmem == NULL ||
	    x->dmod == NULL) {
		r = errno == ENOENT ? -EACCES : (errno ? -errno : -EACCES);
		goto fail;
	}
	ver = xc_vm_event_get_version(x->xch);
	if (ver != VM_EVENT_INTERFACE_VERSION) {
		r = ver < 0 ? xen_err(ver) : -EPROTO;
		goto fail;
	}
	r = getinfo(x, &info);
	if (r < 0)
		goto fail;
	if (!info.hvm) {
		/* PV guests have no vm_event monitor and no HVM context. */
		r = -EOPNOTSUPP;
		goto fail;
	}
	x->nr_vcpus = info.max_vcpu_id + 1;
	r = xen_err(xc_domain_maximum_gpfn(x->xch, domid, &max_gpfn));
	if (r < 0)
		goto fail;
	x->max_gfn = max_gpfn;
	r = xen_probe(x);
	if (r < 0)
		goto fail;
	/* The session must never block on the event fd. */
	fd = xenevtchn_fd(x->xce);
	r = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (r < 0) {
		r = -errno;
		goto fail;
	}
	/* VIRQ_DOM_EXC (xen/xen.h) fires in dom0 when any domain shuts down
	 * or dies: bound here it wakes the same fd, so death arrives as an
	 * event at once. A VIRQ binds once per domain, and in a running dom0
	 * xenstored holds it (EEXIST, seen in the lab): then death is found
	 * by the domain-state check of vmi_timeout(), which the caller runs
	 * periodically anyway. */
	x->virq_port = xenevtchn_bind_virq(x->xce, VIRQ_DOM_EXC);
	if (x->virq_port < 0 && errno != EEXIST) {
		r = xen_err(x->virq_port);
		goto fail;
	}
	*out = &x->base;
	return 0;
fail:
	x->ops.monitor_stop = NULL;
	xen_close(&x->base);
	return r;
}

static int
xen_info(struct vmi_driver *d, struct vmi_info *out)
{
	struct xen_drv *x = xen_of(d);
	int n;

	memset(out, 0, sizeof(*out));
	out->driver = "xen";
	snprintf(out->platform, sizeof(out->platform), "%s", x->platform);
	/* The counts let the lab see whether a light write ever had to put
	 * the extended FPU state back (xen_regs.c, keep the state). */
	n = snprintf(out->why, sizeof(out->why),
	    "%s; light register writes %llu, extended-state reloads %llu",
	    x->why, (unsigned long long)x->light_writes,
	    (unsigned long long)x->xs_reloads);
	if (n < 0)
		return -EIO;
	out->nr_vcpus = x->nr_vcpus;
	out->max_gfn = x->max_gfn;
	out->domid = x->domid;
	return 0;
}

static int
xen_domain_state(struct vmi_driver *d, enum vmi_domstate *st, int *reason)
{
	struct xen_drv *x = xen_of(d);
	xc_dominfo_t info;
	int r = getinfo(x, &info);

	*reason = 0;
	if (r == -ESRCH) {
		*st = VMI_DOM_GONE;
		return 0;
	}
	if (r < 0)
		return r;
	if (info.dying)
		*st = VMI_DOM_GONE;
	else if (info.shutdown || info.crashed) {
		*st = VMI_DOM_SHUTDOWN;
		*reason = info.crashed ? SHUTDOWN_crash : (int)info.shutdown_reason;
	} else
		*st = info.paused ? VMI_DOM_PAUSED : VMI_DOM_RUNNING;
	return 0;
}

static int
xen_pause(struct vmi_driver *d)
{
	return xen_err(xc_domain_pause(xen_of(d)->xch, xen_of(d)->domid));
}

static int
xen_unpause(struct vmi_driver *d)
{
	return xen_err(xc_domain_unpause(xen_of(d)->xch, xen_of(d)->domid));
}

/* ---- memory ----------------------------------------------------------------- */

static void *
xen_map(struct vmi_driver *d, const uint64_t *gfns, unsigned n, int *errs)
{
	struct xen_drv *x = xen_of(d);
	void *p = xenforeignmemory_map(x->fmem, x->domid,
	    PROT_READ | PROT_WRITE, n, (const xen_pfn_t *)gfns, errs);

	if (p != NULL)
		for (unsigned i = 0; i < n; i++)
			errs[i] = errs[i] > 0 ? -errs[i] : errs[i];
	return p;
}

static void
xen_unmap(struct vmi_driver *d, void *addr, unsigned n)
{
	xenforeignmemory_unmap(xen_of(d)->fmem, addr, n);
}

/* ---- events ------------------------------------------------------------------ */

static int
ring_start(struct xen_drv *x)
{
	uint32_t remote;
	int port;

	if (x->ring_on)
		return 0;
	x->ring_page = xc_monitor_enable(x->xch, x->domid, &remote);
	if (x->ring_page == NULL)
		return errno ? -errno : -EIO;
	port = xenevtchn_bind_interdomain(x->xce, x->domid, remote);
	if (port < 0) {
		int r = xen_err(port);

		xc_monitor_disable(x->xch, x->domid);
		munmap(x->ring_page, XC_PAGE_SIZE);
		x->ring_page = NULL;
		return r;
	}
	x->local_port = (evtchn_port_t)port;
	SHARED_RING_INIT((vm_event_sring_t *)x->ring_page);
	BACK_RING_INIT(&x->back, (vm_event_sring_t *)x->ring_page,
	    XC_PAGE_SIZE);
	x->ring_on = true;
	return 0;
}

static int
xen_monitor_stop(struct vmi_driver *d)
{
	struct xen_drv *x = xen_of(d);
	int r;

	if (!x->ring_on)
		return 0;
	r = xen_err(xc_monitor_disable(x->xch, x->domid));
	xenevtchn_unbind(x->xce, x->local_port);
	munmap(x->ring_page, XC_PAGE_SIZE);
	x->ring_page = NULL;
	x->ring_on = false;
	/* A domain that is already gone has nothing left to disable. */
	return r == -ESRCH ? 0 : r;
}

static int
xen_event_fd(struct vmi_driver *d)
{
	return xenevtchn_fd(xen_of(d)->xce);
}

static void
convert(const vm_event_request_t *q, struct vmi_event *ev)
{
	const struct vm_event_regs_x86 *x = &q->data.regs.x86;

	memset(ev, 0, sizeof(*ev));
	ev->vcpu = q->vcpu_id;
	ev->sync = q->flags & VM_EVENT_FLAG_VCPU_PAUSED;
#define FROM(n) ev->regs.n = x->n;
	FROM(rax) FROM(rbx) FROM(rcx) FROM(rdx) FROM(rsi) FROM(rdi) FROM(rbp)
	FROM(rsp) FROM(r8) FROM(r9) FROM(r10) FROM(r11) FROM(r12) FROM(r13)
	FROM(r14) FROM(r15) FROM(rip) FROM(rflags)
#undef FROM
	ev->cr0 = x->cr0;
	ev->cr3 = x->cr3;
	ev->cr4 = x->cr4;
	ev->efer = x->msr_efer;
	/* drv[0]: the request's flags and reason; drv[1]: its altp2m view
	 * and, for a mem_access request, its raw u.mem_access.flags (bits
	 * 63:32), which the response must carry back (xen_respond). */
	ev->drv[0] = q->flags | ((uint64_t)q->reason << 32);
	ev->drv[1] = q->altp2m_idx;
	switch (q->reason) {
	case VM_EVENT_REASON_SOFTWARE_BREAKPOINT:
		ev->kind = VMI_EVENT_SWBREAK;
		ev->u.swbreak.insn_len = q->u.software_breakpoint.insn_length;
		ev->u.swbreak.type = q->u.software_breakpoint.type;
		break;
	case VM_EVENT_REASON_DEBUG_EXCEPTION:
		ev->kind = VMI_EVENT_DEBUG;
		/* Both 0 from Xen 4.17 on VMX and SVM alike (classify in
		 * vmi/session.c says why); kept for a Xen that fills them. */
		ev->u.debug.dr6 = x->dr6;
		ev->u.debug.pending_dbg = q->u.debug_exception.pending_dbg;
		ev->u.debug.insn_len = q->u.debug_exception.insn_length;
		ev->u.debug.type = q->u.debug_exception.type;
		break;
	case VM_EVENT_REASON_SINGLESTEP:
		ev->kind = VMI_EVENT_SINGLESTEP;
		break;
	case VM_EVENT_REASON_MEM_ACCESS:
		ev->kind = VMI_EVENT_MEMACCESS;
		ev->u.mem.gfn = q->u.mem_access.gfn;
		ev->u.mem.offset = q->u.mem_access.offset;
		ev->u.mem.gla = q->u.mem_access.gla;
		ev->u.mem.gla_valid =
		    q->u.mem_access.flags & MEM_ACCESS_GLA_VALID;
		ev->u.mem.access = q->u.mem_access.flags & MEM_ACCESS_RWX;
		ev->drv[1] |= (uint64_t)q->u.mem_access.flags << 32;
		break;
	default:
		ev->kind = VMI_EVENT_OTHER;
		break;
	}
}

/* After VIRQ_DOM_EXC: is it our domain that went? Report each state once. */
static int
check_domain(struct xen_drv *x, struct vmi_event *ev)
{
	enum vmi_domstate st;
	int reason, r = xen_domain_state(&x->base, &st, &reason);

	if (r < 0)
		return r;
	memset(ev, 0, sizeof(*ev));
	if (st == VMI_DOM_GONE && !x->reported_gone) {
		x->reported_gone = true;
		ev->kind = VMI_EVENT_DOMAIN_GONE;
		return 1;
	}
	if (st == VMI_DOM_SHUTDOWN && !x->reported_shutdown) {
		x->reported_shutdown = true;
		ev->kind = VMI_EVENT_DOMAIN_SHUTDOWN;
		ev->u.shutdown.reason = reason;
		return 1;
	}
	return 0;
}

/*
 * A request of another interface version cannot be converted, but its
 * vCPU is paused until something answers it (VCPU_PAUSED): answer it at
 * once, unchanged, with the fields vm_event_resume checks (version,
 * vcpu_id, flags; xen/common/vm_event.c). version, flags and vcpu_id
 * lead the struct in every version so far (xen/vm_event.h), so they are
 * read as they are. Never happens with the version checks at open, but
 * the failure it replaces was a guest stuck for good.
 */
static void
answer_foreign(struct xen_drv *x, const vm_event_request_t *req)
{
	vm_event_response_t rsp;

	memset(&rsp, 0, sizeof(rsp));
	rsp.version = VM_EVENT_INTERFACE_VERSION;
	rsp.vcpu_id = req->vcpu_id;
	rsp.reason = req->reason;
	rsp.flags = req->flags & VM_EVENT_FLAG_VCPU_PAUSED;
	memcpy(RING_GET_RESPONSE(&x->back, x->back.rsp_prod_pvt), &rsp,
	    sizeof(rsp));
	x->back.rsp_prod_pvt++;
	x->proto_err = true;
}

static int
xen_drain(struct vmi_driver *d, struct vmi_event *evs, unsigned max)
{
	struct xen_drv *x = xen_of(d);
	unsigned n = 0;
	bool answered = false;

	/* Requests already in the ring are taken without the event channel:
	 * a vCPU answered a moment ago has often run on and raised the next
	 * one (a step) before we get back here, and reading and unmasking
	 * its port would be two system calls per event for nothing (a PV
	 * dom0's go through Xen). The port stays queued in the kernel,
	 * masked, so the fd stays readable and a later call, with the ring
	 * empty, reads it (the VIRQ's too): no wake-up is lost, as the ring
	 * is always read after an unmask. One pending port per call, not a
	 * loop until EAGAIN: a second one keeps the fd readable. */
	if (!(x->ring_on && RING_HAS_UNCONSUMED_REQUESTS(&x->back))) {
		xenevtchn_port_or_error_t port = xenevtchn_pending(x->xce);

		if (port < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (port >= 0) {
			if (xenevtchn_unmask(x->xce, (evtchn_port_t)port) < 0)
				return -errno;
			if (port == x->virq_port)
				x->dom_exc = true;
		}
	}
	if (x->dom_exc && n < max) {
		int r = check_domain(x, &evs[n]);

		x->dom_exc = false;
		if (r < 0)
			return r;
		n += (unsigned)r;
	}
	while (x->ring_on && n < max &&
	    RING_HAS_UNCONSUMED_REQUESTS(&x->back)) {
		vm_event_request_t req;
		RING_IDX idx = x->back.req_cons;

		RING_COPY_REQUEST(&x->back, idx, &req);
		x->back.req_cons = ++idx;
		/* Ask for a notification for the next request. */
		x->back.sring->req_event = idx + 1;
		if (req.version != VM_EVENT_INTERFACE_VERSION) {
			answer_foreign(x, &req);
			answered = true;
			continue;
		}
		convert(&req, &evs[n++]);
	}
	if (answered) {
		RING_PUSH_RESPONSES(&x->back);
		xenevtchn_notify(x->xce, x->local_port);
	}
	/* The events converted are returned; the error comes once, on this
	 * call if there is nothing else to return, else on the next. */
	if (x->proto_err && n == 0) {
		x->proto_err = false;
		return -EPROTO;
	}
	return (int)n;
}

static int
xen_respond(struct vmi_driver *d, const struct vmi_event *ev,
    const struct vmi_response *r)
{
	struct xen_drv *x = xen_of(d);
	vm_event_response_t rsp;
	uint32_t qflags = (uint32_t)ev->drv[0];

	if (!x->ring_on)
		return -ENOTCONN;
	memset(&rsp, 0, sizeof(rsp));
	rsp.version = VM_EVENT_INTERFACE_VERSION;
	rsp.vcpu_id = ev->vcpu;
	rsp.reason = (uint32_t)(ev->drv[0] >> 32);
	/* VCPU_PAUSED in a response is what unpauses the vCPU. */
	rsp.flags = qflags & VM_EVENT_FLAG_VCPU_PAUSED;
	if (qflags & VM_EVENT_FLAG_ALTERNATE_P2M) {
		rsp.flags |= VM_EVENT_FLAG_ALTERNATE_P2M;
		rsp.altp2m_idx = (uint16_t)ev->drv[1];
	}
	if (r->flags & VMI_RSP_TOGGLE_MTF)
		rsp.flags |= VM_EVENT_FLAG_TOGGLE_SINGLESTEP;
	if (r->flags & VMI_RSP_EMULATE)
		rsp.flags |= VM_EVENT_FLAG_EMULATE;
	if (rsp.reason == VM_EVENT_REASON_MEM_ACCESS) {
		/* Xen decides whether to emulate from the response's copy:
		 * vm_event_emulate_check -> p2m_mem_access_emulate_check
		 * (xen/arch/x86/vm_event.c, mm/mem_access.c) looks up
		 * rsp->u.mem_access.gfn and tests its R/W/X flags against the
		 * frame's current access. Zeroed, it finds no violation and
		 * emulates nothing, and the vCPU faults on the same access
		 * forever. xen-access copies the request's the same way. */
		rsp.u.mem_access.gfn = ev->u.mem.gfn;
		rsp.u.mem_access.offset = ev->u.mem.offset;
		rsp.u.mem_access.gla = ev->u.mem.gla;
		rsp.u.mem_access.flags = (uint32_t)(ev->drv[1] >> 32);
	}
	if (r->flags & VMI_RSP_SET_REGS) {
		/* Xen applies only the general registers, RFLAGS and RIP from
		 * this struct (xen/vm_event.h); the rest is ignored. */
		struct vm_event_regs_x86 *o = &rsp.data.regs.x86;

		rsp.flags |= VM_EVENT_FLAG_SET_REGISTERS;
#define TO(n) o->n = r->regs.n;
		TO(rax) TO(rbx) TO(rcx) TO(rdx) TO(rsi) TO(rdi) TO(rbp) TO(rsp)
		TO(r8) TO(r9) TO(r10) TO(r11) TO(r12) TO(r13) TO(r14) TO(r15)
		TO(rip) TO(rflags)
#undef TO
	}
	memcpy(RING_GET_RESPONSE(&x->back, x->back.rsp_prod_pvt), &rsp,
	    sizeof(rsp));
	x->back.rsp_prod_pvt++;
	return 0;
}

static int
xen_flush(struct vmi_driver *d)
{
	struct xen_drv *x = xen_of(d);

	if (!x->ring_on)
		return 0;
	RING_PUSH_RESPONSES(&x->back);
	return xen_err(xenevtchn_notify(x->xce, x->local_port));
}

static int
xen_monitor_swbreak(struct vmi_driver *d, bool on)
{
	struct xen_drv *x = xen_of(d);
	int r = on ? ring_start(x) : 0;

	return r ? r : xen_err(xc_monitor_software_breakpoint(x->xch,
	    x->domid, on));
}

static int
xen_monitor_debug(struct vmi_driver *d, bool on)
{
	struct xen_drv *x = xen_of(d);
	int r = on ? ring_start(x) : 0;

	/* sync: the vCPU waits for the answer, which is what lets a
	 * response set TF or registers before it runs on. */
	return r ? r : xen_err(xc_monitor_debug_exceptions(x->xch, x->domid,
	    on, true));
}

static int
xen_monitor_mtf(struct vmi_driver *d, bool on)
{
	struct xen_drv *x = xen_of(d);
	int r = on ? ring_start(x) : 0;

	return r ? r : xen_err(xc_monitor_singlestep(x->xch, x->domid, on));
}

static int
xen_mtf_arm(struct vmi_driver *d, unsigned vcpu, bool on)
{
	struct xen_drv *x = xen_of(d);

	return xen_err(xc_domain_debug_control(x->xch, x->domid,
	    on ? XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_ON :
	    XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_OFF, vcpu));
}

/*
 * Xen 4.17's vm_event response has no "re-inject" flag; the trap is queued
 * with XEN_DMOP_inject_event (xen/hvm/dm_op.h) for the vCPU's next resume,
 * with the event's own type and instruction length so that the guest's
 * handler sees the RIP a real int3 or #DB would have left.
 */
static int
xen_reinject(struct vmi_driver *d, const struct vmi_event *ev)
{
	struct xen_drv *x = xen_of(d);
	int r;

	switch (ev->kind) {
	case VMI_EVENT_SWBREAK:
		r = xen_err(xendevicemodel_inject_event(x->dmod,
		    (domid_t)x->domid, (int)ev->vcpu, TRAP_INT3,
		    ev->u.swbreak.type, ~0u, (uint8_t)ev->u.swbreak.insn_len, 0));
		break;
	case VMI_EVENT_DEBUG:
		r = xen_err(xendevicemodel_inject_event(x->dmod,
		    (domid_t)x->domid, (int)ev->vcpu, TRAP_DEBUG,
		    ev->u.debug.type, ~0u, (uint8_t)ev->u.debug.insn_len,
		    ev->u.debug.pending_dbg));
		break;
	default:
		return -EINVAL;
	}
	/* -EBUSY: an injection for this vCPU is queued and not yet taken
	 * (inject_event, xen/arch/x86/hvm/dm.c). hvm_do_resume takes it on
	 * the vCPU's next resume (xen/arch/x86/hvm/hvm.c), and a held vCPU
	 * has not resumed since it raised this event, so the queued one is
	 * this event's, from an earlier answer that did not go through;
	 * it is delivered on that resume. */
	return r == -EBUSY ? 0 : r;
}

static int
xen_set_mem_access(struct vmi_driver *d, uint64_t gfn, unsigned access)
{
	/* xenmem_access_t (xen/memory.h) counts n, r, w, rw, x, rx, wx,
	 * rwx: the same three bits as VMI_ACCESS_*. */
	struct xen_drv *x = xen_of(d);
	/* mem_access_memop fails with -ENODEV while the domain has no
	 * monitor ring (xen/common/mem_access.c, vm_event_check_ring), and a
	 * restriction is only useful with the ring there to report its
	 * violations: start it, as the monitor_* ops do. */
	int r = ring_start(x);

	if (r < 0)
		return r;
	return xen_err(xc_set_mem_access(x->xch, x->domid,
	    (xenmem_access_t)(XENMEM_access_n + (access & VMI_ACCESS_RWX)),
	    gfn, 1));
}

static const struct vmi_driver_ops xen_ops = {
	.name = "xen",
	.close = xen_close,
	.info = xen_info,
	.domain_state = xen_domain_state,
	.pause = xen_pause,
	.unpause = xen_unpause,
	.get_regs = xen_get_regs,
	.get_cr8 = xen_get_cr8,
	.set_regs = xen_set_regs,
	.set_light_regs = xen_set_light_regs,
	.map = xen_map,
	.unmap = xen_unmap,
	.write_mem = true,
	.event_fd = xen_event_fd,
	.drain = xen_drain,
	.respond = xen_respond,
	.flush = xen_flush,
	.monitor_stop = xen_monitor_stop,
	.monitor_swbreak = xen_monitor_swbreak,
	.monitor_debug = xen_monitor_debug,
	.monitor_mtf = xen_monitor_mtf,
	.mtf_arm = xen_mtf_arm,
	.reinject = xen_reinject,
	.set_mem_access = xen_set_mem_access,
};

/* ---- names ---------------------------------------------------------------------- */

int
vmi_xen_domid_by_name(const char *name, uint32_t *domid)
{
	struct xs_handle *xs = xs_open(XS_OPEN_READONLY);
	unsigned num = 0;
	char **ids;
	int r = -ENOENT;

	if (xs == NULL)
		return errno ? -errno : -EIO;
	ids = xs_directory(xs, XBT_NULL, "/local/domain", &num);
	for (unsigned i = 0; ids != NULL && i < num && r == -ENOENT; i++) {
		char path[64];
		unsigned len = 0;
		char *val;

		snprintf(path, sizeof(path), "/local/domain/%s/name", ids[i]);
		val = xs_read(xs, XBT_NULL, path, &len);
		if (val != NULL && strcmp(val, name) == 0) {
			*domid = (uint32_t)strtoul(ids[i], NULL, 10);
			r = 0;
		}
		free(val);
	}
	if (ids == NULL)
		r = errno ? -errno : -EIO;
	free(ids);
	xs_close(xs);
	return r;
}

int
vmi_xen_list_domains(struct vmi_xen_domain *out, unsigned max)
{
	struct xs_handle *xs = xs_open(XS_OPEN_READONLY);
	unsigned num = 0, n = 0;
	char **ids;

	if (xs == NULL)
		return errno ? -errno : -EIO;
	ids = xs_directory(xs, XBT_NULL, "/local/domain", &num);
	if (ids == NULL) {
		xs_close(xs);
		return errno ? -errno : -EIO;
	}
	for (unsigned i = 0; i < num && n < max; i++) {
		char path[64];
		unsigned len = 0;
		char *val;

		snprintf(path, sizeof(path), "/local/domain/%s/name", ids[i]);
		val = xs_read(xs, XBT_NULL, path, &len);
		out[n].domid = (uint32_t)strtoul(ids[i], NULL, 10);
		snprintf(out[n].name, sizeof(out[n].name), "%s",
		    val != NULL ? val : "");
		free(val);
		n++;
	}
	free(ids);
	xs_close(xs);
	return (int)n;
}
