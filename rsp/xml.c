/*
 * xml.c - the XML writer behind target.xml and the qXfer:threads document
 * (GDB manual, "Target Description Format", "Thread List Format").
 */
#include <string.h>

#include "rsp_reply.h"
#include "xml.h"

static void put_n(struct sink *s, const char *str, size_t n)
{
	if (s->len < s->cap) {
		size_t room = s->cap - s->len;

		memcpy(s->buf + s->len, str, n < room ? n : room);
	}
	s->len += n;
}

void rsp_xml_put(struct sink *s, const char *str)
{
	put_n(s, str, strlen(str));
}

/* The five characters XML reserves, good in text and in attributes. */
static const char *const entity[256] = {
	['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
	['"'] = "&quot;", ['\''] = "&apos;",
};

void rsp_xml_text(struct sink *s, const char *text)
{
	for (const char *p = text; *p; p++) {
		const char *e = entity[(unsigned char)*p];

		if (e)
			rsp_xml_put(s, e);
		else
			put_n(s, p, 1);
	}
}

void rsp_xml_attr(struct sink *s, const char *name, const char *value)
{
	rsp_xml_put(s, " ");
	rsp_xml_put(s, name);
	rsp_xml_put(s, "=\"");
	rsp_xml_text(s, value);
	rsp_xml_put(s, "\"");
}

void rsp_xml_attr_u(struct sink *s, const char *name, unsigned long long v)
{
	char tmp[24];
	size_t n = sizeof(tmp) - 1;

	tmp[n] = '\0';
	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	rsp_xml_attr(s, name, tmp + n);
}

size_t rsp_xml_end(struct sink *s)
{
	if (s->cap > 0)
		s->buf[s->len < s->cap ? s->len : s->cap - 1] = '\0';
	return s->len;
}

size_t rsp_threads_xml_write(char *buf, size_t cap,
			     const struct rsp_thread_info *t, size_t n,
			     bool multiprocess)
{
	struct sink s = { buf, cap, 0 };

	rsp_xml_put(&s, "<?xml version=\"1.0\"?>\n<threads>\n");
	for (size_t i = 0; i < n; i++) {
		/* The id uses the thread-id syntax, the same as in packets. */
		uint8_t idbuf[48];
		struct rsp_reply id;

		rsp_reply_init(&id, idbuf, sizeof(idbuf) - 1);
		rsp_reply_thread_id(&id, &t[i].id, multiprocess);
		idbuf[id.len] = '\0';
		rsp_xml_put(&s, "  <thread");
		rsp_xml_attr(&s, "id", (const char *)idbuf);
		/* gdb reads core as a decimal number (remote.c, start_thread
		 * with gdb_xml_parse_attr_ulongest). */
		if (t[i].core >= 0)
			rsp_xml_attr_u(&s, "core", (unsigned long long)t[i].core);
		if (t[i].name)
			rsp_xml_attr(&s, "name", t[i].name);
		if (t[i].extra) {
			rsp_xml_put(&s, ">");
			rsp_xml_text(&s, t[i].extra);
			rsp_xml_put(&s, "</thread>\n");
		} else {
			rsp_xml_put(&s, "/>\n");
		}
	}
	rsp_xml_put(&s, "</threads>\n");
	return rsp_xml_end(&s);
}
