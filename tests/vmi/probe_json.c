/*
 * probe_json.c - one JSON object per stdout line, for pytest to parse.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "probe.h"

double
probe_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
tv_secs(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void
probe_clock_start(struct probe_clock *c)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	c->wall = probe_now();
	c->cpu = tv_secs(ru.ru_utime) + tv_secs(ru.ru_stime);
	c->sys = tv_secs(ru.ru_stime);
}

void
probe_clock_stop(struct probe_clock *c)
{
	struct rusage ru;

	c->wall = probe_now() - c->wall;
	getrusage(RUSAGE_SELF, &ru);
	c->cpu = tv_secs(ru.ru_utime) + tv_secs(ru.ru_stime) - c->cpu;
	c->sys = tv_secs(ru.ru_stime) - c->sys;
}

void
j_begin(struct jline *j)
{
	j->buf = NULL;
	j->len = 0;
	j->f = open_memstream(&j->buf, &j->len);
	if (j->f == NULL)
		abort();
	fputc('{', j->f);
	j->first = true;
}

static FILE *
key(struct jline *j, const char *k)
{
	FILE *f = j->f;

	if (!j->first)
		fputs(", ", f);
	j->first = false;
	fprintf(f, "\"%s\": ", k);
	return f;
}

void
j_str(struct jline *j, const char *k, const char *v)
{
	FILE *f = key(j, k);

	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void
j_int(struct jline *j, const char *k, long long v)
{
	fprintf(key(j, k), "%lld", v);
}

void
j_hex(struct jline *j, const char *k, uint64_t v)
{
	fprintf(key(j, k), "\"0x%" PRIx64 "\"", v);
}

void
j_bool(struct jline *j, const char *k, bool v)
{
	fputs(v ? "true" : "false", key(j, k));
}

void
j_num(struct jline *j, const char *k, double v)
{
	fprintf(key(j, k), "%.6g", v);
}

void
j_bytes(struct jline *j, const char *k, const void *p, size_t n)
{
	FILE *f = key(j, k);

	fputc('"', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", ((const uint8_t *)p)[i]);
	fputc('"', f);
}

void
j_hex_array(struct jline *j, const char *k, const uint64_t *v, size_t n)
{
	FILE *f = key(j, k);

	fputc('[', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\"0x%" PRIx64 "\"", i ? ", " : "", v[i]);
	fputc(']', f);
}

void
j_raw(struct jline *j, const char *k, const char *json)
{
	fputs(json, key(j, k));
}

void
j_end(struct jline *j)
{
	fputc('}', j->f);
	fclose(j->f);
	puts(j->buf);
	fflush(stdout);
	free(j->buf);
}
