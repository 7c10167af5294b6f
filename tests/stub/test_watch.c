/*
 * test_watch.c - stub/watch.c, the watchpoints served by p2m memory
 * access: which frames a range covers, the access a frame keeps under
 * several watchpoints, which access hits which watchpoint, and what
 * insert, removal and a lift ask of the session.
 *
 * watch.c is linked alone: the three calls it makes outside itself
 * (vmi_set_mem_access, stub_translate, stub_log) are defined here and
 * record what they were asked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stub.h"

#define PAGE 4096u
#define FRAMES 64
/* The fake guest maps va VA0 + n pages to frame GFN0 + 2n: contiguous
 * addresses, scattered frames. */
#define VA0 UINT64_C(0xffffffff80000000)
#define GFN0 0x100u
#define RX (VMI_ACCESS_R | VMI_ACCESS_X)

static unsigned access_of[FRAMES + GFN0 * 2];
static unsigned set_calls;
static int fail_gfn = -1;

int
vmi_set_mem_access(struct vmi *v, uint64_t gfn, unsigned access)
{
	(void)v;
	set_calls++;
	if ((int)gfn == fail_gfn)
		return -EINVAL;
	access_of[gfn] = access;
	return 0;
}

int
stub_translate(struct stub *s, unsigned vcpu, uint64_t va, uint64_t *gpa)
{
	(void)s;
	(void)vcpu;
	if (va < VA0 || va >= VA0 + FRAMES / 2 * PAGE)
		return -EFAULT;
	*gpa = (GFN0 + 2 * ((va - VA0) / PAGE)) * PAGE + va % PAGE;
	return 0;
}

enum stub_log_level stub_log_level = STUB_LOG_ERROR;

void
stub_log(enum stub_log_level lvl, const char *fmt, ...)
{
	(void)lvl;
	(void)fmt;
}

static struct stub st;

static int
setup(void **state)
{
	(void)state;
	memset(&st, 0, sizeof(st));
	for (size_t i = 0; i < sizeof(access_of) / sizeof(access_of[0]); i++)
		access_of[i] = VMI_ACCESS_RWX;
	set_calls = 0;
	fail_gfn = -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	stub_watch_forget(&st);
	return 0;
}

static struct stub_bp *
add(enum rsp_bp_type t, uint64_t addr, unsigned len)
{
	for (unsigned i = 0; i < STUB_MAX_BPS; i++) {
		struct stub_bp *b = &st.bps[i];

		if (b->used)
			continue;
		*b = (struct stub_bp){ .type = t, .addr = addr, .len = len,
		    .slot = -1 };
		assert_int_equal(stub_watch_insert(&st, b), 0);
		assert_true(b->used);
		return b;
	}
	fail();
	return NULL;
}

static struct vmi_event
access_ev(uint64_t gfn, unsigned offset, uint64_t gla, bool gla_valid,
    unsigned kind)
{
	struct vmi_event ev = { .kind = VMI_EVENT_MEMACCESS, .sync = true };

	ev.u.mem.gfn = gfn;
	ev.u.mem.offset = offset;
	ev.u.mem.gla = gla;
	ev.u.mem.gla_valid = gla_valid;
	ev.u.mem.access = kind;
	return ev;
}

static const struct stub_bp *
hit(const struct vmi_event *ev)
{
	return stub_watch_hit(st.bps, STUB_MAX_BPS, ev);
}

static void
t_fits_debug_register(void **state)
{
	(void)state;
	assert_true(stub_watch_fits_dr(0x1000, 1));
	assert_true(stub_watch_fits_dr(0x1001, 1));
	assert_true(stub_watch_fits_dr(0x1002, 2));
	assert_true(stub_watch_fits_dr(0x1004, 4));
	assert_true(stub_watch_fits_dr(0x1008, 8));
	assert_false(stub_watch_fits_dr(0x1001, 2));
	assert_false(stub_watch_fits_dr(0x1004, 8));
	assert_false(stub_watch_fits_dr(0x1000, 3));
	assert_false(stub_watch_fits_dr(0x1000, 16));
	assert_false(stub_watch_fits_dr(0x1000, 0));
}

static void
t_frames_of_a_range(void **state)
{
	(void)state;
	assert_int_equal(stub_watch_nframes(0x1000, 0), 0);
	assert_int_equal(stub_watch_nframes(0x1000, 1), 1);
	assert_int_equal(stub_watch_nframes(0x1000, PAGE), 1);
	assert_int_equal(stub_watch_nframes(0x1ff8, 8), 1);
	assert_int_equal(stub_watch_nframes(0x1ff9, 8), 2);
	assert_int_equal(stub_watch_nframes(0x1800, 2 * PAGE), 3);
	assert_int_equal(stub_watch_nframes(UINT64_MAX - 7, 8), 1);
}

/* A write watchpoint takes W, a read or access one R and W (no EPT entry
 * is writable without being readable); X stays; the frame's access is
 * what all of them leave it, and rwx when the last one goes. */
static void
t_frame_access_is_the_intersection(void **state)
{
	struct stub_bp *w, *r, *a;
	uint64_t gfn = GFN0 + 2 * 3;

	(void)state;
	w = add(RSP_BP_WRITE_WATCH, VA0 + 3 * PAGE + 0x10, 4);
	assert_int_equal(access_of[gfn], RX);
	assert_int_equal(stub_watch_frame_access(st.bps, STUB_MAX_BPS, gfn),
	    RX);
	r = add(RSP_BP_READ_WATCH, VA0 + 3 * PAGE + 0x800, 16);
	assert_int_equal(access_of[gfn], VMI_ACCESS_X);
	a = add(RSP_BP_ACCESS_WATCH, VA0 + 3 * PAGE + 0x900, 1);
	assert_int_equal(access_of[gfn], VMI_ACCESS_X);

	assert_int_equal(stub_watch_remove(&st, r), 0);
	assert_int_equal(access_of[gfn], VMI_ACCESS_X);     /* a still there */
	assert_int_equal(stub_watch_remove(&st, a), 0);
	assert_int_equal(access_of[gfn], RX);
	assert_int_equal(stub_watch_remove(&st, w), 0);
	assert_int_equal(access_of[gfn], VMI_ACCESS_RWX);
	assert_null(w->gfns);
	assert_int_equal(stub_watch_frame_access(st.bps, STUB_MAX_BPS, gfn),
	    VMI_ACCESS_RWX);
}

/* The frames come from the page walk at insert (here every second frame)
 * and a frame shared by two watchpoints keeps the stricter access. */
static void
t_range_across_pages_translated_at_insert(void **state)
{
	struct stub_bp *big, *w;
	unsigned nw, nf;

	(void)state;
	big = add(RSP_BP_ACCESS_WATCH, VA0 + PAGE - 8, PAGE + 16);
	assert_int_equal(big->nframes, 3);
	assert_int_equal(big->gfns[0], GFN0);
	assert_int_equal(big->gfns[1], GFN0 + 2);
	assert_int_equal(big->gfns[2], GFN0 + 4);
	assert_int_equal(access_of[GFN0 + 1], VMI_ACCESS_RWX);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(access_of[GFN0 + 2 * k], VMI_ACCESS_X);
	w = add(RSP_BP_WRITE_WATCH, VA0 + 2 * PAGE + 0x100, 8);
	stub_watch_count(&st, &nw, &nf);
	assert_int_equal(nw, 2);
	assert_int_equal(nf, 3);
	assert_int_equal(stub_watch_remove(&st, big), 0);
	assert_int_equal(access_of[GFN0], VMI_ACCESS_RWX);
	assert_int_equal(access_of[GFN0 + 2], VMI_ACCESS_RWX);
	assert_int_equal(access_of[GFN0 + 4], RX);
	assert_int_equal(stub_watch_remove(&st, w), 0);
	assert_int_equal(access_of[GFN0 + 4], VMI_ACCESS_RWX);
}

/* With "monitor phys on" the addresses are frames already. */
static void
t_physical_watch(void **state)
{
	struct stub_bp *b;
	struct vmi_event ev;

	(void)state;
	st.phys = true;
	b = add(RSP_BP_WRITE_WATCH, 7 * PAGE + 0xff0, 32);
	assert_true(b->phys);
	assert_int_equal(b->nframes, 2);
	assert_int_equal(b->gfns[0], 7);
	assert_int_equal(b->gfns[1], 8);
	/* The linear address means nothing to a physical watchpoint: the
	 * frame's offset decides (frame 8 holds its last 16 bytes). */
	ev = access_ev(8, 0xf, 0xdead000, true, VMI_ACCESS_W);
	assert_ptr_equal(hit(&ev), b);
	ev = access_ev(8, 0x10, 7 * PAGE + 0xff0, true, VMI_ACCESS_W);
	assert_null(hit(&ev));
}

/* Nothing is left half done: an address that does not translate or a
 * frame the hypervisor refuses fails the insert with every frame as it
 * was. */
static void
t_failed_insert_leaves_nothing(void **state)
{
	struct stub_bp *b = &st.bps[0];

	(void)state;
	*b = (struct stub_bp){ .type = RSP_BP_WRITE_WATCH,
	    .addr = VA0 + FRAMES / 2 * PAGE - 8, .len = 16, .slot = -1 };
	assert_int_equal(stub_watch_insert(&st, b), -EFAULT);
	assert_false(b->used);
	assert_null(b->gfns);
	assert_int_equal(set_calls, 0);

	*b = (struct stub_bp){ .type = RSP_BP_WRITE_WATCH,
	    .addr = VA0 + PAGE - 8, .len = 16, .slot = -1 };
	fail_gfn = GFN0 + 2;
	assert_int_equal(stub_watch_insert(&st, b), -EINVAL);
	assert_false(b->used);
	assert_null(b->gfns);
	assert_int_equal(access_of[GFN0], VMI_ACCESS_RWX);

	*b = (struct stub_bp){ .type = RSP_BP_WRITE_WATCH, .addr = VA0,
	    .len = (STUB_WATCH_MAX_FRAMES + 1) * PAGE, .slot = -1 };
	assert_int_equal(stub_watch_insert(&st, b), -E2BIG);
	*b = (struct stub_bp){ .type = RSP_BP_WRITE_WATCH, .addr = VA0,
	    .len = 0, .slot = -1 };
	assert_int_equal(stub_watch_insert(&st, b), -EINVAL);
}

/* Which access hits: the kind the type reports, on a frame of the
 * watchpoint, overlapping its range; an access of unknown size is taken
 * as 8 bytes from where it starts. */
static void
t_hit_by_kind_and_place(void **state)
{
	struct stub_bp *w, *r;
	struct vmi_event ev;
	uint64_t gfn = GFN0 + 2;

	(void)state;
	w = add(RSP_BP_WRITE_WATCH, VA0 + PAGE + 0x100, 16);
	r = add(RSP_BP_READ_WATCH, VA0 + PAGE + 0x200, 4);

	ev = access_ev(gfn, 0x10c, VA0 + PAGE + 0x10c, true, VMI_ACCESS_W);
	assert_ptr_equal(hit(&ev), w);
	ev.u.mem.access = VMI_ACCESS_R;         /* a read of a write watch */
	assert_null(hit(&ev));
	ev.u.mem.access = VMI_ACCESS_R | VMI_ACCESS_W;   /* read-modify-write */
	assert_ptr_equal(hit(&ev), w);

	ev = access_ev(gfn, 0x200, VA0 + PAGE + 0x200, true, VMI_ACCESS_R);
	assert_ptr_equal(hit(&ev), r);
	ev.u.mem.access = VMI_ACCESS_W;         /* a write of a read watch */
	assert_null(hit(&ev));

	/* Same frame, elsewhere: not a hit (Xen emulates it). */
	ev = access_ev(gfn, 0x400, VA0 + PAGE + 0x400, true, VMI_ACCESS_W);
	assert_null(hit(&ev));
	/* Up to 7 bytes before it may reach into it; 8 may not. */
	ev = access_ev(gfn, 0xf9, VA0 + PAGE + 0xf9, true, VMI_ACCESS_W);
	assert_ptr_equal(hit(&ev), w);
	ev = access_ev(gfn, 0xf8, VA0 + PAGE + 0xf8, true, VMI_ACCESS_W);
	assert_null(hit(&ev));
	ev = access_ev(gfn, 0x10f, VA0 + PAGE + 0x10f, true, VMI_ACCESS_W);
	assert_ptr_equal(hit(&ev), w);
	ev = access_ev(gfn, 0x110, VA0 + PAGE + 0x110, true, VMI_ACCESS_W);
	assert_null(hit(&ev));

	/* The linear address, where Xen has it, is what a debug register
	 * would compare: the frame's alias elsewhere is not the variable. */
	ev = access_ev(gfn, 0x104, 0x400000 + 0x104, true, VMI_ACCESS_W);
	assert_null(hit(&ev));
	/* Without it, the frame's offset. */
	ev.u.mem.gla_valid = false;
	assert_ptr_equal(hit(&ev), w);
	/* Another frame with the same offset is not the watchpoint's. */
	ev.u.mem.gfn = gfn + 1;
	assert_null(hit(&ev));
}

/* A range across a page boundary: each frame's own bytes. */
static void
t_hit_across_a_page_boundary(void **state)
{
	struct stub_bp *b;
	struct vmi_event ev;

	(void)state;
	b = add(RSP_BP_ACCESS_WATCH, VA0 + 2 * PAGE - 4, 8);
	ev = access_ev(GFN0 + 4, 3, 0, false, VMI_ACCESS_R);
	assert_ptr_equal(hit(&ev), b);
	ev = access_ev(GFN0 + 4, 4, 0, false, VMI_ACCESS_R);
	assert_null(hit(&ev));
	ev = access_ev(GFN0 + 2, PAGE - 4, 0, false, VMI_ACCESS_W);
	assert_ptr_equal(hit(&ev), b);
	ev = access_ev(GFN0 + 2, PAGE - 12, 0, false, VMI_ACCESS_W);
	assert_null(hit(&ev));
}

/* A range at the very top of the address space does not wrap into a hit
 * at the bottom. */
static void
t_hit_at_the_top_of_the_address_space(void **state)
{
	struct stub_bp *b = &st.bps[0];
	uint64_t top = UINT64_MAX - 15;
	struct vmi_event ev;

	(void)state;
	*b = (struct stub_bp){ .type = RSP_BP_WRITE_WATCH, .addr = top,
	    .len = 16, .slot = -1, .used = true, .nframes = 1,
	    .gfns = calloc(1, sizeof(uint64_t)) };
	b->gfns[0] = 9;
	ev = access_ev(9, PAGE - 1, UINT64_MAX, true, VMI_ACCESS_W);
	assert_ptr_equal(hit(&ev), b);
	ev = access_ev(9, 0, 0, true, VMI_ACCESS_W);
	assert_null(hit(&ev));
	ev = access_ev(9, 0, top - 8, true, VMI_ACCESS_W);
	assert_null(hit(&ev));
}

/* An access a debug-register watchpoint may cover must not be emulated
 * (Xen's emulation raises no data breakpoint): of a kind it reports,
 * overlapping it, or with no linear address to tell. */
static void
t_debug_register_watch_may_cover(void **state)
{
	struct stub_bp *b = &st.bps[3];
	struct vmi_event ev;

	(void)state;
	*b = (struct stub_bp){ .used = true, .type = RSP_BP_WRITE_WATCH,
	    .addr = VA0 + 0x100, .len = 4, .slot = 1 };
	ev = access_ev(GFN0, 0x102, VA0 + 0x102, true, VMI_ACCESS_W);
	assert_true(stub_watch_dr_overlap(st.bps, STUB_MAX_BPS, &ev));
	assert_null(hit(&ev));                  /* not a memory-access one */
	ev.u.mem.access = VMI_ACCESS_R;
	assert_false(stub_watch_dr_overlap(st.bps, STUB_MAX_BPS, &ev));
	ev = access_ev(GFN0, 0xf8, VA0 + 0xf8, true, VMI_ACCESS_W);
	assert_false(stub_watch_dr_overlap(st.bps, STUB_MAX_BPS, &ev));
	ev = access_ev(GFN0, 0x400, VA0 + 0x400, true, VMI_ACCESS_W);
	assert_false(stub_watch_dr_overlap(st.bps, STUB_MAX_BPS, &ev));
	ev.u.mem.gla_valid = false;
	assert_true(stub_watch_dr_overlap(st.bps, STUB_MAX_BPS, &ev));
	b->slot = -1;       /* a software breakpoint's or a memory one's */
	assert_false(stub_watch_dr_overlap(st.bps, STUB_MAX_BPS, &ev));
}

/* A lift makes the frames rwx for one vCPU's step and gives them back
 * what the watchpoints need then; another vCPU cannot lift meanwhile. */
static void
t_lift_and_restore(void **state)
{
	(void)state;
	add(RSP_BP_WRITE_WATCH, VA0 + 0x10, 4);
	add(RSP_BP_READ_WATCH, VA0 + PAGE + 0x10, 4);
	assert_int_equal(stub_watch_lift(&st, 1, GFN0), 0);
	assert_int_equal(stub_watch_lift(&st, 1, GFN0 + 2), 0);
	assert_int_equal(stub_watch_lift(&st, 1, GFN0 + 2), 0);
	assert_int_equal(st.lift.n, 2);
	assert_int_equal(access_of[GFN0], VMI_ACCESS_RWX);
	assert_int_equal(access_of[GFN0 + 2], VMI_ACCESS_RWX);
	assert_int_equal(stub_watch_lift(&st, 0, GFN0), -EBUSY);
	assert_int_equal(stub_watch_lift(&st, 1, 40), 0);
	assert_int_equal(stub_watch_lift(&st, 1, 41), 0);
	assert_int_equal(stub_watch_lift(&st, 1, 42), -ENOSPC);
	stub_watch_lift_end(&st);
	assert_int_equal(st.lift.n, 0);
	assert_int_equal(access_of[GFN0], RX);
	assert_int_equal(access_of[GFN0 + 2], VMI_ACCESS_X);
	assert_int_equal(access_of[40], VMI_ACCESS_RWX);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(t_fits_debug_register),
		T(t_frames_of_a_range),
		T(t_frame_access_is_the_intersection),
		T(t_range_across_pages_translated_at_insert),
		T(t_physical_watch),
		T(t_failed_insert_leaves_nothing),
		T(t_hit_by_kind_and_place),
		T(t_hit_across_a_page_boundary),
		T(t_hit_at_the_top_of_the_address_space),
		T(t_debug_register_watch_may_cover),
		T(t_lift_and_restore),
	};
#undef T
	return cmocka_run_group_tests_name("stub_watch", tests, NULL, NULL);
}
