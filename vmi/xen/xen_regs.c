/*
 * xen_regs.c - vCPU registers through the HVM save record.
 *
 * The HVM_SAVE_CODE(CPU) record (xen/arch-x86/hvm/save.h, struct
 * hvm_hw_cpu) holds everything vmistub shows: general registers, RIP,
 * RFLAGS, CR0/2/3/4, DR0-3/6/7, segments with bases, limits and
 * attributes, descriptor tables, EFER and the syscall MSRs, shadow GS and
 * the 512-byte FXSAVE image. xc_vcpu_getcontext's vcpu_guest_context has
 * no segment bases or EFER for an HVM vCPU, so reading uses the record.
 *
 * Writing takes one of two paths. A change of general registers, RIP,
 * RFLAGS or debug registers only (breakpoints, watchpoints, TF: nearly
 * every write) goes through XEN_DOMCTL_setvcpucontext, see set_by_vcpu_context;
 * that call resets the vCPU's extended FPU state, which is therefore
 * read before and put back after it (see keep_xstate below).
 * Anything else (segments, control registers, MSRs, FPU) needs the record:
 * Xen 4.17 has no "set one record" call, only
 * xc_domain_hvm_setcontext() of a save image. The image written here holds
 * the header, a CPU record for every vCPU that is up, and END. Every vCPU
 * must be in it: hvm_load() first marks all vCPUs down and brings back up
 * only those whose CPU record it loads (seen in the lab: writing vCPU 0
 * alone stopped vCPU 1 for good). No other record (APIC, timers, IRQs) is
 * in the image, so none of that is reloaded. The records come from one
 * full save taken with the domain paused right before the load, so the
 * other vCPUs' records are current when they go back, and fields vmistub
 * does not model (pending event, tsc_aux) go back as Xen gave them; the
 * TSC is moved on by the time between save and load (set_by_record).
 *
 * CR8 is the local APIC's TPR (LAPIC_REGS record, offset 0x80, bits 7:4);
 * writing it would mean reloading the whole APIC page, so it is read-only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "xen_private.h"   /* first: defines __XEN_TOOLS__ */

#include <xen/hvm/save.h>

#define APIC_TPR 0x80

/* XCR0 / XSTATE_BV bits (SDM vol. 1, 13.1) and where XSTATE_BV sits in a
 * standard-format XSAVE image (13.4.2: the header follows the 512-byte
 * legacy region). */
#define XSTATE_FP        (1ULL << 0)
#define XSTATE_SSE       (1ULL << 1)
#define XSTATE_FP_SSE    (XSTATE_FP | XSTATE_SSE)
#define XSAVE_HDR_OFF    512
/* XEN_DOMCTL_getvcpuextstate's buffer: xcr0, xcr0_accum, then the image
 * (PV_XSAVE_HDR_SIZE in xen/arch/x86/domctl.c). */
#define PV_XSAVE_HDR     (2 * sizeof(uint64_t))

/*
 * The vCPU-context and extended-state domctls are issued here without
 * libxenctrl (it has no "set" wrapper for the latter, and bounces the
 * former through fresh buffers, see hcall_setup), so this file speaks the
 * domctl ABI itself: Xen refuses any other interface version (-EACCES),
 * and a libxen-dev of another release may lay struct xen_domctl out
 * differently.
 */
_Static_assert(XEN_DOMCTL_INTERFACE_VERSION == 0x15,
    "vmi/xen issues XEN_DOMCTL_{get,set}vcpu{context,extstate} for domctl "
    "interface 0x15 (Xen 4.17); these Xen headers define another");

struct seg_map {
	size_t sel, limit, base, ar;
};

/* hvm_hw_cpu keeps each segment's fields in four separate arrays. */
#define SEG(n) { offsetof(struct hvm_hw_cpu, n##_sel), \
	offsetof(struct hvm_hw_cpu, n##_limit), \
	offsetof(struct hvm_hw_cpu, n##_base), \
	offsetof(struct hvm_hw_cpu, n##_arbytes) }

static const struct seg_map segs[VMI_SEG_COUNT] = {
	[VMI_SEG_CS] = SEG(cs), [VMI_SEG_SS] = SEG(ss), [VMI_SEG_DS] = SEG(ds),
	[VMI_SEG_ES] = SEG(es), [VMI_SEG_FS] = SEG(fs), [VMI_SEG_GS] = SEG(gs),
	[VMI_SEG_TR] = SEG(tr), [VMI_SEG_LDTR] = SEG(ldtr),
};

static uint32_t
get32(const struct hvm_hw_cpu *c, size_t off)
{
	uint32_t v;

	memcpy(&v, (const uint8_t *)c + off, sizeof(v));
	return v;
}

static uint64_t
get64(const struct hvm_hw_cpu *c, size_t off)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)c + off, sizeof(v));
	return v;
}

static void
put32(struct hvm_hw_cpu *c, size_t off, uint32_t v)
{
	memcpy((uint8_t *)c + off, &v, sizeof(v));
}

static void
put64(struct hvm_hw_cpu *c, size_t off, uint64_t v)
{
	memcpy((uint8_t *)c + off, &v, sizeof(v));
}

static int
read_cpu(struct xen_drv *x, unsigned vcpu, struct hvm_hw_cpu *cpu)
{
	return xen_err(xc_domain_hvm_getcontext_partial(x->xch, x->domid,
	    HVM_SAVE_CODE(CPU), (uint16_t)vcpu, cpu, sizeof(*cpu)));
}

static int
read_cr8(struct xen_drv *x, unsigned vcpu, uint64_t *cr8)
{
	struct hvm_hw_lapic_regs lapic;
	int r = xen_err(xc_domain_hvm_getcontext_partial(x->xch, x->domid,
	    HVM_SAVE_CODE(LAPIC_REGS), (uint16_t)vcpu, &lapic, sizeof(lapic)));

	if (r == 0)
		*cr8 = (lapic.data[APIC_TPR] >> 4) & 0xf;
	return r;
}

/* The two tables in one order: vmi_gregs member, hvm_hw_cpu member. */
#define GREGS(X) X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rbp) X(rsp) \
	X(r8) X(r9) X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(rip) \
	X(rflags)

static void
from_cpu(const struct hvm_hw_cpu *c, struct vmi_regs *r)
{
#define FROM(n) r->g.n = c->n;
	GREGS(FROM)
#undef FROM
	for (int i = 0; i < VMI_SEG_COUNT; i++) {
		r->seg[i].sel = (uint16_t)get32(c, segs[i].sel);
		r->seg[i].limit = get32(c, segs[i].limit);
		r->seg[i].base = get64(c, segs[i].base);
		r->seg[i].ar = get32(c, segs[i].ar);
	}
	r->gdtr_base = c->gdtr_base;
	r->gdtr_limit = c->gdtr_limit;
	r->idtr_base = c->idtr_base;
	r->idtr_limit = c->idtr_limit;
	r->cr0 = c->cr0;
	r->cr2 = c->cr2;
	r->cr3 = c->cr3;
	r->cr4 = c->cr4;
	r->efer = c->msr_efer;
	r->kernel_gs_base = c->shadow_gs;
	r->star = c->msr_star;
	r->lstar = c->msr_lstar;
	r->cstar = c->msr_cstar;
	r->sfmask = c->msr_syscall_mask;
	r->sysenter_cs = c->sysenter_cs;
	r->sysenter_esp = c->sysenter_esp;
	r->sysenter_eip = c->sysenter_eip;
	r->dr[0] = c->dr0;
	r->dr[1] = c->dr1;
	r->dr[2] = c->dr2;
	r->dr[3] = c->dr3;
	r->dr6 = c->dr6;
	r->dr7 = c->dr7;
	memcpy(r->fxsave, c->fpu_regs, sizeof(r->fxsave));
}

static void
to_cpu(const struct vmi_regs *r, struct hvm_hw_cpu *c)
{
#define TO(n) c->n = r->g.n;
	GREGS(TO)
#undef TO
	for (int i = 0; i < VMI_SEG_COUNT; i++) {
		put32(c, segs[i].sel, r->seg[i].sel);
		put32(c, segs[i].limit, r->seg[i].limit);
		put64(c, segs[i].base, r->seg[i].base);
		put32(c, segs[i].ar, r->seg[i].ar);
	}
	c->gdtr_base = r->gdtr_base;
	c->gdtr_limit = r->gdtr_limit;
	c->idtr_base = r->idtr_base;
	c->idtr_limit = r->idtr_limit;
	c->cr0 = r->cr0;
	c->cr2 = r->cr2;
	c->cr3 = r->cr3;
	c->cr4 = r->cr4;
	c->msr_efer = r->efer;
	c->shadow_gs = r->kernel_gs_base;
	c->msr_star = r->star;
	c->msr_lstar = r->lstar;
	c->msr_cstar = r->cstar;
	c->msr_syscall_mask = r->sfmask;
	c->sysenter_cs = r->sysenter_cs;
	c->sysenter_esp = r->sysenter_esp;
	c->sysenter_eip = r->sysenter_eip;
	c->dr0 = r->dr[0];
	c->dr1 = r->dr[1];
	c->dr2 = r->dr[2];
	c->dr3 = r->dr[3];
	c->dr6 = r->dr6;
	c->dr7 = r->dr7;
	if (memcmp(c->fpu_regs, r->fxsave, sizeof(c->fpu_regs)) != 0) {
		memcpy(c->fpu_regs, r->fxsave, sizeof(c->fpu_regs));
		/* hvm_load_cpu_ctxt only loads fpu_regs when the record says
		 * the FPU was initialised (xen/arch-x86/hvm/save.h). */
		c->flags |= XEN_X86_FPU_INITIALISED;
	}
}

int
xen_get_regs(struct vmi_driver *d, unsigned vcpu, struct vmi_regs *r)
{
	struct xen_drv *x = xen_of(d);
	struct hvm_hw_cpu cpu;
	int ret = read_cpu(x, vcpu, &cpu);

	if (ret != 0)
		return ret;
	memset(r, 0, sizeof(*r));
	from_cpu(&cpu, r);
	xen_dr7_from_xen(x, vcpu, &r->dr[3], &r->dr7);
	return 0;
}

int
xen_get_cr8(struct vmi_driver *d, unsigned vcpu, uint64_t *cr8)
{
	struct xen_drv *x = xen_of(d);
	int r;

	if (vcpu >= x->nr_vcpus)
		return -EINVAL;
	r = read_cr8(x, vcpu, cr8);
	/* A domain without an emulated local APIC has no TPR to read: CR8
	 * is then reported as 0, the value it resets to. A domain that is
	 * gone is reported as such. */
	if (r == -ESRCH)
		return r;
	if (r != 0)
		*cr8 = 0;
	return 0;
}

/*
 * The full save image of the domain, as xc_domain_hvm_getcontext gives it.
 * Taking it sets the domain's sync_tsc (arch_hvm_save), so every CPU
 * record's TSC is the guest TSC of this moment; *taken is dom0's TSC just
 * before the hypercall (the same clock as Xen's: a PV dom0 reads the TSC
 * natively).
 */
static int
full_save(struct xen_drv *x, uint8_t **image, size_t *size, uint64_t *taken)
{
	int n = xc_domain_hvm_getcontext(x->xch, x->domid, NULL, 0);
	int ret;

	*image = NULL;
	if (n <= 0)
		return xen_err(n < 0 ? n : -1);
	*image = malloc((size_t)n);
	if (*image == NULL)
		return -ENOMEM;
	*taken = __builtin_ia32_rdtsc();
	ret = xen_err(xc_domain_hvm_getcontext(x->xch, x->domid, *image,
	    (uint32_t)n));
	*size = (size_t)n;
	return ret < 0 ? ret : 0;
}

/*
 * From a full save: the image to load, HEADER, every CPU record and END
 * (hvm_load marks every vCPU down and brings back up only those whose
 * record it loads: a vCPU that is down has no record and stays down).
 * With r, vcpu's record becomes r (-ENODATA if vcpu is down).
 */
static int
cpu_image(struct xen_drv *x, const uint8_t *save, size_t size, unsigned vcpu,
    const struct vmi_regs *r, uint8_t **image, size_t *len)
{
	struct hvm_save_descriptor desc;
	struct hvm_hw_cpu cpu;
	uint8_t *out = malloc(size + sizeof(desc));
	size_t off = 0, rec;
	bool found = false;

	*image = out;
	*len = 0;
	if (out == NULL)
		return -ENOMEM;
	for (; off + sizeof(desc) <= size; off += rec) {
		memcpy(&desc, save + off, sizeof(desc));
		rec = sizeof(desc) + desc.length;
		if (desc.typecode == HVM_SAVE_CODE(END) || off + rec > size)
			break;
		if (desc.typecode != HVM_SAVE_CODE(HEADER) &&
		    desc.typecode != HVM_SAVE_CODE(CPU))
			continue;
		memcpy(out + *len, save + off, rec);
		if (r != NULL && desc.typecode == HVM_SAVE_CODE(CPU) &&
		    desc.instance == vcpu) {
			if (desc.length != sizeof(cpu))
				return -EPROTO;
			memcpy(&cpu, save + off + sizeof(desc), sizeof(cpu));
			to_cpu(r, &cpu);
			xen_dr7_to_xen(x, vcpu, &cpu.dr3, &cpu.dr7);
			memcpy(out + *len + sizeof(desc), &cpu, sizeof(cpu));
			found = true;
		}
		*len += rec;
	}
	desc = (struct hvm_save_descriptor){ .typecode = HVM_SAVE_CODE(END) };
	memcpy(out + *len, &desc, sizeof(desc));
	*len += sizeof(desc);
	return r != NULL && !found ? -ENODATA : 0;
}

/*
 * Load an image from cpu_image. hvm_load sets the guest TSC of each vCPU
 * to its record's value at the moment of the load, so without a
 * correction every vCPU's TSC would step back by the time since the save
 * (and by minutes with records from partial reads, which carry the TSC of
 * the last full save: vmi/REVIEW-intel.md, finding 4). Each record's TSC
 * is moved forward by that time, measured on dom0's TSC and scaled to the
 * guest's TSC rate: what is left is the difference between the two
 * hypercalls' entry times, microseconds either way.
 */
static int
load_image(struct xen_drv *x, uint8_t *image, size_t len, uint64_t taken)
{
	struct hvm_save_descriptor desc;
	struct hvm_hw_cpu cpu;
	uint64_t now = __builtin_ia32_rdtsc();
	uint64_t ahead = now > taken ?
	    (uint64_t)((double)(now - taken) * x->tsc_scale) : 0;

	for (size_t off = 0; off + sizeof(desc) <= len;
	    off += sizeof(desc) + desc.length) {
		memcpy(&desc, image + off, sizeof(desc));
		if (desc.typecode != HVM_SAVE_CODE(CPU) ||
		    desc.length != sizeof(cpu))
			continue;
		memcpy(&cpu, image + off + sizeof(desc), sizeof(cpu));
		cpu.tsc += ahead;
		memcpy(image + off + sizeof(desc), &cpu, sizeof(cpu));
	}
	return xen_err(xc_domain_hvm_setcontext(x->xch, x->domid, image,
	    (uint32_t)len));
}

/*
 * Guest TSC cycles per dom0 TSC cycle: the domain's TSC rate (gtsc_khz,
 * differs from the host's only when Xen emulates or scales the TSC) over
 * the host's. 1 when either is unknown.
 */
static void
probe_tsc_scale(struct xen_drv *x)
{
	xc_physinfo_t phys = { 0 };
	uint32_t mode, gtsc_khz, incarnation;
	uint64_t elapsed;

	x->tsc_scale = 1.0;
	if (xc_physinfo(x->xch, &phys) == 0 && phys.cpu_khz != 0 &&
	    xc_domain_get_tsc_info(x->xch, x->domid, &mode, &elapsed,
	    &gtsc_khz, &incarnation) == 0 && gtsc_khz != 0)
		x->tsc_scale = (double)gtsc_khz / phys.cpu_khz;
}

/*
 * The write of anything beyond the light part: one full save with the
 * domain paused, vcpu's CPU record replaced, every CPU record loaded back
 * (TSC corrected, load_image). Should Xen refuse the load after it has
 * marked every vCPU down (hvm_load does that first, and a record it
 * rejects leaves them so), the records as saved are loaded again: the
 * write fails, the guest runs on as it was.
 */
static int
set_by_record(struct xen_drv *x, unsigned vcpu, const struct vmi_regs *r)
{
	uint8_t *save = NULL, *image = NULL, *orig = NULL;
	size_t size = 0, len = 0, orig_len = 0;
	uint64_t taken = 0;
	int ret, undo;
	bool paused;

	if (x->tsc_scale == 0)
		probe_tsc_scale(x);
	ret = xen_err(xc_domain_pause(x->xch, x->domid));
	paused = ret == 0;
	if (ret == 0)
		ret = full_save(x, &save, &size, &taken);
	if (ret == 0)
		ret = cpu_image(x, save, size, vcpu, r, &image, &len);
	if (ret == 0)
		ret = cpu_image(x, save, size, vcpu, NULL, &orig, &orig_len);
	if (ret == 0) {
		ret = load_image(x, image, len, taken);
		if (ret < 0) {
			undo = load_image(x, orig, orig_len, taken);
			if (undo < 0)
				ret = undo == -ESRCH ? undo : -EIO;
		}
	}
	if (paused)
		xc_domain_unpause(x->xch, x->domid);
	free(save);
	free(image);
	free(orig);
	return ret;
}

/* ---- extended FPU state --------------------------------------------------- */

/*
 * Why this exists. XEN_DOMCTL_setvcpucontext loads the FPU of an HVM vCPU
 * with vcpu_setup_fpu(v, v->arch.xsave_area, fpu_ctxt or NULL, ...)
 * (arch_set_info_guest, xen/arch/x86/domain.c), which copies the 512-byte
 * legacy image and then sets XSTATE_BV to FP|SSE (or to 0 without
 * VGCF_I387_VALID; xen/arch/x86/i387.c). Every other XSAVE component
 * (YMM upper halves, AVX-512 opmask/ZMM, PKRU, ...) is thereby marked as
 * in its initial state, and the vCPU's next XRSTOR zeroes it. On Intel
 * XSAVEOPT also leaves the legacy region unwritten for x87/SSE in their
 * initial state (XSTATE_BV bit 0 or 1 clear); setting the bit back makes
 * those stale bytes live. A debug-register or TF write must not do
 * either: vmi_park, hardware breakpoints and TF steps would corrupt the
 * guest's vector registers.
 *
 * So: read the vCPU's XSAVE state before the setcontext and, when its
 * XSTATE_BV differs from what vcpu_setup_fpu will leave, write it back
 * afterwards with XEN_DOMCTL_setvcpuextstate (xen/arch/x86/domctl.c). The
 * common case (state exactly FP|SSE, as on a CPU without AVX or a guest
 * not using it) costs one hypercall more, a reload two.
 *
 * Why not the HVM_SAVE_CODE(CPU_XSAVE) record through
 * xc_domain_hvm_setcontext: hvm_load() (xen/arch/x86/hvm/save.c) marks
 * every vCPU of the domain down before it loads any record, and only a
 * CPU record (hvm_load_cpu_ctxt) brings one back up. An image of header,
 * CPU_XSAVE and END would stop every vCPU for good; adding every vCPU's
 * CPU record is the save-record path with its TSC and CR2 side effects
 * (REVIEW-intel.md, finding 4) on each light write. arch_hvm_load also
 * resets sync_tsc. setvcpuextstate touches one vCPU: under vcpu_pause it
 * sets xcr0, xcr0_accum and the area (compress_xsave_states) and calls
 * hvmemul_cancel(v). The last is its one side effect: a vCPU paused while
 * waiting for a device model's ioreq re-executes that I/O (vmi/README.md,
 * known limits); PVH guests have no ioreqs, and a vCPU held by a
 * vm_event is at an instruction boundary.
 *
 * The read uses XEN_DOMCTL_getvcpuextstate rather than the CPU_XSAVE
 * record because it reports the image's size, which the set must give
 * back exactly (PV_XSAVE_SIZE(xcr0_accum)), and its buffer is the set's
 * input as it stands. Both go through one pair of xencall buffers
 * allocated once, so a light write costs no extra allocation.
 *
 * Like the general registers written with them, this is only sound while
 * the vCPU cannot run (the session writes registers of a paused domain
 * or of a vCPU held by an event): a vCPU that ran between the read and
 * the reload would have its FPU state rewound.
 *
 * None of this can run without Xen: the unit tests use the fake driver.
 * The lab's CPU has no AVX, so there the reload is expected not to run
 * (xen_info counts both).
 */
/*
 * The register domctls go through one xencall handle and hypercall
 * buffers allocated once per driver, not through libxenctrl's
 * xc_vcpu_getcontext/xc_vcpu_setcontext: those bounce the 5 KiB
 * vcpu_guest_context through a fresh two-page hypercall buffer on every
 * call, and xencall caches only one-page buffers, so each call was an
 * mmap and a munmap of /dev/xen/hypercall besides the hypercall. In a PV
 * dom0 those are page-table hypercalls of their own (strace in the lab:
 * a gdb breakpoint hit made 7 light writes, 14 mmap/munmap pairs).
 */
static int
hcall_setup(struct xen_drv *x)
{
	if (x->xcall == NULL) {
		x->xcall = xencall_open(NULL, 0);
		if (x->xcall == NULL)
			return errno ? -errno : -EACCES;
	}
	if (x->hc_domctl == NULL)
		x->hc_domctl = xencall_alloc_buffer(x->xcall,
		    sizeof(struct xen_domctl));
	if (x->hc_ctx == NULL)
		x->hc_ctx = xencall_alloc_buffer(x->xcall,
		    sizeof(vcpu_guest_context_any_t));
	return x->hc_domctl != NULL && x->hc_ctx != NULL ? 0 : -ENOMEM;
}

/* x->hc_domctl, zeroed and addressed to this domain. */
static struct xen_domctl *
domctl_init(struct xen_drv *x, uint32_t cmd)
{
	struct xen_domctl *dc = x->hc_domctl;

	memset(dc, 0, sizeof(*dc));
	dc->cmd = cmd;
	dc->interface_version = XEN_DOMCTL_INTERFACE_VERSION;
	dc->domain = (domid_t)x->domid;
	return dc;
}

static int
domctl_issue(struct xen_drv *x)
{
	if (xencall1(x->xcall, __HYPERVISOR_domctl,
	    (uint64_t)(uintptr_t)x->hc_domctl) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

/* XEN_DOMCTL_{get,set}vcpucontext of x->hc_ctx, what xc_vcpu_getcontext
 * and xc_vcpu_setcontext do (tools/libs/ctrl/xc_domain.c). */
static int
vcpu_context(struct xen_drv *x, uint32_t cmd, unsigned vcpu,
    vcpu_guest_context_any_t *ctx)
{
	struct xen_domctl *dc;
	int r = hcall_setup(x);

	if (r < 0)
		return r;
	if (cmd == XEN_DOMCTL_setvcpucontext)
		memcpy(x->hc_ctx, ctx, sizeof(*ctx));
	dc = domctl_init(x, cmd);
	dc->u.vcpucontext.vcpu = vcpu;
	/* xenctrl.h redefines set_xen_guest_handle for its own bounce
	 * buffers; ours is already hypercall memory. */
	set_xen_guest_handle_raw(dc->u.vcpucontext.ctxt,
	    (vcpu_guest_context_t *)x->hc_ctx);
	r = domctl_issue(x);
	if (r == 0 && cmd == XEN_DOMCTL_getvcpucontext)
		memcpy(ctx, x->hc_ctx, sizeof(*ctx));
	return r;
}

static int
xstate_domctl(struct xen_drv *x, uint32_t cmd, unsigned vcpu,
    uint64_t mask, uint32_t size, bool with_buf)
{
	struct xen_domctl *dc = domctl_init(x, cmd);

	dc->u.vcpuextstate.vcpu = vcpu;
	dc->u.vcpuextstate.xfeature_mask = mask;
	dc->u.vcpuextstate.size = size;
	if (with_buf)
		set_xen_guest_handle_raw(dc->u.vcpuextstate.buffer,
		    (uint64_t *)x->xs_buf);
	return domctl_issue(x);
}

/* Once per driver: Xen's xfeature_mask and the largest image it can hand
 * back (a getvcpuextstate with size and mask 0 is that query). */
static int
xstate_probe(struct xen_drv *x)
{
	struct xen_domctl *dc;
	int r;

	if (x->xs_probed)
		return 0;
	r = hcall_setup(x);
	if (r < 0)
		return r;
	r = xstate_domctl(x, XEN_DOMCTL_getvcpuextstate, 0, 0, 0, false);
	if (r < 0)
		return r;
	dc = x->hc_domctl;
	x->xs_mask = dc->u.vcpuextstate.xfeature_mask;
	if (dc->u.vcpuextstate.size > UINT32_MAX)
		return -EPROTO;
	x->xs_size = (uint32_t)dc->u.vcpuextstate.size;
	if (x->xs_mask != 0) {
		if (x->xs_size < PV_XSAVE_HDR + XSAVE_HDR_OFF + 64)
			return -EPROTO;
		x->xs_buf = xencall_alloc_buffer(x->xcall, x->xs_size);
		if (x->xs_buf == NULL)
			return -ENOMEM;
	}
	x->xs_probed = true;
	return 0;
}

/*
 * The vCPU's XSAVE state into x->xs_buf. *size is what the set needs
 * back, 0 when there is nothing to keep: no XSAVE on the host (then
 * vcpu_setup_fpu has no xsave area to change) or none enabled for the
 * vCPU (xcr0_accum 0). *bv is the image's XSTATE_BV.
 */
static int
xstate_read(struct xen_drv *x, unsigned vcpu, uint32_t *size, uint64_t *bv)
{
	struct xen_domctl *dc;
	uint64_t got;
	int r;

	*size = 0;
	*bv = 0;
	r = xstate_probe(x);
	if (r < 0 || x->xs_mask == 0)
		return r;
	r = xstate_domctl(x, XEN_DOMCTL_getvcpuextstate, vcpu, x->xs_mask,
	    x->xs_size, true);
	if (r < 0)
		return r;
	dc = x->hc_domctl;
	got = dc->u.vcpuextstate.size;
	if (got > x->xs_size)
		return -EPROTO;
	if (got < PV_XSAVE_HDR + XSAVE_HDR_OFF + sizeof(*bv))
		return 0;
	memcpy(bv, (uint8_t *)x->xs_buf + PV_XSAVE_HDR + XSAVE_HDR_OFF,
	    sizeof(*bv));
	*size = (uint32_t)got;
	return 0;
}

static int
xstate_write(struct xen_drv *x, unsigned vcpu, uint32_t size)
{
	x->xs_reloads++;
	return xstate_domctl(x, XEN_DOMCTL_setvcpuextstate, vcpu, x->xs_mask,
	    size, true);
}

void
xen_regs_fini(struct xen_drv *x)
{
	if (x->xcall != NULL) {
		if (x->xs_buf != NULL)
			xencall_free_buffer(x->xcall, x->xs_buf);
		if (x->hc_domctl != NULL)
			xencall_free_buffer(x->xcall, x->hc_domctl);
		if (x->hc_ctx != NULL)
			xencall_free_buffer(x->xcall, x->hc_ctx);
		xencall_close(x->xcall);
	}
	x->xcall = NULL;
	x->xs_buf = x->hc_domctl = x->hc_ctx = NULL;
}

/*
 * General registers, RIP, RFLAGS and debug registers of one vCPU through
 * XEN_DOMCTL_setvcpucontext, which for an HVM vCPU loads exactly those
 * and the FPU image it was given back unchanged, and touches no other
 * vCPU. This is the path for breakpoints, watchpoints, TF and DR6, and
 * the one XEN-LAB.md measured working for DR0/DR7 and TF. It avoids the
 * save-record path's side effect: on SVM the CPU record's CR2 is Xen's
 * saved copy, not the live one, and loading the record writes it back
 * (seen in the lab: a guest inside its #PF handler read CR2 = 0).
 * Hypercalls: getvcpucontext, getvcpuextstate, the dying question (xen.c),
 * setvcpucontext, and setvcpuextstate only when the extended state needs
 * it (above); no allocation (hcall_setup).
 */
static int
set_by_vcpu_context(struct xen_drv *x, unsigned vcpu, const struct vmi_regs *r)
{
	vcpu_guest_context_any_t ctx;
	struct cpu_user_regs_x86_64 *u = &ctx.x64.user_regs;
	uint32_t xs_size;
	uint64_t bv, bv_after;
	int ret = vcpu_context(x, XEN_DOMCTL_getvcpucontext, vcpu, &ctx);
	int ret2;

	if (ret < 0)
		return ret;
	/* Unread, the state could not be put back: refuse the write rather
	 * than corrupt the guest's vector registers. */
	ret = xstate_read(x, vcpu, &xs_size, &bv);
	if (ret < 0)
		return ret;
#define TO(n) u->n = r->g.n;
	GREGS(TO)
#undef TO
	for (int i = 0; i < 4; i++)
		ctx.x64.debugreg[i] = r->dr[i];
	ctx.x64.debugreg[6] = r->dr6;
	ctx.x64.debugreg[7] = r->dr7;
	xen_dr7_to_xen(x, vcpu, &ctx.x64.debugreg[3], &ctx.x64.debugreg[7]);
	x->light_writes++;
	ret = xen_refuse_dying(x);      /* Xen panics otherwise (xen.c) */
	if (ret < 0)
		return ret;
	ret = vcpu_context(x, XEN_DOMCTL_setvcpucontext, vcpu, &ctx);
	/* What vcpu_setup_fpu leaves in XSTATE_BV (xen/arch/x86/i387.c).
	 * Put the state back even if setcontext failed: it may have failed
	 * after vcpu_setup_fpu (arch_set_info_guest's vm_assist check). */
	bv_after = (ctx.x64.flags & VGCF_i387_valid) ? XSTATE_FP_SSE : 0;
	if (xs_size != 0 && bv != bv_after) {
		ret2 = xstate_write(x, vcpu, xs_size);
		if (ret == 0)
			ret = ret2;
	}
	return ret < 0 ? ret : 0;
}

int
xen_set_light_regs(struct vmi_driver *d, unsigned vcpu,
    const struct vmi_regs *r)
{
	struct xen_drv *x = xen_of(d);

	if (vcpu >= x->nr_vcpus)
		return -EINVAL;
	return set_by_vcpu_context(x, vcpu, r);
}

int
xen_set_regs(struct vmi_driver *d, unsigned vcpu, const struct vmi_regs *r)
{
	struct xen_drv *x = xen_of(d);
	struct vmi_regs cur;
	int ret;

	if (vcpu >= x->nr_vcpus)
		return -EINVAL;
	ret = xen_get_regs(d, vcpu, &cur);
	if (ret != 0)
		return ret;
	if (vmi_regs_light_change(&cur, r))
		return set_by_vcpu_context(x, vcpu, r);
	return set_by_record(x, vcpu, r);
}
