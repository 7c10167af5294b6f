/*
 * vmi.h - virtual machine introspection session, independent of gdb and of
 * any hypervisor.
 *
 * A session (struct vmi) drives one guest domain through a driver
 * (vmi_driver.h; the Xen one is vmi_xen.h). It owns everything that must be
 * undone when debugging ends: bytes patched into guest memory, debug
 * registers and TF set on vCPUs, monitors enabled, events left unanswered,
 * pauses taken. vmi_close() undoes them in one fixed order (see
 * vmi/session.c) whatever path ends the session.
 *
 * Conventions (STYLE.md): functions return 0 or a count on success and
 * -errno on failure; -EOPNOTSUPP means "this platform cannot" and is
 * decided by the driver's ops table, never by a stub that returns 0;
 * -ESRCH means the domain is gone. The session never blocks: the caller
 * watches vmi_event_fd() and calls vmi_dispatch() when it is readable.
 */
#ifndef VMI_H
#define VMI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmi_paging.h"

struct vmi;
struct vmi_driver;

/* ---- registers ---------------------------------------------------------- */

/* The set a synchronous event reports and a response can write back
 * (xen/vm_event.h, VM_EVENT_FLAG_SET_REGISTERS: "EAX-EDX, ESP, EBP, ESI,
 * EDI, R8-R15, EFLAGS, and EIP"). */
struct vmi_gregs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

enum vmi_seg_index {
	VMI_SEG_CS, VMI_SEG_SS, VMI_SEG_DS, VMI_SEG_ES, VMI_SEG_FS, VMI_SEG_GS,
	VMI_SEG_TR, VMI_SEG_LDTR, VMI_SEG_COUNT
};

struct vmi_seg {
	uint16_t sel;
	uint32_t ar;        /* attribute bytes as hvm_hw_cpu packs them */
	uint32_t limit;
	uint64_t base;
};

/* Offsets in the 512-byte FXSAVE image (SDM vol. 1, table 10-2). */
#define VMI_FX_FCW      0
#define VMI_FX_FSW      2
#define VMI_FX_FTW      4   /* abridged tag byte */
#define VMI_FX_FOP      6
#define VMI_FX_FIP      8
#define VMI_FX_FDP      16
#define VMI_FX_MXCSR    24
#define VMI_FX_ST(i)    (32 + 16 * (i))  /* 10 bytes used of 16 */
#define VMI_FX_XMM(i)   (160 + 16 * (i))
#define VMI_FX_SIZE     512

#define VMI_RFLAGS_TF   (1ULL << 8)
#define VMI_RFLAGS_RF   (1ULL << 16)

/* The whole vCPU state vmistub reads and writes. */
struct vmi_regs {
	struct vmi_gregs g;
	struct vmi_seg seg[VMI_SEG_COUNT];
	uint64_t gdtr_base, idtr_base;
	uint32_t gdtr_limit, idtr_limit;
	uint64_t cr0, cr2, cr3, cr4;    /* CR8: vmi_get_cr8() */
	uint64_t efer;
	uint64_t kernel_gs_base;
	uint64_t star, lstar, cstar, sfmask;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t dr[4];
	uint64_t dr6, dr7;
	uint8_t fxsave[VMI_FX_SIZE];
};

/* ---- events and responses ----------------------------------------------- */

enum vmi_event_kind {
	VMI_EVENT_SWBREAK = 1,     /* int3 executed */
	VMI_EVENT_DEBUG,           /* #DB: TF step, DR0-3 breakpoint/watchpoint */
	VMI_EVENT_SINGLESTEP,      /* monitor single-step (Intel MTF) */
	VMI_EVENT_MEMACCESS,       /* p2m access violation (Intel EPT) */
	VMI_EVENT_DOMAIN_SHUTDOWN, /* the guest is shutting down; .u.shutdown */
	VMI_EVENT_DOMAIN_GONE,     /* dying or destroyed: the session is over */
	VMI_EVENT_OTHER,
};

/* What caused a VMI_EVENT_DEBUG, decided by the session (vmi/session.c):
 * Xen 4.17 reports the event's dr6 and pending_dbg as 0 on both vendors
 * (seen on AMD in the lab, XEN-LAB.md; see classify in vmi/session.c for
 * the Xen source), so it is inferred from the debug registers the session
 * itself armed. */
enum vmi_debug_cause {
	VMI_DEBUG_UNKNOWN = 0,  /* not ours: the guest's own #DB */
	VMI_DEBUG_STEP,
	VMI_DEBUG_HWBREAK,
	VMI_DEBUG_WATCH,
	/* A single step from a TF the session set and took back before its
	 * trap came: a copy the guest's interrupt frame kept. The session's
	 * own; answer it with TF off (vmi_response_step) and do not report
	 * or re-inject it. */
	VMI_DEBUG_STALE_STEP,
};

/* Why a domain shut down: the values of SHUTDOWN_* in Xen's
 * public/sched.h, which a driver reports as they are. */
enum vmi_shutdown_reason {
	VMI_SHUTDOWN_POWEROFF = 0,
	VMI_SHUTDOWN_REBOOT = 1,
	VMI_SHUTDOWN_SUSPEND = 2,
	VMI_SHUTDOWN_CRASH = 3,
	VMI_SHUTDOWN_WATCHDOG = 4,
	VMI_SHUTDOWN_SOFT_RESET = 5,
};

struct vmi_event {
	enum vmi_event_kind kind;
	uint32_t vcpu;
	bool sync;                  /* the vCPU is held until answered */
	uint64_t cr0, cr3, cr4, efer; /* enough to translate addresses */
	struct vmi_gregs regs;      /* regs.rip is where it stopped */
	union {
		struct {
			uint32_t insn_len;
			uint8_t type;       /* x86 event type, for re-injection */
		} swbreak;
		struct {
			uint64_t dr6, pending_dbg;
			uint32_t insn_len;
			uint8_t type;
			enum vmi_debug_cause cause;
			int slot;           /* DR slot for HWBREAK/WATCH, else -1 */
		} debug;
		struct {
			uint64_t gfn, offset, gla;
			unsigned access;    /* VMI_ACCESS_* that faulted */
			bool gla_valid;
		} mem;
		struct {
			int reason;         /* enum vmi_shutdown_reason */
		} shutdown;
	} u;
	uint64_t drv[2];            /* driver-private, echoed into the response */
};

#define VMI_ACCESS_R 1u
#define VMI_ACCESS_W 2u
#define VMI_ACCESS_X 4u
#define VMI_ACCESS_RWX 7u

/* How to resume a vCPU that raised a synchronous event. */
enum vmi_rsp_flag {
	VMI_RSP_SET_REGS    = 1u << 0, /* write .regs back */
	VMI_RSP_REINJECT    = 1u << 1, /* deliver the trap to the guest's IDT */
	VMI_RSP_TOGGLE_MTF  = 1u << 2, /* flip monitor single-step (Intel) */
	VMI_RSP_EMULATE     = 1u << 3, /* emulate the faulting access
	                                * (VMI_EVENT_MEMACCESS only) */
};

struct vmi_response {
	unsigned flags;
	struct vmi_gregs regs;
};

/* A response that resumes the vCPU unchanged, regs preloaded from ev. */
void vmi_response_init(struct vmi_response *r, const struct vmi_event *ev);

/* The address space the vCPU was in when it raised ev. */
int vmi_event_as(const struct vmi_event *ev, struct vmi_as *as);

/* 1 if the session's own instrumentation raised ev (an int3 it patched in,
 * a DR slot it armed, a step it asked for), 0 if it is the guest's own
 * (re-inject it so the guest's handlers keep working), or -errno. */
int vmi_event_ours(struct vmi *v, const struct vmi_event *ev);
const char *vmi_event_kind_name(enum vmi_event_kind k);
const char *vmi_debug_cause_name(enum vmi_debug_cause c);

/* ---- the handler contract (DESIGN.md "The VMI handler") ----------------- */

enum vmi_verdict {
	VMI_RESUME = 0, /* answer now with the filled response */
	VMI_HOLD = 1,   /* leave it pending: the vCPU stays stopped until
	                 * vmi_respond(); other vCPUs run on */
};

struct vmi_handler {
	void *ctx;
	/* Returns VMI_RESUME, VMI_HOLD or -errno (then answered as RESUME and
	 * the error returned by vmi_dispatch). For asynchronous kinds (domain
	 * shutdown/gone) rsp is NULL and the verdict is ignored. */
	int (*handle_event)(void *ctx, struct vmi *v, const struct vmi_event *ev,
	    struct vmi_response *rsp);
	void (*handle_timeout)(void *ctx, struct vmi *v);
	void (*handle_interrupted)(void *ctx, struct vmi *v, int signo);
	/* Once, first thing in teardown: remove breakpoints, release views. */
	void (*cleanup)(void *ctx, struct vmi *v);
	/* After each dispatch: finished? then *result is the outcome. */
	bool (*poll)(void *ctx, struct vmi *v, int *result);
};

/* ---- capabilities -------------------------------------------------------- */

enum vmi_cap {
	VMI_CAP_WRITE_MEM,
	VMI_CAP_SET_REGS,
	VMI_CAP_SWBREAK,    /* int3 events */
	VMI_CAP_DEBUG_EXC,  /* #DB events */
	VMI_CAP_HWBREAK,    /* DR0-3 execution breakpoints (needs DEBUG_EXC) */
	VMI_CAP_WATCH,      /* DR0-3 data watchpoints (needs DEBUG_EXC) */
	VMI_CAP_MTF,        /* monitor single-step */
	VMI_CAP_STEP,       /* single-step by MTF or by TF */
	VMI_CAP_REINJECT,   /* re-inject the guest's own #BP/#DB */
	VMI_CAP_MEMACCESS,  /* p2m permissions and their events */
	VMI_CAP_COUNT
};

bool vmi_has(const struct vmi *v, enum vmi_cap cap);
const char *vmi_cap_name(enum vmi_cap cap);

enum vmi_step_mech { VMI_STEP_NONE, VMI_STEP_MTF, VMI_STEP_TF };

/* Which single-step mechanism this session uses and a sentence saying why. */
enum vmi_step_mech vmi_step_mechanism(const struct vmi *v, const char **why);
const char *vmi_step_mech_name(enum vmi_step_mech m);

struct vmi_info {
	const char *driver;     /* "xen" */
	char platform[64];      /* "xen-4.17 svm hap" */
	char why[256];          /* the driver's account of what it probed */
	unsigned nr_vcpus;
	uint64_t max_gfn;
	uint32_t domid;
};

int vmi_info(struct vmi *v, struct vmi_info *out);

/* ---- session life ------------------------------------------------------- */

struct vmi_config {
	unsigned cache_chunk_frames; /* frames mapped per call; 0: 64 */
	unsigned cache_max_chunks;   /* mappings kept; 0: 256 (64 MiB) */
};

/* Takes ownership of drv (closed on failure too). cfg may be NULL. */
int vmi_open(struct vmi **out, struct vmi_driver *drv,
    const struct vmi_config *cfg);
void vmi_set_handler(struct vmi *v, const struct vmi_handler *h);

/* Teardown (idempotent) and free. NULL is a no-op. */
void vmi_close(struct vmi *v);
/* Teardown only; the object stays valid and every later call on the domain
 * returns -ESHUTDOWN. Returns the first error met (teardown goes on). */
int vmi_teardown(struct vmi *v);
bool vmi_torn_down(const struct vmi *v);

/* Async-signal-safe: record signo; the next vmi_dispatch() or vmi_timeout()
 * calls handle_interrupted() and vmi_finished() turns true once the
 * handler's poll() agrees (or at once without a handler). */
void vmi_interrupt(struct vmi *v, int signo);
bool vmi_interrupted(const struct vmi *v);

/* The driver's event fd (readable when events wait), or -EOPNOTSUPP. */
int vmi_event_fd(struct vmi *v);
/* Drain without blocking, hand each event to the handler, answer the ones
 * it resumes (one notification per batch). Returns the events seen. */
int vmi_dispatch(struct vmi *v);
/* Periodic housekeeping: checks the domain is alive, then handle_timeout. */
int vmi_timeout(struct vmi *v);
bool vmi_finished(struct vmi *v, int *result);

enum vmi_domstate {
	VMI_DOM_RUNNING, VMI_DOM_PAUSED, VMI_DOM_SHUTDOWN, VMI_DOM_GONE
};
enum vmi_domstate vmi_domain_state(const struct vmi *v);

/* ---- execution control ------------------------------------------------- */

/* Counted: the session remembers how many pauses it holds and teardown
 * gives back exactly those. */
int vmi_pause(struct vmi *v);
int vmi_unpause(struct vmi *v);
unsigned vmi_pause_count(const struct vmi *v);

unsigned vmi_nr_vcpus(const struct vmi *v);

/*
 * Holding vCPUs. Xen has no per-vCPU pause for a toolstack (XEN-LAB.md:
 * no gdbsx in Debian's build), but a vCPU that raised a synchronous event
 * stays paused until the event is answered. So a vCPU is "held" exactly
 * while it has a pending event, and vmi_respond() releases that one vCPU
 * while the others stay held: that is how one vCPU steps over a
 * breakpoint while the rest stay stopped.
 *
 * vmi_hold_all() brings every vCPU into that state: with the domain
 * paused it arms a single step (TF, or MTF where Xen has it) on each vCPU
 * not held yet, then lets the domain run; each such vCPU executes at most
 * one instruction and is held by its step event, which the session keeps
 * pending without showing it to the handler. A vCPU that raises another
 * synchronous event first is held by that one instead. Call
 * vmi_dispatch() until vmi_held_count() == vmi_nr_vcpus(). The answer
 * that releases a vCPU held this way clears its TF unless the response
 * itself asks for a step. The domain pause count is left as it was.
 */
int vmi_hold_all(struct vmi *v);
unsigned vmi_held_count(const struct vmi *v);
/* The unanswered synchronous event holding vcpu, or NULL. */
const struct vmi_event *vmi_pending(const struct vmi *v, unsigned vcpu);
/* Answer vcpu's pending event; -ENOENT if none. Registers written with
 * VMI_RSP_SET_REGS reach the vCPU when it next runs (Xen defers them to
 * the resume), so vmi_get_regs() shows them only after that; teardown
 * writes them itself so they are never lost. */
int vmi_respond(struct vmi *v, unsigned vcpu, const struct vmi_response *r);

enum vmi_monitor { VMI_MON_SWBREAK, VMI_MON_DEBUG, VMI_MON_MTF, VMI_MON_COUNT };
int vmi_monitor(struct vmi *v, enum vmi_monitor m, bool on);
bool vmi_monitoring(const struct vmi *v, enum vmi_monitor m);

/*
 * Single-step. vmi_response_step() fills r so that the vCPU resuming from
 * ev stops again after one instruction (or stops stepping): MTF toggles
 * where the platform has it, otherwise RFLAGS.TF in the written registers
 * with #DB monitoring on. vmi_step_arm() does the same for a vCPU that is
 * not held by an event (the domain must be paused).
 * Over an instruction Xen completes itself, both arm DR[VMI_STEP_SLOT]
 * after it instead (see VMI_STEP_SLOT): costlier (a register read and
 * write), and the stop comes when the vCPU gets there (after HLT: once an
 * interrupt woke it and its handler returned). Deciding reads the bytes at
 * RIP through the mapping cache: no hypercall once the page is mapped;
 * with MTF, vmi_step_arm() reads the registers too (cached while paused).
 */
int vmi_response_step(struct vmi *v, const struct vmi_event *ev,
    struct vmi_response *r, bool on);
int vmi_step_arm(struct vmi *v, unsigned vcpu, bool on);
bool vmi_stepping(const struct vmi *v, unsigned vcpu);
/*
 * Guard vcpu's next TF step (RFLAGS.TF; MTF needs none). A vCPU stepped
 * with TF can take an interrupt before the instruction, and run other
 * code, other tasks even, before the step's trap comes: code that passes
 * a breakpoint a debugger took out for this step passes it unnoticed.
 * Guarded, the step also arms an execution breakpoint at its start
 * address in DR[VMI_STEP_SLOT], with RFLAGS.RF set so that the step's own
 * instruction passes it: if the vCPU gets back there first, it stops and
 * the event is reported as the step ending there (VMI_DEBUG_STEP). The
 * breakpoint goes at the vCPU's next event. Costs one register write.
 * Once: the step after is unguarded unless asked again. No guard where
 * the step itself takes the slot (an instruction Xen completes).
 */
void vmi_step_guard_next(struct vmi *v, unsigned vcpu);

/* ---- registers ---------------------------------------------------------- */

/* -ENODATA: the vCPU is down (never brought up, e.g. maxvcpus above
 * vcpus, or taken offline by the guest) and has no registers. */
int vmi_get_regs(struct vmi *v, unsigned vcpu, struct vmi_regs *r);
int vmi_set_regs(struct vmi *v, unsigned vcpu, const struct vmi_regs *r);
/*
 * CR8, the task priority, read only: it lives in the local APIC (Xen: the
 * LAPIC_REGS record's TPR), a hypercall of its own that vmi_get_regs()
 * would pay at every stop for a register gdb asks for only with the whole
 * register file. Not cached: it is read when asked. 0 for a domain
 * without an emulated local APIC; -EOPNOTSUPP if the driver cannot.
 */
int vmi_get_cr8(struct vmi *v, unsigned vcpu, uint64_t *cr8);

enum vmi_hw_kind { VMI_HW_EXEC = 0, VMI_HW_WRITE = 1, VMI_HW_RW = 3 };

/*
 * The DR slot the session takes on a vCPU to step over an instruction that
 * Xen completes itself (CPUID, RDTSC, I/O, MSR accesses, HLT, VMCALL...:
 * vmi_insn.h). Xen advances RIP past those and, finding TF set, injects
 * the #DB into the guest: no event reaches the session, and with MTF the
 * stop comes one instruction late (vmi/REVIEW-intel.md, finding 2). So
 * vmi_response_step(), vmi_step_arm() and vmi_park() decode the
 * instruction at RIP first and, for those, arm an execution breakpoint at
 * RIP + length in this slot instead of TF/MTF. Its hit is reported as a
 * step (VMI_EVENT_DEBUG, VMI_DEBUG_STEP, slot -1) and the slot is given
 * back before the handler sees it; teardown restores it like every slot.
 * The slot is the step's only while the step is armed: vmi_hwbreak_set()
 * or vmi_park() on this slot of that vCPU cancel the step, and such a
 * step while the slot is armed otherwise on that vCPU is -EBUSY. vmistub
 * parks other vCPUs with DR3 too, never the one it steps.
 */
#define VMI_STEP_SLOT 3

/* Arm DR[slot] on one vCPU (len 1, 2, 4 or 8; 1 for EXEC). The vCPU's
 * previous DR0-3/DR7 are saved on first use and restored at teardown. */
int vmi_hwbreak_set(struct vmi *v, unsigned vcpu, unsigned slot,
    uint64_t addr, enum vmi_hw_kind kind, unsigned len);
int vmi_hwbreak_clear(struct vmi *v, unsigned vcpu, unsigned slot);

/* Hold a vCPU that no event holds, before it executes anything (the domain
 * paused): DR[slot] as an execution breakpoint at its RIP, which faults
 * before the instruction runs. A vCPU with a re-injected trap still to
 * take goes into the guest's handler first, not to RIP: that one also gets
 * a single step (in the same register write). It is then held by
 * whichever event comes first; vmi_unpark() and an answer without a step
 * undo it. -EBUSY if an event holds it already.
 * It does not hold a vCPU that an interrupt sends elsewhere first (on the
 * way back to user space the guest may schedule another task): also, if
 * not NULL, is an address it must not pass meanwhile either (where a
 * debugger took a breakpoint out to step another vCPU over it), armed in
 * the same write in a slot that neither the session nor the guest's DR7
 * uses (none free: not armed). */
int vmi_park(struct vmi *v, unsigned vcpu, unsigned slot, const uint64_t *also);
/* Give back what vmi_park() armed on vcpu, in one register write (0 if
 * nothing is armed any more). */
int vmi_unpark(struct vmi *v, unsigned vcpu);

/* ---- memory ------------------------------------------------------------- */

/* Read flag: show the original bytes under vmi_patch() patches. */
#define VMI_MEM_HIDE_PATCHES 1u

/* Any length, across frames. *done (may be NULL) gets the bytes done
 * before the first frame that failed; the return is 0 or that failure. */
int vmi_read_phys(struct vmi *v, uint64_t gpa, void *buf, size_t len,
    unsigned flags, size_t *done);
/* Bytes under a patch go to the patch's saved original, not the guest, so
 * the patch stays armed and teardown restores what was written. */
int vmi_write_phys(struct vmi *v, uint64_t gpa, const void *buf, size_t len,
    size_t *done);

int vmi_as_of_vcpu(struct vmi *v, unsigned vcpu, struct vmi_as *as);
int vmi_translate(struct vmi *v, const struct vmi_as *as, uint64_t va,
    struct vmi_xlate *out);
/* Stop at the first page that does not translate: -EFAULT, *done bytes
 * done and *fail (may be NULL) saying where and why. */
int vmi_read_virt(struct vmi *v, const struct vmi_as *as, uint64_t va,
    void *buf, size_t len, unsigned flags, size_t *done,
    struct vmi_xlate *fail);
int vmi_write_virt(struct vmi *v, const struct vmi_as *as, uint64_t va,
    const void *buf, size_t len, size_t *done, struct vmi_xlate *fail);

/* Instrumentation bytes (breakpoints): the original is saved and written
 * back by vmi_unpatch() or at teardown. Patches may not overlap (-EEXIST). */
int vmi_patch(struct vmi *v, uint64_t gpa, const void *bytes, size_t len);
int vmi_unpatch(struct vmi *v, uint64_t gpa);
/* The byte vmi_patch() saved at gpa, or -ENOENT if gpa is not patched. */
int vmi_patched_original(const struct vmi *v, uint64_t gpa, uint8_t *orig);

/* p2m access for one frame (restored to rwx at teardown). */
int vmi_set_mem_access(struct vmi *v, uint64_t gfn, unsigned access);

/* What the session asked of the driver: the hypervisor round trips behind
 * each debugger operation, for benchmarks and "monitor stats". */
struct vmi_stats {
	uint64_t events, responses, notifies;
	uint64_t regs_reads, regs_cached;       /* driver reads; cache hits */
	uint64_t regs_writes, regs_light_writes; /* full; general+debug only */
	/* Light writes folded into a later one of the same vCPU (it could
	 * not run in between), and deferred writes the driver refused. */
	uint64_t regs_coalesced, regs_write_errors;
	uint64_t pauses, unpauses;
};
void vmi_stats(const struct vmi *v, struct vmi_stats *out);

/* Drop every cached mapping (e.g. after the guest ballooned). */
void vmi_cache_flush(struct vmi *v);

struct vmi_cache_stats {
	uint64_t hits, misses, map_calls, frames_mapped, evictions;
	unsigned chunks, max_chunks, chunk_frames;
};
void vmi_cache_stats(const struct vmi *v, struct vmi_cache_stats *st);

#endif
