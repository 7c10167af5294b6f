/*
 * rsp_regs.h - the amd64 register table: one row per register, in gdb's
 * remote numbering, driving g, G, p, P, expedited registers and target.xml.
 *
 * The numbering is the order of the registers in the generated target
 * description (GDB manual, "Target Descriptions" / "Standard Target
 * Features", "i386 Features"): org.gnu.gdb.i386.core, .sse, .segments as
 * gdb expects them, then vmistub's own org.vmistub.system feature with the
 * control registers a kernel debugger needs.
 */
#ifndef VMISTUB_RSP_REGS_H
#define VMISTUB_RSP_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rsp_reply.h"

enum rsp_amd64_regno {
	RSP_AMD64_RAX, RSP_AMD64_RBX, RSP_AMD64_RCX, RSP_AMD64_RDX,
	RSP_AMD64_RSI, RSP_AMD64_RDI, RSP_AMD64_RBP, RSP_AMD64_RSP,
	RSP_AMD64_R8, RSP_AMD64_R9, RSP_AMD64_R10, RSP_AMD64_R11,
	RSP_AMD64_R12, RSP_AMD64_R13, RSP_AMD64_R14, RSP_AMD64_R15,
	RSP_AMD64_RIP, RSP_AMD64_EFLAGS,
	RSP_AMD64_CS, RSP_AMD64_SS, RSP_AMD64_DS, RSP_AMD64_ES,
	RSP_AMD64_FS, RSP_AMD64_GS,
	RSP_AMD64_ST0, RSP_AMD64_ST7 = RSP_AMD64_ST0 + 7,
	RSP_AMD64_FCTRL, RSP_AMD64_FSTAT, RSP_AMD64_FTAG, RSP_AMD64_FISEG,
	RSP_AMD64_FIOFF, RSP_AMD64_FOSEG, RSP_AMD64_FOOFF, RSP_AMD64_FOP,
	RSP_AMD64_XMM0, RSP_AMD64_XMM15 = RSP_AMD64_XMM0 + 15,
	RSP_AMD64_MXCSR,
	RSP_AMD64_FS_BASE, RSP_AMD64_GS_BASE,
	RSP_AMD64_CR0, RSP_AMD64_CR2, RSP_AMD64_CR3, RSP_AMD64_CR4,
	RSP_AMD64_CR8, RSP_AMD64_EFER, RSP_AMD64_KERNEL_GS_BASE,
	RSP_AMD64_NREGS
};

/*
 * The register file the stub fills from the hypervisor.  Integer fields
 * hold values (sent little-endian whatever the host); st and xmm hold the
 * register bytes in target order.  A set bit in unavailable[] (by regno)
 * makes g/p report the register as unavailable ("xx" digits).
 */
struct rsp_amd64_regfile {
	uint64_t gpr[16];        /* rax rbx rcx rdx rsi rdi rbp rsp r8..r15 */
	uint64_t rip;
	uint32_t eflags;
	uint32_t seg[6];         /* cs ss ds es fs gs */
	uint8_t st[8][10];
	uint32_t fpu[8];         /* fctrl fstat ftag fiseg fioff foseg fooff fop */
	uint8_t xmm[16][16];
	uint32_t mxcsr;
	uint64_t fs_base;
	uint64_t gs_base;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, kernel_gs_base;
	uint64_t unavailable[(RSP_AMD64_NREGS + 63) / 64];
};

enum rsp_reg_feature {
	RSP_FEATURE_CORE,        /* org.gnu.gdb.i386.core */
	RSP_FEATURE_SSE,         /* org.gnu.gdb.i386.sse */
	RSP_FEATURE_SEGMENTS,    /* org.gnu.gdb.i386.segments */
	RSP_FEATURE_SYSTEM,      /* org.vmistub.system */
	RSP_FEATURE__COUNT
};

/* How a row is stored in struct rsp_amd64_regfile. */
enum rsp_reg_store {
	RSP_STORE_U32,           /* uint32_t value */
	RSP_STORE_U64,           /* uint64_t value */
	RSP_STORE_BYTES,         /* bitsize/8 bytes, target order */
};

struct rsp_reg {
	const char *name;
	uint16_t regno;          /* gdb's remote register number */
	uint16_t bitsize;
	uint16_t offset;         /* into struct rsp_amd64_regfile */
	uint16_t g_offset;       /* byte offset in the g packet */
	uint8_t store;           /* enum rsp_reg_store */
	uint8_t feature;         /* enum rsp_reg_feature */
	const char *type;        /* target description type name */
	const char *group;       /* register group, or NULL */
};

/* Row i is register number i. */
extern const struct rsp_reg rsp_amd64_regs[RSP_AMD64_NREGS];
extern const char *const rsp_feature_names[RSP_FEATURE__COUNT];

/* Size in bytes of the full g packet payload (before hex). */
size_t rsp_amd64_g_size(void);
/* Row by name, or NULL. */
const struct rsp_reg *rsp_amd64_reg_by_name(const char *name);

bool rsp_regfile_available(const struct rsp_amd64_regfile *f, unsigned regno);
void rsp_regfile_set_available(struct rsp_amd64_regfile *f, unsigned regno,
			       bool available);

/* The register's bytes in target order into out (bitsize/8 bytes); returns
 * that size, or -ENOENT for a bad regno. */
ssize_t rsp_regfile_get(const struct rsp_amd64_regfile *f, unsigned regno,
			uint8_t *out, size_t cap);
/* Store the register from its target-order bytes (exactly bitsize/8). */
int rsp_regfile_set(struct rsp_amd64_regfile *f, unsigned regno,
		    const uint8_t *in, size_t len);

/* g reply: every register in order, unavailable ones as 'x' digits. */
void rsp_reply_regs(struct rsp_reply *r, const struct rsp_amd64_regfile *f);
/* p reply; -ENOENT for an unknown regno (the stub answers Exx). */
int rsp_reply_reg(struct rsp_reply *r, const struct rsp_amd64_regfile *f,
		  unsigned regno);
/*
 * G: hex digits for registers 0, 1, ... in g order; may stop early but only
 * at a register boundary.  Registers whose value differs are stored and
 * their bits set in changed[] (may be NULL): the stub writes back only
 * those.  Unavailable registers are left untouched (gdb sends zeros for
 * what it could not read).  On error (-EINVAL) f is not modified.
 */
int rsp_regfile_write_g(struct rsp_amd64_regfile *f, const uint8_t *hex,
			size_t hexlen, uint64_t *changed);
/* P: exactly 2 * size digits.  0, -ENOENT (regno), -EINVAL (value). */
int rsp_regfile_write_p(struct rsp_amd64_regfile *f, unsigned regno,
			const uint8_t *hex, size_t hexlen);

/* Build an expedited-register list for a T stop reply from the register
 * file: regs[i] for regnos[i]; unavailable registers are left out.
 * scratch holds the values (at least 16 bytes per register).  Returns the
 * number of entries written. */
size_t rsp_regfile_expedite(const struct rsp_amd64_regfile *f,
			    const uint16_t *regnos, size_t n,
			    struct rsp_expedited *regs, uint8_t *scratch,
			    size_t scratch_cap);

/* A stop reply (rsp_reply_stop()) whose expedited registers are
 * regnos[0..n) read from f; unavailable ones are left out. */
void rsp_reply_stop_regs(struct rsp_reply *r, const struct rsp_stop *stop,
			 const struct rsp_amd64_regfile *f,
			 const uint16_t *regnos, size_t n);

/*
 * Write the target description (target.xml, one document holding every
 * feature) into buf[0..cap), NUL-terminated when cap > 0.  Returns the
 * document's full length (without the NUL) like snprintf, so a caller can
 * size its buffer: the document is complete when the result < cap.
 */
size_t rsp_tdesc_write(char *buf, size_t cap);

#endif
