/*
 * server.c - the listen socket, the one gdb connection, the refusal of a
 * second one, and the way out (stub_quit). Handlers never touch a socket:
 * they fill c->reply and the dispatcher sends it (stub/commands.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "stub.h"

#define READ_CHUNK 65536
#define REFUSAL_GRACE 10.0

static void on_accept(struct ev_loop *loop, ev_io *w, int revents);
static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_reap(struct ev_loop *loop, ev_idle *w, int revents);
static void refuse(struct stub *s, int fd, const char *why);
static void refusal_free(struct stub_refusal *f);

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int
listen_tcp(const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai;
	int fd, one = 1, r;
	size_t hl;

	if (colon == NULL || colon == spec || colon[1] == '\0') {
		log_error("--listen wants HOST:PORT, not '%s'", spec);
		return -EINVAL;
	}
	hl = (size_t)(colon - spec);
	if (hl >= sizeof(host)) {
		log_error("cannot listen on %s: host name too long", spec);
		return -ENAMETOOLONG;
	}
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0) {
		log_error("cannot resolve %s: %s", spec, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", spec, strerror(-r));
		freeaddrinfo(ai);
		return r;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4) < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", spec, strerror(-r));
		close(fd);
		freeaddrinfo(ai);
		return r;
	}
	freeaddrinfo(ai);
	log_info("listening on %s", spec);
	return fd;
}

static int
listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, r = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("cannot listen on %s: a unix socket path has at most "
		    "%zu bytes", path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", path, strerror(-r));
		return r;
	}
	/* Created 0600 from the start: no window where others may connect. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = -errno;
	umask(old);
	if (r == 0 && chmod(path, 0600) < 0)
		r = -errno;
	if (r == 0 && listen(fd, 4) < 0)
		r = -errno;
	if (r != 0) {
		log_error("cannot listen on %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	log_info("listening on unix socket %s", path);
	return fd;
}

int
stub_server_open(struct stub *s)
{
	int fd = s->opts->unix_path ? listen_unix(s->opts->unix_path) :
	    listen_tcp(s->opts->listen);

	if (fd < 0)
		return fd;
	set_nonblock(fd);
	s->lfd = fd;
	ev_io_init(&s->lio, on_accept, fd, EV_READ);
	s->lio.data = s;
	ev_io_start(s->loop, &s->lio);
	ev_idle_init(&s->reap, on_reap);
	s->reap.data = s;
	return 0;
}

static void
conn_free(struct stub_conn *c)
{
	struct stub *s = c->s;

	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	close(c->fd);
	free(c->dbuf);
	free(c->rbuf);
	free(c->out);
	free(c);
	if (s->conn == c)
		s->conn = NULL;
}

void
stub_server_close(struct stub *s)
{
	if (s->conn != NULL)
		stub_conn_close(s->conn);
	if (s->conn != NULL)
		conn_free(s->conn);
	if (s->refusal != NULL)
		refusal_free(s->refusal);
	stub_detach(s);
	if (s->lfd >= 0) {
		ev_io_stop(s->loop, &s->lio);
		close(s->lfd);
		s->lfd = -1;
		if (s->opts->unix_path != NULL)
			unlink(s->opts->unix_path);
	}
	ev_idle_stop(s->loop, &s->reap);
	ev_signal_stop(s->loop, &s->sigint_w);
	ev_signal_stop(s->loop, &s->sigterm_w);
	free(s->tdesc);
	s->tdesc = NULL;
}

/* Everything goes back to the guest before the socket is closed: a gdb
 * that disconnected or died leaves the domain running as it was. */
void
stub_conn_close(struct stub_conn *c)
{
	struct stub *s = c->s;

	if (c->dead)
		return;
	c->dead = true;
	stub_detach(s);
	s->extended = false;
	ev_io_stop(s->loop, &c->rio);
	ev_io_stop(s->loop, &c->wio);
	ev_idle_start(s->loop, &s->reap);
	log_info("gdb connection closed (%llu packets)",
	    (unsigned long long)c->packets);
}

static void
on_reap(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct stub *s = w->data;

	ev_idle_stop(loop, w);
	if (s->conn != NULL && s->conn->dead)
		conn_free(s->conn);
	if (s->quit)
		ev_break(loop, EVBREAK_ALL);
}

void
stub_quit(struct stub *s, int code)
{
	s->quit = true;
	s->exit_code = code;
	if (s->conn != NULL)
		stub_conn_close(s->conn);
	stub_detach(s);
	ev_break(s->loop, EVBREAK_ALL);
}

static void
flush_out(struct stub_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->s->loop, &c->wio);
			return;
		}
		if (n <= 0) {
			log_info("gdb connection lost: %s", strerror(errno));
			stub_conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	ev_io_stop(c->s->loop, &c->wio);
}

static int
out_reserve(struct stub_conn *c, size_t more)
{
	if (c->out_len + more <= c->out_cap)
		return 0;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_len + more <= c->out_cap)
			return 0;
	}
	size_t cap = c->out_cap ? c->out_cap : 4096;
	while (cap < c->out_len + more)
		cap *= 2;
	uint8_t *n = realloc(c->out, cap);
	if (n == NULL)
		return -ENOMEM;
	c->out = n;
	c->out_cap = cap;
	return 0;
}

static void
send_raw(struct stub_conn *c, const uint8_t *p, size_t n)
{
	if (c->dead || out_reserve(c, n) != 0)
		return;
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

/* Frame c->reply and send it; the reply is reset for the next one. */
void
stub_conn_send(struct stub_conn *c)
{
	size_t bound = rsp_encode_bound(c->reply.len);
	ssize_t n;

	if (c->dead)
		return;
	if (rsp_reply_status(&c->reply) != 0) {
		log_error("reply overflowed its buffer; sending E0c");
		rsp_reply_reset(&c->reply);
		rsp_reply_error(&c->reply, ENOMEM);
		bound = rsp_encode_bound(c->reply.len);
	}
	if (out_reserve(c, bound) != 0)
		return;
	n = rsp_reply_frame(&c->reply, c->out + c->out_len, bound, RSP_ENC_RLE);
	if (n > 0) {
		log_debug("-> %.*s", (int)(c->reply.len > 200 ? 200 : c->reply.len),
		    (const char *)c->reply.buf);
		c->out_len += (size_t)n;
	}
	rsp_reply_reset(&c->reply);
	flush_out(c);
}

void
stub_send_console(struct stub *s, const char *text)
{
	struct stub_conn *c = s->conn;

	if (c == NULL || c->dead)
		return;
	rsp_reply_reset(&c->reply);
	rsp_reply_console(&c->reply, text, strlen(text));
	stub_conn_send(c);
}

static void
on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	flush_out(w->data);
}

static void
on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	static uint8_t in[READ_CHUNK];
	struct stub_conn *c = w->data;
	const uint8_t *p = in;
	ssize_t n = read(c->fd, in, sizeof(in));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		log_info("gdb %s", n == 0 ? "disconnected" :
		    "connection failed");
		stub_conn_close(c);
		return;
	}
	while (n > 0 && !c->dead) {
		struct rsp_decoded out;
		size_t used;

		rsp_decoder_feed(&c->dec, p, (size_t)n, &used, &out);
		p += used;
		n -= (ssize_t)used;
		if (out.reply)
			send_raw(c, &out.reply, 1);
		switch (out.event) {
		case RSP_EV_PACKET:
			c->packets++;
			log_debug("<- %.*s", (int)(out.len > 200 ? 200 : out.len),
			    (const char *)out.data);
			stub_dispatch(c, out.data, out.len);
			break;
		case RSP_EV_INTERRUPT:
			log_debug("<- ^C");
			stub_interrupt(c->s);
			break;
		case RSP_EV_MALFORMED:
		case RSP_EV_TOO_LONG:
			log_warn("dropped a %s packet", out.event ==
			    RSP_EV_TOO_LONG ? "too long" : "malformed");
			rsp_reply_reset(&c->reply);
			rsp_reply_error(&c->reply, EINVAL);
			stub_conn_send(c);
			break;
		default:
			break;
		}
	}
	if (!c->dead)
		flush_out(c);
}

static void
on_refusal(struct ev_loop *loop, ev_io *w, int revents)
{
	struct stub_refusal *f = w->data;
	uint8_t buf[4096];
	const uint8_t *p = buf;
	ssize_t n = read(f->fd, buf, sizeof(buf));

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		refusal_free(f);
		return;
	}
	while (n > 0) {
		struct rsp_decoded out;
		size_t used;
		bool fail = false;

		rsp_decoder_feed(&f->dec, p, (size_t)n, &used, &out);
		p += used;
		n -= (ssize_t)used;
		if (out.reply)
			fail = write(f->fd, &out.reply, 1) < 0;
		/* Every packet gets the reason: gdb prints it for the first
		 * one whose answer it checks. */
		if (out.event == RSP_EV_PACKET)
			fail = fail || write(f->fd, f->framed, f->framed_len) < 0;
		if (fail) {
			refusal_free(f);
			return;
		}
	}
}

static void
on_refusal_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	refusal_free(w->data);
}

static void
refusal_free(struct stub_refusal *f)
{
	ev_io_stop(f->s->loop, &f->rio);
	ev_timer_stop(f->s->loop, &f->timer);
	close(f->fd);
	if (f->s->refusal == f)
		f->s->refusal = NULL;
	free(f);
}

/* Tell the newcomer why: an error reply with text ("E.text", which gdb
 * prints) to each packet it sends, until it hangs up or the grace time
 * ends. */
static void
refuse(struct stub *s, int fd, const char *why)
{
	struct stub_refusal *f;
	uint8_t payload[512];
	int len = snprintf((char *)payload, sizeof(payload), "E.vmistub: %s",
	    why);
	ssize_t n;

	log_warn("refused a connection: %s", why);
	if (s->refusal != NULL)
		refusal_free(s->refusal);
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		close(fd);
		return;
	}
	n = rsp_encode(f->framed, sizeof(f->framed), payload,
	    (size_t)len < sizeof(payload) ? (size_t)len : sizeof(payload) - 1, 0);
	f->framed_len = n > 0 ? (size_t)n : 0;
	rsp_decoder_init(&f->dec, f->dbuf, sizeof(f->dbuf));
	f->s = s;
	f->fd = fd;
	ev_io_init(&f->rio, on_refusal, fd, EV_READ);
	f->rio.data = f;
	ev_timer_init(&f->timer, on_refusal_timer, REFUSAL_GRACE, 0);
	f->timer.data = f;
	ev_io_start(s->loop, &f->rio);
	ev_timer_start(s->loop, &f->timer);
	s->refusal = f;
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct stub *s = w->data;
	struct stub_conn *c;
	char why[200];
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	int one = 1, r;

	if (fd < 0)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->conn != NULL) {
		snprintf(why, sizeof(why), "another gdb is already connected "
		    "(domain %u); one client at a time", s->domid);
		refuse(s, fd, why);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->dbuf = malloc(STUB_PACKET_SIZE + 64);
		c->rbuf = malloc(2 * STUB_PACKET_SIZE);
	}
	if (c == NULL || c->dbuf == NULL || c->rbuf == NULL) {
		if (c != NULL) {
			free(c->dbuf);
			free(c->rbuf);
		}
		free(c);
		refuse(s, fd, "out of memory");
		return;
	}
	c->s = s;
	c->fd = fd;
	rsp_decoder_init(&c->dec, c->dbuf, STUB_PACKET_SIZE + 64);
	rsp_reply_init(&c->reply, c->rbuf, 2 * STUB_PACKET_SIZE);
	if (s->opts->domain != NULL) {
		uint32_t domid = 0;

		r = stub_resolve_domain(s->opts->domain, &domid);
		if (r == 0)
			r = stub_attach(s, domid);
		if (r < 0) {
			snprintf(why, sizeof(why), "cannot attach domain %s: %s",
			    s->opts->domain, strerror(-r));
			free(c->dbuf);
			free(c->rbuf);
			free(c);
			refuse(s, fd, why);
			return;
		}
	}
	s->conn = c;
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	c->rio.data = c;
	c->wio.data = c;
	ev_io_start(loop, &c->rio);
	log_info("gdb connected");
}
