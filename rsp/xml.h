/*
 * xml.h - rsp's internal writer for the XML documents gdb reads through
 * qXfer (target description, thread list): snprintf-like, it counts the
 * full length even past the caller's buffer, which it never overruns.
 */
#ifndef VMISTUB_RSP_XML_H
#define VMISTUB_RSP_XML_H

#include <stddef.h>

struct sink {
	char *buf;
	size_t cap;
	size_t len;   /* the full length, even past cap */
};

void rsp_xml_put(struct sink *s, const char *str);
/* ' name="value"', the value escaped for an attribute. */
void rsp_xml_attr(struct sink *s, const char *name, const char *value);
void rsp_xml_attr_u(struct sink *s, const char *name, unsigned long long v);
/* Text with &, <, >, " and ' escaped. */
void rsp_xml_text(struct sink *s, const char *text);
/* NUL-terminate (within cap) and return the full length. */
size_t rsp_xml_end(struct sink *s);

#endif
