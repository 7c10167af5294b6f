/*
 * cache.c - a bounded cache of foreign mappings of guest frames.
 *
 * Mapping a guest frame into dom0 is a hypercall (privcmd mmapbatch on
 * Xen) whose cost is mostly per call, so frames are mapped chunk_frames at
 * a time, aligned, in one call, and kept until evicted (least recently
 * used) or until the session ends. Per-frame failures (holes in the
 * guest's physical map, MMIO) are remembered so the frames around them
 * stay usable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
vmi_cache_init(struct vmi_cache *c, struct vmi_driver *drv,
    unsigned chunk_frames, unsigned max_chunks)
{
	memset(c, 0, sizeof(*c));
	if (chunk_frames == 0 || max_chunks == 0)
		return -EINVAL;
	c->drv = drv;
	c->chunk_frames = chunk_frames;
	c->max_chunks = max_chunks;
	c->chunks = calloc(max_chunks, sizeof(*c->chunks));
	c->errs = calloc((size_t)max_chunks * chunk_frames, sizeof(*c->errs));
	c->gfns = calloc(chunk_frames, sizeof(*c->gfns));
	if (c->chunks == NULL || c->errs == NULL || c->gfns == NULL) {
		vmi_cache_fini(c);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < max_chunks; i++)
		c->chunks[i].errs = c->errs + (size_t)i * chunk_frames;
	c->st.max_chunks = max_chunks;
	c->st.chunk_frames = chunk_frames;
	return 0;
}

static void
chunk_unmap(struct vmi_cache *c, struct vmi_cache_chunk *ch)
{
	if (ch->addr == NULL)
		return;
	c->drv->ops->unmap(c->drv, ch->addr, c->chunk_frames);
	ch->addr = NULL;
	c->nchunks--;
}

void
vmi_cache_drop(struct vmi_cache *c)
{
	if (c->chunks == NULL)
		return;
	for (unsigned i = 0; i < c->max_chunks; i++)
		chunk_unmap(c, &c->chunks[i]);
	c->st.chunks = 0;
}

void
vmi_cache_fini(struct vmi_cache *c)
{
	vmi_cache_drop(c);
	free(c->chunks);
	free(c->errs);
	free(c->gfns);
	c->chunks = NULL;
	c->errs = NULL;
	c->gfns = NULL;
}

static struct vmi_cache_chunk *
lookup(struct vmi_cache *c, uint64_t base)
{
	struct vmi_cache_chunk *ch = &c->chunks[c->last];

	if (ch->addr != NULL && ch->base_gfn == base)
		return ch;
	for (unsigned i = 0; i < c->max_chunks; i++) {
		ch = &c->chunks[i];
		if (ch->addr != NULL && ch->base_gfn == base) {
			c->last = i;
			return ch;
		}
	}
	return NULL;
}

static struct vmi_cache_chunk *
fill(struct vmi_cache *c, uint64_t base)
{
	struct vmi_cache_chunk *victim = &c->chunks[0];
	unsigned vi = 0;

	/* A free slot, else the least recently used one. */
	for (unsigned i = 0; i < c->max_chunks; i++) {
		struct vmi_cache_chunk *ch = &c->chunks[i];

		if (ch->addr == NULL) {
			victim = ch;
			vi = i;
			break;
		}
		if (ch->used < victim->used) {
			victim = ch;
			vi = i;
		}
	}
	if (victim->addr != NULL) {
		chunk_unmap(c, victim);
		c->st.evictions++;
	}
	for (unsigned i = 0; i < c->chunk_frames; i++)
		c->gfns[i] = base + i;
	victim->addr = c->drv->ops->map(c->drv, c->gfns, c->chunk_frames,
	    victim->errs);
	c->st.map_calls++;
	if (victim->addr == NULL)
		return NULL;
	c->st.frames_mapped += c->chunk_frames;
	victim->base_gfn = base;
	c->nchunks++;
	c->st.chunks = c->nchunks;
	c->last = vi;
	return victim;
}

int
vmi_cache_get(struct vmi_cache *c, uint64_t gpa, uint8_t **p, size_t *avail)
{
	uint64_t gfn = gpa >> VMI_PAGE_SHIFT;
	uint64_t base = gfn - gfn % c->chunk_frames;
	unsigned idx = (unsigned)(gfn - base);
	struct vmi_cache_chunk *ch;

	if (c->chunks == NULL)
		return -ESHUTDOWN;
	ch = lookup(c, base);
	if (ch != NULL) {
		c->st.hits++;
	} else {
		c->st.misses++;
		ch = fill(c, base);
		if (ch == NULL)
			return errno ? -errno : -EIO;
	}
	ch->used = ++c->tick;
	if (ch->errs[idx] != 0)
		return ch->errs[idx];

	unsigned end = idx + 1;
	while (end < c->chunk_frames && ch->errs[end] == 0)
		end++;
	size_t off = (size_t)(gpa & (VMI_PAGE_SIZE - 1));
	*p = ch->addr + (size_t)idx * VMI_PAGE_SIZE + off;
	*avail = (size_t)(end - idx) * VMI_PAGE_SIZE - off;
	return 0;
}
