/*
 * rsp_cmd.h - parse one GDB RSP packet into a typed command.
 *
 * Covers the packets vmistub serves (GDB manual, "Packets", "General Query
 * Packets", "Stop Reply Packets" for vCont).  Pointers in the result point
 * into the packet (borrowed: valid as long as the packet is).
 */
#ifndef VMISTUB_RSP_CMD_H
#define VMISTUB_RSP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rsp_cmd_kind {
	RSP_CMD_UNKNOWN = 0,     /* answer with an empty packet */
	RSP_CMD_HALT_REASON,     /* ? */
	RSP_CMD_READ_REGS,       /* g */
	RSP_CMD_WRITE_REGS,      /* G XX... */
	RSP_CMD_READ_REG,        /* p n */
	RSP_CMD_WRITE_REG,       /* P n=r */
	RSP_CMD_READ_MEM,        /* m addr,length */
	RSP_CMD_WRITE_MEM,       /* M addr,length:XX... */
	RSP_CMD_WRITE_MEM_BIN,   /* X addr,length:binary */
	RSP_CMD_READ_MEM_BIN,    /* x addr,length (binary-upload) */
	RSP_CMD_CONTINUE,        /* c [addr] */
	RSP_CMD_STEP,            /* s [addr] */
	RSP_CMD_CONTINUE_SIG,    /* C sig[;addr] */
	RSP_CMD_STEP_SIG,        /* S sig[;addr] */
	RSP_CMD_VCONT_QUERY,     /* vCont? */
	RSP_CMD_VCONT,           /* vCont[;action[:thread-id]]... */
	RSP_CMD_INSERT_BP,       /* Z type,addr,kind[;cond_list][;cmds:...] */
	RSP_CMD_REMOVE_BP,       /* z type,addr,kind */
	RSP_CMD_SET_THREAD,      /* H op thread-id */
	RSP_CMD_THREAD_ALIVE,    /* T thread-id */
	RSP_CMD_QSUPPORTED,      /* qSupported[:gdbfeature[;...]] */
	RSP_CMD_QXFER_READ,      /* qXfer:object:read:annex:offset,length */
	RSP_CMD_QFTHREADINFO,    /* qfThreadInfo */
	RSP_CMD_QSTHREADINFO,    /* qsThreadInfo */
	RSP_CMD_QC,              /* qC */
	RSP_CMD_QATTACHED,       /* qAttached[:pid] */
	RSP_CMD_QTHREADEXTRAINFO,/* qThreadExtraInfo,thread-id */
	RSP_CMD_QRCMD,           /* qRcmd,command(hex) */
	RSP_CMD_START_NOACK,     /* QStartNoAckMode */
	RSP_CMD_VATTACH,         /* vAttach;pid */
	RSP_CMD_VKILL,           /* vKill;pid */
	RSP_CMD_VMUSTREPLYEMPTY, /* vMustReplyEmpty: must get "" */
	RSP_CMD_DETACH,          /* D [;pid] */
	RSP_CMD_KILL,            /* k */
	RSP_CMD_EXTENDED,        /* ! */
	RSP_CMD__COUNT
};

/* Thread ids ("thread-id syntax"): -1 means all, 0 means any. */
#define RSP_ID_ALL (-1)
#define RSP_ID_ANY 0

struct rsp_thread_id {
	bool has_pid;            /* multiprocess form p<pid>.<tid> */
	int64_t pid;             /* RSP_ID_ALL, RSP_ID_ANY or a positive id */
	int64_t tid;             /* p<pid> alone means every thread: ALL */
};

/* A run of hex digits standing for len bytes, borrowed from the packet.
 * Already checked to hold exactly 2 * len valid digits. */
struct rsp_hex {
	const uint8_t *hex;
	size_t len;
};

enum rsp_vcont_op {
	RSP_VCONT_CONTINUE,      /* c */
	RSP_VCONT_CONTINUE_SIG,  /* C sig */
	RSP_VCONT_STEP,          /* s */
	RSP_VCONT_STEP_SIG,      /* S sig */
	RSP_VCONT_STOP,          /* t */
	RSP_VCONT_RANGE,         /* r start,end: step while start <= pc < end */
};

struct rsp_vcont_action {
	enum rsp_vcont_op op;
	uint8_t sig;
	bool has_thread;         /* no thread: applies to every other thread */
	struct rsp_thread_id thread;
	uint64_t start, end;     /* RSP_VCONT_RANGE */
};

#define RSP_VCONT_MAX 64
#define RSP_BP_EXPR_MAX 16

enum rsp_bp_type {
	RSP_BP_SOFTWARE = 0,     /* Z0 */
	RSP_BP_HARDWARE = 1,     /* Z1 */
	RSP_BP_WRITE_WATCH = 2,  /* Z2 */
	RSP_BP_READ_WATCH = 3,   /* Z3 */
	RSP_BP_ACCESS_WATCH = 4, /* Z4 */
};

/* gdb features named in qSupported. */
enum rsp_gdb_feature {
	RSP_GF_MULTIPROCESS    = 1u << 0,
	RSP_GF_SWBREAK         = 1u << 1,
	RSP_GF_HWBREAK         = 1u << 2,
	RSP_GF_QRELOCINSN      = 1u << 3,
	RSP_GF_FORK_EVENTS     = 1u << 4,
	RSP_GF_VFORK_EVENTS    = 1u << 5,
	RSP_GF_EXEC_EVENTS     = 1u << 6,
	RSP_GF_VCONT_SUPPORTED = 1u << 7,
	RSP_GF_QTHREADEVENTS   = 1u << 8,
	RSP_GF_NO_RESUMED      = 1u << 9,
	RSP_GF_MEMORY_TAGGING  = 1u << 10,
	RSP_GF_ERROR_MESSAGE   = 1u << 11,
	RSP_GF_BINARY_UPLOAD   = 1u << 12,
};

enum rsp_xfer_object {
	RSP_XFER_FEATURES,       /* annex: the XML file name, e.g. target.xml */
	RSP_XFER_THREADS,        /* annex empty */
	RSP_XFER_OSDATA,         /* annex: the table type, may be empty */
};

struct rsp_command {
	enum rsp_cmd_kind kind;
	union {
		struct {                         /* m M X x */
			uint64_t addr;
			uint64_t len;
			/* M: 2*len hex digits; X: len bytes, unescaped */
			const uint8_t *data;
		} mem;
		struct rsp_hex regs;             /* G */
		struct {                         /* p P */
			uint32_t regno;
			struct rsp_hex value;    /* P only */
		} reg;
		struct {                         /* c s C S */
			bool has_addr;
			uint64_t addr;
			uint8_t sig;             /* C S */
		} resume;
		struct {                         /* vCont */
			size_t n;
			struct rsp_vcont_action action[RSP_VCONT_MAX];
		} vcont;
		struct {                         /* Z z */
			enum rsp_bp_type type;
			uint64_t addr;
			uint64_t kind;
			size_t ncond;
			struct rsp_hex cond[RSP_BP_EXPR_MAX];
			bool has_cmds;
			bool persist;
			size_t ncmd;
			struct rsp_hex cmd[RSP_BP_EXPR_MAX];
		} bp;
		struct {                         /* H */
			uint8_t op;              /* 'g' or 'c' */
			struct rsp_thread_id thread;
		} set_thread;
		struct rsp_thread_id thread;     /* T qThreadExtraInfo */
		struct {                         /* qSupported */
			uint32_t features;       /* enum rsp_gdb_feature bits */
			/* xmlRegisters=... value, or NULL */
			const uint8_t *xml_registers;
			size_t xml_registers_len;
		} supported;
		struct {                         /* qXfer:object:read */
			enum rsp_xfer_object object;
			const uint8_t *annex;
			size_t annex_len;
			uint64_t offset;
			uint64_t length;
		} xfer;
		struct {                         /* qAttached vAttach vKill D */
			bool has_pid;
			int64_t pid;
		} process;
		struct rsp_hex rcmd;             /* qRcmd: the command text */
	} u;
};

/*
 * Parse packet[0..len).  Returns 0 with cmd->kind set (RSP_CMD_UNKNOWN for
 * anything vmistub does not serve: reply ""), or, for a known command with
 * bad arguments, cmd->kind set and -EINVAL (malformed), -ERANGE (a number
 * or an address range past 64 bits) or -E2BIG (more vCont actions or
 * breakpoint expressions than the fixed arrays hold): reply "Exx".
 */
int rsp_parse(const uint8_t *packet, size_t len, struct rsp_command *cmd);

/* Command properties for the stub's dispatch. */
#define RSP_CMDF_RESUMES 0x1u  /* the reply is a stop reply, sent later */
#define RSP_CMDF_NO_REPLY 0x2u /* gdb expects no reply at all (k) */

const char *rsp_cmd_name(enum rsp_cmd_kind kind);
unsigned rsp_cmd_flags(enum rsp_cmd_kind kind);

/* Parse one thread-id at *p (advanced past it).  0 or -EINVAL/-ERANGE. */
int rsp_parse_thread_id(const uint8_t **p, const uint8_t *end,
			struct rsp_thread_id *id);
/* Parse a non-empty run of hex digits as a 64-bit value.  0 or
 * -EINVAL (no digit) / -ERANGE (more than 64 bits). */
int rsp_parse_hex_u64(const uint8_t **p, const uint8_t *end, uint64_t *v);

#endif
