/*
 * stub.h - vmistub, the GDB server: the shared state of stub/.
 *
 * One struct stub per process, created in main and handed to every
 * callback. Watchers live inside the struct they serve (STYLE.md). The
 * target side (attach, registers, memory, execution control) works on the
 * vmi session; the connection side feeds bytes to the rsp decoder and
 * dispatches packets through one command table (stub/commands.c).
 *
 * Threads are vCPUs: gdb thread id = vCPU + 1 (DESIGN.md).
 */
#ifndef STUB_H
#define STUB_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rsp.h"
#include "vmi.h"

/* Advertised as PacketSize: gdb then reads 32 KiB per m packet. */
#define STUB_PACKET_SIZE 0x10000u
#define STUB_MAX_BPS 512
/* DR0-2 serve gdb's Z1-Z4; DR3 is the stub's own: it parks a vCPU that
 * gdb leaves stopped while another one runs (stub/exec.c). */
#define STUB_GDB_SLOTS 3
#define STUB_PARK_SLOT 3
/* A watchpoint served by memory access (stub/watch.c) covers at most
 * this many frames (1 MiB): each costs a hypercall at insert and removal. */
#define STUB_WATCH_MAX_FRAMES 256
/* Frames one instruction may fault on while it is stepped (stub_lift):
 * a string move's source and destination, each across a page boundary. */
#define STUB_LIFT_FRAMES 4

enum stub_log_level {
	STUB_LOG_ERROR, STUB_LOG_WARN, STUB_LOG_INFO, STUB_LOG_DEBUG,
};

extern enum stub_log_level stub_log_level;
void stub_log(enum stub_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define log_error(...) stub_log(STUB_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) stub_log(STUB_LOG_WARN, __VA_ARGS__)
#define log_info(...) stub_log(STUB_LOG_INFO, __VA_ARGS__)
#define log_debug(...) stub_log(STUB_LOG_DEBUG, __VA_ARGS__)
int stub_log_level_parse(const char *name);

struct stub_opts {
	const char *listen;      /* HOST:PORT */
	const char *unix_path;   /* or a unix socket */
	const char *domain;      /* id or name; NULL: extended-remote only */
};

enum stub_action {
	STUB_ACT_STOP,           /* stays stopped (vCont t, or no action) */
	STUB_ACT_CONT,
	STUB_ACT_STEP,
	STUB_ACT_RANGE,          /* vCont;r: step while start <= rip < end */
};

/* A stop a vCPU owes gdb: reported at once when it happens while the
 * target runs, else queued until gdb resumes that vCPU (all-stop reports
 * one event at a time, none lost). */
struct stub_stop {
	bool valid;
	uint8_t signo;
	enum rsp_stop_reason reason;
	uint64_t addr;           /* watch address */
};

struct stub_vcpu {
	enum stub_action act;
	uint64_t range_start, range_end;
	bool regs_valid;
	struct vmi_regs regs;    /* cached while the target is stopped */
	bool parked;             /* DR3 armed at its RIP to hold it */
	/* Held by a memory access event that needs a frame lifted while
	 * another vCPU steps with one (exec.c): seen to when that step
	 * ends. */
	bool mem_wait;
	struct stub_stop stop;
};

struct stub_bp {
	bool used;
	enum rsp_bp_type type;
	uint64_t addr;           /* as gdb gave it */
	uint64_t gpa;            /* Z0: the patched frame byte */
	unsigned len;
	int slot;                /* Z1-Z4 by debug register: DR slot, else -1 */
	/* Z2-Z4 by memory access (stub/watch.c): the frames its range
	 * mapped to at insert, page by page from addr; NULL otherwise. */
	uint64_t *gfns;
	unsigned nframes;
	bool phys;               /* addr was guest physical (monitor phys on) */
};

/* The frames whose memory-access restriction is lifted while one vCPU
 * steps over the access that faulted there (stub/exec.c); n == 0: none. */
struct stub_lift {
	unsigned vcpu;
	unsigned n;
	uint64_t gfns[STUB_LIFT_FRAMES];
	bool report;             /* a watchpoint hit: stop reported after it */
	struct stub_stop stop;
};

struct stub_conn {
	struct stub *s;
	int fd;
	ev_io rio, wio;
	struct rsp_decoder dec;
	struct rsp_reply reply;
	uint8_t *dbuf, *rbuf;
	uint8_t *out;            /* framed bytes not yet written */
	size_t out_len, out_off, out_cap;
	bool noack_next;         /* turn no-ack on after this reply */
	bool dead;               /* closed from inside its own callback */
	uint32_t features;       /* RSP_GF_* gdb named in qSupported */
	uint64_t packets;
};

/* A second gdb: told why, then closed. */
struct stub_refusal {
	struct stub *s;
	int fd;
	ev_io rio;
	ev_timer timer;
	struct rsp_decoder dec;
	uint8_t dbuf[256];
	uint8_t framed[600];
	size_t framed_len;
};

struct stub_stats {
	uint64_t events, stops, reinjected, steps, parks;
	uint64_t late_events;    /* found by the timer, not the event fd */
	uint64_t step_timeouts;  /* steps stopped by the step watchdog */
};

struct stub {
	struct ev_loop *loop;
	const struct stub_opts *opts;
	int lfd;
	ev_io lio;
	ev_signal sigint_w, sigterm_w;
	ev_timer timer;          /* vmi housekeeping (domain alive?) */
	ev_timer step_watch;     /* a step that never ends (exec.c) */
	ev_io event_w;           /* the driver's event fd */
	ev_idle reap;            /* frees a connection marked dead */
	struct stub_conn *conn;
	struct stub_refusal *refusal;

	/* The target. */
	struct vmi *v;
	uint32_t domid;
	unsigned nvcpus;
	struct stub_vcpu *vcpus;
	bool running;            /* gdb resumed it; a stop reply is owed */
	bool extended;           /* "!" seen */
	bool phys;               /* monitor phys on: addresses are physical */
	bool gone;               /* the domain died under us */
	int gone_reason;         /* VMI_SHUTDOWN_*, -1: destroyed */
	unsigned gvcpu;          /* Hg thread */
	int last_stop_vcpu;
	struct stub_stop last_stop;   /* for "?" */
	struct stub_bp bps[STUB_MAX_BPS];
	struct stub_lift lift;
	char *tdesc;
	size_t tdesc_len;
	struct stub_stats stats;
	uint64_t cpu_us_at_attach;  /* the process's CPU time then */
	bool quit;
	int exit_code;
};

/* A handler's return for "the reply comes later" (a stop reply). */
#define STUB_REPLY_LATER 1

/* main.c */
/* CPU time (user + system) this process has used, in microseconds: one
 * system call, never on a hot path (in the lab's PV dom0 a clock or time
 * call costs as much as any system call through Xen, ~0.1-0.4 ms). */
uint64_t stub_cpu_us(void);
int stub_resolve_domain(const char *spec, uint32_t *domid);

/* The driver the stub opens, chosen at link time: stub/driver_xen.c for
 * vmistub, tests/stub/driver_fake.c (the in-memory fake) for the host
 * tests' vmistub-fake. The only hypervisor-specific calls in stub/. */
struct stub_domain {
	uint32_t domid;
	char name[64];
};

int stub_driver_open(uint32_t domid, struct vmi_driver **out);
int stub_driver_domid_by_name(const char *name, uint32_t *domid);
/* Up to max domains (dom0 included); returns how many were written. */
int stub_driver_list_domains(struct stub_domain *out, unsigned max);

/* server.c */
int stub_server_open(struct stub *s);
void stub_server_close(struct stub *s);
void stub_conn_send(struct stub_conn *c);
void stub_conn_close(struct stub_conn *c);
void stub_send_console(struct stub *s, const char *text);
void stub_quit(struct stub *s, int code);

/* commands.c */
void stub_dispatch(struct stub_conn *c, const uint8_t *pkt, size_t len);
void stub_reply_errno(struct rsp_reply *r, int err);

/* target.c */
int stub_attach(struct stub *s, uint32_t domid);
void stub_detach(struct stub *s);
int stub_regs(struct stub *s, unsigned vcpu, struct vmi_regs **out);
int stub_regs_write(struct stub *s, unsigned vcpu, const struct vmi_regs *r);
void stub_regs_forget(struct stub *s);
void stub_regfile_from(struct rsp_amd64_regfile *f, const struct vmi_regs *r);
void stub_regfile_to(struct vmi_regs *r, const struct rsp_amd64_regfile *f);
int stub_mem_read(struct stub *s, uint64_t addr, void *buf, size_t len,
    size_t *done);
int stub_mem_write(struct stub *s, uint64_t addr, const void *buf,
    size_t len);
int stub_translate(struct stub *s, unsigned vcpu, uint64_t va, uint64_t *gpa);
void stub_stop_reply(struct stub *s, unsigned vcpu, const struct stub_stop *st,
    struct rsp_reply *r);
void stub_exit_reply(struct stub *s, struct rsp_reply *r);

/* exec.c */
extern const struct vmi_handler stub_handler_template;
int stub_bp_insert(struct stub *s, const struct rsp_command *c);
int stub_bp_remove(struct stub *s, const struct rsp_command *c);
int stub_resume(struct stub *s, const struct rsp_vcont_action *acts,
    size_t n);
int stub_interrupt(struct stub *s);
void stub_step_watch_init(struct stub *s);
int stub_on_events(struct stub *s);
int stub_hw_slots_free(const struct stub *s);

/* watch.c: watchpoints by p2m memory access. The first six are pure. */
bool stub_watch_fits_dr(uint64_t addr, unsigned len);
bool stub_watch_by_mem(const struct stub_bp *b);
unsigned stub_watch_nframes(uint64_t addr, unsigned len);
/* VMI_ACCESS_* that the watchpoints in use among bps[0..n) leave gfn. */
unsigned stub_watch_frame_access(const struct stub_bp *bps, size_t n,
    uint64_t gfn);
const struct stub_bp *stub_watch_hit(const struct stub_bp *bps, size_t n,
    const struct vmi_event *ev);
bool stub_watch_dr_overlap(const struct stub_bp *bps, size_t n,
    const struct vmi_event *ev);
int stub_watch_insert(struct stub *s, struct stub_bp *b);
int stub_watch_remove(struct stub *s, struct stub_bp *b);
void stub_watch_forget(struct stub *s);
int stub_watch_lift(struct stub *s, unsigned vcpu, uint64_t gfn);
void stub_watch_lift_end(struct stub *s);
void stub_watch_count(const struct stub *s, unsigned *watches,
    unsigned *frames);

/* A text built with printf-like appends, cut (never overrun) at cap. */
struct stub_text {
	char *buf;
	size_t len, cap;
};

void stub_text_add(struct stub_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* monitor.c */
int stub_monitor(struct stub *s, const char *cmd, struct rsp_reply *r);
/* qXfer:osdata document for annex ("" or "processes"): its length. */
int stub_osdata(struct stub *s, const char *annex, size_t annex_len,
    char *buf, size_t cap);

#endif
