/*
 * xen_dr7.c - never hand Xen a DR7 that enables nothing.
 *
 * On SVM, Xen (4.17, and master as of this writing) loads a vCPU's debug
 * registers lazily: svm_restore_dr() copies DR0-3 and DR7 into the CPU
 * and the VMCB only when the DR7 it holds for the vCPU enables a
 * breakpoint (DR7_ACTIVE_MASK), and neither arch_set_info_guest() (SVM
 * has no set_info_guest hook) nor the HVM CPU record's loader
 * (svm_vmcb_restore) write the VMCB's DR7 themselves
 * (xen/arch/x86/hvm/svm/svm.c, domain.c, hvm.c). So a DR7 written through
 * XEN_DOMCTL_setvcpucontext or the save record with nothing enabled
 * leaves the *previous* DR7 in force, over whatever DR0-3 the physical
 * CPU last held, until the guest itself next touches a debug register.
 * (VMX writes GUEST_DR7 in vmx_set_info_guest and vmx_vmcs_restore: no
 * such problem, and nothing is done there.) Measured in the lab: after vmistub took its DR3
 * breakpoint back, the vCPU trapped at the same address once more, a #DB
 * with no cause; re-injected into the Linux guest's init in user mode,
 * that #DB became a SIGTRAP and killed it (kernel panic). And every
 * session that had used a DR slot left the tiny guest one such #DB after
 * it ended.
 *
 * So when a DR7 that enables nothing is to replace one that Xen may have
 * loaded enabled, this writes instead an inert breakpoint in slot 3: a
 * one-byte write breakpoint on the last byte of the address space, which
 * is unmapped in the guests vmistub is for (Linux: the IS_ERR page), so
 * a write there faults before the breakpoint could trap. Xen then loads
 * that, and the enabled breakpoint is really gone. Reads give back the
 * DR3/DR7 the session wrote, so the layer above never sees it. It stays
 * after vmistub leaves (putting back the guest's DR7 "nothing enabled"
 * would bring the stale breakpoint back); a guest that reads DR3 or DR7
 * itself sees it (vmi/README.md, "Known limits").
 */
#include <stdlib.h>

#include "xen_private.h"

#define DR7_ACTIVE       0xffULL                 /* L0-G3 */
#define DR7_L3           (1ULL << 6)
#define DR7_SLOT3_RWLEN  (0xfULL << 28)          /* RW3, LEN3 */
#define DR7_RW3_WRITE    (1ULL << 28)            /* RW3 = 01, LEN3 = 00 */
#define INERT_DR3        0xffffffffffffffffULL
#define INERT_SLOT3      (DR7_L3 | DR7_RW3_WRITE)

struct xen_dr7 {
	bool was_enabled;    /* Xen may hold an enabling DR7 for the vCPU */
	bool inert;          /* what Xen holds is the inert breakpoint */
	uint64_t dr3, dr7;   /* then: what the session wrote instead */
};

static struct xen_dr7 *
state_of(struct xen_drv *x, unsigned vcpu)
{
	if (x->dr7s == NULL)
		x->dr7s = calloc(x->nr_vcpus, sizeof(*x->dr7s));
	return x->dr7s != NULL && vcpu < x->nr_vcpus ? &x->dr7s[vcpu] : NULL;
}

static bool
is_inert(uint64_t dr3, uint64_t dr7)
{
	return dr3 == INERT_DR3 &&
	    (dr7 & (DR7_ACTIVE | DR7_SLOT3_RWLEN)) == INERT_SLOT3;
}

void
xen_dr7_to_xen(struct xen_drv *x, unsigned vcpu, uint64_t *dr3,
    uint64_t *dr7)
{
	struct xen_dr7 *s = x->svm ? state_of(x, vcpu) : NULL;

	if (s == NULL)
		return;
	s->inert = !(*dr7 & DR7_ACTIVE) && s->was_enabled;
	if (!s->inert) {
		s->was_enabled |= (*dr7 & DR7_ACTIVE) != 0;
		return;
	}
	s->dr3 = *dr3;
	s->dr7 = *dr7;
	*dr3 = INERT_DR3;
	*dr7 = (*dr7 & ~DR7_SLOT3_RWLEN) | INERT_SLOT3;
}

void
xen_dr7_from_xen(struct xen_drv *x, unsigned vcpu, uint64_t *dr3,
    uint64_t *dr7)
{
	struct xen_dr7 *s = x->svm ? state_of(x, vcpu) : NULL;

	if (s == NULL)
		return;
	if (is_inert(*dr3, *dr7)) {
		if (!s->inert) {
			/* Left by an earlier session: the guest had nothing
			 * enabled, and its DR3 is not known any more. */
			s->inert = true;
			s->dr3 = 0;
			s->dr7 = *dr7 & ~(DR7_ACTIVE | DR7_SLOT3_RWLEN);
		}
		s->was_enabled = true;
		*dr3 = s->dr3;
		*dr7 = s->dr7;
		return;
	}
	/* Anything else is the guest's own (or a write of the session's
	 * that enables something): take it as it is. */
	s->inert = false;
	s->was_enabled |= (*dr7 & DR7_ACTIVE) != 0;
}

void
xen_dr7_fini(struct xen_drv *x)
{
	free(x->dr7s);
	x->dr7s = NULL;
}
