#!/usr/bin/python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (committed; rerun
after adding packet kinds).  Seeds are real gdb traffic and the edge cases
of the GDB manual's "Overview" (escapes, run-length encoding)."""
import hashlib
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

PACKETS = [
    b"?", b"g", b"G" + b"00" * 608, b"p10", b"P10=efbeadde00000000",
    b"mffffffff81000000,1000", b"M1000,2:cc90", b"X1000,4:\x00#}*",
    b"X40003cf7e750,0:", b"x1000,20", b"c", b"cffffffff81000000", b"s",
    b"C0b", b"S05;1234", b"vCont?", b"vCont;c", b"vCont;s:2;c",
    b"vCont;r1000,1010:p1.3;C0b:p1.-1;S05:4;t:1",
    b"Z0,ffffffff81000000,1", b"z0,ffffffff81000000,1", b"Z1,1000,1",
    b"Z2,2000,8", b"Z3,2000,4", b"Z4,2000,2",
    b"Z0,1000,1;X2,2201X1,27;cmds:1,X3,aabbcc", b"Hg0", b"Hc-1",
    b"Hgp1.2", b"T3", b"Tp2.a",
    b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;"
    b"vfork-events+;exec-events+;vContSupported+;QThreadEvents+;"
    b"no-resumed+;memory-tagging+;xmlRegisters=i386",
    b"qSupported:error-message+;binary-upload+",
    b"qXfer:features:read:target.xml:0,ffb",
    b"qXfer:features:read:target.xml:7fe,ffb",
    b"qXfer:threads:read::0,ffb", b"qXfer:osdata:read:processes:0,1000",
    b"qfThreadInfo", b"qsThreadInfo", b"qC", b"qAttached", b"qAttached:1",
    b"qThreadExtraInfo,2", b"qRcmd,68656c70", b"QStartNoAckMode",
    b"vAttach;1", b"vKill;1", b"vMustReplyEmpty", b"D", b"D;1", b"k", b"!",
    b"mffffffffffffffff,2", b"m10000000000000000,1", b"M1000,2:cc9",
    b"qTStatus", b"",
]


def frame(body, sum_ok=True):
    s = sum(body) & 0xFF
    if not sum_ok:
        s ^= 0x5A
    return b"$" + body + b"#%02x" % s


def escape(payload):
    out = bytearray()
    for b in payload:
        if b in b"$#}*":
            out += bytes([0x7D, b ^ 0x20])
        else:
            out.append(b)
    return bytes(out)


def write(target, items):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for item in items:
        name = hashlib.sha1(item).hexdigest()[:16]
        (d / name).write_bytes(item)


def main():
    # fuzz_decode: two control bytes (buffer size, read split), a stream.
    streams = [
        b"+" + b"".join(frame(escape(p)) for p in PACKETS[:12]) + b"\x03",
        b"".join(frame(escape(p)) for p in PACKETS[12:30]) + b"-+",
        b"garbage\r\n" + frame(b"g") + b"$m10,$" + frame(b"?"),
        frame(b"0* ") + frame(b"a0*~b") + frame(b"x*#") + frame(b"}]*!"),
        frame(b"* ") + frame(b"a*\x1d") + frame(b"ab}") + frame(b"g", False),
        frame(b"$#00") + b"$g#6g" + b"$#00" + b"\x03\x03",
        frame(b"X10,4:" + escape(b"\x00#}*")) + frame(b"1" * 700),
    ]
    write("fuzz_decode", [bytes([c, s]) + st for st in streams
                          for c, s in ((3, 7), (0x85, 1), (1, 200))])
    write("fuzz_parse", PACKETS)
    write("fuzz_roundtrip", [bytes([f]) + p for p in PACKETS[:20]
                             for f in (0, 1)] +
          [b"\x01" + b"0" * 300, b"\x01" + bytes(range(256)),
           b"\x00" + b"#$}*" * 10, b"\x01" + b"}}}}****$$$$####"])


if __name__ == "__main__":
    main()
