/*
 * rsp_reply.h - build reply payloads for gdb into a caller buffer.
 *
 * A struct rsp_reply collects the unframed payload; rsp_encode() (or
 * rsp_reply_frame()) frames it.  Binary bytes are appended raw: escaping
 * happens at framing time.  Appends never write past cap: on the first
 * append that does not fit the reply is marked overflowed and further
 * appends are ignored, so a handler can build freely and check once.
 */
#ifndef VMISTUB_RSP_REPLY_H
#define VMISTUB_RSP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rsp_cmd.h"

struct rsp_reply {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void rsp_reply_init(struct rsp_reply *r, uint8_t *buf, size_t cap);
void rsp_reply_reset(struct rsp_reply *r);
/* 0, or -ENOSPC if some append did not fit. */
int rsp_reply_status(const struct rsp_reply *r);
/* Frame the payload into out (rsp_encode() flags); -ENOSPC if the reply
 * overflowed or out is too small. */
ssize_t rsp_reply_frame(const struct rsp_reply *r, uint8_t *out, size_t cap,
			unsigned flags);

void rsp_reply_bytes(struct rsp_reply *r, const void *data, size_t len);
void rsp_reply_str(struct rsp_reply *r, const char *s);
void rsp_reply_char(struct rsp_reply *r, uint8_t c);
/* Two lowercase digits per byte. */
void rsp_reply_hex(struct rsp_reply *r, const void *data, size_t len);
/* Minimal digits, "0" for zero (the manual's number format). */
void rsp_reply_hex_u64(struct rsp_reply *r, uint64_t v);
/* Exactly two digits. */
void rsp_reply_hex_u8(struct rsp_reply *r, uint8_t v);
/* "-1" for RSP_ID_ALL; p<pid>.<tid> when multiprocess (pid 1 when the id
 * carries none: vmistub debugs one process, the guest). */
void rsp_reply_thread_id(struct rsp_reply *r, const struct rsp_thread_id *id,
			 bool multiprocess);

void rsp_reply_ok(struct rsp_reply *r);
/* "Exx": the manual leaves the meaning of xx to the stub. */
void rsp_reply_error(struct rsp_reply *r, uint8_t code);

/* m reply: the bytes as hex. */
void rsp_reply_mem_hex(struct rsp_reply *r, const void *data, size_t len);
/* x reply (binary-upload): 'b' then the bytes raw. */
void rsp_reply_mem_bin(struct rsp_reply *r, const void *data, size_t len);

/*
 * qXfer read reply for doc[0..doclen) at offset/length: 'm' and a chunk when
 * more follows, 'l' and the last chunk (possibly empty) otherwise.  The
 * chunk is also cut to what fits in the reply buffer, so gdb simply asks
 * again from the next offset (start from an empty reply: a chunk cut to
 * nothing would stall gdb).  Returns the number of document bytes sent.
 */
size_t rsp_reply_xfer(struct rsp_reply *r, const void *doc, size_t doclen,
		      uint64_t offset, uint64_t length);

/* O packet: console output for gdb, hex encoded. */
void rsp_reply_console(struct rsp_reply *r, const void *text, size_t len);

/* One thread (a vCPU) of the qXfer:threads:read document. */
struct rsp_thread_info {
	struct rsp_thread_id id;
	int32_t core;            /* -1: not given */
	const char *name;        /* NULL: none */
	const char *extra;       /* free text shown by "info threads", or NULL */
};

/*
 * Write the thread list document ("Thread List Format") for the n threads
 * into buf[0..cap), NUL-terminated when cap > 0, text XML-escaped.  Returns
 * the document's full length like snprintf: complete when the result < cap.
 * Serve it with rsp_reply_xfer().
 */
size_t rsp_threads_xml_write(char *buf, size_t cap,
			     const struct rsp_thread_info *t, size_t n,
			     bool multiprocess);

enum rsp_stop_kind {
	RSP_STOP_SIGNAL,         /* S AA, or T AA when any detail is given */
	RSP_STOP_EXITED,         /* W AA[;process:pid] */
	RSP_STOP_TERMINATED,     /* X AA[;process:pid] */
};

enum rsp_stop_reason {
	RSP_STOP_NONE,
	RSP_STOP_SWBREAK,        /* swbreak: (gdb said swbreak+) */
	RSP_STOP_HWBREAK,        /* hwbreak: (gdb said hwbreak+) */
	RSP_STOP_WATCH,          /* watch:addr */
	RSP_STOP_RWATCH,         /* rwatch:addr */
	RSP_STOP_AWATCH,         /* awatch:addr */
};

struct rsp_expedited {
	uint16_t regno;
	const uint8_t *value;    /* the register's bytes, target order */
	size_t len;
};

struct rsp_stop {
	enum rsp_stop_kind kind;
	uint8_t code;            /* signal number or exit status */
	bool has_thread;
	bool multiprocess;       /* thread-id and process: forms */
	struct rsp_thread_id thread;
	int64_t pid;             /* W/X with multiprocess */
	int32_t core;            /* -1: not reported */
	enum rsp_stop_reason reason;
	uint64_t watch_addr;
	const struct rsp_expedited *regs;
	size_t nregs;
};

void rsp_reply_stop(struct rsp_reply *r, const struct rsp_stop *stop);

#endif
