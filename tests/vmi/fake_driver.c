/*
 * fake_driver.c - see fake_driver.h. It behaves as Xen does where the
 * session depends on it: a response with SET_REGS writes the general
 * registers, TOGGLE_MTF flips the vCPU's MTF, per-frame map errors,
 * and -ESRCH once the domain is gone.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake_driver.h"

struct fake {
	struct vmi_driver base;
	struct vmi_driver_ops ops;
	struct fake_world *w;
};

static struct fake_world *
W(struct vmi_driver *d)
{
	return ((struct fake *)d)->w;
}

void
fake_log(struct fake_world *w, const char *fmt, ...)
{
	size_t n = strlen(w->log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->log + n, sizeof(w->log) - n, fmt, ap);
	va_end(ap);
	n = strlen(w->log);
	if (n + 1 < sizeof(w->log)) {
		w->log[n] = ';';
		w->log[n + 1] = '\0';
	}
}

int
fake_log_at(const struct fake_world *w, const char *what)
{
	const char *p = strstr(w->log, what);

	return p == NULL ? -1 : (int)(p - w->log);
}

void
fake_world_init(struct fake_world *w)
{
	memset(w, 0, sizeof(*w));
	for (unsigned i = 0; i < FAKE_FRAMES; i++)
		w->access[i] = VMI_ACCESS_RWX;
	for (unsigned i = 0; i < sizeof(w->mem); i++)
		w->mem[i] = (uint8_t)(i * 7 + i / 4096);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void
fake_world_fini(struct fake_world *w)
{
	close(w->efd);
}

void
fake_push(struct fake_world *w, const struct vmi_event *ev)
{
	uint64_t one = 1;

	w->queue[w->qtail++ % FAKE_QUEUE] = *ev;
	if (write(w->efd, &one, sizeof(one)) != sizeof(one))
		abort();
}

static int
gone(struct fake_world *w)
{
	return w->state == VMI_DOM_GONE ? -ESRCH : 0;
}

static void
f_close(struct vmi_driver *d)
{
	fake_log(W(d), "close");
	W(d)->closed = true;
	free(d);
}

static int
f_info(struct vmi_driver *d, struct vmi_info *out)
{
	memset(out, 0, sizeof(*out));
	out->driver = "fake";
	snprintf(out->platform, sizeof(out->platform), "fake");
	out->nr_vcpus = FAKE_VCPUS;
	out->max_gfn = FAKE_FRAMES - 1;
	return 0;
}

static int
f_domain_state(struct vmi_driver *d, enum vmi_domstate *st, int *reason)
{
	*st = W(d)->state;
	*reason = W(d)->shutdown_reason;
	return 0;
}

static int
pause_by(struct vmi_driver *d, const char *what, int delta)
{
	fake_log(W(d), "%s", what);
	if (gone(W(d)))
		return -ESRCH;
	W(d)->pauses += delta;
	return 0;
}

static int
f_pause(struct vmi_driver *d)
{
	return pause_by(d, "pause", 1);
}

static int
f_unpause(struct vmi_driver *d)
{
	return pause_by(d, "unpause", -1);
}

static int
f_get_regs(struct vmi_driver *d, unsigned vcpu, struct vmi_regs *r)
{
	W(d)->get_regs_calls++;
	if (gone(W(d)))
		return -ESRCH;
	*r = W(d)->regs[vcpu];
	return 0;
}

static int
f_get_cr8(struct vmi_driver *d, unsigned vcpu, uint64_t *cr8)
{
	W(d)->get_cr8_calls++;
	if (gone(W(d)))
		return -ESRCH;
	*cr8 = W(d)->cr8[vcpu];
	return 0;
}

/* Only what Xen's vCPU-context path loads: the rest must stay as it is. */
static int
f_set_light_regs(struct vmi_driver *d, unsigned vcpu, const struct vmi_regs *r)
{
	struct vmi_regs *w = &W(d)->regs[vcpu];

	fake_log(W(d), "set_light_regs:%u", vcpu);
	W(d)->set_regs_calls++;
	if (gone(W(d)))
		return -ESRCH;
	w->g = r->g;
	memcpy(w->dr, r->dr, sizeof(w->dr));
	w->dr6 = r->dr6;
	w->dr7 = r->dr7;
	return 0;
}

static int
f_set_regs(struct vmi_driver *d, unsigned vcpu, const struct vmi_regs *r)
{
	fake_log(W(d), "set_regs:%u", vcpu);
	W(d)->set_regs_calls++;
	if (gone(W(d)))
		return -ESRCH;
	W(d)->regs[vcpu] = *r;
	return 0;
}

/* Mappings point straight into w->mem (which has FAKE_SLACK frames past
 * the end so that a chunk straddling the end stays inside the array);
 * holes and frames past the end only fail in errs[], as Xen reports
 * them, and the session must never touch them. */
static void *
f_map(struct vmi_driver *d, const uint64_t *gfns, unsigned n, int *errs)
{
	struct fake_world *w = W(d);

	w->map_calls++;
	if (gone(w) || n > FAKE_SLACK) {
		errno = gone(w) ? ESRCH : EINVAL;
		return NULL;
	}
	if (gfns[0] >= FAKE_FRAMES) {
		/* All past the end: a window of failed frames, as Xen gives. */
		for (unsigned i = 0; i < n; i++)
			errs[i] = -EFAULT;
		w->mapped_chunks++;
		return w->mem + (size_t)FAKE_FRAMES * 4096;
	}
	for (unsigned i = 0; i < n; i++)
		errs[i] = gfns[i] >= FAKE_FRAMES || w->hole[gfns[i]] ? -EFAULT : 0;
	w->mapped_chunks++;
	return w->mem + gfns[0] * 4096;
}

static void
f_unmap(struct vmi_driver *d, void *addr, unsigned n)
{
	W(d)->mapped_chunks--;
}

static int
f_event_fd(struct vmi_driver *d)
{
	return W(d)->efd;
}

static int
f_drain(struct vmi_driver *d, struct vmi_event *evs, unsigned max)
{
	struct fake_world *w = W(d);
	uint64_t cnt;
	unsigned n = 0;

	if (w->drain_error) {
		int e = w->drain_error;

		w->drain_error = 0;
		return e;
	}
	if (read(w->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return -errno;
	while (n < max && w->qhead != w->qtail)
		evs[n++] = w->queue[w->qhead++ % FAKE_QUEUE];
	return (int)n;
}

static int
f_respond(struct vmi_driver *d, const struct vmi_event *ev,
    const struct vmi_response *r)
{
	struct fake_world *w = W(d);

	fake_log(w, "respond:%u", ev->vcpu);
	if (gone(w))
		return -ESRCH;
	w->resp[w->nresp].ev = *ev;
	w->resp[w->nresp++].r = *r;
	if ((r->flags & VMI_RSP_SET_REGS) && w->defer_gprs) {
		w->deferred[ev->vcpu] = r->regs;
		w->has_deferred[ev->vcpu] = true;
	} else if (r->flags & VMI_RSP_SET_REGS) {
		w->regs[ev->vcpu].g = r->regs;
	}
	if (r->flags & VMI_RSP_TOGGLE_MTF)
		w->mtf_armed[ev->vcpu] = !w->mtf_armed[ev->vcpu];
	return 0;
}

static int
f_flush(struct vmi_driver *d)
{
	W(d)->flushes++;
	return 0;
}

static int
f_monitor(struct vmi_driver *d, enum vmi_monitor m, bool on)
{
	static const char *const names[] = { "swbreak", "debug", "mtf" };

	fake_log(W(d), "monitor_%s:%d", names[m], on);
	if (gone(W(d)))
		return -ESRCH;
	W(d)->monitors[m] = on;
	return 0;
}

static int
f_monitor_swbreak(struct vmi_driver *d, bool on)
{
	return f_monitor(d, VMI_MON_SWBREAK, on);
}

static int
f_monitor_debug(struct vmi_driver *d, bool on)
{
	return f_monitor(d, VMI_MON_DEBUG, on);
}

static int
f_monitor_mtf(struct vmi_driver *d, bool on)
{
	return f_monitor(d, VMI_MON_MTF, on);
}

static int
f_monitor_stop(struct vmi_driver *d)
{
	fake_log(W(d), "monitor_stop");
	memset(W(d)->has_deferred, 0, sizeof(W(d)->has_deferred));
	return 0;
}

void
fake_resume(struct fake_world *w, unsigned vcpu)
{
	if (w->has_deferred[vcpu])
		w->regs[vcpu].g = w->deferred[vcpu];
	w->has_deferred[vcpu] = false;
}

static int
f_mtf_arm(struct vmi_driver *d, unsigned vcpu, bool on)
{
	fake_log(W(d), "mtf_arm:%u:%d", vcpu, on);
	W(d)->mtf_armed[vcpu] = on;
	return 0;
}

static int
f_reinject(struct vmi_driver *d, const struct vmi_event *ev)
{
	fake_log(W(d), "reinject:%u", ev->vcpu);
	W(d)->reinjects++;
	return 0;
}

static int
f_set_mem_access(struct vmi_driver *d, uint64_t gfn, unsigned access)
{
	fake_log(W(d), "access:%llu:%u", (unsigned long long)gfn, access);
	if (gfn >= FAKE_FRAMES)
		return -EINVAL;
	W(d)->access[gfn] = access;
	return 0;
}

static const struct vmi_driver_ops fake_ops = {
	.name = "fake",
	.close = f_close, .info = f_info, .domain_state = f_domain_state,
	.pause = f_pause, .unpause = f_unpause,
	.get_regs = f_get_regs, .get_cr8 = f_get_cr8, .set_regs = f_set_regs,
	.set_light_regs = f_set_light_regs,
	.map = f_map, .unmap = f_unmap, .write_mem = true,
	.event_fd = f_event_fd, .drain = f_drain, .respond = f_respond,
	.flush = f_flush, .monitor_stop = f_monitor_stop,
	.monitor_swbreak = f_monitor_swbreak, .monitor_debug = f_monitor_debug,
	.monitor_mtf = f_monitor_mtf, .mtf_arm = f_mtf_arm,
	.reinject = f_reinject, .set_mem_access = f_set_mem_access,
};

struct vmi_driver *
fake_driver_new(struct fake_world *w, enum fake_platform p)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (f == NULL)
		abort();
	f->w = w;
	/* As the Xen driver does: the full table, minus what the platform
	 * lacks. */
	f->ops = fake_ops;
	if (p != FAKE_INTEL) {
		f->ops.monitor_mtf = NULL;
		f->ops.mtf_arm = NULL;
		f->ops.set_mem_access = NULL;
	}
	if (p == FAKE_READONLY) {
		struct vmi_driver_ops ro = {
			.name = "fake", .close = f_close, .info = f_info,
			.domain_state = f_domain_state, .pause = f_pause,
			.unpause = f_unpause, .get_regs = f_get_regs,
			.map = f_map, .unmap = f_unmap,
		};

		f->ops = ro;
	}
	f->base.ops = &f->ops;
	w->closed = false;
	return &f->base;
}
