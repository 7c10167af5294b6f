/* Shared helpers for the rsp unit tests (cmocka). */
#ifndef VMISTUB_RSP_TEST_H
#define VMISTUB_RSP_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rsp.h"

#define S(lit) ((const uint8_t *)(lit)), (sizeof(lit) - 1)

/* Assert a reply payload equals a string literal, byte for byte. */
#define assert_reply(r, lit) do { \
	assert_int_equal(rsp_reply_status(r), 0); \
	assert_int_equal((r)->len, sizeof(lit) - 1); \
	assert_memory_equal((r)->buf, lit, sizeof(lit) - 1); \
} while (0)

#endif
