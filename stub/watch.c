/*
 * watch.c - watchpoints served by p2m memory access (Intel EPT, where Xen
 * offers it: VMI_CAP_MEMACCESS), for what the debug registers cannot
 * take: a fourth watchpoint, or a range other than 1, 2, 4 or 8 aligned
 * bytes (stub_bp_insert in exec.c decides; the event flow is there too).
 *
 * A watchpoint restricts every guest frame its range covers: the frames
 * its addresses mapped to when gdb inserted it, through the selected
 * vCPU's page tables (or the addresses themselves with "monitor phys
 * on"). A range the guest maps elsewhere later is not followed; the
 * frames mapped at insert time stay watched.
 *
 * Several watchpoints may share a frame, so a frame's access is what all
 * of them leave it, worked out again at every insert and removal and rwx
 * once the last one goes: a write watchpoint takes W away, a read or
 * access watchpoint R and W, because an EPT entry that allows writes but
 * not reads is a misconfiguration (SDM vol. 3C, "EPT Misconfigurations").
 * X always stays: the frame may hold code. A read watchpoint therefore
 * makes its frames execute-only, which needs the CPU's EPT execute-only
 * support (Xen 4.17 sets it without asking).
 *
 * The lift: while one vCPU steps over an access that faulted (a hit, to
 * be reported once the access is done, or gdb's own step), the frames it
 * faulted on are rwx, and stub_watch_lift_end() gives them back what the
 * watchpoints need.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"

#define PAGE 4096u

/* Xen reports where a faulting access starts, never its size
 * (vm_event_mem_access_t: gfn, offset, gla). It is taken as this many
 * bytes, a general register's width: a narrower access up to 7 bytes
 * before a watchpoint is reported too (gdb drops a "watch" hit whose
 * value did not change), and a wider one (SSE, AVX, string instructions)
 * that starts more than 7 bytes before it is missed. */
#define ACCESS_SPAN 8u

static bool
is_watch(enum rsp_bp_type t)
{
	return t == RSP_BP_WRITE_WATCH || t == RSP_BP_READ_WATCH ||
	    t == RSP_BP_ACCESS_WATCH;
}

bool
stub_watch_fits_dr(uint64_t addr, unsigned len)
{
	return (len == 1 || len == 2 || len == 4 || len == 8) &&
	    (addr & (len - 1)) == 0;
}

bool
stub_watch_by_mem(const struct stub_bp *b)
{
	return b->used && is_watch(b->type) && b->nframes > 0;
}

/* The accesses a watchpoint of type t reports (VMI_ACCESS_*). */
static unsigned
reports(enum rsp_bp_type t)
{
	switch (t) {
	case RSP_BP_WRITE_WATCH:
		return VMI_ACCESS_W;
	case RSP_BP_READ_WATCH:
		return VMI_ACCESS_R;
	case RSP_BP_ACCESS_WATCH:
		return VMI_ACCESS_R | VMI_ACCESS_W;
	default:
		return 0;
	}
}

/* What a watchpoint of type t takes away from its frames. */
static unsigned
denies(enum rsp_bp_type t)
{
	return t == RSP_BP_WRITE_WATCH ? VMI_ACCESS_W :
	    VMI_ACCESS_R | VMI_ACCESS_W;
}

unsigned
stub_watch_nframes(uint64_t addr, unsigned len)
{
	return len == 0 ? 0 : (unsigned)(((addr % PAGE) + len - 1) / PAGE + 1);
}

/* The bytes [*lo, *hi) of frame k that b covers, as offsets in it. */
static void
piece(const struct stub_bp *b, unsigned k, unsigned *lo, unsigned *hi)
{
	*lo = k == 0 ? (unsigned)(b->addr % PAGE) : 0;
	*hi = k + 1 == b->nframes ?
	    (unsigned)((b->addr + b->len - 1) % PAGE) + 1 : PAGE;
}

static int
frame_index(const struct stub_bp *b, uint64_t gfn)
{
	for (unsigned k = 0; k < b->nframes; k++)
		if (b->gfns[k] == gfn)
			return (int)k;
	return -1;
}

unsigned
stub_watch_frame_access(const struct stub_bp *bps, size_t n, uint64_t gfn)
{
	unsigned access = VMI_ACCESS_RWX;

	for (size_t i = 0; i < n; i++)
		if (stub_watch_by_mem(&bps[i]) && frame_index(&bps[i], gfn) >= 0)
			access &= ~denies(bps[i].type);
	return access;
}

/* [a, a + alen) and [b, b + blen) share a byte; both lengths are not 0,
 * and either may wrap around the top of the address space. */
static bool
overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a - b < blen || b - a < alen;
}

/*
 * The watchpoint a memory access event hits, or NULL: one whose type
 * reports the access's kind, on one of its frames, overlapping it. Where
 * Xen gives the linear address and the watchpoint has one, the access is
 * compared with gdb's range, as a debug register would compare it (an
 * alias of the frame at another address is not the watched variable);
 * otherwise its offset with the watched bytes of the frame.
 */
const struct stub_bp *
stub_watch_hit(const struct stub_bp *bps, size_t n, const struct vmi_event *ev)
{
	for (size_t i = 0; i < n; i++) {
		const struct stub_bp *b = &bps[i];
		unsigned lo, hi;
		int k;

		if (!stub_watch_by_mem(b) || !(reports(b->type) & ev->u.mem.access))
			continue;
		k = frame_index(b, ev->u.mem.gfn);
		if (k < 0)
			continue;
		if (ev->u.mem.gla_valid && !b->phys) {
			if (overlap(ev->u.mem.gla, ACCESS_SPAN, b->addr, b->len))
				return b;
			continue;
		}
		piece(b, (unsigned)k, &lo, &hi);
		if (overlap(ev->u.mem.offset, ACCESS_SPAN, lo, hi - lo))
			return b;
	}
	return NULL;
}

/*
 * Whether a debug-register watchpoint may cover a memory access event's
 * access: of a kind it reports, overlapping it, or of unknown place (no
 * linear address). Such an access must run natively: Xen's emulation of
 * it would raise no data breakpoint.
 */
bool
stub_watch_dr_overlap(const struct stub_bp *bps, size_t n,
    const struct vmi_event *ev)
{
	for (size_t i = 0; i < n; i++) {
		const struct stub_bp *b = &bps[i];

		if (!b->used || b->slot < 0 ||
		    !(reports(b->type) & ev->u.mem.access))
			continue;
		if (!ev->u.mem.gla_valid ||
		    overlap(ev->u.mem.gla, ACCESS_SPAN, b->addr, b->len))
			return true;
	}
	return false;
}

/* ---- with a session ------------------------------------------------------- */

static int
apply(struct stub *s, uint64_t gfn)
{
	return vmi_set_mem_access(s->v, gfn,
	    stub_watch_frame_access(s->bps, STUB_MAX_BPS, gfn));
}

static void
drop_frames(struct stub_bp *b)
{
	free(b->gfns);
	b->gfns = NULL;
	b->nframes = 0;
}

/* Give every frame of b what the watchpoints in use need now. */
static int
apply_all(struct stub *s, const struct stub_bp *b)
{
	int first = 0;

	for (unsigned k = 0; k < b->nframes; k++) {
		int r = apply(s, b->gfns[k]);

		if (r < 0 && first == 0)
			first = r;
	}
	return first;
}

/* b: a Z2-Z4 with type, addr and len; in use once this returns 0. */
int
stub_watch_insert(struct stub *s, struct stub_bp *b)
{
	unsigned n = stub_watch_nframes(b->addr, b->len);
	uint64_t page = b->addr & ~(uint64_t)(PAGE - 1), gpa;
	int r = 0;

	if (n == 0)
		return -EINVAL;
	if (n > STUB_WATCH_MAX_FRAMES)
		return -E2BIG;
	b->gfns = calloc(n, sizeof(*b->gfns));
	if (b->gfns == NULL)
		return -ENOMEM;
	b->phys = s->phys;
	for (unsigned k = 0; k < n && r == 0; k++) {
		if (s->phys)
			gpa = page + (uint64_t)k * PAGE;
		else
			r = stub_translate(s, s->gvcpu, page + (uint64_t)k * PAGE,
			    &gpa);
		b->gfns[k] = gpa / PAGE;
	}
	if (r < 0) {
		drop_frames(b);
		return r;
	}
	b->nframes = n;
	b->used = true;
	r = apply_all(s, b);
	if (r < 0) {
		b->used = false;
		apply_all(s, b);
		drop_frames(b);
	}
	return r;
}

int
stub_watch_remove(struct stub *s, struct stub_bp *b)
{
	int r;

	b->used = false;
	r = apply_all(s, b);
	drop_frames(b);
	return r;
}

/* The session is gone or going (detach): its teardown gives every frame
 * back rwx; the stub forgets what it had. */
void
stub_watch_forget(struct stub *s)
{
	for (unsigned i = 0; i < STUB_MAX_BPS; i++)
		drop_frames(&s->bps[i]);
	memset(&s->lift, 0, sizeof(s->lift));
}

int
stub_watch_lift(struct stub *s, unsigned vcpu, uint64_t gfn)
{
	struct stub_lift *l = &s->lift;
	int r;

	if (l->n > 0 && l->vcpu != vcpu)
		return -EBUSY;
	for (unsigned i = 0; i < l->n; i++)
		if (l->gfns[i] == gfn)
			return 0;
	if (l->n == STUB_LIFT_FRAMES)
		return -ENOSPC;
	r = vmi_set_mem_access(s->v, gfn, VMI_ACCESS_RWX);
	if (r == 0) {
		l->vcpu = vcpu;
		l->gfns[l->n++] = gfn;
	}
	return r;
}

void
stub_watch_lift_end(struct stub *s)
{
	struct stub_lift *l = &s->lift;

	for (unsigned i = 0; i < l->n; i++) {
		int r = apply(s, l->gfns[i]);

		if (r < 0)
			log_warn("cannot restrict frame %#llx again: %s",
			    (unsigned long long)l->gfns[i], strerror(-r));
	}
	memset(l, 0, sizeof(*l));
}

void
stub_watch_count(const struct stub *s, unsigned *watches, unsigned *frames)
{
	*watches = *frames = 0;
	for (unsigned i = 0; i < STUB_MAX_BPS; i++) {
		const struct stub_bp *b = &s->bps[i];

		if (!stub_watch_by_mem(b))
			continue;
		(*watches)++;
		/* A frame counts once, with the first watchpoint that has it. */
		for (unsigned k = 0; k < b->nframes; k++) {
			bool seen = false;

			for (unsigned j = 0; j < i && !seen; j++)
				seen = stub_watch_by_mem(&s->bps[j]) &&
				    frame_index(&s->bps[j], b->gfns[k]) >= 0;
			for (unsigned q = 0; q < k && !seen; q++)
				seen = b->gfns[q] == b->gfns[k];
			*frames += !seen;
		}
	}
}
