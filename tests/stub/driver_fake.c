/*
 * driver_fake.c - the driver hook (include/stub.h) of vmistub-fake: the
 * real stub over the in-memory fake driver (tests/vmi/fake_driver.c), so
 * tests/stub/test_stub_host.py runs it on the host with the real gdb,
 * without Xen and without the lab.
 *
 * One domain, 7 "fake", with 2 vCPUs in long mode. The CPU is AMD's (TF
 * steps, no MTF, no memory access events), like the lab, unless
 * VMISTUB_FAKE_CPU=intel makes it Intel's (FAKE_INTEL: MTF and p2m memory
 * access as Xen offers them on VMX). Their page tables map a higher-half
 * "kernel" whose text is one-byte instructions (NOP) and a data page of
 * known bytes. The fake CPU runs a vCPU only while the domain is unpaused
 * and no event holds it, and does just enough for a debugger's events to
 * be real ones:
 *   - an enabled DR0-3 execution breakpoint at RIP: #DB, before executing
 *     (SDM vol. 3B 17.3.1.1: a fault), unless RFLAGS.RF lets one
 *     instruction pass;
 *   - an int3 at RIP: a software breakpoint event, RIP at the int3 (as
 *     Xen reports it);
 *   - a hlt (0xF4) at RIP: it waits for an interrupt that never comes;
 *   - stosb (0xAA) stores AL at the byte RDI points to and lodsb (0xAC)
 *     loads AL from the byte RSI points to, then RDI/RSI move on by one,
 *     as x86 does with RFLAGS.DF clear; a test writes them into the text
 *     to make accesses real. Such an access to a frame whose p2m access
 *     forbids it (Intel) raises a memory access event instead, before
 *     executing, and the vCPU is held until it is answered: with
 *     VMI_RSP_EMULATE the access is done and RIP moved on regardless of
 *     the frame's access, as Xen emulates one instruction. An access that
 *     an enabled DR0-3 data breakpoint covers (RW 01 writes, 11 reads and
 *     writes) traps after it: #DB with the slot's DR6 bit;
 *   - RFLAGS.TF: one instruction, then #DB; MTF (Intel, armed and its
 *     monitor on): one instruction, then a single-step event. As in Xen
 *     4.17, an instruction emulated for a response is not one: the stop
 *     comes after the next (vmi/REVIEW-intel.md, finding 2);
 *   - otherwise, at a NOP, it runs without end: a continue just waits.
 * Events are raised only while their monitor is on, as with Xen; without
 * it the trap is the guest's own and the vCPU is off in the guest's
 * handler until the domain is next paused (so a re-injected int3 does not
 * loop).
 *
 * The world outlives every attach (it is the guest) and is shown to the
 * tests through two files named by environment variables:
 *   VMISTUB_FAKE_WORLD  holds the world itself; its first bytes are guest
 *                       physical memory, so a test reads them live.
 * The domain's end, on a signal to vmistub-fake: SIGUSR1 crashes it
 * (shut down, kept for inspection as on_crash="preserve" does), SIGUSR2
 * destroys it.
 *   VMISTUB_FAKE_STATE  a JSON summary (layout, pauses held, monitors on,
 *                       events unanswered, bytes and registers changed
 *                       since startup, frames whose access is not rwx,
 *                       vCPUs with MTF armed), written at startup, at
 *                       each pause, unpause, response, monitor or access
 *                       change and close of the driver, and at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_driver.h"
#include "stub.h"
#include "vmi_driver.h"

#define FAKE_DOMID 7
#define FAKE_NAME "fake"
#define NVCPUS 2

/* Page tables at frames 1-4 map KERNEL_VA + n pages to frame KERNEL_GFN
 * + n: the text (NOPs), then the data page, then one stack page per
 * vCPU. */
#define PML4_GFN 1
#define KERNEL_VA UINT64_C(0xffffffff80000000)
#define KERNEL_GFN 0x100
#define KERNEL_PAGES 32
#define TEXT_PAGES 16
#define DATA_PAGE 16
#define STACK_PAGE 17
#define PAGE UINT64_C(4096)

#define TF (1ULL << 8)
#define RF (1ULL << 16)
#define DR6_BS (1ULL << 14)
#define DR6_INIT 0xffff0ff0ULL
#define EVENTTYPE_HW_EXCEPTION 3   /* xen/arch-x86/hvm/... X86_EVENTTYPE_* */
#define EVENTTYPE_SW_EXCEPTION 6
#define MAX_CHANGED 64

#define OP_INT3 0xcc
#define OP_HLT 0xf4
#define OP_STOSB 0xaa
#define OP_LODSB 0xac
/* Instructions one run() executes before it counts the vCPU as spinning
 * (text of stosb/lodsb with no NOP after them). */
#define RUN_MAX 64

_Static_assert(offsetof(struct fake_world, mem) == 0,
    "VMISTUB_FAKE_WORLD promises guest memory at offset 0");

static struct fake_world *w;
static uint8_t *initial_mem;
static struct vmi_regs initial_regs[NVCPUS];
static const char *state_path;

/* The driver open now, and the fake driver's own table under ours. */
static struct vmi_driver *open_drv;
static struct vmi_driver_ops inner, outer;
static unsigned opens, closes, raised, responses;
static bool held[NVCPUS];       /* by an unanswered event */
static bool off[NVCPUS];        /* in the guest's own trap handler */
static bool intel;              /* VMISTUB_FAKE_CPU=intel */

static void write_state(void);

/* ---- the guest ----------------------------------------------------------- */

static uint64_t
kernel_va(unsigned page)
{
	return KERNEL_VA + page * PAGE;
}

static uint64_t
kernel_gpa(unsigned page)
{
	return (KERNEL_GFN + page) * PAGE;
}

static void
put_entry(uint64_t table_gfn, unsigned idx, uint64_t gfn)
{
	uint64_t e = gfn << 12 | 3;   /* present, writable */

	memcpy(w->mem + table_gfn * PAGE + idx * 8, &e, 8);
}

static void
build_page_tables(void)
{
	memset(w->mem + PML4_GFN * PAGE, 0, 4 * PAGE);
	put_entry(PML4_GFN, (KERNEL_VA >> 39) & 511, PML4_GFN + 1);
	put_entry(PML4_GFN + 1, (KERNEL_VA >> 30) & 511, PML4_GFN + 2);
	put_entry(PML4_GFN + 2, (KERNEL_VA >> 21) & 511, PML4_GFN + 3);
	for (unsigned i = 0; i < KERNEL_PAGES; i++)
		put_entry(PML4_GFN + 3, i, KERNEL_GFN + i);
}

static void
fill_guest(void)
{
	static const char hello[] = "vmistub fake guest";
	uint8_t *data = w->mem + kernel_gpa(DATA_PAGE);

	build_page_tables();
	memset(w->mem + kernel_gpa(0), 0x90, TEXT_PAGES * PAGE);
	memcpy(data, hello, sizeof(hello));
	for (unsigned i = 32; i < PAGE; i++)
		data[i] = (uint8_t)(i ^ 0x5a);
}

static void
set_seg(struct vmi_regs *r, enum vmi_seg_index i, uint16_t sel, uint32_t ar)
{
	r->seg[i] = (struct vmi_seg){ .sel = sel, .ar = ar, .limit = 0xffffffff };
}

static void
vcpu_init(struct vmi_regs *r, unsigned i)
{
	uint64_t *g = &r->g.rax;

	memset(r, 0, sizeof(*r));
	for (unsigned k = 0; k < 16; k++)
		g[k] = 0x1000 * (i + 1) + k;
	r->g.rip = kernel_va(1 + i);
	r->g.rsp = kernel_va(STACK_PAGE + i) + PAGE - 64;
	r->g.rbp = r->g.rsp;
	r->g.rflags = 0x202;                         /* IF */
	set_seg(r, VMI_SEG_CS, 0x10, 0xa9b);         /* 64-bit code, DPL 0 */
	set_seg(r, VMI_SEG_SS, 0x18, 0xc93);
	set_seg(r, VMI_SEG_DS, 0x18, 0xc93);
	set_seg(r, VMI_SEG_ES, 0x18, 0xc93);
	set_seg(r, VMI_SEG_TR, 0x28, 0x8b);
	r->seg[VMI_SEG_GS].base = kernel_va(DATA_PAGE) + 0x800 + 0x100 * i;
	r->cr0 = 0x80050033;                         /* PG WP NE ET MP PE */
	r->cr3 = PML4_GFN * PAGE;
	r->cr4 = 0x6b0;                              /* PAE PGE OSFXSR ... */
	r->efer = 0xd01;                             /* NXE LMA LME SCE */
	r->dr6 = DR6_INIT;
	r->dr7 = 0x400;
	r->fxsave[VMI_FX_FCW] = 0x7f;
	r->fxsave[VMI_FX_FCW + 1] = 0x03;
	r->fxsave[VMI_FX_MXCSR] = 0x80;
	r->fxsave[VMI_FX_MXCSR + 1] = 0x1f;
}

/* The world in a file when the tests ask for one (shared: they read it
 * while vmistub runs), else in anonymous memory. */
static void *
world_memory(void)
{
	const char *path = getenv("VMISTUB_FAKE_WORLD");
	void *p;
	int fd;

	if (path == NULL || *path == '\0')
		return mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return MAP_FAILED;
	if (ftruncate(fd, sizeof(*w)) < 0) {
		close(fd);
		return MAP_FAILED;
	}
	p = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p;
}

static int
world(void)
{
	void *p;

	if (w != NULL)
		return 0;
	p = world_memory();
	initial_mem = malloc(FAKE_FRAMES * PAGE);
	if (p == MAP_FAILED || initial_mem == NULL) {
		fprintf(stderr, "vmistub-fake: cannot set up the fake world: %s\n",
		    strerror(errno));
		return -ENOMEM;
	}
	w = p;
	fake_world_init(w);
	fill_guest();
	for (unsigned i = 0; i < NVCPUS; i++) {
		vcpu_init(&w->regs[i], i);
		w->cr8[i] = 2 + i;          /* the task priority, per vCPU */
		initial_regs[i] = w->regs[i];
	}
	memcpy(initial_mem, w->mem, FAKE_FRAMES * PAGE);
	state_path = getenv("VMISTUB_FAKE_STATE");
	intel = getenv("VMISTUB_FAKE_CPU") != NULL &&
	    strcmp(getenv("VMISTUB_FAKE_CPU"), "intel") == 0;
	atexit(write_state);
	write_state();
	return 0;
}

/* Plain stores the driver reads at its next domain_state(). */
static void
on_domain_end(int signo)
{
	if (signo == SIGUSR1) {
		w->shutdown_reason = VMI_SHUTDOWN_CRASH;
		w->state = VMI_DOM_SHUTDOWN;
	} else {
		w->state = VMI_DOM_GONE;
	}
}

/* The guest exists before vmistub looks for it: the tests read its layout
 * as soon as the process starts. */
__attribute__((constructor)) static void
world_at_start(void)
{
	struct sigaction sa = { .sa_handler = on_domain_end,
	    .sa_flags = SA_RESTART };

	if (world() == 0) {
		sigaction(SIGUSR1, &sa, NULL);
		sigaction(SIGUSR2, &sa, NULL);
	}
}

/* ---- the fake CPU ---------------------------------------------------------- */

/* A 4-level walk of its own (not vmi/paging.c: the fake stays an
 * independent account of where the guest's bytes are). */
static int
gpa_of(const struct vmi_regs *r, uint64_t va, uint64_t *gpa)
{
	uint64_t table = r->cr3 & ~0xfffULL;

	for (int level = 4; level >= 1; level--) {
		unsigned idx = (va >> (12 + 9 * (level - 1))) & 511;
		uint64_t e;

		if (table >= FAKE_FRAMES * PAGE)
			return -EFAULT;
		memcpy(&e, w->mem + table + idx * 8, 8);
		if (!(e & 1))
			return -EFAULT;
		table = e & 0x000ffffffffff000ULL;
	}
	if (table >= FAKE_FRAMES * PAGE)
		return -EFAULT;
	*gpa = table | (va & 0xfff);
	return 0;
}

static int
dr_exec_hit(const struct vmi_regs *r)
{
	for (int s = 0; s < 4; s++) {
		bool enabled = (r->dr7 >> (2 * s)) & 3;
		unsigned rw = (r->dr7 >> (16 + 4 * s)) & 3;

		if (enabled && rw == 0 && r->dr[s] == r->g.rip)
			return s;
	}
	return -1;
}

static struct vmi_event
event_of(unsigned vcpu, enum vmi_event_kind kind)
{
	const struct vmi_regs *r = &w->regs[vcpu];

	return (struct vmi_event){
		.kind = kind, .vcpu = vcpu, .sync = true,
		.cr0 = r->cr0, .cr3 = r->cr3, .cr4 = r->cr4, .efer = r->efer,
		.regs = r->g,
	};
}

static void
raise_event(const struct vmi_event *ev)
{
	held[ev->vcpu] = true;
	raised++;
	fake_push(w, ev);
}

/* The vCPU traps: an event for the debugger if its monitor is on, else
 * the guest's own handler takes it. */
static void
trap(unsigned vcpu, enum vmi_event_kind kind, uint64_t dr6)
{
	struct vmi_regs *r = &w->regs[vcpu];
	enum vmi_monitor m = kind == VMI_EVENT_SWBREAK ? VMI_MON_SWBREAK :
	    kind == VMI_EVENT_SINGLESTEP ? VMI_MON_MTF : VMI_MON_DEBUG;
	struct vmi_event ev = event_of(vcpu, kind);

	if (!w->monitors[m]) {
		off[vcpu] = true;
		return;
	}
	if (kind == VMI_EVENT_SWBREAK) {
		ev.u.swbreak.insn_len = 1;
		ev.u.swbreak.type = EVENTTYPE_SW_EXCEPTION;
	} else if (kind == VMI_EVENT_DEBUG) {
		/* On AMD the event's DR6 reads 0 (XEN-LAB.md); the vCPU's own
		 * DR6 has the status bit. */
		ev.u.debug.type = EVENTTYPE_HW_EXCEPTION;
		r->dr6 |= dr6;
	}
	raise_event(&ev);
}

/* DR6 bits of the DR0-3 data breakpoints that a one-byte access at va
 * hits (SDM vol. 3B 17.2.4-5: LEN 00 1, 01 2, 10 8, 11 4 bytes, the
 * address's low bits ignored). */
static uint64_t
dr_data_hits(const struct vmi_regs *r, uint64_t va, bool write)
{
	static const uint64_t lens[4] = { 1, 2, 8, 4 };
	uint64_t hits = 0;

	for (int s = 0; s < 4; s++) {
		bool enabled = (r->dr7 >> (2 * s)) & 3;
		unsigned rw = (r->dr7 >> (16 + 4 * s)) & 3;
		uint64_t len = lens[(r->dr7 >> (18 + 4 * s)) & 3];
		uint64_t at = r->dr[s] & ~(len - 1);

		if (enabled && (rw == 3 || (rw == 1 && write)) && va >= at &&
		    va < at + len)
			hits |= 1ULL << s;
	}
	return hits;
}

/*
 * The stosb or lodsb at RIP. Returns the DR6 bits of the data breakpoints
 * it hit, or -1 when it did not execute: a p2m restriction raised a
 * memory access event (emulate: none, as Xen's emulation ignores it), or
 * its address does not translate (the guest's #PF: off in its handler).
 */
static int64_t
mem_op(unsigned vcpu, uint8_t op, bool emulate)
{
	struct vmi_regs *r = &w->regs[vcpu];
	bool write = op == OP_STOSB;
	uint64_t va = write ? r->g.rdi : r->g.rsi, gpa;
	unsigned need = write ? VMI_ACCESS_W : VMI_ACCESS_R;
	struct vmi_event ev;

	if (gpa_of(r, va, &gpa) != 0) {
		off[vcpu] = true;
		return -1;
	}
	if (!emulate && !(w->access[gpa / PAGE] & need)) {
		ev = event_of(vcpu, VMI_EVENT_MEMACCESS);
		ev.u.mem.gfn = gpa / PAGE;
		ev.u.mem.offset = gpa % PAGE;
		ev.u.mem.gla = va;
		ev.u.mem.gla_valid = true;
		ev.u.mem.access = need;
		raise_event(&ev);
		return -1;
	}
	if (write) {
		w->mem[gpa] = (uint8_t)r->g.rax;
		r->g.rdi++;
	} else {
		r->g.rax = (r->g.rax & ~0xffULL) | w->mem[gpa];
		r->g.rsi++;
	}
	r->g.rip++;
	return emulate ? 0 : (int64_t)dr_data_hits(r, va, write);
}

static void
run(unsigned vcpu)
{
	struct vmi_regs *r = &w->regs[vcpu];

	for (unsigned n = 0; n < RUN_MAX; n++) {
		int64_t dr6 = 0;
		uint64_t gpa;
		bool tf = r->g.rflags & TF, mtf;
		int slot;
		uint8_t op;

		if (open_drv == NULL || w->pauses > 0 || held[vcpu] || off[vcpu])
			return;
		/* RFLAGS.RF: no instruction breakpoint for one instruction (SDM
		 * vol. 3B 17.3.1.1), then the CPU clears it. */
		slot = (r->g.rflags & RF) ? -1 : dr_exec_hit(r);
		if (tf)
			r->g.rflags &= ~RF;
		if (slot >= 0) {
			trap(vcpu, VMI_EVENT_DEBUG, 1ULL << slot);
			return;
		}
		if (gpa_of(r, r->g.rip, &gpa) != 0)
			return;
		op = w->mem[gpa];
		if (op == OP_INT3) {
			trap(vcpu, VMI_EVENT_SWBREAK, 0);
			return;
		}
		if (op == OP_HLT)
			return;     /* waits for an interrupt the fake never sends */
		mtf = w->mtf_armed[vcpu] && w->monitors[VMI_MON_MTF];
		if (op == OP_STOSB || op == OP_LODSB)
			dr6 = mem_op(vcpu, op, false);
		else if (tf || mtf)
			r->g.rip++;
		else
			return;     /* a NOP: it runs on without end */
		if (dr6 < 0)
			return;
		r->g.rflags &= ~RF;
		if (dr6 > 0 || tf) {
			trap(vcpu, VMI_EVENT_DEBUG, (uint64_t)dr6 | (tf ? DR6_BS : 0));
			return;
		}
		if (mtf) {
			trap(vcpu, VMI_EVENT_SINGLESTEP, 0);
			return;
		}
	}
}

/* ---- the fake driver, wrapped ------------------------------------------------ */

static int
w_info(struct vmi_driver *d, struct vmi_info *out)
{
	int r = inner.info(d, out);

	out->nr_vcpus = NVCPUS;
	out->domid = FAKE_DOMID;
	snprintf(out->platform, sizeof(out->platform), "fake %s (host tests)",
	    intel ? "intel" : "amd");
	return r;
}

static int
w_pause(struct vmi_driver *d)
{
	int r = inner.pause(d);

	memset(off, 0, sizeof(off));
	write_state();
	return r;
}

static int
w_unpause(struct vmi_driver *d)
{
	int r = inner.unpause(d);

	for (unsigned i = 0; i < NVCPUS; i++)
		run(i);
	write_state();
	return r;
}

static int
w_respond(struct vmi_driver *d, const struct vmi_event *ev,
    const struct vmi_response *rsp)
{
	int r = inner.respond(d, ev, rsp);
	uint64_t gpa;

	/* The fake keeps every answer in a fixed array: start it over, the
	 * count is ours. */
	w->nresp = 0;
	responses++;
	if (ev->vcpu < NVCPUS) {
		struct vmi_regs *regs = &w->regs[ev->vcpu];

		held[ev->vcpu] = false;
		if (r == 0 && (rsp->flags & VMI_RSP_EMULATE) &&
		    ev->kind == VMI_EVENT_MEMACCESS &&
		    gpa_of(regs, regs->g.rip, &gpa) == 0 &&
		    (w->mem[gpa] == OP_STOSB || w->mem[gpa] == OP_LODSB))
			mem_op(ev->vcpu, w->mem[gpa], true);
		run(ev->vcpu);
	}
	write_state();
	return r;
}

static int
w_reinject(struct vmi_driver *d, const struct vmi_event *ev)
{
	if (ev->vcpu < NVCPUS)
		off[ev->vcpu] = true;
	return inner.reinject(d, ev);
}

static int
w_monitor_swbreak(struct vmi_driver *d, bool on)
{
	int r = inner.monitor_swbreak(d, on);

	write_state();
	return r;
}

static int
w_monitor_debug(struct vmi_driver *d, bool on)
{
	int r = inner.monitor_debug(d, on);

	write_state();
	return r;
}

static int
w_monitor_mtf(struct vmi_driver *d, bool on)
{
	int r = inner.monitor_mtf(d, on);

	write_state();
	return r;
}

static int
w_mtf_arm(struct vmi_driver *d, unsigned vcpu, bool on)
{
	int r = inner.mtf_arm(d, vcpu, on);

	write_state();
	return r;
}

static int
w_set_mem_access(struct vmi_driver *d, uint64_t gfn, unsigned access)
{
	int r = inner.set_mem_access(d, gfn, access);

	write_state();
	return r;
}

static void
w_close(struct vmi_driver *d)
{
	inner.close(d);
	open_drv = NULL;
	closes++;
	write_state();
}

int
stub_driver_open(uint32_t domid, struct vmi_driver **out)
{
	struct vmi_driver *d;
	if (w == NULL)
		return -ENOMEM;
	if (domid != FAKE_DOMID)
		return -ESRCH;
	if (open_drv != NULL)
		return -EBUSY;
	d = fake_driver_new(w, intel ? FAKE_INTEL : FAKE_AMD);
	inner = *d->ops;
	outer = inner;
	outer.info = w_info;
	outer.pause = w_pause;
	outer.unpause = w_unpause;
	outer.respond = w_respond;
	outer.reinject = w_reinject;
	outer.monitor_swbreak = w_monitor_swbreak;
	outer.monitor_debug = w_monitor_debug;
	outer.close = w_close;
	outer.step_why = "the fake CPU steps with RFLAGS.TF (AMD path)";
	if (intel) {
		outer.monitor_mtf = w_monitor_mtf;
		outer.mtf_arm = w_mtf_arm;
		outer.set_mem_access = w_set_mem_access;
		outer.step_why = "the fake CPU steps with MTF (Intel path)";
	}
	d->ops = &outer;
	open_drv = d;
	opens++;
	*out = d;
	return 0;
}

int
stub_driver_domid_by_name(const char *name, uint32_t *domid)
{
	if (strcmp(name, FAKE_NAME) == 0)
		*domid = FAKE_DOMID;
	else if (strcmp(name, "Domain-0") == 0)
		*domid = 0;
	else
		return -ESRCH;
	return 0;
}

int
stub_driver_list_domains(struct stub_domain *out, unsigned max)
{
	static const struct stub_domain doms[] = {
		{ 0, "Domain-0" }, { FAKE_DOMID, FAKE_NAME },
	};
	unsigned n = sizeof(doms) / sizeof(doms[0]);

	if (n > max)
		n = max;
	memcpy(out, doms, n * sizeof(*out));
	return (int)n;
}

/* ---- the summary ----------------------------------------------------------------- */

static void
json_u64s(FILE *f, const char *name, const uint64_t *v, unsigned n)
{
	fprintf(f, "\"%s\": [", name);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s%" PRIu64, i ? ", " : "", v[i]);
	fprintf(f, "]");
}

static void
json_layout(FILE *f)
{
	uint64_t rip[NVCPUS];

	for (unsigned i = 0; i < NVCPUS; i++)
		rip[i] = initial_regs[i].g.rip;
	fprintf(f, "\"domid\": %d, \"name\": \"%s\", \"vcpus\": %d,\n"
	    "\"layout\": {\"frames\": %d, \"cr3\": %" PRIu64 ", "
	    "\"text_va\": %" PRIu64 ", \"text_gpa\": %" PRIu64 ", "
	    "\"text_len\": %" PRIu64 ", \"data_va\": %" PRIu64 ", "
	    "\"data_gpa\": %" PRIu64 ", \"data_len\": %" PRIu64 ", "
	    "\"mapped_len\": %" PRIu64 ", ",
	    FAKE_DOMID, FAKE_NAME, NVCPUS, FAKE_FRAMES,
	    (uint64_t)PML4_GFN * PAGE, kernel_va(0), kernel_gpa(0),
	    TEXT_PAGES * PAGE, kernel_va(DATA_PAGE), kernel_gpa(DATA_PAGE),
	    PAGE, KERNEL_PAGES * PAGE);
	json_u64s(f, "rip", rip, NVCPUS);
	fprintf(f, "},\n");
}

static void
json_changed(FILE *f)
{
	unsigned n = 0;

	fprintf(f, "\"changed\": [");
	for (uint64_t a = 0; a < FAKE_FRAMES * PAGE; a++) {
		if (w->mem[a] == initial_mem[a])
			continue;
		if (n < MAX_CHANGED)
			fprintf(f, "%s[%" PRIu64 ", %u, %u]", n ? ", " : "", a,
			    initial_mem[a], w->mem[a]);
		n++;
	}
	fprintf(f, "], \"nchanged\": %u,\n", n);
}

/* Which parts of a vCPU's registers differ from the start. */
static void
json_regs(FILE *f)
{
	fprintf(f, "\"regs\": [");
	for (unsigned i = 0; i < NVCPUS; i++) {
		const struct vmi_regs *a = &initial_regs[i], *b = &w->regs[i];

		fprintf(f, "%s{\"rip\": %" PRIu64 ", \"rflags\": %" PRIu64
		    ", \"dr7\": %" PRIu64 ", \"dr6\": %" PRIu64 ", ", i ? ", " : "",
		    b->g.rip, b->g.rflags, b->dr7, b->dr6);
		json_u64s(f, "dr", b->dr, 4);
		fprintf(f, ", \"changed\": {\"gprs\": %s, \"debug\": %s, "
		    "\"all\": %s}}",
		    memcmp(&a->g, &b->g, sizeof(a->g)) ? "true" : "false",
		    memcmp(a->dr, b->dr, sizeof(a->dr)) || a->dr6 != b->dr6 ||
		    a->dr7 != b->dr7 ? "true" : "false",
		    memcmp(a, b, sizeof(*a)) ? "true" : "false");
	}
	fprintf(f, "],\n");
}

static void
json_counts(FILE *f)
{
	unsigned unanswered = 0;

	for (unsigned i = 0; i < NVCPUS; i++)
		unanswered += held[i];
	fprintf(f, "\"cpu\": \"%s\", ", intel ? "intel" : "amd");
	fprintf(f, "\"open\": %s, \"opens\": %u, \"closes\": %u, "
	    "\"pauses\": %d,\n\"monitors\": {\"swbreak\": %s, \"debug\": %s, "
	    "\"mtf\": %s},\n\"events\": %u, \"responses\": %u, "
	    "\"unanswered\": %u, \"queued\": %u, \"reinjects\": %u,\n",
	    open_drv ? "true" : "false", opens, closes, w->pauses,
	    w->monitors[VMI_MON_SWBREAK] ? "true" : "false",
	    w->monitors[VMI_MON_DEBUG] ? "true" : "false",
	    w->monitors[VMI_MON_MTF] ? "true" : "false",
	    raised, responses, unanswered, w->qtail - w->qhead, w->reinjects);
}

/* Frames whose p2m access is not rwx, and vCPUs with MTF armed. */
static void
json_intel(FILE *f)
{
	unsigned n = 0;

	fprintf(f, "\"restricted\": [");
	for (unsigned g = 0; g < FAKE_FRAMES; g++)
		if (w->access[g] != VMI_ACCESS_RWX)
			fprintf(f, "%s[%u, %u]", n++ ? ", " : "", g, w->access[g]);
	fprintf(f, "], \"mtf\": [");
	for (unsigned i = 0; i < NVCPUS; i++)
		fprintf(f, "%s%s", i ? ", " : "", w->mtf_armed[i] ? "true" : "false");
	fprintf(f, "],\n");
}

/* Written whole to a temporary file, then renamed: a test never reads
 * half of one. */
static void
write_state(void)
{
	char tmp[4096];
	FILE *f;

	if (w == NULL || state_path == NULL || *state_path == '\0')
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return;
	fprintf(f, "{\n\"pid\": %ld,\n", (long)getpid());
	json_layout(f);
	json_counts(f);
	json_intel(f);
	json_changed(f);
	json_regs(f);
	fprintf(f, "\"log\": \"%s\"\n}\n", w->log);
	if (fclose(f) == 0)
		rename(tmp, state_path);
}
