/*
 * mem.c - guest physical and virtual memory, and instrumentation patches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int
phys_io(struct vmi *v, uint64_t gpa, uint8_t *buf, size_t len, bool write,
    size_t *done)
{
	size_t did = 0;
	int r = 0;

	while (did < len) {
		uint8_t *p;
		size_t avail, n;

		r = vmi_cache_get(&v->cache, gpa + did, &p, &avail);
		if (r < 0)
			break;
		n = len - did < avail ? len - did : avail;
		if (write)
			memcpy(p, buf + did, n);
		else
			memcpy(buf + did, p, n);
		did += n;
	}
	if (done != NULL)
		*done = did;
	return r;
}

/* Does [a, a+alen) meet [b, b+blen)? */
static bool
overlaps(uint64_t a, size_t alen, uint64_t b, size_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Copy the saved originals of every patch into buf (which holds gpa..). */
static void
hide_patches(const struct vmi *v, uint64_t gpa, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < v->npatches; i++) {
		const struct vmi_patch *pt = &v->patches[i];

		for (size_t k = 0; k < pt->len; k++)
			if (pt->gpa + k >= gpa && pt->gpa + k < gpa + len)
				buf[pt->gpa + k - gpa] = pt->orig[k];
	}
}

int
vmi_read_phys(struct vmi *v, uint64_t gpa, void *buf, size_t len,
    unsigned flags, size_t *done)
{
	size_t did = 0;
	int r = vmi_check_live(v);

	if (r == 0) {
		r = phys_io(v, gpa, buf, len, false, &did);
		if (flags & VMI_MEM_HIDE_PATCHES)
			hide_patches(v, gpa, buf, did);
	}
	if (done != NULL)
		*done = did;
	return r;
}

static struct vmi_patch *
patch_at(const struct vmi *v, uint64_t gpa)
{
	for (size_t i = 0; i < v->npatches; i++)
		if (gpa >= v->patches[i].gpa &&
		    gpa < v->patches[i].gpa + v->patches[i].len)
			return &v->patches[i];
	return NULL;
}

int
vmi_write_phys(struct vmi *v, uint64_t gpa, const void *buf, size_t len,
    size_t *done)
{
	const uint8_t *src = buf;
	size_t did = 0;
	int r = vmi_check_live(v);

	if (r == 0 && !v->ops->write_mem)
		r = -EOPNOTSUPP;
	/* Runs of unpatched bytes go to the guest; a patched byte goes to the
	 * patch's saved original so the instrumentation stays in place. */
	while (r == 0 && did < len) {
		struct vmi_patch *pt = patch_at(v, gpa + did);
		size_t run = 0, n = 0;

		if (pt != NULL) {
			pt->orig[gpa + did - pt->gpa] = src[did];
			did++;
			continue;
		}
		while (did + run < len && patch_at(v, gpa + did + run) == NULL)
			run++;
		r = phys_io(v, gpa + did, (uint8_t *)src + did, run, true, &n);
		did += n;
	}
	if (done != NULL)
		*done = did;
	return r;
}

int
vmi_patch(struct vmi *v, uint64_t gpa, const void *bytes, size_t len)
{
	struct vmi_patch pt = { .gpa = gpa, .len = len };
	int r = vmi_check_live(v);

	if (r != 0)
		return r;
	if (len == 0 || len > sizeof(pt.orig))
		return -EINVAL;
	if (!v->ops->write_mem)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < v->npatches; i++)
		if (overlaps(gpa, len, v->patches[i].gpa, v->patches[i].len))
			return -EEXIST;
	if (v->npatches == v->patches_cap) {
		size_t cap = v->patches_cap ? v->patches_cap * 2 : 16;
		struct vmi_patch *np = realloc(v->patches, cap * sizeof(*np));

		if (np == NULL)
			return -ENOMEM;
		v->patches = np;
		v->patches_cap = cap;
	}
	r = phys_io(v, gpa, pt.orig, len, false, NULL);
	if (r != 0)
		return r;
	memcpy(pt.bytes, bytes, len);
	size_t n = 0;
	r = phys_io(v, gpa, pt.bytes, len, true, &n);
	if (r != 0) {
		phys_io(v, gpa, pt.orig, n, true, NULL);
		return r;
	}
	v->patches[v->npatches++] = pt;
	return 0;
}

static int
patch_index(const struct vmi *v, uint64_t gpa)
{
	for (size_t i = 0; i < v->npatches; i++)
		if (v->patches[i].gpa == gpa)
			return (int)i;
	return -ENOENT;
}

/* Write the original back and forget the patch; the record goes even if
 * the write fails, since a dead domain has nothing left to restore. */
int
vmi_unpatch(struct vmi *v, uint64_t gpa)
{
	int i = patch_index(v, gpa);
	bool pause;
	int r;

	if (i < 0)
		return i;
	r = vmi_check_live(v);
	/*
	 * Never under a running vCPU: one that has just executed the int3
	 * may still be in Xen's #BP exit, and on a CPU without NRIP save
	 * (or a debug build of Xen) svm_get_insn_len decodes the bytes at
	 * RIP then; finding the original instruction instead of 0xCC, Xen
	 * 4.17 injects #GP(0) into the guest ("Insn mismatch", seen in the
	 * lab: tiny died at tiny_shared_fn while one vCPU stepped over a
	 * breakpoint the other had just hit). Pausing waits for every vCPU
	 * to leave Xen, so such a hit is an event in the ring by then, and
	 * its int3 is judged gone (swbreak_ours). A paused domain costs
	 * nothing more.
	 */
	/* (A pause that fails does not keep the byte in: a stray int3 is
	 * the worse outcome.) */
	pause = r == 0 && vmi_pause_count(v) == 0 && vmi_pause(v) == 0;
	if (r == 0)
		r = phys_io(v, gpa, v->patches[i].orig, v->patches[i].len, true,
		    NULL);
	if (pause) {
		int r2 = vmi_unpause(v);

		if (r == 0)
			r = r2;
	}
	v->patches[i] = v->patches[--v->npatches];
	return r;
}

int
vmi_patched_original(const struct vmi *v, uint64_t gpa, uint8_t *orig)
{
	const struct vmi_patch *pt = patch_at(v, gpa);

	if (pt == NULL)
		return -ENOENT;
	*orig = pt->orig[gpa - pt->gpa];
	return 0;
}

/* Page-table entries are 8-byte aligned, so one never crosses a frame. */
static int
read_pte(void *ctx, uint64_t gpa, uint64_t *val)
{
	return phys_io(ctx, gpa, (uint8_t *)val, sizeof(*val), false, NULL);
}

int
vmi_as_of_vcpu(struct vmi *v, unsigned vcpu, struct vmi_as *as)
{
	struct vmi_regs r;
	int ret = vmi_get_regs(v, vcpu, &r);

	return ret ? ret : vmi_as_from_regs(&r, as);
}

int
vmi_translate(struct vmi *v, const struct vmi_as *as, uint64_t va,
    struct vmi_xlate *out)
{
	int r = vmi_check_live(v);

	if (r != 0)
		return r;
	return vmi_xlate(as, va, read_pte, v, out);
}

static int
virt_io(struct vmi *v, const struct vmi_as *as, uint64_t va, uint8_t *buf,
    size_t len, bool write, unsigned flags, size_t *done,
    struct vmi_xlate *fail)
{
	struct vmi_xlate x;
	size_t did = 0;
	int r = vmi_check_live(v);

	while (r == 0 && did < len) {
		uint64_t at = va + did;
		size_t n = 0, chunk;

		r = vmi_xlate(as, at, read_pte, v, &x);
		if (r != 0) {
			if (fail != NULL)
				*fail = x;
			break;
		}
		chunk = (size_t)(x.page_size - (x.gpa & (x.page_size - 1)));
		if (chunk > len - did)
			chunk = len - did;
		if (write)
			r = vmi_write_phys(v, x.gpa, buf + did, chunk, &n);
		else
			r = vmi_read_phys(v, x.gpa, buf + did, chunk, flags, &n);
		did += n;
	}
	if (done != NULL)
		*done = did;
	return r;
}

int
vmi_read_virt(struct vmi *v, const struct vmi_as *as, uint64_t va,
    void *buf, size_t len, unsigned flags, size_t *done,
    struct vmi_xlate *fail)
{
	return virt_io(v, as, va, buf, len, false, flags, done, fail);
}

int
vmi_write_virt(struct vmi *v, const struct vmi_as *as, uint64_t va,
    const void *buf, size_t len, size_t *done, struct vmi_xlate *fail)
{
	return virt_io(v, as, va, (uint8_t *)buf, len, true, 0, done, fail);
}

void
vmi_cache_flush(struct vmi *v)
{
	vmi_cache_drop(&v->cache);
}

void
vmi_cache_stats(const struct vmi *v, struct vmi_cache_stats *st)
{
	*st = v->cache.st;
	st->chunks = v->cache.nchunks;
}
