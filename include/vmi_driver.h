/*
 * vmi_driver.h - what a hypervisor driver gives the vmi session.
 *
 * A driver instance starts with a pointer to one static const ops table.
 * A NULL member means "this platform cannot" and is the only way a driver
 * says so: vmi_has() reads the table, and the session answers -EOPNOTSUPP
 * without calling. A driver whose abilities depend on the machine (Xen on
 * Intel vs AMD) picks one of several const tables when it opens.
 *
 * Every member returns 0 (or a count) or -errno and never blocks for
 * long: drain() returns what is queued now.
 */
#ifndef VMI_DRIVER_H
#define VMI_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmi.h"

struct vmi_driver_ops;

struct vmi_driver {
	const struct vmi_driver_ops *ops;
};

struct vmi_driver_ops {
	const char *name;

	/* Mandatory. */
	void (*close)(struct vmi_driver *d);
	int (*info)(struct vmi_driver *d, struct vmi_info *out);
	/* VMI_DOM_* and, for SHUTDOWN, the guest's reason. */
	int (*domain_state)(struct vmi_driver *d, enum vmi_domstate *st,
	    int *reason);
	int (*pause)(struct vmi_driver *d);
	int (*unpause)(struct vmi_driver *d);
	int (*get_regs)(struct vmi_driver *d, unsigned vcpu, struct vmi_regs *r);
	/* Map n guest frames contiguously, read-write where the guest allows
	 * it; errs[i] is 0 or -errno per frame. NULL (and errno) if the call
	 * as a whole failed. */
	void *(*map)(struct vmi_driver *d, const uint64_t *gfns, unsigned n,
	    int *errs);
	void (*unmap)(struct vmi_driver *d, void *addr, unsigned n);

	/* Optional. */
	int (*set_regs)(struct vmi_driver *d, unsigned vcpu,
	    const struct vmi_regs *r);
	/* Cheaper write for when only the general registers, RIP, RFLAGS
	 * and DR0-3/6/7 differ from the current ones (vmi_regs_light_change):
	 * breakpoints, watchpoints and TF. Optional: set_regs otherwise. */
	int (*set_light_regs)(struct vmi_driver *d, unsigned vcpu,
	    const struct vmi_regs *r);
	int (*get_cr8)(struct vmi_driver *d, unsigned vcpu, uint64_t *cr8);
	bool write_mem;   /* map() gives writable mappings */

	/* Events: all NULL for a read-only driver. */
	int (*event_fd)(struct vmi_driver *d);
	/* Up to max events queued now; 0 when none. */
	int (*drain)(struct vmi_driver *d, struct vmi_event *evs, unsigned max);
	/* Queue the answer to a sync event; flush() notifies once per batch. */
	int (*respond)(struct vmi_driver *d, const struct vmi_event *ev,
	    const struct vmi_response *r);
	int (*flush)(struct vmi_driver *d);
	/* Turn event delivery off once every pending event has been
	 * answered (xc_monitor_disable on Xen). */
	int (*monitor_stop)(struct vmi_driver *d);
	int (*monitor_swbreak)(struct vmi_driver *d, bool on);
	int (*monitor_debug)(struct vmi_driver *d, bool on);
	int (*monitor_mtf)(struct vmi_driver *d, bool on);
	/* Arm/disarm MTF on a vCPU that is not held by an event. */
	int (*mtf_arm)(struct vmi_driver *d, unsigned vcpu, bool on);
	/* Deliver ev's trap (#BP or #DB) to the guest when it resumes. */
	int (*reinject)(struct vmi_driver *d, const struct vmi_event *ev);
	int (*set_mem_access)(struct vmi_driver *d, uint64_t gfn,
	    unsigned access);

	/* Why this table was chosen, for "monitor info". */
	const char *step_why;
};

/* true if b differs from a only in the general registers, RIP, RFLAGS and
 * the debug registers. */
bool vmi_regs_light_change(const struct vmi_regs *a, const struct vmi_regs *b);

#endif
