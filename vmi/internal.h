/*
 * internal.h - what the files of vmi/ share; not installed, not for
 * drivers (they see only vmi_driver.h).
 */
#ifndef VMI_INTERNAL_H
#define VMI_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmi.h"
#include "vmi_driver.h"

/* ---- cache.c: foreign mappings, chunk_frames frames per map call ------- */

struct vmi_cache_chunk {
	uint64_t base_gfn;
	uint8_t *addr;      /* NULL: slot free */
	int *errs;          /* chunk_frames per-frame results */
	uint64_t used;      /* LRU tick */
};

struct vmi_cache {
	struct vmi_driver *drv;
	unsigned chunk_frames, max_chunks, nchunks;
	struct vmi_cache_chunk *chunks;
	int *errs;
	uint64_t *gfns;     /* scratch for one map call */
	uint64_t tick;
	unsigned last;      /* index of the last hit: most reads are local */
	struct vmi_cache_stats st;
};

int vmi_cache_init(struct vmi_cache *c, struct vmi_driver *drv,
    unsigned chunk_frames, unsigned max_chunks);
void vmi_cache_fini(struct vmi_cache *c);
void vmi_cache_drop(struct vmi_cache *c);
/* *p points at gpa in a mapping; *avail bytes from there are mapped
 * (to the chunk's end or its next failed frame). -errno of gpa's frame. */
int vmi_cache_get(struct vmi_cache *c, uint64_t gpa, uint8_t **p,
    size_t *avail);

/* ---- session.c --------------------------------------------------------- */

struct vmi_patch {
	uint64_t gpa;
	size_t len;
	uint8_t orig[16];
	uint8_t bytes[16];
};

/* What the session changed on one vCPU, to be undone at teardown. */
struct vmi_vcpu {
	struct vmi_event pending;
	bool has_pending;
	bool dr_saved;          /* dr_orig/dr7_orig hold the guest's own */
	uint64_t dr_orig[4], dr7_orig;
	uint8_t hw_used;        /* slots the session armed: bit per DR */
	uint64_t hw_addr[4];
	uint8_t hw_kind[4];
	bool tf;                /* TF set by the session */
	uint64_t tf_rip;        /* where the vCPU last resumed with it */
	/* TF taken off a vCPU that never trapped on it: an interrupt frame
	 * may still hold a copy, whose trap comes later (classify). */
	bool tf_stale;
	/* A trap re-injected, not yet taken (no event since). */
	bool reinjected;
	uint64_t dr6_dirty;     /* DR6 status bits the session's traps set */
	bool holding;           /* TF armed by vmi_hold_all(), not yet trapped */
	bool hold_tf;           /* held that way: the answer must stop the step */
	bool step_req;          /* vmi_response_step(on) for the pending event */
	/* Registers a response wrote that Xen applies only when the vCPU next
	 * resumes (see vmi_respond); not yet known to be applied. */
	bool deferred;
	struct vmi_gregs deferred_regs;
	struct vmi_gregs deferred_from;   /* the registers it was held with */
	bool mtf;               /* MTF armed by the session */
	/* A step by DR[VMI_STEP_SLOT] after an instruction Xen completes
	 * itself is armed; dr_step_hit: the pending event is its stop. */
	bool dr_step;
	bool dr_step_hit;
	/* The slot guards a TF step's start instead (vmi_step_guard_next):
	 * it goes at the next event whatever that is. guard_next: asked
	 * for, not armed yet. */
	bool guard, guard_next;
	/* vmi_park's slots, -1: none. */
	int8_t park_slot, park_also;
	/* The registers last read or written while the vCPU could not run
	 * (domain paused by the session, or held by an event): they cannot
	 * change until it runs, so reading them again costs no hypercall. */
	bool regs_cached;
	struct vmi_regs regs_cache;
	/* regs_cache holds a light write (debug registers, flags, general
	 * registers) not given to the driver yet: the vCPU cannot run before
	 * vmi_respond() or the last vmi_unpause() writes it (regs_flush), so
	 * the changes made between two of its runs cost one write. Implies
	 * regs_cached and frozen(). */
	bool regs_dirty;
};

struct vmi {
	struct vmi_driver *drv;
	const struct vmi_driver_ops *ops;
	struct vmi_handler h;
	bool has_handler;
	struct vmi_cache cache;
	unsigned nr_vcpus;
	struct vmi_vcpu *vcpus;
	struct vmi_patch *patches;
	size_t npatches, patches_cap;
	uint64_t *access_gfns;
	size_t naccess, access_cap;
	unsigned pauses;
	bool monitors[VMI_MON_COUNT];
	enum vmi_domstate state;
	bool gone_reported, shutdown_reported;
	bool in_dispatch, need_flush;
	bool torn_down;
	volatile sig_atomic_t signo;
	int signo_seen;
	bool finished;
	int result;
	struct vmi_stats st;
};

/* 0, or -ESHUTDOWN after teardown, or -ESRCH once the domain is gone. */
int vmi_check_live(const struct vmi *v);

#endif
