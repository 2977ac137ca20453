// Report lines, size strings and error prefixes, byte-for-byte as qemu-io 7.2
// formats them (qemu-io-cmds.c, util/qemu-error.c). Tests filter only the
// timing part of line 2 (iotests' _filter_qemu_io), so the rest must match.
#include "tools/io/report.h"

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace coblock::io {

namespace {

std::string g_program_name = "coblock-io";

// qemu-io's tdiv: a rate over the elapsed time (inf when it is zero, as in C).
double per_second(double value, struct timespec t) {
    double seconds = static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
    return value / seconds;
}

// qemu-io's timestr: "%05.2f sec" below one second, else h:mm:ss.ss; -C
// always uses the long form (VERBOSE_FIXED_TIME).
std::string time_string(struct timespec t, bool verbose_fixed) {
    char text[64];
    double fraction = static_cast<double>(t.tv_nsec) / 1e9;
    auto seconds = static_cast<unsigned>(t.tv_sec);
    if (verbose_fixed || t.tv_sec) {
        std::snprintf(text, sizeof(text), "%u:%02u:%05.2f", seconds / 3600, (seconds % 3600) / 60,
                      static_cast<double>(seconds % 60) + fraction);
    } else {
        std::snprintf(text, sizeof(text), "%05.2f sec", fraction);
    }
    return text;
}

}  // namespace

void set_program_name(const char* argv0) {
    const char* slash = std::strrchr(argv0, '/');
    g_program_name = slash ? slash + 1 : argv0;
}

const char* program_name() {
    return g_program_name.c_str();
}

void error_report(const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", g_program_name.c_str(), message.c_str());
}

void warn_report(const std::string& message) {
    std::fprintf(stderr, "%s: warning: %s\n", g_program_name.c_str(), message.c_str());
}

std::string cvtstr(double value) {
    static constexpr struct {
        double unit;
        const char* suffix;
    } kUnits[] = {
        {1152921504606846976.0, " EiB"}, {1125899906842624.0, " PiB"}, {1099511627776.0, " TiB"},
        {1073741824.0, " GiB"},          {1048576.0, " MiB"},          {1024.0, " KiB"},
    };
    char text[64];
    const char* suffix = " bytes";
    std::snprintf(text, sizeof(text), "%f", value);
    for (const auto& u : kUnits) {
        if (value >= u.unit) {
            suffix = u.suffix;
            std::snprintf(text, sizeof(text), "%.3f", value / u.unit);
            break;
        }
    }
    // qemu-io cuts at the first ".000" (so "1.000" -> "1", but "1.500" stays).
    std::string result = text;
    std::size_t trim = result.find(".000");
    if (trim != std::string::npos) result.resize(trim);
    return result + suffix;
}

struct timespec now_monotonic() {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

struct timespec time_sub(struct timespec b, struct timespec a) {
    struct timespec d;
    d.tv_sec = b.tv_sec - a.tv_sec;
    d.tv_nsec = b.tv_nsec - a.tv_nsec;
    if (d.tv_nsec < 0) {
        d.tv_sec--;
        d.tv_nsec += 1000000000;
    }
    return d;
}

void print_report(const char* op, struct timespec elapsed, int64_t offset, int64_t count,
                  int64_t total, int ops, bool machine) {
    std::string ts = time_string(elapsed, machine);
    if (!machine) {
        std::printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", op, total, count,
                    offset);
        std::printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n",
                    cvtstr(static_cast<double>(total)).c_str(), ops, ts.c_str(),
                    cvtstr(per_second(static_cast<double>(total), elapsed)).c_str(),
                    per_second(ops, elapsed));
    } else {
        std::printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, ops, ts.c_str(),
                    per_second(static_cast<double>(total), elapsed), per_second(ops, elapsed));
    }
}

void dump_buffer(const uint8_t* buffer, int64_t offset, int64_t length) {
    for (int64_t i = 0; i < length; i += 16) {
        const uint8_t* line = buffer + i;
        int64_t n = length - i < 16 ? length - i : 16;
        std::printf("%08" PRIx64 ":  ", static_cast<uint64_t>(offset + i));
        for (int64_t j = 0; j < n; j++)
            std::printf("%02x ", line[j]);
        std::printf(" ");
        for (int64_t j = 0; j < n; j++)
            std::putchar(std::isalnum(line[j]) ? line[j] : '.');
        std::printf("\n");
    }
}

}  // namespace coblock::io
