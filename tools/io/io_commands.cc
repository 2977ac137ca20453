// The synchronous data commands: read, readv, write, writev. Options,
// argument checks, messages and report lines follow qemu-io 7.2
// (qemu-io-cmds.c read_f, readv_f, write_f, writev_f, create_iovec).
#include <getopt.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include "coroutine/run_sync.h"
#include "tools/io/commands.h"
#include "tools/io/cvtnum.h"
#include "tools/io/io_vectors.h"
#include "tools/io/report.h"

namespace coblock::io {

namespace {

constexpr int64_t kSectorSize = 512;

constexpr char kReadHelp[] =
    "\n"
    " reads a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes into the file\n"
    "\n"
    " Reads a segment of the currently open file, optionally dumping it to the\n"
    " standard output stream (with -v option) for subsequent inspection.\n"
    " -b, -- read from the VM state rather than the virtual disk\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -l, -- length for pattern verification (only with -P)\n"
    " -p, -- ignored for backwards compatibility\n"
    " -P, -- use a pattern to verify read data\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    " -s, -- start offset for pattern verification (only with -P)\n"
    " -v, -- dump buffer to standard output\n"
    "\n";

constexpr char kReadvHelp[] =
    "\n"
    " reads a range of bytes from the given offset into multiple buffers\n"
    "\n"
    " Example:\n"
    " 'readv -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n"
    "\n"
    " Reads a segment of the currently open file, optionally dumping it to the\n"
    " standard output stream (with -v option) for subsequent inspection.\n"
    " Uses multiple iovec buffers if more than one byte range is specified.\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -P, -- use a pattern to verify read data\n"
    " -v, -- dump buffer to standard output\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

constexpr char kWriteHelp[] =
    "\n"
    " writes a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file\n"
    "\n"
    " Writes into a segment of the currently open file, using a buffer\n"
    " filled with a set pattern (0xcdcdcdcd).\n"
    " -b, -- write to the VM state rather than the virtual disk\n"
    " -c, -- write compressed data with blk_write_compressed\n"
    " -f, -- use Force Unit Access semantics\n"
    " -n, -- with -z, don't allow slow fallback\n"
    " -p, -- ignored for backwards compatibility\n"
    " -P, -- use different pattern to fill file\n"
    " -s, -- use a pattern file to fill the write buffer\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    " -u, -- with -z, allow unmapping\n"
    " -z, -- write zeroes using blk_co_pwrite_zeroes\n"
    "\n";

constexpr char kWritevHelp[] =
    "\n"
    " writes a range of bytes from the given offset source from multiple buffers\n"
    "\n"
    " Example:\n"
    " 'writev 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n"
    "\n"
    " Writes into a segment of the currently open file, using a buffer\n"
    " filled with a set pattern (0xcdcdcdcd).\n"
    " -P, -- use different pattern to fill file\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -f, -- use Force Unit Access semantics\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

const CmdInfo kReadCmd = {"read",
                          "r",
                          nullptr,
                          2,
                          -1,
                          0,
                          0,
                          "[-abCqv] [-P pattern [-s off] [-l len]] off len",
                          "reads a number of bytes at a specified offset",
                          kReadHelp};
const CmdInfo kReadvCmd = {"readv",
                           nullptr,
                           nullptr,
                           2,
                           -1,
                           0,
                           0,
                           "[-Cqv] [-P pattern] off len [len..]",
                           "reads a number of bytes at a specified offset",
                           kReadvHelp};
const CmdInfo kWriteCmd = {"write",
                           "w",
                           nullptr,
                           2,
                           -1,
                           0,
                           kCmdPermWrite,
                           "[-bcCfnquz] [-P pattern | -s source_file] off len",
                           "writes a number of bytes at a specified offset",
                           kWriteHelp};
const CmdInfo kWritevCmd = {"writev",
                            nullptr,
                            nullptr,
                            2,
                            -1,
                            0,
                            kCmdPermWrite,
                            "[-Cfq] [-P pattern] off len [len..]",
                            "writes a number of bytes at a specified offset",
                            kWritevHelp};

BlockBackend& blk() {
    return *shell().blk;
}

// Each do_* returns the number of operations (1) or a negative errno, and
// sets *total to the bytes transferred, as qemu-io's helpers do.
int do_pread(uint8_t* buf, int64_t offset, int64_t bytes, int64_t* total) {
    Status s = run_sync(blk().loop(), [&] {
        IoVector qiov(buf, static_cast<size_t>(bytes));
        return blk().co_preadv(offset, bytes, qiov);
    });
    if (!s.ok()) return -status_errno(s);
    *total = bytes;
    return 1;
}

int do_pwrite(uint8_t* buf, int64_t offset, int64_t bytes, uint32_t flags, int64_t* total) {
    Status s = run_sync(blk().loop(), [&] {
        IoVector qiov(buf, static_cast<size_t>(bytes));
        return blk().co_pwritev(offset, bytes, qiov, flags);
    });
    if (!s.ok()) return -status_errno(s);
    *total = bytes;
    return 1;
}

int do_pwrite_zeroes(int64_t offset, int64_t bytes, uint32_t flags, int64_t* total) {
    Status s = run_sync(blk().loop(), [&] { return blk().co_pwrite_zeroes(offset, bytes, flags); });
    if (!s.ok()) return -status_errno(s);
    *total = bytes;
    return 1;
}

// VM state lives in formats that have it (qcow2); nothing here has it yet,
// and QEMU's answer for such a node is ENOTSUP.
int do_vmstate() {
    return -ENOTSUP;
}

bool check_sector_aligned(int64_t offset, int64_t count) {
    if (offset % kSectorSize) {
        std::printf("%" PRId64 " is not a sector-aligned value for 'offset'\n", offset);
        return false;
    }
    if (count % kSectorSize) {
        std::printf("%" PRId64 " is not a sector-aligned value for 'count'\n", count);
        return false;
    }
    return true;
}

int read_f(int argc, char** argv) {
    bool Cflag = false, qflag = false, vflag = false;
    bool Pflag = false, sflag = false, lflag = false, bflag = false;
    int pattern = 0;
    int64_t pattern_offset = 0, pattern_count = 0;
    int c;
    while ((c = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        switch (c) {
            case 'b':
                bflag = true;
                break;
            case 'C':
                Cflag = true;
                break;
            case 'l':
                lflag = true;
                pattern_count = cvtnum(optarg);
                if (pattern_count < 0) {
                    print_cvtnum_err(pattern_count, optarg);
                    return static_cast<int>(pattern_count);
                }
                break;
            case 'p':
                break;  // ignored for backwards compatibility
            case 'P':
                Pflag = true;
                pattern = parse_pattern(optarg);
                if (pattern < 0) return -EINVAL;
                break;
            case 'q':
                qflag = true;
                break;
            case 's':
                sflag = true;
                pattern_offset = cvtnum(optarg);
                if (pattern_offset < 0) {
                    print_cvtnum_err(pattern_offset, optarg);
                    return static_cast<int>(pattern_offset);
                }
                break;
            case 'v':
                vflag = true;
                break;
            default:
                return command_usage(kReadCmd);
        }
    }
    if (optind != argc - 2) return command_usage(kReadCmd);

    int64_t offset = cvtnum(argv[optind]);
    if (offset < 0) {
        print_cvtnum_err(offset, argv[optind]);
        return static_cast<int>(offset);
    }
    optind++;
    int64_t count = cvtnum(argv[optind]);
    if (count < 0) {
        print_cvtnum_err(count, argv[optind]);
        return static_cast<int>(count);
    }
    if (count > kRequestMaxBytes) {
        std::printf("length cannot exceed %" PRIu64 ", given %s\n",
                    static_cast<uint64_t>(kRequestMaxBytes), argv[optind]);
        return -EINVAL;
    }
    if (!Pflag && (lflag || sflag)) return command_usage(kReadCmd);
    if (!lflag) pattern_count = count - pattern_offset;
    if (pattern_count < 0 || pattern_count + pattern_offset > count) {
        std::printf("pattern verification range exceeds end of read data\n");
        return -EINVAL;
    }
    if (bflag && !check_sector_aligned(offset, count)) return -EINVAL;

    IoBuffer buf(static_cast<size_t>(count), 0xab);
    int64_t total = 0;
    struct timespec t1 = now_monotonic();
    int ret = bflag ? do_vmstate() : do_pread(buf.data(), offset, count, &total);
    struct timespec t2 = now_monotonic();
    if (ret < 0) {
        std::printf("read failed: %s\n", std::strerror(-ret));
        return ret;
    }
    int ops = ret;
    ret = 0;
    if (Pflag) {
        std::vector<uint8_t> expected(static_cast<size_t>(pattern_count),
                                      static_cast<uint8_t>(pattern));
        if (std::memcmp(buf.data() + pattern_offset, expected.data(), expected.size()) != 0) {
            std::printf("Pattern verification failed at offset %" PRId64 ", %" PRId64 " bytes\n",
                        offset + pattern_offset, pattern_count);
            ret = -EINVAL;
        }
    }
    if (qflag) return ret;
    if (vflag) dump_buffer(buf.data(), offset, count);
    print_report("read", time_sub(t2, t1), offset, count, total, ops, Cflag);
    return ret;
}

int readv_f(int argc, char** argv) {
    bool Cflag = false, qflag = false, vflag = false, Pflag = false;
    int pattern = 0;
    int c;
    while ((c = getopt(argc, argv, "CP:qv")) != -1) {
        switch (c) {
            case 'C':
                Cflag = true;
                break;
            case 'P':
                Pflag = true;
                pattern = parse_pattern(optarg);
                if (pattern < 0) return -EINVAL;
                break;
            case 'q':
                qflag = true;
                break;
            case 'v':
                vflag = true;
                break;
            default:
                return command_usage(kReadvCmd);
        }
    }
    if (optind > argc - 2) return command_usage(kReadvCmd);
    int64_t offset = cvtnum(argv[optind]);
    if (offset < 0) {
        print_cvtnum_err(offset, argv[optind]);
        return static_cast<int>(offset);
    }
    optind++;
    std::unique_ptr<IoVectorBuffer> vec = create_iovec(argv + optind, argc - optind, 0xab);
    if (!vec) return -EINVAL;
    const int64_t size = static_cast<int64_t>(vec->qiov.size());

    struct timespec t1 = now_monotonic();
    Status s = run_sync(blk().loop(), [&] { return blk().co_preadv(offset, size, vec->qiov); });
    struct timespec t2 = now_monotonic();
    if (!s.ok()) {
        std::printf("readv failed: %s\n", std::strerror(status_errno(s)));
        return -status_errno(s);
    }
    int ret = 0;
    if (Pflag && !vec->matches(pattern)) {
        std::printf("Pattern verification failed at offset %" PRId64 ", %zu bytes\n", offset,
                    vec->qiov.size());
        ret = -EINVAL;
    }
    if (qflag) return ret;
    if (vflag) dump_buffer(vec->data(), offset, size);
    print_report("read", time_sub(t2, t1), offset, size, size, 1, Cflag);
    return ret;
}

// write -s: the buffer is the file's bytes, repeated to fill `length`.
std::unique_ptr<IoBuffer> buffer_from_file(size_t length, const char* file_name) {
    std::FILE* f = std::fopen(file_name, "r");
    if (!f) {
        std::perror(file_name);
        return nullptr;
    }
    auto buf = std::make_unique<IoBuffer>(length, 0);
    size_t pattern_len = std::fread(buf->data(), 1, length, f);
    if (std::ferror(f)) {
        std::perror(file_name);
        std::fclose(f);
        return nullptr;
    }
    std::fclose(f);
    if (pattern_len == 0) {
        std::fprintf(stderr, "%s: file is empty\n", file_name);
        return nullptr;
    }
    for (size_t done = pattern_len; done < length; done += pattern_len)
        std::memcpy(buf->data() + done, buf->data(), std::min(pattern_len, length - done));
    return buf;
}

int write_f(int argc, char** argv) {
    bool Cflag = false, qflag = false, bflag = false;
    bool Pflag = false, zflag = false, cflag = false, sflag = false;
    uint32_t flags = 0;
    int pattern = 0xcd;
    const char* file_name = nullptr;
    int c;
    while ((c = getopt(argc, argv, "bcCfnpP:qs:uz")) != -1) {
        switch (c) {
            case 'b':
                bflag = true;
                break;
            case 'c':
                cflag = true;
                break;
            case 'C':
                Cflag = true;
                break;
            case 'f':
                flags |= kReqFua;
                break;
            case 'n':
                flags |= kReqNoFallback;
                break;
            case 'p':
                break;  // ignored for backwards compatibility
            case 'P':
                Pflag = true;
                pattern = parse_pattern(optarg);
                if (pattern < 0) return -EINVAL;
                break;
            case 'q':
                qflag = true;
                break;
            case 's':
                sflag = true;
                file_name = optarg;
                break;
            case 'u':
                flags |= kReqMayUnmap;
                break;
            case 'z':
                zflag = true;
                break;
            default:
                return command_usage(kWriteCmd);
        }
    }
    if (optind != argc - 2) return command_usage(kWriteCmd);
    if (bflag && zflag) {
        std::printf("-b and -z cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & kReqFua) && (bflag || cflag)) {
        std::printf("-f and -b or -c cannot be specified at the same time\n");
        return -EINVAL;
    }
    if ((flags & kReqNoFallback) && !zflag) {
        std::printf("-n requires -z to be specified\n");
        return -EINVAL;
    }
    if ((flags & kReqMayUnmap) && !zflag) {
        std::printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (zflag + Pflag + sflag > 1) {
        std::printf("Only one of -z, -P, and -s can be specified at the same time\n");
        return -EINVAL;
    }
    int64_t offset = cvtnum(argv[optind]);
    if (offset < 0) {
        print_cvtnum_err(offset, argv[optind]);
        return static_cast<int>(offset);
    }
    optind++;
    int64_t count = cvtnum(argv[optind]);
    if (count < 0) {
        print_cvtnum_err(count, argv[optind]);
        return static_cast<int>(count);
    }
    if (count > kRequestMaxBytes && !(flags & kReqNoFallback)) {
        std::printf("length cannot exceed %" PRIu64 " without -n, given %s\n",
                    static_cast<uint64_t>(kRequestMaxBytes), argv[optind]);
        return -EINVAL;
    }
    if ((bflag || cflag) && !check_sector_aligned(offset, count)) return -EINVAL;

    std::unique_ptr<IoBuffer> buf;
    if (!zflag) {
        buf = sflag ? buffer_from_file(static_cast<size_t>(count), file_name)
                    : std::make_unique<IoBuffer>(static_cast<size_t>(count), pattern);
        if (!buf) return -EINVAL;
    }
    int64_t total = 0;
    struct timespec t1 = now_monotonic();
    int ret;
    if (bflag) {
        ret = do_vmstate();
    } else if (zflag) {
        ret = do_pwrite_zeroes(offset, count, flags | kReqZeroWrite, &total);
    } else if (cflag) {
        ret = do_pwrite(buf->data(), offset, count, kReqWriteCompressed, &total);
    } else {
        ret = do_pwrite(buf->data(), offset, count, flags, &total);
    }
    struct timespec t2 = now_monotonic();
    if (ret < 0) {
        std::printf("write failed: %s\n", std::strerror(-ret));
        return ret;
    }
    if (qflag) return 0;
    print_report("wrote", time_sub(t2, t1), offset, count, total, ret, Cflag);
    return 0;
}

int writev_f(int argc, char** argv) {
    bool Cflag = false, qflag = false;
    uint32_t flags = 0;
    int pattern = 0xcd;
    int c;
    while ((c = getopt(argc, argv, "CfqP:")) != -1) {
        switch (c) {
            case 'C':
                Cflag = true;
                break;
            case 'f':
                flags |= kReqFua;
                break;
            case 'q':
                qflag = true;
                break;
            case 'P':
                pattern = parse_pattern(optarg);
                if (pattern < 0) return -EINVAL;
                break;
            default:
                return command_usage(kWritevCmd);
        }
    }
    if (optind > argc - 2) return command_usage(kWritevCmd);
    int64_t offset = cvtnum(argv[optind]);
    if (offset < 0) {
        print_cvtnum_err(offset, argv[optind]);
        return static_cast<int>(offset);
    }
    optind++;
    std::unique_ptr<IoVectorBuffer> vec = create_iovec(argv + optind, argc - optind, pattern);
    if (!vec) return -EINVAL;
    const int64_t size = static_cast<int64_t>(vec->qiov.size());

    struct timespec t1 = now_monotonic();
    Status s =
        run_sync(blk().loop(), [&] { return blk().co_pwritev(offset, size, vec->qiov, flags); });
    struct timespec t2 = now_monotonic();
    if (!s.ok()) {
        std::printf("writev failed: %s\n", std::strerror(status_errno(s)));
        return -status_errno(s);
    }
    if (qflag) return 0;
    print_report("wrote", time_sub(t2, t1), offset, size, size, 1, Cflag);
    return 0;
}

}  // namespace

void register_io_commands() {
    CmdInfo read = kReadCmd, readv = kReadvCmd, write = kWriteCmd, writev = kWritevCmd;
    read.handler = read_f;
    readv.handler = readv_f;
    write.handler = write_f;
    writev.handler = writev_f;
    add_command(read);
    add_command(readv);
    add_command(write);
    add_command(writev);
}

}  // namespace coblock::io
