/*
 * test_session.c - the session over the fake driver: capabilities from the
 * ops table, memory through the mapping cache, patches, virtual reads,
 * events and held vCPUs, stepping, debug registers, domain death,
 * signals, and the teardown order with everything it must put back.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_driver.h"
#include "vmi.h"

static struct fake_world world;

/* A handler that records what it saw and does what the test asks. */
struct rec {
	int verdict;            /* returned for sync events */
	bool step;              /* ask for a step in each response */
	bool reinject_foreign;  /* re-inject events that are not ours */
	unsigned events, gone, shutdown, timeouts, interrupted, cleanups;
	int last_signo, shutdown_reason;
	struct vmi_event last;
	bool finish;            /* poll() says finished */
};

static int
rec_event(void *ctx, struct vmi *v, const struct vmi_event *ev,
    struct vmi_response *rsp)
{
	struct rec *rc = ctx;

	if (rsp == NULL) {
		if (ev->kind == VMI_EVENT_DOMAIN_GONE)
			rc->gone++;
		if (ev->kind == VMI_EVENT_DOMAIN_SHUTDOWN) {
			rc->shutdown++;
			rc->shutdown_reason = ev->u.shutdown.reason;
		}
		return 0;
	}
	rc->events++;
	rc->last = *ev;
	if (rc->step)
		assert_int_equal(vmi_response_step(v, ev, rsp, true), 0);
	if (rc->reinject_foreign && vmi_event_ours(v, ev) == 0)
		rsp->flags |= VMI_RSP_REINJECT;
	return rc->verdict;
}

static void
rec_timeout(void *ctx, struct vmi *v)
{
	((struct rec *)ctx)->timeouts++;
}

static void
rec_interrupted(void *ctx, struct vmi *v, int signo)
{
	struct rec *rc = ctx;

	rc->interrupted++;
	rc->last_signo = signo;
}

static void
rec_cleanup(void *ctx, struct vmi *v)
{
	((struct rec *)ctx)->cleanups++;
	fake_log(&world, "cleanup");
}

static bool
rec_poll(void *ctx, struct vmi *v, int *result)
{
	struct rec *rc = ctx;

	*result = 42;
	return rc->finish;
}

static struct vmi *
open_on(enum fake_platform p, struct rec *rc, unsigned chunk, unsigned max)
{
	struct vmi_config cfg = { .cache_chunk_frames = chunk,
	    .cache_max_chunks = max };
	struct vmi *v;

	assert_int_equal(vmi_open(&v, fake_driver_new(&world, p), &cfg), 0);
	if (rc != NULL) {
		struct vmi_handler h = { .ctx = rc, .handle_event = rec_event,
		    .handle_timeout = rec_timeout,
		    .handle_interrupted = rec_interrupted,
		    .cleanup = rec_cleanup, .poll = rec_poll };

		vmi_set_handler(v, &h);
	}
	return v;
}

static int
setup(void **state)
{
	(void)state;
	fake_world_init(&world);
	for (unsigned i = 0; i < FAKE_VCPUS; i++) {
		world.regs[i].g.rip = 0x1000 + i;
		world.regs[i].g.rflags = 0x202;
		world.cr8[i] = 3;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fake_world_fini(&world);
	return 0;
}

static struct vmi_event
sync_event(enum vmi_event_kind k, unsigned vcpu, uint64_t rip)
{
	struct vmi_event ev = { .kind = k, .vcpu = vcpu, .sync = true };

	ev.regs = world.regs[vcpu].g;
	ev.regs.rip = rip;
	if (k == VMI_EVENT_SWBREAK)
		ev.u.swbreak.insn_len = 1;
	return ev;
}

/* ---- capabilities ---------------------------------------------------------- */

/* A synchronous event pushed and dispatched: rc->last is what the
 * handler saw. */
static void
raise_event(struct vmi *v, enum vmi_event_kind k, unsigned vcpu, uint64_t rip)
{
	struct vmi_event ev = sync_event(k, vcpu, rip);

	fake_push(&world, &ev);
	vmi_dispatch(v);
}

/* The vCPU's held event answered with a step. */
static void
respond_step(struct vmi *v, unsigned vcpu)
{
	struct vmi_response r;

	vmi_response_init(&r, vmi_pending(v, vcpu));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, vcpu), &r, true),
	    0);
	assert_int_equal(vmi_respond(v, vcpu, &r), 0);
}

static void
t_caps_follow_ops_table(void **state)
{
	struct vmi *v;
	const char *why;

	(void)state;
	v = open_on(FAKE_INTEL, NULL, 0, 0);
	for (int c = 0; c < VMI_CAP_COUNT; c++)
		assert_true(vmi_has(v, (enum vmi_cap)c));
	assert_int_equal(vmi_step_mechanism(v, &why), VMI_STEP_MTF);
	vmi_close(v);

	v = open_on(FAKE_AMD, NULL, 0, 0);
	assert_false(vmi_has(v, VMI_CAP_MTF));
	assert_false(vmi_has(v, VMI_CAP_MEMACCESS));
	assert_true(vmi_has(v, VMI_CAP_HWBREAK));
	assert_true(vmi_has(v, VMI_CAP_STEP));
	assert_int_equal(vmi_step_mechanism(v, &why), VMI_STEP_TF);
	assert_non_null(strstr(why, "TF"));
	assert_int_equal(vmi_monitor(v, VMI_MON_MTF, true), -EOPNOTSUPP);
	assert_int_equal(vmi_set_mem_access(v, 1, VMI_ACCESS_R), -EOPNOTSUPP);
	vmi_close(v);

	v = open_on(FAKE_READONLY, NULL, 0, 0);
	for (int c = 0; c < VMI_CAP_COUNT; c++)
		assert_false(vmi_has(v, (enum vmi_cap)c));
	assert_int_equal(vmi_step_mechanism(v, NULL), VMI_STEP_NONE);
	assert_int_equal(vmi_event_fd(v), -EOPNOTSUPP);
	assert_int_equal(vmi_patch(v, 0x1000, "\xcc", 1), -EOPNOTSUPP);
	assert_int_equal(vmi_write_phys(v, 0x1000, "x", 1, NULL), -EOPNOTSUPP);
	assert_int_equal(vmi_monitor(v, VMI_MON_SWBREAK, true), -EOPNOTSUPP);
	struct vmi_regs r;
	assert_int_equal(vmi_get_regs(v, 1, &r), 0);
	assert_int_equal(vmi_set_regs(v, 1, &r), -EOPNOTSUPP);
	assert_int_equal(vmi_step_arm(v, 1, true), -EOPNOTSUPP);
	/* Reading and dispatching still work: nothing to drain. */
	assert_int_equal(vmi_dispatch(v), 0);
	vmi_close(v);
	assert_true(world.closed);
}

/* ---- memory ------------------------------------------------------------------ */

static void
t_phys_across_frames_and_chunks(void **state)
{
	static uint8_t buf[3 * 65536 + 100];
	struct vmi_cache_stats st;
	struct vmi *v;
	size_t done = 0;

	(void)state;
	v = open_on(FAKE_AMD, NULL, 16, 8);
	/* Starts mid-frame, crosses three 64 KiB chunks. */
	assert_int_equal(vmi_read_phys(v, 0x3ff0, buf, sizeof(buf), 0, &done), 0);
	assert_int_equal(done, sizeof(buf));
	assert_memory_equal(buf, world.mem + 0x3ff0, sizeof(buf));
	vmi_cache_stats(v, &st);
	assert_int_equal(st.map_calls, 4);
	assert_int_equal(st.misses, 4);
	/* Warm: no new map call. */
	assert_int_equal(vmi_read_phys(v, 0x3ff0, buf, sizeof(buf), 0, &done), 0);
	vmi_cache_stats(v, &st);
	assert_int_equal(st.map_calls, 4);
	assert_true(st.hits >= 4);

	uint8_t w[5000];
	memset(w, 0xab, sizeof(w));
	assert_int_equal(vmi_write_phys(v, 0xfff0, w, sizeof(w), &done), 0);
	assert_int_equal(done, sizeof(w));
	assert_memory_equal(world.mem + 0xfff0, w, sizeof(w));
	vmi_close(v);
	assert_int_equal(world.mapped_chunks, 0);
}

static void
t_cache_is_bounded_lru(void **state)
{
	struct vmi_cache_stats st;
	struct vmi *v;
	uint8_t b;

	(void)state;
	v = open_on(FAKE_AMD, NULL, 4, 2);
	assert_int_equal(vmi_read_phys(v, 0 * 16384, &b, 1, 0, NULL), 0);
	assert_int_equal(vmi_read_phys(v, 1 * 16384, &b, 1, 0, NULL), 0);
	assert_int_equal(vmi_read_phys(v, 0 * 16384, &b, 1, 0, NULL), 0);
	/* Third chunk evicts chunk 1 (least recently used), not chunk 0. */
	assert_int_equal(vmi_read_phys(v, 2 * 16384, &b, 1, 0, NULL), 0);
	assert_int_equal(world.mapped_chunks, 2);
	vmi_cache_stats(v, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.map_calls, 3);
	assert_int_equal(vmi_read_phys(v, 0 * 16384, &b, 1, 0, NULL), 0);
	vmi_cache_stats(v, &st);
	assert_int_equal(st.map_calls, 3);
	assert_int_equal(vmi_read_phys(v, 1 * 16384, &b, 1, 0, NULL), 0);
	vmi_cache_stats(v, &st);
	assert_int_equal(st.map_calls, 4);
	vmi_cache_flush(v);
	assert_int_equal(world.mapped_chunks, 0);
	vmi_close(v);
}

static void
t_phys_stops_at_hole(void **state)
{
	uint8_t buf[3 * 4096];
	struct vmi *v;
	size_t done = 99;

	(void)state;
	world.hole[5] = true;
	v = open_on(FAKE_AMD, NULL, 16, 8);
	assert_int_equal(vmi_read_phys(v, 3 * 4096 + 10, buf, sizeof(buf), 0,
	    &done), -EFAULT);
	assert_int_equal(done, 2 * 4096 - 10);
	assert_memory_equal(buf, world.mem + 3 * 4096 + 10, done);
	/* The frame after the hole, same chunk, is fine. */
	assert_int_equal(vmi_read_phys(v, 6 * 4096, buf, 4096, 0, &done), 0);
	/* Past the end of the guest. */
	assert_int_equal(vmi_read_phys(v, (uint64_t)FAKE_FRAMES * 4096 - 4,
	    buf, 8, 0, &done), -EFAULT);
	assert_int_equal(done, 4);
	vmi_close(v);
}

static void
t_patches(void **state)
{
	uint8_t snap[64], b[4];
	struct vmi *v;
	const uint64_t at = 0x2000;

	(void)state;
	memcpy(snap, world.mem + at - 32, sizeof(snap));
	v = open_on(FAKE_AMD, NULL, 0, 0);
	assert_int_equal(vmi_patch(v, at, "\xcc", 1), 0);
	assert_int_equal(world.mem[at], 0xcc);
	assert_int_equal(vmi_patch(v, at, "\xcc", 1), -EEXIST);
	assert_int_equal(vmi_patch(v, at - 1, "\x90\x90", 2), -EEXIST);
	assert_int_equal(vmi_patch(v, at + 8, "\xcc", 1), 0);

	assert_int_equal(vmi_read_phys(v, at - 1, b, 3, 0, NULL), 0);
	assert_int_equal(b[1], 0xcc);
	assert_int_equal(vmi_read_phys(v, at - 1, b, 3, VMI_MEM_HIDE_PATCHES,
	    NULL), 0);
	assert_memory_equal(b, snap + 31, 3);

	/* A write over a patched byte changes what teardown restores and
	 * leaves the int3 armed. */
	assert_int_equal(vmi_write_phys(v, at - 1, "\x11\x22\x33", 3, NULL), 0);
	assert_int_equal(world.mem[at - 1], 0x11);
	assert_int_equal(world.mem[at], 0xcc);
	assert_int_equal(world.mem[at + 1], 0x33);
	uint8_t orig;
	assert_int_equal(vmi_patched_original(v, at, &orig), 0);
	assert_int_equal(orig, 0x22);
	/* Restored under a pause of its own (a vCPU still in Xen's #BP exit
	 * must not find the original instruction), none if already paused. */
	world.log[0] = '\0';
	assert_int_equal(vmi_unpatch(v, at), 0);
	assert_int_equal(world.mem[at], 0x22);
	assert_string_equal(world.log, "pause;unpause;");
	assert_int_equal(world.pauses, 0);
	assert_int_equal(vmi_unpatch(v, at), -ENOENT);
	assert_int_equal(vmi_patch(v, at, "\xcc", 1), 0);
	assert_int_equal(vmi_pause(v), 0);
	world.log[0] = '\0';
	assert_int_equal(vmi_unpatch(v, at), 0);
	assert_string_equal(world.log, "");
	assert_int_equal(vmi_unpause(v), 0);

	/* The other one is restored by teardown. */
	vmi_close(v);
	assert_int_equal(world.mem[at + 8], snap[40]);
}

/* Tables in fake memory: PML4 at frame 10, PDPT 11, PD 12, PT 13. */
static void
build_tables(uint64_t va)
{
	uint64_t *m = (uint64_t *)world.mem;
	unsigned i4 = (va >> 39) & 511, i3 = (va >> 30) & 511;
	unsigned i2 = (va >> 21) & 511, i1 = (va >> 12) & 511;

	memset(world.mem + 10 * 4096, 0, 4 * 4096);
	m[10 * 512 + i4] = (11ULL << 12) | 3;
	m[11 * 512 + i3] = (12ULL << 12) | 3;
	m[12 * 512 + i2] = (13ULL << 12) | 3;
	m[13 * 512 + i1] = (40ULL << 12) | 3;       /* page 0 -> frame 40 */
	m[13 * 512 + i1 + 1] = (22ULL << 12) | 3;   /* page 1 -> frame 22 */
	/* page 2 not present */
}

static void
t_virt_read_write_stop_cleanly(void **state)
{
	const uint64_t va = 0xffff888000200000ULL;
	struct vmi_as as = { .cr3 = 10ULL << 12, .levels = 4, .maxphyaddr = 52 };
	uint8_t buf[3 * 4096];
	struct vmi_xlate fail;
	struct vmi *v;
	size_t done;

	(void)state;
	build_tables(va);
	v = open_on(FAKE_AMD, NULL, 0, 0);
	assert_int_equal(vmi_read_virt(v, &as, va + 4000, buf, 200, 0, &done,
	    &fail), 0);
	assert_memory_equal(buf, world.mem + 40 * 4096 + 4000, 96);
	assert_memory_equal(buf + 96, world.mem + 22 * 4096, 104);

	assert_int_equal(vmi_read_virt(v, &as, va + 100, buf, sizeof(buf), 0,
	    &done, &fail), -EFAULT);
	assert_int_equal(done, 2 * 4096 - 100);
	assert_int_equal(fail.err, VMI_XLATE_NOT_PRESENT);
	assert_int_equal(fail.level, 1);

	assert_int_equal(vmi_write_virt(v, &as, va + 4095, "AB", 2, &done,
	    NULL), 0);
	assert_int_equal(world.mem[40 * 4096 + 4095], 'A');
	assert_int_equal(world.mem[22 * 4096], 'B');

	/* vCPU 2's registers describe the same address space. */
	world.regs[2].cr0 = VMI_CR0_PG;
	world.regs[2].cr4 = VMI_CR4_PAE;
	world.regs[2].efer = VMI_EFER_LMA;
	world.regs[2].cr3 = 10ULL << 12;
	struct vmi_as as2;
	struct vmi_xlate x;
	assert_int_equal(vmi_as_of_vcpu(v, 2, &as2), 0);
	assert_int_equal(vmi_translate(v, &as2, va + 4096 + 5, &x), 0);
	assert_int_equal(x.gpa, 22 * 4096 + 5);
	vmi_close(v);
}

/* ---- events -------------------------------------------------------------------- */

static void
t_hold_and_respond(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 2, 0x5000);
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.events, 1);
	assert_int_equal(world.nresp, 0);
	assert_non_null(vmi_pending(v, 2));
	assert_null(vmi_pending(v, 1));
	assert_int_equal(vmi_pending(v, 2)->regs.rip, 0x5000);

	/* Registers set while held survive the answer. */
	struct vmi_regs regs;
	assert_int_equal(vmi_get_regs(v, 2, &regs), 0);
	regs.g.rax = 0x1234;
	assert_int_equal(vmi_set_regs(v, 2, &regs), 0);
	assert_int_equal(vmi_pending(v, 2)->regs.rax, 0x1234);

	vmi_response_init(&r, vmi_pending(v, 2));
	r.flags |= VMI_RSP_SET_REGS;
	r.regs.rip = 0x5001;
	assert_int_equal(vmi_respond(v, 2, &r), 0);
	assert_int_equal(world.nresp, 1);
	assert_int_equal(world.regs[2].g.rip, 0x5001);
	assert_int_equal(world.regs[2].g.rax, 0x1234);
	assert_true(world.flushes >= 1);
	assert_null(vmi_pending(v, 2));
	assert_int_equal(vmi_respond(v, 2, &r), -ENOENT);
	vmi_close(v);
}

static void
t_own_vs_guest_int3(void **state)
{
	const uint64_t va = 0xffff888000200000ULL;
	struct rec rc = { .verdict = VMI_RESUME, .reinject_foreign = true };
	struct vmi_event ev;
	struct vmi *v;

	(void)state;
	build_tables(va);
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_patch(v, 40 * 4096 + 16, "\xcc", 1), 0);
	world.mem[40 * 4096 + 32] = 0xcc;  /* the guest's own int3 */

	ev = sync_event(VMI_EVENT_SWBREAK, 1, va + 16);
	ev.cr0 = VMI_CR0_PG;
	ev.cr4 = VMI_CR4_PAE;
	ev.efer = VMI_EFER_LMA;
	ev.cr3 = 10ULL << 12;
	assert_int_equal(vmi_event_ours(v, &ev), 1);
	fake_push(&world, &ev);
	ev.regs.rip = va + 32;
	assert_int_equal(vmi_event_ours(v, &ev), 0);
	fake_push(&world, &ev);
	/* An int3 that is gone from memory was the session's, removed after
	 * the hit: never re-inject it. */
	ev.regs.rip = va + 48;
	world.mem[40 * 4096 + 48] = 0x90;
	assert_int_equal(vmi_event_ours(v, &ev), 1);
	ev.regs.rip = va + 32;
	assert_int_equal(vmi_dispatch(v), 2);
	assert_int_equal(world.nresp, 2);
	assert_int_equal(world.reinjects, 1);
	assert_false(world.resp[0].r.flags & VMI_RSP_REINJECT);
	assert_true(world.resp[1].r.flags & VMI_RSP_REINJECT);
	/* Injection comes before the answer that lets the vCPU run. */
	assert_true(fake_log_at(&world, "reinject:1;respond:1") >= 0);
	assert_int_equal(world.flushes, 1);   /* once per batch */
	vmi_close(v);
}

static void
t_default_without_handler(void **state)
{
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 0, 0x3000);
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, NULL, 0, 0);
	/* Paging off: rip is physical. The int3 at 0x3000 is in guest memory
	 * and not patched: the guest's own. */
	world.mem[0x3000] = 0xcc;
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(world.reinjects, 1);
	assert_int_equal(world.nresp, 1);
	/* Ours: held for whoever drives the session. */
	assert_int_equal(vmi_patch(v, 0x3100, "\xcc", 1), 0);
	ev.regs.rip = 0x3100;
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_non_null(vmi_pending(v, 0));
	vmi_close(v);
	assert_int_equal(world.nresp, 2);
}

static void
t_step_tf(void **state)
{
	struct rec rc = { .verdict = VMI_RESUME, .step = true };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 1, 0x4000);
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_true(world.monitors[VMI_MON_DEBUG]);
	assert_true(world.resp[0].r.flags & VMI_RSP_SET_REGS);
	assert_true(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	assert_true(vmi_stepping(v, 1));

	ev = sync_event(VMI_EVENT_DEBUG, 1, 0x4001);
	rc.step = false;
	rc.verdict = VMI_HOLD;
	/* The hardware leaves BS in DR6, next to a bit of the guest's own. */
	world.regs[1].dr6 = 0xffff4ff2;
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	assert_int_equal(vmi_event_ours(v, &rc.last), 1);

	struct vmi_response r;
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, false), 0);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_false(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	assert_false(vmi_stepping(v, 1));
	/* Stepping over: the session's BS is gone, the guest's B1 stays. */
	assert_int_equal(world.regs[1].dr6, 0xffff0ff2);

	/* Stepping a vCPU that is not held: through its registers. */
	assert_int_equal(vmi_step_arm(v, 3, true), 0);
	assert_true(world.regs[3].g.rflags & VMI_RFLAGS_TF);
	vmi_close(v);
	/* Teardown took TF back off. */
	assert_false(world.regs[3].g.rflags & VMI_RFLAGS_TF);
}

static void
t_step_mtf(void **state)
{
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 1, 0x4000);
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_INTEL, &rc, 0, 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	vmi_response_init(&r, &ev);
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_true(r.flags & VMI_RSP_TOGGLE_MTF);
	assert_false(r.flags & VMI_RSP_SET_REGS);
	assert_true(world.monitors[VMI_MON_MTF]);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_true(world.mtf_armed[1]);

	ev = sync_event(VMI_EVENT_SINGLESTEP, 1, 0x4001);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(vmi_event_ours(v, vmi_pending(v, 1)), 1);
	vmi_response_init(&r, vmi_pending(v, 1));
	/* Already stepping: asking again must not toggle it off. */
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_false(r.flags & VMI_RSP_TOGGLE_MTF);
	/* Leave it held and stepping: teardown must switch MTF off once it
	 * has answered (mtf_all_off). */
	vmi_close(v);
	assert_false(world.mtf_armed[1]);
	assert_false(world.monitors[VMI_MON_MTF]);

	teardown(NULL);
	setup(NULL);
	v = open_on(FAKE_INTEL, NULL, 0, 0);
	assert_int_equal(vmi_step_arm(v, 2, true), 0);
	assert_true(world.mtf_armed[2]);
	vmi_close(v);
	assert_false(world.mtf_armed[2]);
}

static void
t_hold_all_vcpus(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 2, 0x6000);
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_patch(v, 0x6000, "\xcc", 1), 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(vmi_held_count(v), 1);
	assert_int_equal(vmi_hold_all(v), 0);
	/* TF on every vCPU but the one already held; pauses balanced. */
	for (unsigned i = 0; i < FAKE_VCPUS; i++)
		assert_int_equal(!!(world.regs[i].g.rflags & VMI_RFLAGS_TF), i != 2);
	assert_int_equal(world.pauses, 0);
	assert_int_equal(vmi_pause_count(v), 0);
	/* Each takes its step and is held, unseen by the handler; vCPU 3
	 * stops on something else first and the handler sees that. */
	for (unsigned i = 0; i < 2; i++) {
		ev = sync_event(VMI_EVENT_DEBUG, i, 0x7000 + i);
		ev.regs.rflags |= VMI_RFLAGS_TF;
		fake_push(&world, &ev);
	}
	ev = sync_event(VMI_EVENT_SWBREAK, 3, 0x6000);
	ev.regs.rflags |= VMI_RFLAGS_TF;
	fake_push(&world, &ev);
	rc.events = 0;
	assert_int_equal(vmi_dispatch(v), 3);
	assert_int_equal(rc.events, 1);
	assert_int_equal(vmi_held_count(v), FAKE_VCPUS);
	assert_int_equal(world.nresp, 0);

	/* Released plainly: the holding TF goes. */
	vmi_response_init(&r, vmi_pending(v, 0));
	assert_int_equal(vmi_respond(v, 0, &r), 0);
	assert_false(world.regs[0].g.rflags & VMI_RFLAGS_TF);
	/* Released with a step asked for: TF stays. */
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_true(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	/* vCPU 3 was held by its breakpoint; its answer clears TF too. */
	vmi_response_init(&r, vmi_pending(v, 3));
	assert_int_equal(vmi_respond(v, 3, &r), 0);
	assert_false(world.regs[3].g.rflags & VMI_RFLAGS_TF);
	assert_int_equal(vmi_held_count(v), 1);
	vmi_close(v);
	for (unsigned i = 0; i < FAKE_VCPUS; i++)
		assert_false(world.regs[i].g.rflags & VMI_RFLAGS_TF);
}

static void
t_teardown_writes_deferred_registers(void **state)
{
	struct rec rc = { .verdict = VMI_RESUME, .step = true };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 1, 0x4000);
	struct vmi *v;

	(void)state;
	world.defer_gprs = true;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	fake_resume(&world, 1);
	assert_true(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	/* The last step answered with TF off, but the vCPU has not run
	 * since: Xen still holds those registers when teardown begins. */
	ev = sync_event(VMI_EVENT_DEBUG, 1, 0x4001);
	ev.regs.rflags |= VMI_RFLAGS_TF;
	world.regs[1].g = ev.regs;     /* where the vCPU stopped */
	rc.step = false;
	rc.verdict = VMI_HOLD;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	struct vmi_response r;
	vmi_response_init(&r, vmi_pending(v, 1));
	r.regs.rax = 0x77;
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, false), 0);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_true(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	vmi_close(v);
	/* monitor_stop dropped Xen's copy; teardown wrote them itself. */
	assert_false(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	assert_int_equal(world.regs[1].g.rax, 0x77);
	assert_true(fake_log_at(&world, "set_regs:1") <
	    fake_log_at(&world, "monitor_stop"));

	/* A vCPU that ran on after its answer must not be rewound to it. */
	teardown(NULL);
	setup(NULL);
	world.defer_gprs = true;
	rc.verdict = VMI_HOLD;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	ev = sync_event(VMI_EVENT_SWBREAK, 2, 0x4000);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	vmi_response_init(&r, vmi_pending(v, 2));
	r.flags |= VMI_RSP_SET_REGS;
	r.regs.rip = 0x4001;
	assert_int_equal(vmi_respond(v, 2, &r), 0);
	fake_resume(&world, 2);
	world.regs[2].g.rip = 0x9999;      /* it ran on */
	vmi_close(v);
	assert_int_equal(world.regs[2].g.rip, 0x9999);
}

static void
t_hw_breakpoints(void **state)
{
	struct rec rc = { .verdict = VMI_RESUME };
	struct vmi_event ev;
	struct vmi *v;

	(void)state;
	world.regs[0].dr[0] = 0x77;   /* the guest's own, to be restored */
	world.regs[0].dr7 = 0x400;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_hwbreak_set(v, 0, 0, 0xffffffff81000000ULL,
	    VMI_HW_EXEC, 1), 0);
	assert_int_equal(world.regs[0].dr[0], 0xffffffff81000000ULL);
	/* L0|G0, R/W0 = 00, LEN0 = 00 (SDM 17.2.4). */
	assert_int_equal(world.regs[0].dr7 & 0xf0003, 0x3);
	assert_int_equal(vmi_hwbreak_set(v, 0, 1, 0x1000, VMI_HW_WRITE, 4), 0);
	/* L1|G1 = bits 2-3, R/W1 = 01 at 20, LEN1 = 11 at 22. */
	assert_int_equal(world.regs[0].dr7 & 0xf0000c, 0xd0000c);
	assert_int_equal(vmi_hwbreak_set(v, 0, 2, 0x1001, VMI_HW_WRITE, 4),
	    -EINVAL);
	assert_int_equal(vmi_hwbreak_set(v, 0, 2, 0x1000, VMI_HW_EXEC, 4),
	    -EINVAL);
	assert_int_equal(vmi_hwbreak_set(v, 0, 4, 0x1000, VMI_HW_EXEC, 1),
	    -EINVAL);
	assert_true(world.monitors[VMI_MON_DEBUG]);

	ev = sync_event(VMI_EVENT_DEBUG, 0, 0xffffffff81000000ULL);
	world.regs[0].dr6 = 0xffff0ff1;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_HWBREAK);
	assert_int_equal(rc.last.u.debug.slot, 0);
	assert_int_equal(world.regs[0].dr6, 0xffff0ff0);
	/* A #DB elsewhere with the watch slot's DR6 bit clear: the guest's
	 * own (its DR0, say), not a watchpoint hit. */
	ev = sync_event(VMI_EVENT_DEBUG, 0, 0xffffffff81000123ULL);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_UNKNOWN);
	/* The hardware set B1 in the vCPU's DR6: the watchpoint. */
	world.regs[0].dr6 = 0xffff0ff2;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_WATCH);
	assert_int_equal(rc.last.u.debug.slot, 1);
	assert_int_equal(world.regs[0].dr6, 0xffff0ff0);
	/* DR6 names the slot when the hypervisor fills it in. */
	ev.u.debug.dr6 = 1;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.slot, 0);
	/* Another vCPU armed nothing: its #DB is the guest's own. */
	ev = sync_event(VMI_EVENT_DEBUG, 1, 0xffffffff81000000ULL);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_UNKNOWN);
	assert_int_equal(vmi_event_ours(v, &rc.last), 0);

	assert_int_equal(vmi_hwbreak_clear(v, 0, 0), 0);
	assert_int_equal(world.regs[0].dr[0], 0x77);
	assert_int_equal(world.regs[0].dr7 & 3, 0);
	assert_int_equal(vmi_hwbreak_clear(v, 0, 0), -ENOENT);
	vmi_close(v);
	assert_int_equal(world.regs[0].dr7, 0x400);
	assert_int_equal(world.regs[0].dr[1], 0);
}

/* CR8 costs Xen a hypercall of its own (the LAPIC record): the register
 * reads of every stop must not pay it, only vmi_get_cr8 does. */
static void
t_cr8_is_read_on_its_own(void **state)
{
	struct vmi_regs r;
	struct vmi *v;
	uint64_t cr8 = 0;

	(void)state;
	v = open_on(FAKE_AMD, NULL, 0, 0);
	assert_int_equal(vmi_get_regs(v, 0, &r), 0);
	assert_int_equal(world.get_cr8_calls, 0);
	assert_int_equal(vmi_get_cr8(v, 1, &cr8), 0);
	assert_int_equal(cr8, 3);
	assert_int_equal(world.get_cr8_calls, 1);
	assert_int_equal(vmi_get_cr8(v, 7, &cr8), -EINVAL);
	assert_int_equal(vmi_get_regs(v, 7, &r), -EINVAL);
	vmi_close(v);
	/* A driver without it says so. */
	v = open_on(FAKE_READONLY, NULL, 0, 0);
	assert_int_equal(vmi_get_cr8(v, 0, &cr8), -EOPNOTSUPP);
	vmi_close(v);
}

static void
t_mem_access_restored(void **state)
{
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_INTEL, NULL, 0, 0);
	assert_int_equal(vmi_set_mem_access(v, 7, VMI_ACCESS_R), 0);
	assert_int_equal(vmi_set_mem_access(v, 9, VMI_ACCESS_R | VMI_ACCESS_X), 0);
	assert_int_equal(vmi_set_mem_access(v, 9, VMI_ACCESS_RWX), 0);
	assert_int_equal(world.access[7], VMI_ACCESS_R);
	vmi_close(v);
	assert_int_equal(world.access[7], VMI_ACCESS_RWX);
	assert_int_equal(world.access[9], VMI_ACCESS_RWX);
}

/* ---- teardown ------------------------------------------------------------------------ */

static void
t_teardown_order_and_restoration(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	static uint8_t snap[sizeof(world.mem)];
	struct vmi_regs before[FAKE_VCPUS];
	struct vmi_event ev;
	struct vmi *v;

	(void)state;
	memcpy(snap, world.mem, sizeof(snap));
	memcpy(before, world.regs, sizeof(before));
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_monitor(v, VMI_MON_SWBREAK, true), 0);
	assert_int_equal(vmi_patch(v, 0x6000, "\xcc", 1), 0);
	assert_int_equal(vmi_patch(v, 0x7000, "\xcc", 1), 0);
	assert_int_equal(vmi_hwbreak_set(v, 1, 3, 0x8000, VMI_HW_RW, 8), 0);
	assert_int_equal(vmi_step_arm(v, 2, true), 0);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_pause(v), 0);
	/* vCPU 0 held on our breakpoint; vCPU 3 on the guest's own int3
	 * (0x6500 holds 0xcc in guest memory) */
	world.mem[0x6500] = 0xcc;
	snap[0x6500] = 0xcc;
	ev = sync_event(VMI_EVENT_SWBREAK, 0, 0x6000);
	fake_push(&world, &ev);
	ev = sync_event(VMI_EVENT_SWBREAK, 3, 0x6500);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 2);
	/* vCPU 2's step arrives but is never dispatched. */
	ev = sync_event(VMI_EVENT_DEBUG, 2, 0x1003);
	fake_push(&world, &ev);
	world.log[0] = '\0';

	assert_int_equal(vmi_teardown(v), 0);

	/* Everything put back. */
	assert_memory_equal(world.mem, snap, sizeof(snap));
	for (unsigned i = 0; i < FAKE_VCPUS; i++) {
		assert_int_equal(world.regs[i].dr7, before[i].dr7);
		assert_memory_equal(world.regs[i].dr, before[i].dr,
		    sizeof(before[i].dr));
		assert_int_equal(world.regs[i].g.rflags & VMI_RFLAGS_TF, 0);
	}
	assert_int_equal(world.nresp, 3);
	assert_int_equal(world.pauses, 0);
	for (int m = 0; m < VMI_MON_COUNT; m++)
		assert_false(world.monitors[m]);
	assert_true(world.closed);
	/* Only the guest's own int3 went back to the guest. */
	assert_int_equal(world.reinjects, 1);
	for (unsigned i = 0; i < world.nresp; i++)
		assert_int_equal(!!(world.resp[i].r.flags & VMI_RSP_REINJECT),
		    world.resp[i].ev.vcpu == 3);

	/* The order: cleanup, pause, restore, answer, monitors off, unpause,
	 * close. */
	int cleanup = fake_log_at(&world, "cleanup");
	int pause = fake_log_at(&world, "pause");
	int regs = fake_log_at(&world, "regs:1");
	int respond = fake_log_at(&world, "respond:");
	int mon = fake_log_at(&world, "monitor_swbreak:0");
	int stop = fake_log_at(&world, "monitor_stop");
	int unpause = fake_log_at(&world, "unpause");
	int close = fake_log_at(&world, "close");
	assert_int_equal(cleanup, 0);
	assert_true(cleanup < pause && pause < regs && regs < respond);
	assert_true(respond < mon && mon < stop && stop < unpause);
	assert_true(unpause < close);
	assert_int_equal(rc.cleanups, 1);

	/* Idempotent: nothing more happens. */
	size_t len = strlen(world.log);
	assert_int_equal(vmi_teardown(v), 0);
	assert_int_equal(strlen(world.log), len);
	assert_true(vmi_torn_down(v));
	assert_int_equal(vmi_read_phys(v, 0, snap, 1, 0, NULL), -ESHUTDOWN);
	assert_int_equal(vmi_dispatch(v), -ESHUTDOWN);
	assert_int_equal(vmi_pause(v), -ESHUTDOWN);
	vmi_close(v);
	assert_int_equal(rc.cleanups, 1);
	vmi_close(NULL);
}

static void
t_domain_gone_is_one_event(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 0, 0x6000);
	struct vmi *v;
	uint8_t b;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_patch(v, 0x6000, "\xcc", 1), 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	world.state = VMI_DOM_GONE;
	assert_int_equal(vmi_timeout(v), 0);
	assert_int_equal(vmi_timeout(v), 0);
	assert_int_equal(rc.gone, 1);
	assert_int_equal(rc.timeouts, 2);
	assert_int_equal(vmi_domain_state(v), VMI_DOM_GONE);
	assert_int_equal(vmi_read_phys(v, 0, &b, 1, 0, NULL), -ESRCH);
	assert_int_equal(vmi_dispatch(v), 0);
	assert_null(vmi_pending(v, 0));
	world.log[0] = '\0';
	assert_int_equal(vmi_teardown(v), 0);
	/* Nothing is asked of a dead domain; the driver is still closed. */
	assert_string_equal(world.log, "cleanup;monitor_stop;close;");
	assert_int_equal(rc.gone, 1);
	vmi_close(v);
}

static void
t_driver_esrch_becomes_gone_event(void **state)
{
	struct rec rc = { .verdict = VMI_RESUME };
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	world.state = VMI_DOM_GONE;
	world.drain_error = -ESRCH;
	assert_int_equal(vmi_dispatch(v), -ESRCH);
	assert_int_equal(rc.gone, 1);
	struct vmi_regs r;
	assert_int_equal(vmi_get_regs(v, 0, &r), -ESRCH);
	assert_int_equal(vmi_pause(v), -ESRCH);
	assert_int_equal(rc.gone, 1);
	vmi_close(v);
}

static void
t_shutdown_event(void **state)
{
	struct rec rc = { .verdict = VMI_RESUME };
	struct vmi_event ev = { .kind = VMI_EVENT_DOMAIN_SHUTDOWN };
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	ev.u.shutdown.reason = 3;
	fake_push(&world, &ev);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 2);
	assert_int_equal(rc.shutdown, 1);
	assert_int_equal(rc.shutdown_reason, 3);
	assert_int_equal(vmi_domain_state(v), VMI_DOM_SHUTDOWN);
	vmi_close(v);
}

static struct vmi *signal_target;

static void
on_signal(int signo)
{
	vmi_interrupt(signal_target, signo);
}

static void
t_signal_driven_shutdown(void **state)
{
	struct rec rc = { .verdict = VMI_RESUME };
	int res = 0;

	(void)state;
	signal_target = open_on(FAKE_AMD, &rc, 0, 0);
	signal(SIGUSR1, on_signal);
	raise(SIGUSR1);
	signal(SIGUSR1, SIG_DFL);
	assert_true(vmi_interrupted(signal_target));
	assert_int_equal(vmi_dispatch(signal_target), 0);
	assert_int_equal(rc.interrupted, 1);
	assert_int_equal(rc.last_signo, SIGUSR1);
	assert_false(vmi_finished(signal_target, &res));
	rc.finish = true;
	vmi_dispatch(signal_target);
	assert_int_equal(rc.interrupted, 1);
	assert_true(vmi_finished(signal_target, &res));
	assert_int_equal(res, 42);
	vmi_close(signal_target);
	assert_int_equal(world.pauses, 0);

	/* Without a handler the session is finished at once. */
	teardown(NULL);
	setup(NULL);
	struct vmi *v = open_on(FAKE_AMD, NULL, 0, 0);
	vmi_interrupt(v, SIGTERM);
	assert_true(vmi_finished(v, &res));
	assert_int_equal(res, -EINTR);
	vmi_close(v);
}

static void
t_pause_is_counted(void **state)
{
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, NULL, 0, 0);
	assert_int_equal(vmi_unpause(v), -EINVAL);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_pause_count(v), 1);
	assert_int_equal(vmi_unpause(v), 0);
	assert_int_equal(vmi_unpause(v), -EINVAL);
	assert_int_equal(world.pauses, 0);
	vmi_close(v);
}

/* Registers of a vCPU that cannot run are read from Xen once; breakpoint
 * and TF writes take the light path; running again forgets them. */
static void
t_registers_cached_while_frozen(void **state)
{
	struct vmi_regs r;
	struct vmi_stats st;
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, NULL, 0, 0);
	assert_int_equal(vmi_get_regs(v, 0, &r), 0);
	assert_int_equal(vmi_get_regs(v, 0, &r), 0);
	assert_int_equal(world.get_regs_calls, 2);   /* running: no cache */
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_get_regs(v, 0, &r), 0);
	assert_int_equal(vmi_get_regs(v, 0, &r), 0);
	assert_int_equal(world.get_regs_calls, 3);
	/* Kept back while it cannot run (it could change again first). */
	assert_int_equal(vmi_hwbreak_set(v, 0, 1, 0x1000, VMI_HW_EXEC, 1), 0);
	assert_int_equal(fake_log_at(&world, "set_light_regs:0"), -1);
	assert_int_equal(vmi_get_regs(v, 0, &r), 0);
	assert_int_equal(r.dr[1], 0x1000);
	assert_int_equal(world.get_regs_calls, 3);
	/* A control register needs the full path; what was kept back goes
	 * first. */
	r.cr0 ^= 1ULL << 16;
	assert_int_equal(vmi_set_regs(v, 0, &r), 0);
	assert_true(fake_log_at(&world, "set_light_regs:0") >= 0);
	assert_true(fake_log_at(&world, "set_light_regs:0") <
	    fake_log_at(&world, "set_regs:0"));
	assert_int_equal(world.regs[0].cr0, r.cr0);
	assert_int_equal(world.regs[0].dr[1], 0x1000);
	assert_int_equal(vmi_unpause(v), 0);
	world.regs[0].g.rip = 0x4242;        /* it ran */
	assert_int_equal(vmi_get_regs(v, 0, &r), 0);
	assert_int_equal(r.g.rip, 0x4242);
	vmi_stats(v, &st);
	assert_int_equal(st.regs_light_writes, 1);
	assert_int_equal(st.regs_writes, 1);
	assert_int_equal(st.regs_cached, 5);
	vmi_close(v);
}

/* Parking a running vCPU: DR3 at its RIP and TF, one register write;
 * teardown takes both back. */
static void
t_park_is_one_write(void **state)
{
	struct vmi_stats st;
	struct vmi *v;

	(void)state;
	world.regs[1].g.rip = 0xffffffff80001234ULL;
	v = open_on(FAKE_AMD, NULL, 0, 0);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_park(v, 1, 3, NULL), 0);
	/* Written when it can run again. */
	vmi_stats(v, &st);
	assert_int_equal(st.regs_light_writes + st.regs_writes, 0);
	assert_int_equal(vmi_unpause(v), 0);
	vmi_stats(v, &st);
	assert_int_equal(st.regs_light_writes + st.regs_writes, 1);
	assert_int_equal(world.regs[1].dr[3], 0xffffffff80001234ULL);
	assert_int_equal(world.regs[1].dr7 & (3ULL << 6), 3ULL << 6);
	assert_int_equal((world.regs[1].dr7 >> 28) & 15, 0);  /* exec, len 1 */
	/* No trap re-injected to take first: DR3 alone, no TF to leak. */
	assert_false(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	assert_false(vmi_stepping(v, 1));
	assert_int_equal(vmi_teardown(v), 0);
	assert_int_equal(world.regs[1].dr[3], 0);
	assert_int_equal(world.regs[1].dr7, 0);
	assert_false(world.regs[1].g.rflags & VMI_RFLAGS_TF);
	vmi_close(v);
}

/* TF taken back from a vCPU that never trapped on it: its later trap
 * is the session's stale step, once. */
static void
t_stale_tf_trap_is_ours_once(void **state)
{
	struct rec rc = { .verdict = VMI_RESUME };
	struct vmi_event ev = sync_event(VMI_EVENT_DEBUG, 1, 0x6000);
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_step_arm(v, 1, true), 0);
	assert_int_equal(vmi_step_arm(v, 1, false), 0);
	assert_int_equal(vmi_unpause(v), 0);
	ev.regs.rflags |= VMI_RFLAGS_TF;
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STALE_STEP);
	assert_int_equal(vmi_event_ours(v, &rc.last), 1);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_UNKNOWN);
	/* In a kernel (upper half) the watch stays on: nested frames. */
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_step_arm(v, 1, true), 0);
	assert_int_equal(vmi_step_arm(v, 1, false), 0);
	assert_int_equal(vmi_unpause(v), 0);
	ev.regs.rip = 0xffffffff81000000ULL;
	for (int i = 0; i < 2; i++) {
		fake_push(&world, &ev);
		assert_int_equal(vmi_dispatch(v), 1);
		assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STALE_STEP);
	}
	vmi_close(v);
}

/* The registers vcpu will run with. The session keeps back the light
 * writes of a vCPU that cannot run until it can (vmi_respond,
 * vmi_unpause), so while it is held they are the session's to show. */
static struct vmi_regs
will_run_with(struct vmi *v, unsigned vcpu)
{
	struct vmi_regs r;

	assert_int_equal(vmi_get_regs(v, vcpu, &r), 0);
	return r;
}

/* vmi_step_guard_next: DR3 at the step's start with RF over its own
 * instruction; a hit there ends the step and marks TF copies stale; the
 * slot goes at the next event, hit or not. */
static void
t_step_guard(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 1, 0x4000);
	const uint64_t l3 = 1ULL << 6, rwlen3 = 0xfULL << 28;
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	vmi_step_guard_next(v, 1);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_true(r.regs.rflags & VMI_RFLAGS_TF);
	assert_true(r.regs.rflags & VMI_RFLAGS_RF);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_int_equal(world.regs[1].dr[3], 0x4000);
	assert_true(world.regs[1].dr7 & l3);
	assert_int_equal(world.regs[1].dr7 & rwlen3, 0);        /* execute */

	/* Back at 0x4000 before the step's trap: the step ends there. (The
	 * fake applies the response's RF; a CPU clears it after the first
	 * instruction, so no event carries it.) */
	world.regs[1].g.rflags &= ~VMI_RFLAGS_RF;
	ev = sync_event(VMI_EVENT_DEBUG, 1, 0x4000);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	assert_false(will_run_with(v, 1).dr7 & l3);
	/* The TF that went into an interrupt frame traps later, anywhere. */
	rc.verdict = VMI_RESUME;
	ev = sync_event(VMI_EVENT_DEBUG, 0, 0xffffffff81000000ULL);
	ev.regs.rflags |= VMI_RFLAGS_TF;
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STALE_STEP);
	rc.verdict = VMI_HOLD;

	/* Guarded again; this time the trap comes: the guard goes too. */
	vmi_step_guard_next(v, 1);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_true(world.regs[1].dr7 & l3);
	world.regs[1].g.rflags &= ~VMI_RFLAGS_RF;
	ev = sync_event(VMI_EVENT_DEBUG, 1, 0x4003);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	assert_false(will_run_with(v, 1).dr7 & l3);

	/* Unguarded unless asked again. */
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_false(r.regs.rflags & VMI_RFLAGS_RF);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_false(world.regs[1].dr7 & l3);

	/* A vCPU no event holds: through its registers, in one write. */
	assert_int_equal(vmi_pause(v), 0);
	vmi_step_guard_next(v, 3);
	assert_int_equal(vmi_step_arm(v, 3, true), 0);
	assert_int_equal(vmi_unpause(v), 0);
	assert_int_equal(world.regs[3].dr[3], world.regs[3].g.rip);
	assert_true(world.regs[3].dr7 & l3);
	assert_true(world.regs[3].g.rflags & VMI_RFLAGS_RF);
	vmi_close(v);
	/* Teardown gave the slot back. */
	assert_false(world.regs[3].dr7 & l3);
}

/* vmi_park's second address: a slot neither the session nor the guest
 * uses, in the same write; its hit is the session's; vmi_unpark gives
 * both back in one write. */
static void
t_park_also_and_unpark(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	const uint64_t also = 0xffffffff81000000ULL;
	struct vmi_response r;
	struct vmi_event ev;
	struct vmi *v;
	unsigned writes;

	(void)state;
	/* The guest's own DR0 (tiny's self-test) and DR2 are in use. */
	world.regs[2].dr7 = 0x411;
	world.regs[2].dr[0] = 0x1234;
	world.regs[2].dr[2] = 0x5678;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_park(v, 2, 3, &also), 0);
	assert_int_equal(vmi_unpause(v), 0);
	assert_int_equal(world.regs[2].dr[3], world.regs[2].g.rip);
	assert_int_equal(world.regs[2].dr[1], also);
	assert_true(world.regs[2].dr7 & (3u << 2));     /* slot 1 */
	assert_int_equal(world.regs[2].dr[0], 0x1234);
	assert_int_equal(world.regs[2].dr[2], 0x5678);

	ev = sync_event(VMI_EVENT_DEBUG, 2, also);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_HWBREAK);
	assert_int_equal(rc.last.u.debug.slot, 1);

	/* Held: both slots given back, and the hit's DR6 bit cleared by the
	 * answer, in the one write that goes before it runs. */
	writes = world.set_regs_calls;
	assert_int_equal(vmi_unpark(v, 2), 0);
	assert_int_equal(vmi_unpark(v, 2), 0);           /* nothing left */
	assert_int_equal(world.set_regs_calls, writes);
	vmi_response_init(&r, vmi_pending(v, 2));
	assert_int_equal(vmi_respond(v, 2, &r), 0);
	assert_int_equal(world.set_regs_calls, writes + 1);
	assert_int_equal(world.regs[2].dr7, 0x411);
	assert_int_equal(world.regs[2].dr[0], 0x1234);
	assert_int_equal(world.regs[2].dr[2], 0x5678);
	vmi_close(v);
}

static void
t_bad_vcpu_event_is_answered(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 0, 0x6000);
	struct vmi *v;

	(void)state;
	ev.vcpu = 99;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), -EPROTO);
	assert_int_equal(world.nresp, 1);
	assert_int_equal(rc.events, 0);
	vmi_close(v);
}

/* REVIEW-intel.md finding 6: whatever the session believes about MTF,
 * teardown sets it off on every vCPU (never a toggle), after the last
 * answer and before the monitors go off. */
static void
t_teardown_mtf_off_everywhere(void **state)
{
	struct vmi_event ev = sync_event(VMI_EVENT_SINGLESTEP, 1, 0x4001);
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi *v;
	char what[32];
	int answer, stop;

	(void)state;
	v = open_on(FAKE_INTEL, &rc, 0, 0);
	assert_int_equal(vmi_monitor(v, VMI_MON_MTF, true), 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_non_null(vmi_pending(v, 1));
	/* Armed behind the session's back (a toggle it took to go the other
	 * way): the session believes MTF is off everywhere. */
	world.mtf_armed[1] = true;
	world.mtf_armed[3] = true;
	assert_false(vmi_stepping(v, 1));
	world.log[0] = '\0';
	world.nresp = 0;
	vmi_close(v);
	for (unsigned i = 0; i < FAKE_VCPUS; i++)
		assert_false(world.mtf_armed[i]);
	assert_int_equal(world.nresp, 1);
	assert_false(world.resp[0].r.flags & VMI_RSP_TOGGLE_MTF);
	answer = fake_log_at(&world, "respond:1");
	stop = fake_log_at(&world, "monitor_mtf:0");
	assert_true(answer >= 0 && stop > answer);
	for (unsigned i = 0; i < FAKE_VCPUS; i++) {
		snprintf(what, sizeof(what), "mtf_arm:%u:0", i);
		assert_true(fake_log_at(&world, what) > answer);
		assert_true(fake_log_at(&world, what) < stop);
	}

	/* AMD has no MTF: nothing to switch off. */
	teardown(NULL);
	setup(NULL);
	v = open_on(FAKE_AMD, NULL, 0, 0);
	vmi_close(v);
	assert_int_equal(fake_log_at(&world, "mtf_arm"), -1);
}

/* REVIEW-intel.md finding 3: Xen emulates only a mem_access answer; an
 * EMULATE on anything else is refused and the vCPU stays held. */
static void
t_emulate_only_for_memaccess(void **state)
{
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 0, 0x5000);
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	v = open_on(FAKE_INTEL, &rc, 0, 0);
	fake_push(&world, &ev);
	ev = sync_event(VMI_EVENT_MEMACCESS, 2, 0x6000);
	ev.u.mem.gfn = 7;
	ev.u.mem.access = VMI_ACCESS_W;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(vmi_held_count(v), 2);

	vmi_response_init(&r, vmi_pending(v, 0));
	r.flags |= VMI_RSP_EMULATE;
	assert_int_equal(vmi_respond(v, 0, &r), -EINVAL);
	assert_non_null(vmi_pending(v, 0));
	assert_int_equal(world.nresp, 0);

	vmi_response_init(&r, vmi_pending(v, 2));
	r.flags |= VMI_RSP_EMULATE;
	assert_int_equal(vmi_respond(v, 2, &r), 0);
	assert_null(vmi_pending(v, 2));
	assert_int_equal(world.nresp, 1);
	assert_true(world.resp[0].r.flags & VMI_RSP_EMULATE);
	assert_int_equal(world.resp[0].ev.u.mem.gfn, 7);
	vmi_close(v);
}

/* ---- stepping over what Xen completes itself (REVIEW-intel.md, 2) ------ */

#define DR7_L3G3    (3ULL << 6)
#define DR7_RWLEN3  (15ULL << 28)
#define DR6_B3      (1ULL << 3)

/* The guest's own DR3 and DR7 (its DR0 armed), to be given back. */
static void
guest_dr3(unsigned vcpu)
{
	world.regs[vcpu].dr[3] = 0x5555;
	world.regs[vcpu].dr[0] = 0x7777;
	world.regs[vcpu].dr7 = 0x403;
}

/* A vCPU's registers as it will run with them: the session's while it
 * holds a write back (will_run_with), the fake's once the session is
 * closed. */
static const struct vmi_regs *
RUN(struct vmi *v, unsigned vcpu)
{
	static struct vmi_regs r[4];
	static unsigned next;
	struct vmi_regs *out = &r[next++ % 4];

	*out = will_run_with(v, vcpu);
	return out;
}

static void
assert_guest_dr3(const struct vmi_regs *r)
{
	assert_int_equal(r->dr[3], 0x5555);
	assert_int_equal(r->dr[0], 0x7777);
	assert_int_equal(r->dr7, 0x403);
}

static void
assert_step_dr3(const struct vmi_regs *r, uint64_t at)
{
	assert_int_equal(r->dr[3], at);
	assert_int_equal(r->dr7 & DR7_L3G3, DR7_L3G3);
	assert_int_equal(r->dr7 & DR7_RWLEN3, 0); /* exec, 1 */
}

/*
 * A held vCPU (AMD: TF) asked to step over cpuid gets DR3 at RIP+2, no
 * TF; the DR3 hit comes to the handler as a TF step would, DR3 and its
 * DR6 bit already given back.
 */
static void
t_step_over_cpuid_by_breakpoint(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 1, 0x4000);
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	memcpy(world.mem + 0x4000, "\x0f\xa2\x90", 3);
	guest_dr3(1);
	v = open_on(FAKE_AMD, &rc, 0, 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_false(r.flags & VMI_RSP_SET_REGS);
	assert_false(r.regs.rflags & VMI_RFLAGS_TF);
	assert_step_dr3(RUN(v, 1), 0x4002);
	assert_int_equal(RUN(v, 1)->dr[0], 0x7777);
	assert_int_equal(RUN(v, 1)->dr7 & 3, 3);      /* the guest's DR0 */
	assert_true(world.monitors[VMI_MON_DEBUG]);
	assert_true(vmi_stepping(v, 1));
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_false(RUN(v, 1)->g.rflags & VMI_RFLAGS_TF);

	/* Xen ran cpuid; the next fetch faults on DR3, B3 in DR6. */
	world.regs[1].g.rip = 0x4002;
	world.regs[1].dr6 = 0xffff0ff8;
	ev = sync_event(VMI_EVENT_DEBUG, 1, 0x4002);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.last.kind, VMI_EVENT_DEBUG);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	assert_int_equal(rc.last.u.debug.slot, -1);
	assert_int_equal(vmi_event_ours(v, &rc.last), 1);
	assert_guest_dr3(RUN(v, 1));
	assert_int_equal(RUN(v, 1)->dr6, 0xffff0ff0);
	assert_false(vmi_stepping(v, 1));

	/* Answered without a step: nothing of the session's is left, in the
	 * one write (slot and DR6 bit given back) that goes before it runs. */
	world.log[0] = '\0';
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_true(fake_log_at(&world, "regs:1") >= 0);
	assert_int_equal(strstr(strstr(world.log, "regs:1") + 1, "regs:1"), NULL);
	assert_guest_dr3(&world.regs[1]);
	assert_int_equal(world.regs[1].dr6, 0xffff0ff0);
	vmi_close(v);
	assert_guest_dr3(&world.regs[1]);
	assert_false(world.regs[1].g.rflags & VMI_RFLAGS_TF);
}

/* Not special: TF as before, and deciding costs no hypercall once the
 * code page is mapped. */
static void
t_step_common_path_costs_nothing_more(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 1, 0x4000);
	struct vmi_cache_stats cs;
	struct vmi_response r;
	struct vmi *v;
	unsigned regs_calls;

	(void)state;
	memcpy(world.mem + 0x4000, "\x48\x89\xc3\x90", 4);  /* mov rbx,rax */
	v = open_on(FAKE_AMD, &rc, 0, 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_true(RUN(v, 1)->g.rflags & VMI_RFLAGS_TF);

	ev = sync_event(VMI_EVENT_DEBUG, 1, 0x4003);
	ev.regs.rflags |= VMI_RFLAGS_TF;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	vmi_cache_stats(v, &cs);
	unsigned maps = cs.map_calls;
	regs_calls = world.get_regs_calls;
	world.log[0] = '\0';
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_true(r.regs.rflags & VMI_RFLAGS_TF);
	vmi_cache_stats(v, &cs);
	assert_int_equal(cs.map_calls, maps);
	assert_int_equal(world.get_regs_calls, regs_calls);
	assert_string_equal(world.log, "");
	assert_int_equal(RUN(v, 1)->dr7, 0);
	vmi_close(v);
}

/* Stepping onto and from the guest's own execution breakpoint (DR0 at
 * 0x4003, as the tiny guest keeps one on tiny_hw_target): the trap that
 * lands there is the step; the #DB at the RIP the step resumed from is
 * the breakpoint's fault, before anything ran, and goes to the guest. A
 * RIP that did not move with no guest breakpoint there is still a step
 * (a rep iteration). */
static void
t_guest_exec_breakpoint_while_stepping(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	memcpy(world.mem + 0x4000, "\x48\x89\xc3\x90\x90", 5);
	world.regs[1].dr[0] = 0x4003;
	world.regs[1].dr7 = 0x401;              /* L0, execution, 1 byte */
	v = open_on(FAKE_AMD, &rc, 0, 0);
	raise_event(v, VMI_EVENT_SWBREAK, 1, 0x4000);
	respond_step(v, 1);

	raise_event(v, VMI_EVENT_DEBUG, 1, 0x4003);         /* landed on it */
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	assert_int_equal(vmi_event_ours(v, &rc.last), 1);
	/* A guard asked for (gdb steps over a breakpoint it took out) is
	 * not taken there: its RF would keep the guest's DR0 from firing. */
	vmi_step_guard_next(v, 1);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_false(r.regs.rflags & VMI_RFLAGS_RF);
	assert_int_equal(RUN(v, 1)->dr7, 0x401);
	assert_int_equal(vmi_respond(v, 1, &r), 0);

	raise_event(v, VMI_EVENT_DEBUG, 1, 0x4003);         /* its fault */
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_UNKNOWN);
	assert_int_equal(vmi_event_ours(v, &rc.last), 0);
	/* Re-injected, still stepping: the step resumes from the same RIP,
	 * and the guest's handler finds its B0 in DR6 but not the BS our
	 * steps left there. */
	world.regs[1].dr6 = 0xffff4ff1;
	vmi_response_init(&r, vmi_pending(v, 1));
	r.flags |= VMI_RSP_REINJECT;
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_true(vmi_stepping(v, 1));
	assert_int_equal(RUN(v, 1)->dr6, 0xffff0ff1);

	raise_event(v, VMI_EVENT_DEBUG, 1, 0x4004);         /* the step */
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	respond_step(v, 1);
	/* No guest breakpoint at 0x4004: not moving is a step there. */
	raise_event(v, VMI_EVENT_DEBUG, 1, 0x4004);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	vmi_close(v);
}

/* 64-bit code: a REX before the opcode counts in the length; whether
 * 40-4F is REX at all depends on CS.L, read only in that case. */
static void
t_step_over_rex_rdtsc_needs_cs_l(void **state)
{
	const uint64_t va = 0xffff888000200000ULL;
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev;
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	build_tables(va);
	memcpy(world.mem + 40 * 4096 + 0x10, "\x48\x0f\x31\x90", 4);
	world.regs[2].seg[VMI_SEG_CS].ar = 0xa9b;    /* 64-bit code */
	v = open_on(FAKE_AMD, &rc, 0, 0);
	ev = sync_event(VMI_EVENT_SWBREAK, 2, va + 0x10);
	ev.cr0 = VMI_CR0_PG;
	ev.cr4 = VMI_CR4_PAE;
	ev.efer = VMI_EFER_LMA;
	ev.cr3 = 10ULL << 12;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	vmi_response_init(&r, vmi_pending(v, 2));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 2), &r, true), 0);
	assert_step_dr3(RUN(v, 2), va + 0x13);
	assert_false(r.regs.rflags & VMI_RFLAGS_TF);
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 2), &r, false), 0);
	assert_int_equal(RUN(v, 2)->dr7, 0);
	assert_false(vmi_stepping(v, 2));

	/* Compatibility mode: 48 is DEC EAX, an instruction of its own. */
	world.regs[2].seg[VMI_SEG_CS].ar = 0xc9b;
	vmi_response_init(&r, vmi_pending(v, 2));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 2), &r, true), 0);
	assert_true(r.regs.rflags & VMI_RFLAGS_TF);
	assert_int_equal(RUN(v, 2)->dr7, 0);
	vmi_close(v);
}

/* Intel: MTF is not used over in al,imm8 (and is switched off if it was
 * on); a paused vCPU gets the breakpoint through its registers. */
static void
t_step_over_io_with_mtf(void **state)
{
	struct vmi_event ev = sync_event(VMI_EVENT_SINGLESTEP, 1, 0x4000);
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	memcpy(world.mem + 0x1000, "\x90\x90\xf4\x90\x90", 5);  /* 0x1002: hlt */
	memcpy(world.mem + 0x4000, "\xe4\x60\x90", 3);
	v = open_on(FAKE_INTEL, &rc, 0, 0);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_step_arm(v, 1, true), 0);   /* nop: MTF */
	assert_int_equal(vmi_step_arm(v, 3, true), 0);
	assert_true(world.mtf_armed[1]);
	assert_true(world.mtf_armed[3]);
	assert_int_equal(RUN(v, 1)->dr7, 0);
	assert_int_equal(vmi_unpause(v), 0);
	/* vCPU 1 stepped onto in al,0x60. */
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(vmi_event_ours(v, vmi_pending(v, 1)), 1);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true), 0);
	assert_true(r.flags & VMI_RSP_TOGGLE_MTF);       /* off */
	assert_false(r.flags & VMI_RSP_SET_REGS);
	assert_step_dr3(RUN(v, 1), 0x4002);
	assert_true(world.monitors[VMI_MON_DEBUG]);
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_false(world.mtf_armed[1]);
	assert_true(vmi_stepping(v, 1));

	/* Paused vCPU 2 on hlt; then vCPU 3, MTF-stepping, onto rdtsc. */
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_step_arm(v, 2, true), 0);
	assert_false(world.mtf_armed[2]);
	assert_step_dr3(RUN(v, 2), 0x1003);
	assert_true(vmi_stepping(v, 2));
	assert_int_equal(vmi_step_arm(v, 2, false), 0);
	assert_int_equal(RUN(v, 2)->dr7, 0);
	assert_false(vmi_stepping(v, 2));
	memcpy(world.mem + 0x1003, "\x0f\x31", 2);
	assert_int_equal(vmi_step_arm(v, 3, true), 0);
	assert_false(world.mtf_armed[3]);
	assert_step_dr3(RUN(v, 3), 0x1005);
	vmi_close(v);
	for (unsigned i = 0; i < FAKE_VCPUS; i++) {
		assert_int_equal(world.regs[i].dr7, 0);
		assert_false(world.mtf_armed[i]);
	}
}

/* A step breakpoint that never fired (the vCPU stopped elsewhere first,
 * here in the handler of the interrupt that ended its hlt) is replaced by
 * the next step, and teardown restores what it left. */
static void
t_step_breakpoint_replaced_and_torn_down(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev;
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	memcpy(world.mem + 0x1000, "\xf4\x90", 2);          /* hlt */
	memcpy(world.mem + 0x8000, "\x0f\x01\xd9\x90", 4);  /* vmmcall */
	guest_dr3(0);
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_step_arm(v, 0, true), 0);
	assert_step_dr3(RUN(v, 0), 0x1001);
	assert_false(RUN(v, 0)->g.rflags & VMI_RFLAGS_TF);
	assert_int_equal(vmi_unpause(v), 0);

	assert_int_equal(vmi_patch(v, 0x7000, "\xcc", 1), 0);
	ev = sync_event(VMI_EVENT_SWBREAK, 0, 0x7000);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_true(vmi_stepping(v, 0));
	assert_int_equal(rc.events, 1);

	/* Stepping from the int3's address (say gdb took it out): TF. */
	vmi_response_init(&r, vmi_pending(v, 0));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 0), &r, true), 0);
	assert_guest_dr3(RUN(v, 0));
	assert_true(r.regs.rflags & VMI_RFLAGS_TF);
	assert_int_equal(vmi_respond(v, 0, &r), 0);

	/* Then over vmmcall; left armed for teardown. */
	ev = sync_event(VMI_EVENT_DEBUG, 0, 0x8000);
	ev.regs.rflags |= VMI_RFLAGS_TF;
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	vmi_response_init(&r, vmi_pending(v, 0));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 0), &r, true), 0);
	assert_true(r.flags & VMI_RSP_SET_REGS);
	assert_false(r.regs.rflags & VMI_RFLAGS_TF);
	assert_step_dr3(RUN(v, 0), 0x8003);
	assert_int_equal(vmi_respond(v, 0, &r), 0);
	assert_false(RUN(v, 0)->g.rflags & VMI_RFLAGS_TF);
	world.regs[0].dr6 = 0xffff0ff8;
	assert_int_equal(vmi_teardown(v), 0);
	assert_guest_dr3(&world.regs[0]);
	assert_false(world.regs[0].g.rflags & VMI_RFLAGS_TF);
	vmi_close(v);
}

/* The step's slot is the step's only while it is armed: someone else's
 * DR3 on that vCPU makes the step -EBUSY; parking takes it over. */
static void
t_step_slot_and_park(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev = sync_event(VMI_EVENT_SWBREAK, 1, 0x4000);
	struct vmi_response r;
	struct vmi_stats st;
	struct vmi *v;

	(void)state;
	memcpy(world.mem + 0x4000, "\x0f\xa2", 2);
	memcpy(world.mem + 0x1002, "\x0f\x32\x90", 3);      /* vCPU 2: rdmsr */
	memcpy(world.mem + 0x1010, "\x0f\x30\x90", 3);      /* vCPU 3: wrmsr */
	world.regs[3].g.rip = 0x1010;
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_hwbreak_set(v, 1, VMI_STEP_SLOT, 0x9000,
	    VMI_HW_EXEC, 1), 0);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_response_step(v, vmi_pending(v, 1), &r, true),
	    -EBUSY);
	assert_int_equal(RUN(v, 1)->dr[3], 0x9000);

	assert_int_equal(vmi_pause(v), 0);
	/* Parked with DR3 (as vmistub parks): DR3 at RIP, no TF over rdmsr,
	 * no second breakpoint. */
	assert_int_equal(vmi_park(v, 2, 3, NULL), 0);
	assert_int_equal(RUN(v, 2)->dr[3], 0x1002);
	assert_false(RUN(v, 2)->g.rflags & VMI_RFLAGS_TF);
	assert_false(vmi_stepping(v, 2));
	/* Parked with DR2: DR2 at RIP and DR3 after wrmsr, one write (kept
	 * back while the domain is paused, with the answer's DR6 below). */
	vmi_stats(v, &st);
	uint64_t writes = st.regs_writes + st.regs_light_writes;
	assert_int_equal(vmi_park(v, 3, 2, NULL), 0);
	vmi_stats(v, &st);
	assert_int_equal(st.regs_writes + st.regs_light_writes, writes);
	assert_int_equal(RUN(v, 3)->dr[2], 0x1010);
	assert_step_dr3(RUN(v, 3), 0x1012);
	assert_false(RUN(v, 3)->g.rflags & VMI_RFLAGS_TF);
	assert_true(vmi_stepping(v, 3));
	/* The park's own hit is a breakpoint; the one after wrmsr a step. */
	ev = sync_event(VMI_EVENT_DEBUG, 3, 0x1010);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_HWBREAK);
	assert_int_equal(rc.last.u.debug.slot, 2);
	vmi_response_init(&r, vmi_pending(v, 3));
	assert_int_equal(vmi_respond(v, 3, &r), 0);
	vmi_stats(v, &st);
	assert_int_equal(st.regs_writes + st.regs_light_writes, writes + 1);
	assert_int_equal(world.regs[3].dr[2], 0x1010);
	ev = sync_event(VMI_EVENT_DEBUG, 3, 0x1012);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_STEP);
	assert_int_equal(RUN(v, 3)->dr[3], 0);
	assert_int_equal(RUN(v, 3)->dr7 & DR7_L3G3, 0);

	/* A vCPU stepping over wrmsr by DR3, then parked with DR3: the park
	 * has the slot, its hit is a breakpoint, not a step. */
	vmi_response_init(&r, vmi_pending(v, 3));
	assert_int_equal(vmi_respond(v, 3, &r), 0);
	assert_int_equal(vmi_hwbreak_clear(v, 3, 2), 0);   /* unparked */
	assert_int_equal(RUN(v, 3)->dr7, 0);
	assert_int_equal(vmi_step_arm(v, 3, true), 0);
	assert_step_dr3(RUN(v, 3), 0x1012);
	assert_int_equal(vmi_park(v, 3, 3, NULL), 0);
	assert_int_equal(RUN(v, 3)->dr[3], 0x1010);
	assert_false(vmi_stepping(v, 3));
	ev = sync_event(VMI_EVENT_DEBUG, 3, 0x1010);
	fake_push(&world, &ev);
	vmi_dispatch(v);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_HWBREAK);
	assert_int_equal(rc.last.u.debug.slot, 3);
	vmi_close(v);
	for (unsigned i = 0; i < FAKE_VCPUS; i++) {
		assert_int_equal(world.regs[i].dr7, 0);
		assert_false(world.regs[i].g.rflags & VMI_RFLAGS_TF);
	}
}

/* vmi_hold_all over a vCPU sitting on out dx,al: held by the step
 * breakpoint's hit, unseen, like a TF hold. */
static void
t_hold_all_over_out(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi_event ev;
	struct vmi_response r;
	struct vmi *v;

	(void)state;
	memcpy(world.mem + 0x1001, "\xee\x90", 2);
	v = open_on(FAKE_AMD, &rc, 0, 0);
	assert_int_equal(vmi_hold_all(v), 0);
	assert_false(RUN(v, 1)->g.rflags & VMI_RFLAGS_TF);
	assert_step_dr3(RUN(v, 1), 0x1002);
	ev = sync_event(VMI_EVENT_DEBUG, 1, 0x1002);
	fake_push(&world, &ev);
	assert_int_equal(vmi_dispatch(v), 1);
	assert_int_equal(rc.events, 0);
	assert_non_null(vmi_pending(v, 1));
	assert_int_equal(RUN(v, 1)->dr7, 0);
	vmi_response_init(&r, vmi_pending(v, 1));
	assert_int_equal(vmi_respond(v, 1, &r), 0);
	assert_false(RUN(v, 1)->g.rflags & VMI_RFLAGS_TF);
	vmi_close(v);
}

/* Intel: a vCPU parked with DR3 (and MTF) and held by the DR3 trap when
 * the session ends: teardown's answer keeps MTF for mtf_all_off, which
 * must not leave the trap's B3 in the guest's DR6. */
static void
t_teardown_clears_dr6_of_a_parked_mtf_vcpu(void **state)
{
	struct rec rc = { .verdict = VMI_HOLD };
	struct vmi *v;

	(void)state;
	world.regs[1].dr6 = 0xffff0ff0;
	v = open_on(FAKE_INTEL, &rc, 0, 0);
	assert_int_equal(vmi_pause(v), 0);
	assert_int_equal(vmi_park(v, 1, 3, NULL), 0);
	assert_true(world.mtf_armed[1]);
	assert_int_equal(vmi_unpause(v), 0);
	world.regs[1].dr6 |= 1u << 3;           /* the CPU's B3 */
	raise_event(v, VMI_EVENT_DEBUG, 1, world.regs[1].g.rip);
	assert_int_equal(rc.last.u.debug.cause, VMI_DEBUG_HWBREAK);
	assert_int_equal(rc.last.u.debug.slot, 3);
	vmi_close(v);
	assert_int_equal(world.regs[1].dr6, 0xffff0ff0);
	assert_false(world.mtf_armed[1]);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(t_caps_follow_ops_table),
		T(t_phys_across_frames_and_chunks),
		T(t_cache_is_bounded_lru),
		T(t_phys_stops_at_hole),
		T(t_patches),
		T(t_virt_read_write_stop_cleanly),
		T(t_hold_and_respond),
		T(t_own_vs_guest_int3),
		T(t_default_without_handler),
		T(t_step_tf),
		T(t_step_mtf),
		T(t_hold_all_vcpus),
		T(t_teardown_writes_deferred_registers),
		T(t_hw_breakpoints),
		T(t_cr8_is_read_on_its_own),
		T(t_mem_access_restored),
		T(t_teardown_order_and_restoration),
		T(t_domain_gone_is_one_event),
		T(t_driver_esrch_becomes_gone_event),
		T(t_shutdown_event),
		T(t_signal_driven_shutdown),
		T(t_pause_is_counted),
		T(t_registers_cached_while_frozen),
		T(t_park_is_one_write),
		T(t_stale_tf_trap_is_ours_once),
		T(t_step_guard),
		T(t_park_also_and_unpark),
		T(t_bad_vcpu_event_is_answered),
		T(t_teardown_mtf_off_everywhere),
		T(t_emulate_only_for_memaccess),
		T(t_step_over_cpuid_by_breakpoint),
		T(t_step_common_path_costs_nothing_more),
		T(t_guest_exec_breakpoint_while_stepping),
		T(t_step_over_rex_rdtsc_needs_cs_l),
		T(t_step_over_io_with_mtf),
		T(t_step_breakpoint_replaced_and_torn_down),
		T(t_step_slot_and_park),
		T(t_hold_all_over_out),
		T(t_teardown_clears_dr6_of_a_parked_mtf_vcpu),
	};
#undef T
	return cmocka_run_group_tests_name("vmi_session", tests, NULL, NULL);
}
