/*
 * rsp.h - vmistub's GDB Remote Serial Protocol codec, everything at once:
 * framing (rsp_codec.h), commands (rsp_cmd.h), replies (rsp_reply.h) and
 * the amd64 register table and target description (rsp_regs.h).
 */
#ifndef VMISTUB_RSP_H
#define VMISTUB_RSP_H

#include "rsp_codec.h"
#include "rsp_cmd.h"
#include "rsp_reply.h"
#include "rsp_regs.h"

#endif
