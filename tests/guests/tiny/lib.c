/*
 * tiny: the four memory functions GCC may emit calls to even with
 * -ffreestanding (struct copies and zeroing), and small string helpers.
 * String instructions instead of C loops, so GCC cannot turn a loop back
 * into a call to the function it is implementing.
 */
#include "tiny.h"

void *memset(void *d, int c, size_t n)
{
	void *p = d;

	__asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *p = d;

	__asm__ volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(n) : : "memory");
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	if (dp <= sp || dp >= sp + n)
		return memcpy(d, s, n);
	/* Overlapping with d above s: copy backwards (DF set, then cleared,
	 * since the ABI requires DF=0 at every call). */
	dp += n - 1;
	sp += n - 1;
	__asm__ volatile("std; rep movsb; cld" : "+D"(dp), "+S"(sp), "+c"(n) : : "memory");
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	size_t i;

	for (i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t tiny_strlen(const char *s)
{
	size_t n = 0;

	while (s[n] != '\0')
		n++;
	return n;
}

/* Decimal, or hex with a 0x prefix; the whole span must be a number. */
bool tiny_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int base = 10, d;
	size_t i = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n)
		return false;
	for (; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			d = (unsigned int)(s[i] - '0');
		else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
			d = (unsigned int)(s[i] - 'a' + 10);
		else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
			d = (unsigned int)(s[i] - 'A' + 10);
		else
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}
