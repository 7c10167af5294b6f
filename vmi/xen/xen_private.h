/*
 * xen_private.h - the Xen driver's instance, shared by its files.
 */
#ifndef VMI_XEN_PRIVATE_H
#define VMI_XEN_PRIVATE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <xencall.h>
#include <xenctrl.h>
#include <xendevicemodel.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/vm_event.h>

#include "vmi_driver.h"

/*
 * Pinned at build time too (vmi/xen/meson.build): the ring layout, the
 * request/response structs and every flag below belong to this version.
 */
_Static_assert(VM_EVENT_INTERFACE_VERSION == 7,
    "vmi/xen speaks vm_event interface version 7 (Xen 4.17); "
    "these Xen headers define another");

struct xen_drv {
	struct vmi_driver base;
	/* This instance's abilities: the full table with what the machine
	 * and the domain lack cleared (see xen_probe in xen.c). */
	struct vmi_driver_ops ops;
	uint32_t domid;
	xc_interface *xch;
	xenevtchn_handle *xce;
	xenforeignmemory_handle *fmem;
	xendevicemodel_handle *dmod;
	unsigned nr_vcpus;
	uint64_t max_gfn;
	uint32_t monitor_caps;
	bool vmx, svm, hap;
	char platform[64];
	char why[256];

	/* vm_event ring, set up on first use. */
	bool ring_on;
	void *ring_page;
	vm_event_back_ring_t back;
	evtchn_port_t local_port;
	int virq_port;          /* VIRQ_DOM_EXC: some domain shut down/died */
	bool dom_exc;
	bool reported_gone, reported_shutdown;

	/* Guest TSC cycles per dom0 TSC cycle, for the record write's TSC
	 * correction (xen_regs.c, load_image); 0 until first needed. */
	double tsc_scale;

	/* The light write's domctls, issued without libxenctrl's bounce
	 * buffers, and the extended FPU state kept across setvcpucontext
	 * (xen_regs.c, set_by_vcpu_context). Set up at the first one. */
	xencall_handle *xcall;
	void *hc_domctl;        /* struct xen_domctl in hypercall memory */
	void *hc_ctx;           /* vcpu_guest_context_any_t, likewise */
	void *xs_buf;           /* xcr0, xcr0_accum, XSAVE image */
	uint32_t xs_size;       /* PV_XSAVE_SIZE(Xen's xfeature_mask) */
	uint64_t xs_mask;       /* Xen's xfeature_mask; 0: no XSAVE */
	bool xs_probed;
	uint64_t light_writes, xs_reloads;   /* shown by xen_info */
	/* A request of another vm_event version was answered and dropped:
	 * the next drain reports -EPROTO (once). */
	bool proto_err;
	/* Per vCPU: the inert DR7 written in place of one that enables
	 * nothing (xen_dr7.c). */
	struct xen_dr7 *dr7s;
};

int xen_get_regs(struct vmi_driver *d, unsigned vcpu, struct vmi_regs *r);
int xen_get_cr8(struct vmi_driver *d, unsigned vcpu, uint64_t *cr8);
int xen_set_regs(struct vmi_driver *d, unsigned vcpu,
    const struct vmi_regs *r);
int xen_set_light_regs(struct vmi_driver *d, unsigned vcpu,
    const struct vmi_regs *r);
/* Frees what xen_regs.c set up (xcall and its buffers). */
void xen_regs_fini(struct xen_drv *x);
/* xen.c: -ESRCH once the domain is being destroyed (before a setcontext). */
int xen_refuse_dying(struct xen_drv *x);
/* xen_dr7.c: DR3/DR7 as the session means them <-> as Xen must hold them. */
void xen_dr7_to_xen(struct xen_drv *x, unsigned vcpu, uint64_t *dr3,
    uint64_t *dr7);
void xen_dr7_from_xen(struct xen_drv *x, unsigned vcpu, uint64_t *dr3,
    uint64_t *dr7);
void xen_dr7_fini(struct xen_drv *x);

static inline struct xen_drv *
xen_of(struct vmi_driver *d)
{
	return (struct xen_drv *)d;
}

/* libxenctrl returns -1 with errno; the vmi layer wants -errno. */
static inline int
xen_err(int r)
{
	return r < 0 ? (errno ? -errno : -EIO) : r;
}

#endif
