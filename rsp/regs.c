/*
 * regs.c - the amd64 register table and everything it drives: g, G, p, P,
 * expedited registers and the target description.
 *
 * GDB manual, "Standard Target Features" / "i386 Features": gdb's amd64
 * code requires org.gnu.gdb.i386.core and org.gnu.gdb.i386.sse with these
 * register names; org.gnu.gdb.i386.segments holds fs_base and gs_base.
 * The remote numbering (g packet order, p/P numbers, T stop reply numbers)
 * is the order of <reg> elements in the description ("Target Description
 * Format", "Registers": regnum defaults to the previous one plus one).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "rsp_codec.h"
#include "rsp_regs.h"
#include "xml.h"

#define F struct rsp_amd64_regfile

#define ROW(nm, no, bits, field, goff, st, feat, ty, grp) \
	[no] = { nm, no, bits, offsetof(F, field), goff, st, feat, ty, grp }
#define GPR(nm, i, ty) \
	ROW(nm, RSP_AMD64_RAX + (i), 64, gpr[i], 8 * (i), RSP_STORE_U64, \
	    RSP_FEATURE_CORE, ty, "general")
#define SEG(nm, i) \
	ROW(nm, RSP_AMD64_CS + (i), 32, seg[i], 140 + 4 * (i), RSP_STORE_U32, \
	    RSP_FEATURE_CORE, "int32", "general")
#define ST(i) \
	ROW("st" #i, RSP_AMD64_ST0 + (i), 80, st[i], 164 + 10 * (i), \
	    RSP_STORE_BYTES, RSP_FEATURE_CORE, "i387_ext", "float")
#define FPU(nm, i) \
	ROW(nm, RSP_AMD64_FCTRL + (i), 32, fpu[i], 244 + 4 * (i), \
	    RSP_STORE_U32, RSP_FEATURE_CORE, "int", "float")
#define XMM(i) \
	ROW("xmm" #i, RSP_AMD64_XMM0 + (i), 128, xmm[i], 276 + 16 * (i), \
	    RSP_STORE_BYTES, RSP_FEATURE_SSE, "vec128", "vector")
#define SYS(nm, no, field, goff, ty) \
	ROW(nm, no, 64, field, goff, RSP_STORE_U64, RSP_FEATURE_SYSTEM, ty, \
	    "system")

const struct rsp_reg rsp_amd64_regs[RSP_AMD64_NREGS] = {
	GPR("rax", 0, "int64"), GPR("rbx", 1, "int64"),
	GPR("rcx", 2, "int64"), GPR("rdx", 3, "int64"),
	GPR("rsi", 4, "int64"), GPR("rdi", 5, "int64"),
	GPR("rbp", 6, "data_ptr"), GPR("rsp", 7, "data_ptr"),
	GPR("r8", 8, "int64"), GPR("r9", 9, "int64"),
	GPR("r10", 10, "int64"), GPR("r11", 11, "int64"),
	GPR("r12", 12, "int64"), GPR("r13", 13, "int64"),
	GPR("r14", 14, "int64"), GPR("r15", 15, "int64"),
	ROW("rip", RSP_AMD64_RIP, 64, rip, 128, RSP_STORE_U64,
	    RSP_FEATURE_CORE, "code_ptr", "general"),
	ROW("eflags", RSP_AMD64_EFLAGS, 32, eflags, 136, RSP_STORE_U32,
	    RSP_FEATURE_CORE, "i386_eflags", "general"),
	SEG("cs", 0), SEG("ss", 1), SEG("ds", 2),
	SEG("es", 3), SEG("fs", 4), SEG("gs", 5),
	ST(0), ST(1), ST(2), ST(3), ST(4), ST(5), ST(6), ST(7),
	FPU("fctrl", 0), FPU("fstat", 1), FPU("ftag", 2), FPU("fiseg", 3),
	FPU("fioff", 4), FPU("foseg", 5), FPU("fooff", 6), FPU("fop", 7),
	XMM(0), XMM(1), XMM(2), XMM(3), XMM(4), XMM(5), XMM(6), XMM(7),
	XMM(8), XMM(9), XMM(10), XMM(11), XMM(12), XMM(13), XMM(14), XMM(15),
	ROW("mxcsr", RSP_AMD64_MXCSR, 32, mxcsr, 532, RSP_STORE_U32,
	    RSP_FEATURE_SSE, "i386_mxcsr", "vector"),
	ROW("fs_base", RSP_AMD64_FS_BASE, 64, fs_base, 536, RSP_STORE_U64,
	    RSP_FEATURE_SEGMENTS, "int", NULL),
	ROW("gs_base", RSP_AMD64_GS_BASE, 64, gs_base, 544, RSP_STORE_U64,
	    RSP_FEATURE_SEGMENTS, "int", NULL),
	SYS("cr0", RSP_AMD64_CR0, cr0, 552, "vmistub_cr0"),
	SYS("cr2", RSP_AMD64_CR2, cr2, 560, "data_ptr"),
	SYS("cr3", RSP_AMD64_CR3, cr3, 568, "uint64"),
	SYS("cr4", RSP_AMD64_CR4, cr4, 576, "vmistub_cr4"),
	SYS("cr8", RSP_AMD64_CR8, cr8, 584, "uint64"),
	SYS("efer", RSP_AMD64_EFER, efer, 592, "vmistub_efer"),
	SYS("kernel_gs_base", RSP_AMD64_KERNEL_GS_BASE, kernel_gs_base, 600,
	    "int"),
};

const char *const rsp_feature_names[RSP_FEATURE__COUNT] = {
	[RSP_FEATURE_CORE] = "org.gnu.gdb.i386.core",
	[RSP_FEATURE_SSE] = "org.gnu.gdb.i386.sse",
	[RSP_FEATURE_SEGMENTS] = "org.gnu.gdb.i386.segments",
	[RSP_FEATURE_SYSTEM] = "org.vmistub.system",
};

#define G_SIZE 608

size_t rsp_amd64_g_size(void)
{
	return G_SIZE;
}

const struct rsp_reg *rsp_amd64_reg_by_name(const char *name)
{
	for (unsigned i = 0; i < RSP_AMD64_NREGS; i++)
		if (strcmp(rsp_amd64_regs[i].name, name) == 0)
			return &rsp_amd64_regs[i];
	return NULL;
}

bool rsp_regfile_available(const struct rsp_amd64_regfile *f, unsigned regno)
{
	return regno < RSP_AMD64_NREGS &&
	       !(f->unavailable[regno / 64] >> (regno % 64) & 1);
}

void rsp_regfile_set_available(struct rsp_amd64_regfile *f, unsigned regno,
			       bool available)
{
	uint64_t bit = (uint64_t)1 << (regno % 64);

	if (regno >= RSP_AMD64_NREGS)
		return;
	if (available)
		f->unavailable[regno / 64] &= ~bit;
	else
		f->unavailable[regno / 64] |= bit;
}

ssize_t rsp_regfile_get(const struct rsp_amd64_regfile *f, unsigned regno,
			uint8_t *out, size_t cap)
{
	const struct rsp_reg *r;
	const uint8_t *src;
	size_t size;
	uint64_t v;

	if (regno >= RSP_AMD64_NREGS)
		return -ENOENT;
	r = &rsp_amd64_regs[regno];
	size = r->bitsize / 8;
	if (cap < size)
		return -ENOSPC;
	src = (const uint8_t *)f + r->offset;
	switch (r->store) {
	case RSP_STORE_U32: {
		uint32_t w;

		memcpy(&w, src, sizeof(w));
		v = w;
		break;
	}
	case RSP_STORE_U64:
		memcpy(&v, src, sizeof(v));
		break;
	default:
		memcpy(out, src, size);
		return (ssize_t)size;
	}
	/* "transmitted in target byte order": amd64 is little-endian. */
	for (size_t i = 0; i < size; i++)
		out[i] = (uint8_t)(v >> (8 * i));
	return (ssize_t)size;
}

int rsp_regfile_set(struct rsp_amd64_regfile *f, unsigned regno,
		    const uint8_t *in, size_t len)
{
	const struct rsp_reg *r;
	uint8_t *dst;
	uint64_t v = 0;

	if (regno >= RSP_AMD64_NREGS)
		return -ENOENT;
	r = &rsp_amd64_regs[regno];
	if (len != (size_t)r->bitsize / 8)
		return -EINVAL;
	dst = (uint8_t *)f + r->offset;
	if (r->store == RSP_STORE_BYTES) {
		memcpy(dst, in, len);
	} else {
		for (size_t i = 0; i < len; i++)
			v |= (uint64_t)in[i] << (8 * i);
		if (r->store == RSP_STORE_U32) {
			uint32_t w = (uint32_t)v;

			memcpy(dst, &w, sizeof(w));
		} else {
			memcpy(dst, &v, sizeof(v));
		}
	}
	rsp_regfile_set_available(f, regno, true);
	return 0;
}

static void reply_one(struct rsp_reply *r, const struct rsp_amd64_regfile *f,
		      unsigned regno)
{
	uint8_t v[16];
	ssize_t n = rsp_regfile_get(f, regno, v, sizeof(v));

	if (!rsp_regfile_available(f, regno)) {
		/* "Packets", 'g': "x" digits mark a register whose value
		 * the stub cannot supply. */
		for (ssize_t i = 0; i < 2 * n; i++)
			rsp_reply_char(r, 'x');
		return;
	}
	rsp_reply_hex(r, v, (size_t)n);
}

void rsp_reply_regs(struct rsp_reply *r, const struct rsp_amd64_regfile *f)
{
	for (unsigned i = 0; i < RSP_AMD64_NREGS; i++)
		reply_one(r, f, i);
}

int rsp_reply_reg(struct rsp_reply *r, const struct rsp_amd64_regfile *f,
		  unsigned regno)
{
	if (regno >= RSP_AMD64_NREGS)
		return -ENOENT;
	reply_one(r, f, regno);
	return 0;
}

int rsp_regfile_write_g(struct rsp_amd64_regfile *f, const uint8_t *hex,
			size_t hexlen, uint64_t *changed)
{
	struct rsp_amd64_regfile tmp = *f;
	uint64_t diff[sizeof(f->unavailable) / sizeof(f->unavailable[0])] = { 0 };
	size_t bytes, off = 0;

	if (hexlen % 2 || hexlen / 2 > G_SIZE)
		return -EINVAL;
	bytes = hexlen / 2;
	for (unsigned i = 0; i < RSP_AMD64_NREGS && off < bytes; i++) {
		size_t size = rsp_amd64_regs[i].bitsize / 8;
		uint8_t v[16], old[16];

		if (bytes - off < size)
			return -EINVAL;
		if (rsp_hex_decode(v, sizeof(v), hex + 2 * off, 2 * size) < 0)
			return -EINVAL;
		off += size;
		/* gdb fills registers it could not read with zeros in G
		 * (remote.c, store_registers_using_G collects into a zeroed
		 * buffer): those bytes are not values, leave them alone. */
		if (!rsp_regfile_available(f, i))
			continue;
		rsp_regfile_get(&tmp, i, old, sizeof(old));
		if (memcmp(old, v, size) == 0)
			continue;
		rsp_regfile_set(&tmp, i, v, size);
		diff[i / 64] |= (uint64_t)1 << (i % 64);
	}
	*f = tmp;
	if (changed)
		for (size_t j = 0; j < sizeof(diff) / sizeof(diff[0]); j++)
			changed[j] |= diff[j];
	return 0;
}

int rsp_regfile_write_p(struct rsp_amd64_regfile *f, unsigned regno,
			const uint8_t *hex, size_t hexlen)
{
	uint8_t v[16];
	ssize_t n;

	if (regno >= RSP_AMD64_NREGS)
		return -ENOENT;
	if (hexlen != (size_t)rsp_amd64_regs[regno].bitsize / 4)
		return -EINVAL;
	n = rsp_hex_decode(v, sizeof(v), hex, hexlen);
	if (n < 0)
		return -EINVAL;
	return rsp_regfile_set(f, regno, v, (size_t)n);
}

size_t rsp_regfile_expedite(const struct rsp_amd64_regfile *f,
			    const uint16_t *regnos, size_t n,
			    struct rsp_expedited *regs, uint8_t *scratch,
			    size_t scratch_cap)
{
	size_t k = 0, used = 0;

	for (size_t i = 0; i < n; i++) {
		ssize_t size;

		/* An unavailable register is simply not expedited: gdb
		 * fetches it with p/g if it needs it. */
		if (!rsp_regfile_available(f, regnos[i]))
			continue;
		size = rsp_regfile_get(f, regnos[i], scratch + used,
				       scratch_cap - used);
		if (size < 0)
			break;
		regs[k].regno = regnos[i];
		regs[k].value = scratch + used;
		regs[k].len = (size_t)size;
		used += (size_t)size;
		k++;
	}
	return k;
}

void rsp_reply_stop_regs(struct rsp_reply *r, const struct rsp_stop *stop,
			 const struct rsp_amd64_regfile *f,
			 const uint16_t *regnos, size_t n)
{
	struct rsp_expedited ex[RSP_AMD64_NREGS];
	uint8_t scratch[RSP_AMD64_NREGS * 16];
	struct rsp_stop s = *stop;

	if (n > RSP_AMD64_NREGS)
		n = RSP_AMD64_NREGS;
	s.regs = ex;
	s.nregs = rsp_regfile_expedite(f, regnos, n, ex, scratch,
				       sizeof(scratch));
	rsp_reply_stop(r, &s);
}

/* --- target.xml --------------------------------------------------------- */

struct bit {
	const char *name;
	unsigned bit;
};

static void flags(struct sink *s, const char *id, unsigned size,
		  const struct bit *bits, size_t n)
{
	rsp_xml_put(s, "<flags");
	rsp_xml_attr(s, "id", id);
	rsp_xml_attr_u(s, "size", size);
	rsp_xml_put(s, ">");
	for (size_t i = 0; i < n; i++) {
		rsp_xml_put(s, "<field");
		rsp_xml_attr(s, "name", bits[i].name);
		rsp_xml_attr_u(s, "start", bits[i].bit);
		/* gdb 13 wants "end" even for one bit. */
		rsp_xml_attr_u(s, "end", bits[i].bit);
		rsp_xml_put(s, "/>");
	}
	rsp_xml_put(s, "</flags>");
}

#define FLAGS(s, id, size, bits) \
	flags(s, id, size, bits, sizeof(bits) / sizeof(bits[0]))

/* Architectural bit names: Intel SDM vol. 3 ch. 2 (CR0, CR4, EFLAGS,
 * IA32_EFER), vol. 1 ch. 10 (MXCSR). */
static const struct bit eflags_bits[] = {
	{ "CF", 0 }, { "PF", 2 }, { "AF", 4 }, { "ZF", 6 }, { "SF", 7 },
	{ "TF", 8 }, { "IF", 9 }, { "DF", 10 }, { "OF", 11 }, { "NT", 14 },
	{ "RF", 16 }, { "VM", 17 }, { "AC", 18 }, { "VIF", 19 },
	{ "VIP", 20 }, { "ID", 21 },
};
static const struct bit mxcsr_bits[] = {
	{ "IE", 0 }, { "DE", 1 }, { "ZE", 2 }, { "OE", 3 }, { "UE", 4 },
	{ "PE", 5 }, { "DAZ", 6 }, { "IM", 7 }, { "DM", 8 }, { "ZM", 9 },
	{ "OM", 10 }, { "UM", 11 }, { "PM", 12 }, { "FZ", 15 },
};
static const struct bit cr0_bits[] = {
	{ "PE", 0 }, { "MP", 1 }, { "EM", 2 }, { "TS", 3 }, { "ET", 4 },
	{ "NE", 5 }, { "WP", 16 }, { "AM", 18 }, { "NW", 29 }, { "CD", 30 },
	{ "PG", 31 },
};
static const struct bit cr4_bits[] = {
	{ "VME", 0 }, { "PVI", 1 }, { "TSD", 2 }, { "DE", 3 }, { "PSE", 4 },
	{ "PAE", 5 }, { "MCE", 6 }, { "PGE", 7 }, { "PCE", 8 },
	{ "OSFXSR", 9 }, { "OSXMMEXCPT", 10 }, { "UMIP", 11 }, { "LA57", 12 },
	{ "VMXE", 13 }, { "SMXE", 14 }, { "FSGSBASE", 16 }, { "PCIDE", 17 },
	{ "OSXSAVE", 18 }, { "SMEP", 20 }, { "SMAP", 21 }, { "PKE", 22 },
	{ "CET", 23 }, { "PKS", 24 },
};
static const struct bit efer_bits[] = {
	{ "SCE", 0 }, { "LME", 8 }, { "LMA", 10 }, { "NXE", 11 },
	{ "SVME", 12 }, { "LMSLE", 13 }, { "FFXSR", 14 }, { "TCE", 15 },
};

static void vec128(struct sink *s)
{
	static const char *const vectors[][3] = {
		{ "v4f", "ieee_single", "4" }, { "v2d", "ieee_double", "2" },
		{ "v16i8", "int8", "16" }, { "v8i16", "int16", "8" },
		{ "v4i32", "int32", "4" }, { "v2i64", "int64", "2" },
	};
	static const char *const fields[][2] = {
		{ "v4_float", "v4f" }, { "v2_double", "v2d" },
		{ "v16_int8", "v16i8" }, { "v8_int16", "v8i16" },
		{ "v4_int32", "v4i32" }, { "v2_int64", "v2i64" },
		{ "uint128", "uint128" },
	};

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		rsp_xml_put(s, "<vector");
		rsp_xml_attr(s, "id", vectors[i][0]);
		rsp_xml_attr(s, "type", vectors[i][1]);
		rsp_xml_attr(s, "count", vectors[i][2]);
		rsp_xml_put(s, "/>");
	}
	rsp_xml_put(s, "<union id=\"vec128\">");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		rsp_xml_put(s, "<field");
		rsp_xml_attr(s, "name", fields[i][0]);
		rsp_xml_attr(s, "type", fields[i][1]);
		rsp_xml_put(s, "/>");
	}
	rsp_xml_put(s, "</union>");
}

static void types(struct sink *s, enum rsp_reg_feature feature)
{
	switch (feature) {
	case RSP_FEATURE_CORE:
		FLAGS(s, "i386_eflags", 4, eflags_bits);
		break;
	case RSP_FEATURE_SSE:
		vec128(s);
		FLAGS(s, "i386_mxcsr", 4, mxcsr_bits);
		break;
	case RSP_FEATURE_SYSTEM:
		FLAGS(s, "vmistub_cr0", 8, cr0_bits);
		FLAGS(s, "vmistub_cr4", 8, cr4_bits);
		FLAGS(s, "vmistub_efer", 8, efer_bits);
		break;
	default:
		break;
	}
}

/* gdb's defaults (GDB manual, "Target Description Format", Registers): an
 * integer of the register's size, in the group gdb's own architecture
 * code gives it. Saying them again only lengthens the document. */
static bool default_type(const struct rsp_reg *r)
{
	return strcmp(r->type, "int") == 0 ||
	       (strcmp(r->type, "int64") == 0 && r->bitsize == 64) ||
	       (strcmp(r->type, "int32") == 0 && r->bitsize == 32);
}

/*
 * Written compact, without layout: gdb reads target.xml 4 KiB per packet
 * whatever PacketSize says (target_read_alloc), so every 4 KiB saved is
 * one packet less on every attach.
 */
size_t rsp_tdesc_write(char *buf, size_t cap)
{
	struct sink s = { buf, cap, 0 };
	unsigned next_regno = 0;

	rsp_xml_put(&s, "<?xml version=\"1.0\"?>"
		"<!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
		"<target version=\"1.0\">"
		"<architecture>i386:x86-64</architecture>");
	for (unsigned feat = 0; feat < RSP_FEATURE__COUNT; feat++) {
		rsp_xml_put(&s, "<feature");
		rsp_xml_attr(&s, "name", rsp_feature_names[feat]);
		rsp_xml_put(&s, ">");
		types(&s, (enum rsp_reg_feature)feat);
		for (unsigned i = 0; i < RSP_AMD64_NREGS; i++) {
			const struct rsp_reg *r = &rsp_amd64_regs[i];

			if (r->feature != feat)
				continue;
			rsp_xml_put(&s, "<reg");
			rsp_xml_attr(&s, "name", r->name);
			rsp_xml_attr_u(&s, "bitsize", r->bitsize);
			if (!default_type(r))
				rsp_xml_attr(&s, "type", r->type);
			/* gdb numbers on from the previous register; say the
			 * number wherever the table jumps. */
			if (r->regno != next_regno)
				rsp_xml_attr_u(&s, "regnum", r->regno);
			next_regno = r->regno + 1;
			if (r->group && strcmp(r->group, "general") != 0)
				rsp_xml_attr(&s, "group", r->group);
			rsp_xml_put(&s, "/>");
		}
		rsp_xml_put(&s, "</feature>");
	}
	rsp_xml_put(&s, "</target>\n");
	return rsp_xml_end(&s);
}
