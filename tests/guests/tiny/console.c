/*
 * tiny: console output. Every line goes to I/O port 0xE9 (Xen prints a
 * PVH/HVM guest's 0xE9 bytes on its own console with guest_loglvl=all;
 * QEMU shows them with -debugcon) and, under Xen, to the PV console ring
 * that xenconsoled logs.
 */
#include "tiny.h"
#include "xen_abi.h"

#define TINY_DEBUGCON_PORT 0xe9
/* How long to wait for xenconsoled to drain a full ring before dropping. */
#define TINY_CONSOLE_YIELDS 2000

volatile uint64_t tiny_console_dropped;
/*
 * Non-zero: mirror to port 0xE9. Each byte is a VM exit under Xen, which is
 * slow under nested emulation; a test that only reads the PV console may
 * clear it.
 */
volatile uint32_t tiny_console_e9 = 1;

static struct tiny_xencons_interface *tiny_cons_ring;
static uint32_t tiny_cons_evtchn;
/* Both vCPUs may print (vCPU 1 only on a fatal trap): one line at a time. */
static uint32_t tiny_cons_lock;

void tiny_console_xen(volatile void *ring, uint32_t evtchn)
{
	tiny_cons_evtchn = evtchn;
	tiny_cons_ring = (struct tiny_xencons_interface *)(uintptr_t)ring;
}

/*
 * The out ring's protocol (io/console.h, as Linux's hvc_xen and Xen's
 * xenconsoled use it): the guest owns out_prod, the backend out_cons; the
 * bytes must be visible before the new out_prod, and out_cons must be read
 * before the slots it frees are reused. On x86 those orderings need only
 * compiler barriers, which the acquire/release builtins give.
 */
static void tiny_xencons_write(const char *s, size_t n)
{
	struct tiny_xencons_interface *r = tiny_cons_ring;
	unsigned int waited = 0;
	uint32_t cons, prod;

	while (n > 0) {
		cons = __atomic_load_n(&r->out_cons, __ATOMIC_ACQUIRE);
		prod = r->out_prod;
		if (prod - cons >= sizeof(r->out)) {
			/*
			 * Full: kick the backend and give dom0 the CPU. With no
			 * reader at all, drop the rest rather than stop the test loop.
			 */
			tiny_xen_evtchn_send(tiny_cons_evtchn);
			if (++waited > TINY_CONSOLE_YIELDS) {
				tiny_console_dropped += n;
				return;
			}
			tiny_xen_yield();
			continue;
		}
		while (n > 0 && prod - cons < sizeof(r->out)) {
			r->out[prod & (sizeof(r->out) - 1)] = *s++;
			prod++;
			n--;
		}
		__atomic_store_n(&r->out_prod, prod, __ATOMIC_RELEASE);
	}
	tiny_xen_evtchn_send(tiny_cons_evtchn);
}

static void tiny_console_write(const char *s, size_t n)
{
	size_t i;

	for (i = 0; tiny_console_e9 && i < n; i++)
		tiny_outb(TINY_DEBUGCON_PORT, (uint8_t)s[i]);
	if (tiny_cons_ring)
		tiny_xencons_write(s, n);
}

/* A line is formatted into this buffer, then written in one go. */
struct tiny_line {
	char buf[256];
	size_t len;
};

static void tiny_put(struct tiny_line *l, char c)
{
	if (l->len < sizeof(l->buf))
		l->buf[l->len++] = c;
}

static void tiny_put_num(struct tiny_line *l, uint64_t v, unsigned int base, bool neg)
{
	char tmp[24];
	int i = 0;

	if (neg)
		tiny_put(l, '-');
	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v != 0);
	while (i > 0)
		tiny_put(l, tmp[--i]);
}

/*
 * printf subset: %d %u %x %s %c %%, the 'l'/'ll'/'z' sizes and the '#'
 * flag (0x prefix). Enough for machine-parseable key=value lines.
 */
void tiny_vprintf(const char *fmt, va_list ap)
{
	struct tiny_line l = { .len = 0 };
	const char *p, *s;
	bool alt, is64;
	uint32_t spins;
	uint64_t u;
	int64_t d;

	for (p = fmt; *p != '\0'; p++) {
		if (*p != '%') {
			tiny_put(&l, *p);
			continue;
		}
		p++;
		alt = false;
		is64 = false;
		if (*p == '#') {
			alt = true;
			p++;
		}
		while (*p == 'l' || *p == 'z') {
			is64 = true;
			p++;
		}
		switch (*p) {
		case 'd':
			d = is64 ? va_arg(ap, int64_t) : va_arg(ap, int);
			tiny_put_num(&l, d < 0 ? 0 - (uint64_t)d : (uint64_t)d, 10, d < 0);
			break;
		case 'u':
		case 'x':
			u = is64 ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			if (*p == 'x' && alt) {
				tiny_put(&l, '0');
				tiny_put(&l, 'x');
			}
			tiny_put_num(&l, u, *p == 'x' ? 16 : 10, false);
			break;
		case 's':
			for (s = va_arg(ap, const char *); s != NULL && *s != '\0'; s++)
				tiny_put(&l, *s);
			break;
		case 'c':
			tiny_put(&l, (char)va_arg(ap, int));
			break;
		case '%':
			tiny_put(&l, '%');
			break;
		default:
			/* An unknown conversion is a bug in tiny itself: show it. */
			tiny_put(&l, '?');
			if (*p == '\0')
				p--;
			break;
		}
	}

	/*
	 * Bounded: a fatal trap taken while this vCPU holds the lock must
	 * still print; interleaved output beats a silent hang.
	 */
	for (spins = 0; spins < 10000000u; spins++) {
		if (__atomic_exchange_n(&tiny_cons_lock, 1, __ATOMIC_ACQUIRE) == 0)
			break;
		tiny_pause();
	}
	tiny_console_write(l.buf, l.len);
	__atomic_store_n(&tiny_cons_lock, 0, __ATOMIC_RELEASE);
}

void tiny_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tiny_vprintf(fmt, ap);
	va_end(ap);
}
