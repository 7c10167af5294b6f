/*
 * fake_driver.h - an in-memory vmi driver for unit tests only.
 *
 * The "world" (guest memory, vCPU registers, event queue, what was
 * answered, an ordered log of driver calls) belongs to the test and
 * outlives the driver, so a test can look at it after vmi_close().
 */
#ifndef VMI_FAKE_DRIVER_H
#define VMI_FAKE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmi.h"
#include "vmi_driver.h"

#define FAKE_FRAMES 512
#define FAKE_SLACK 64
#define FAKE_VCPUS 4
#define FAKE_QUEUE 256

enum fake_platform {
	FAKE_INTEL,     /* everything, MTF and mem_access included */
	FAKE_AMD,       /* no MTF, no mem_access (Xen on SVM) */
	FAKE_READONLY,  /* memory and registers to read, nothing else */
};

struct fake_response {
	struct vmi_event ev;
	struct vmi_response r;
};

struct fake_world {
	uint8_t mem[(FAKE_FRAMES + FAKE_SLACK) * 4096];
	bool hole[FAKE_FRAMES];
	struct vmi_regs regs[FAKE_VCPUS];
	uint64_t cr8[FAKE_VCPUS];
	bool mtf_armed[FAKE_VCPUS];
	struct vmi_event queue[FAKE_QUEUE];
	unsigned qhead, qtail;
	struct fake_response resp[FAKE_QUEUE];
	unsigned nresp;
	unsigned reinjects;
	unsigned flushes;
	int pauses;             /* net pauses held against the domain */
	bool monitors[VMI_MON_COUNT];
	unsigned access[FAKE_FRAMES];
	enum vmi_domstate state;
	int shutdown_reason;
	int drain_error;        /* returned once by drain() if set */
	unsigned map_calls, mapped_chunks;
	unsigned get_regs_calls, set_regs_calls, get_cr8_calls;
	bool closed;
	/* As Xen does: a response's registers wait for the vCPU's next
	 * resume (fake_resume) and are dropped by monitor_stop. */
	bool defer_gprs;
	bool has_deferred[FAKE_VCPUS];
	struct vmi_gregs deferred[FAKE_VCPUS];
	int efd;
	char log[8192];
};

void fake_world_init(struct fake_world *w);
void fake_world_fini(struct fake_world *w);
/* A new driver over w, with the ops of the platform. */
struct vmi_driver *fake_driver_new(struct fake_world *w, enum fake_platform p);
/* Queue ev and make the event fd readable. */
void fake_push(struct fake_world *w, const struct vmi_event *ev);
/* The vCPU runs again: deferred response registers land. */
void fake_resume(struct fake_world *w, unsigned vcpu);
/* Append to the call log, as the driver does: "name;". */
void fake_log(struct fake_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Offset of the first occurrence of what in the log, or -1. */
int fake_log_at(const struct fake_world *w, const char *what);

#endif
