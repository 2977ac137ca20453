// Everything coblock-io prints in a fixed format: the two report lines of an
// I/O command, the -C machine line, the -v hexdump, size strings and the
// "prgname: " error prefix. Follows qemu-io 7.2 (qemu-io-cmds.c print_report,
// dump_buffer, cvtstr, timestr; util/qemu-error.c error_report).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace coblock::io {

// The program name (basename of argv[0]): the prefix of error messages and
// the prompt "NAME> ". qemu-io takes it from argv[0] too, so a symlink named
// qemu-io makes coblock-io print exactly what qemu-io prints.
void set_program_name(const char* argv0);
const char* program_name();

// "NAME: message\n" on stderr (QEMU's error_report), and
// "NAME: warning: message\n" (warn_report).
void error_report(const std::string& message);
void warn_report(const std::string& message);

// qemu-io's cvtstr: 512 -> "512 bytes", 1024 -> "1 KiB", 1536 ->
// "1.500 KiB" (three decimals, a ".000" tail dropped).
std::string cvtstr(double value);

// A CLOCK_MONOTONIC reading, and b - a.
struct timespec now_monotonic();
struct timespec time_sub(struct timespec b, struct timespec a);

// The report after read/write/discard/aio completions, on stdout:
//   "<op> <total>/<count> bytes at offset <offset>"
//   "<cvtstr(total)>, <ops> ops; <time> (<rate>/sec and <ops/sec> ops/sec)"
// or with `machine` (-C) one line "total,ops,h:mm:ss.ss,bytes/s,ops/s".
void print_report(const char* op, struct timespec elapsed, int64_t offset, int64_t count,
                  int64_t total, int ops, bool machine);

// The -v dump: 16 bytes a line, "%08x:  " address, hex bytes, then the
// bytes as text (isalnum, else '.').
void dump_buffer(const uint8_t* buffer, int64_t offset, int64_t length);

}  // namespace coblock::io
