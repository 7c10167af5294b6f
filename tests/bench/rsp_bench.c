/*
 * rsp_bench - micro-benchmark of the rsp codec on typical gdb traffic.
 * Prints figures; asserts nothing about time.  Each line gives operations
 * per second, the framed bytes per second, and memcpy of the same bytes
 * as the practical upper limit.
 *
 * Usage: rsp_bench [seconds-per-case]   (default 0.5)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rsp.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint64_t sink;

/* memcpy of len bytes, as many times as fit in secs: bytes per second. */
static double memcpy_rate(size_t len, double secs)
{
	static uint8_t a[1 << 16], b[1 << 16];
	uint64_t n = 0;
	double t0 = now(), t;

	do {
		for (int i = 0; i < 256; i++) {
			memcpy(b, a, len);
			a[n % len] ^= b[(n * 7) % len];
			n++;
		}
		t = now() - t0;
	} while (t < secs);
	sink += b[0];
	return (double)n * (double)len / t;
}

static void report(const char *what, uint64_t ops, size_t bytes_per_op,
		   double t, double secs)
{
	double rate = (double)ops / t;
	double bps = rate * (double)bytes_per_op;
	double lim = memcpy_rate(bytes_per_op, secs);

	printf("%-34s %12.0f /s %9.1f MB/s   memcpy %9.1f MB/s  (%4.1f%%)\n",
	       what, rate, bps / 1e6, lim / 1e6, 100.0 * bps / lim);
}

static uint8_t framed[1 << 16];
static uint8_t payload[1 << 15];

static void bench_decode(const char *what, const uint8_t *pl, size_t len,
			 unsigned flags, double secs)
{
	static uint8_t pbuf[1 << 15];
	struct rsp_decoder d;
	ssize_t n = rsp_encode(framed, sizeof(framed), pl, len, flags);
	uint64_t ops = 0;
	double t0 = now(), t;

	if (n < 0)
		abort();
	rsp_decoder_init(&d, pbuf, sizeof(pbuf));
	do {
		for (int i = 0; i < 64; i++) {
			struct rsp_decoded out;
			size_t used;

			if (rsp_decoder_feed(&d, framed, (size_t)n, &used,
					     &out) != RSP_EV_PACKET)
				abort();
			sink += out.len;
			ops++;
		}
		t = now() - t0;
	} while (t < secs);
	report(what, ops, (size_t)n, t, secs);
}

/* A stream of typical requests in one buffer, decoded and parsed. */
static void bench_requests(double secs)
{
	static const char *const reqs[] = {
		"mffffffff81a59000,1000", "g", "vCont;c", "Z0,ffffffff81a592eb,1",
		"z0,ffffffff81a592eb,1", "p10", "qXfer:features:read:target.xml:0,ffb",
		"Hg1", "?", "vCont;s:2;c", "X7ffff000,4:\x90\x90\xcc\x90",
	};
	static uint8_t stream[4096], pbuf[4096];
	size_t len = 0, nreq = sizeof(reqs) / sizeof(reqs[0]);
	struct rsp_decoder d;
	struct rsp_command cmd;
	uint64_t ops = 0;
	double t0, t;

	for (size_t i = 0; i < nreq; i++) {
		ssize_t n = rsp_encode(stream + len, sizeof(stream) - len,
				       (const uint8_t *)reqs[i],
				       strlen(reqs[i]), 0);
		if (n < 0)
			abort();
		len += (size_t)n;
	}
	rsp_decoder_init(&d, pbuf, sizeof(pbuf));
	t0 = now();
	do {
		for (int rep = 0; rep < 16; rep++) {
			const uint8_t *p = stream;
			size_t left = len;

			while (left) {
				struct rsp_decoded out;
				size_t used;

				if (rsp_decoder_feed(&d, p, left, &used, &out) ==
				    RSP_EV_PACKET) {
					if (rsp_parse(out.data, out.len, &cmd))
						abort();
					sink += cmd.kind;
					ops++;
				}
				p += used;
				left -= used;
			}
		}
		t = now() - t0;
	} while (t < secs);
	report("decode+parse requests (mixed)", ops, len / nreq, t, secs);
}

/* Builds one reply into r from ctx. */
typedef void build_fn(struct rsp_reply *r, const void *ctx);

/* Time building and framing a reply, again and again. */
static void bench_reply(const char *what, build_fn *build, const void *ctx,
			unsigned flags, double secs)
{
	static uint8_t rbuf[16384];
	struct rsp_reply r;
	uint64_t ops = 0;
	size_t bytes = 0;
	double t0, t;

	rsp_reply_init(&r, rbuf, sizeof(rbuf));
	t0 = now();
	do {
		for (int i = 0; i < 64; i++) {
			ssize_t n;

			rsp_reply_reset(&r);
			build(&r, ctx);
			n = rsp_reply_frame(&r, framed, sizeof(framed), flags);
			if (n < 0)
				abort();
			bytes = (size_t)n;
			ops++;
		}
		t = now() - t0;
	} while (t < secs);
	report(what, ops, bytes, t, secs);
}

static void build_m(struct rsp_reply *r, const void *mem)
{
	rsp_reply_mem_hex(r, mem, 4096);
}

static void build_x(struct rsp_reply *r, const void *mem)
{
	rsp_reply_mem_bin(r, mem, 4096);
}

static void build_g(struct rsp_reply *r, const void *regs)
{
	rsp_reply_regs(r, regs);
}

static void build_stop(struct rsp_reply *r, const void *regs)
{
	static const uint16_t want[] = { RSP_AMD64_RBP, RSP_AMD64_RSP,
					 RSP_AMD64_RIP };
	static const struct rsp_stop s = {
		.kind = RSP_STOP_SIGNAL, .code = 5, .has_thread = true,
		.thread = { .tid = 1 }, .core = -1,
		.reason = RSP_STOP_SWBREAK,
	};

	rsp_reply_stop_regs(r, &s, regs, want, 3);
}

static void fill_regs(struct rsp_amd64_regfile *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 16; i++)
		f->gpr[i] = 0xffff888000000000ull + (uint64_t)i * 0x1234567;
	f->rip = 0xffffffff81a592ebull;
	f->eflags = 0x246;
	f->seg[0] = 0x10;
	f->seg[1] = 0x18;
	f->mxcsr = 0x1f80;
	f->cr0 = 0x80050033;
	f->cr3 = 0x10c8000;
	f->cr4 = 0x450ef0;
	f->efer = 0xd01;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	static uint8_t text[4096], random[4096];
	struct rsp_amd64_regfile f;
	struct rsp_reply r;

	if (secs <= 0)
		secs = 0.5;
	/* Kernel text-like bytes: short zero runs, mostly varied; and bytes
	 * spread over all 256 values, for the binary reply's escapes. */
	for (size_t i = 0; i < sizeof(text); i++) {
		text[i] = (uint8_t)(i % 64 < 8 ? 0 : (i * 131) >> 3);
		random[i] = (uint8_t)((i * 2654435761u) >> 13);
	}
	fill_regs(&f);
	printf("rsp_bench: %.2f s per case\n", secs);
	bench_requests(secs);
	rsp_reply_init(&r, payload, sizeof(payload));
	rsp_reply_hex(&r, text, sizeof(text));
	bench_decode("decode m 4KiB reply (8 KiB hex)", payload, r.len, 0,
		     secs);
	bench_decode("decode m 4KiB reply, RLE", payload, r.len, RSP_ENC_RLE,
		     secs);
	rsp_reply_reset(&r);
	rsp_reply_regs(&r, &f);
	bench_decode("decode g reply", payload, r.len, RSP_ENC_RLE, secs);
	bench_reply("encode m 4KiB reply", build_m, text, 0, secs);
	bench_reply("encode m 4KiB reply, RLE", build_m, text, RSP_ENC_RLE,
		    secs);
	bench_reply("encode x 4KiB reply (binary)", build_x, random, 0, secs);
	bench_reply("encode g reply (608 B regs)", build_g, &f, 0, secs);
	bench_reply("encode g reply, RLE", build_g, &f, RSP_ENC_RLE, secs);
	bench_reply("encode T05 stop reply (3 regs)", build_stop, &f, 0, secs);
	return 0;
}
