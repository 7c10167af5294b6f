/*
 * main.c - vmistub's command line, the libev loop, signals. The only file
 * that exits (STYLE.md).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "stub.h"

#ifndef VMISTUB_VERSION
#define VMISTUB_VERSION "unknown"
#endif

static void usage(FILE *f);
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents);

enum stub_log_level stub_log_level = STUB_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int
stub_log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void
stub_log(enum stub_log_level lvl, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (lvl > stub_log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "vmistub %ld.%03ld %s: ", (long)ts.tv_sec,
	    ts.tv_nsec / 1000000, level_names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
stub_resolve_domain(const char *spec, uint32_t *domid)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(spec, &end, 0);
	if (*spec != '\0' && *end == '\0' && errno == 0 && n < 0x7ff0) {
		*domid = (uint32_t)n;
		return 0;
	}
	return stub_driver_domid_by_name(spec, domid);
}

uint64_t
stub_cpu_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	    (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void
usage(FILE *f)
{
	fputs("usage: vmistub [options] [DOMAIN]\n"
	    "GDB remote stub for a Xen guest, run in dom0 as root.\n"
	    "DOMAIN is a domain id or name (optional with target extended-remote:\n"
	    "then gdb attaches with 'attach DOMID').\n\n"
	    "  --listen HOST:PORT  TCP address to listen on (default 127.0.0.1:1234)\n"
	    "  --unix PATH         listen on a unix socket instead (created 0600)\n"
	    "  --log-level LEVEL   error, warn, info (default) or debug\n"
	    "  --version           print the version and exit\n"
	    "  --help              this text\n", f);
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct stub *s = w->data;

	log_info("signal %d: detaching and exiting", w->signum);
	stub_quit(s, 0);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "unix", required_argument, NULL, 'u' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stub_opts opts = { .listen = "127.0.0.1:1234" };
	struct stub s = { .lfd = -1, .last_stop_vcpu = -1 };
	int c, r;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			opts.listen = optarg;
			break;
		case 'u':
			opts.unix_path = optarg;
			break;
		case 'L':
			r = stub_log_level_parse(optarg);
			if (r < 0) {
				fprintf(stderr, "vmistub: unknown log level '%s'\n",
				    optarg);
				return 2;
			}
			stub_log_level = (enum stub_log_level)r;
			break;
		case 'V':
			printf("vmistub %s\n", VMISTUB_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	opts.domain = optind < argc ? argv[optind] : NULL;
	if (opts.domain != NULL) {
		uint32_t domid;

		r = stub_resolve_domain(opts.domain, &domid);
		if (r < 0) {
			fprintf(stderr, "vmistub: no domain '%s': %s\n",
			    opts.domain, strerror(-r));
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	s.opts = &opts;
	s.loop = ev_default_loop(EVFLAG_AUTO);
	if (s.loop == NULL) {
		fprintf(stderr, "vmistub: cannot create the event loop\n");
		return 1;
	}
	r = stub_server_open(&s);
	if (r < 0)
		return 1;
	ev_signal_init(&s.sigint_w, on_signal, SIGINT);
	ev_signal_init(&s.sigterm_w, on_signal, SIGTERM);
	s.sigint_w.data = &s;
	s.sigterm_w.data = &s;
	ev_signal_start(s.loop, &s.sigint_w);
	ev_signal_start(s.loop, &s.sigterm_w);
	ev_run(s.loop, 0);
	stub_server_close(&s);
	ev_loop_destroy(s.loop);
	return s.exit_code;
}
