// The asynchronous commands: aio_read and aio_write submit through the
// BlockBackend callback API and print their report from the completion
// (whenever the loop next runs: a later command, aio_flush, sleep, exit);
// aio_flush drains. Follows qemu-io 7.2 qemu-io-cmds.c aio_*_f/aio_*_done.
#include <getopt.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "tools/io/commands.h"
#include "tools/io/cvtnum.h"
#include "tools/io/io_vectors.h"
#include "tools/io/report.h"

namespace coblock::io {

namespace {

constexpr char kAioReadHelp[] =
    "\n"
    " asynchronously reads a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'aio_read -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n"
    "\n"
    " Reads a segment of the currently open file, optionally dumping it to the\n"
    " standard output stream (with -v option) for subsequent inspection.\n"
    " The read is performed asynchronously and the aio_flush command must be\n"
    " used to ensure all outstanding aio requests have been completed.\n"
    " Note that due to its asynchronous nature, this command will be\n"
    " considered successful once the request is submitted, independently\n"
    " of potential I/O errors or pattern mismatches.\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -P, -- use a pattern to verify read data\n"
    " -i, -- treat request as invalid, for exercising stats\n"
    " -v, -- dump buffer to standard output\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

constexpr char kAioWriteHelp[] =
    "\n"
    " asynchronously writes a range of bytes from the given offset source\n"
    " from multiple buffers\n"
    "\n"
    " Example:\n"
    " 'aio_write 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n"
    "\n"
    " Writes into a segment of the currently open file, using a buffer\n"
    " filled with a set pattern (0xcdcdcdcd).\n"
    " The write is performed asynchronously and the aio_flush command must be\n"
    " used to ensure all outstanding aio requests have been completed.\n"
    " Note that due to its asynchronous nature, this command will be\n"
    " considered successful once the request is submitted, independently\n"
    " of potential I/O errors or pattern mismatches.\n"
    " -P, -- use different pattern to fill file\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -f, -- use Force Unit Access semantics\n"
    " -i, -- treat request as invalid, for exercising stats\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    " -u, -- with -z, allow unmapping\n"
    " -z, -- write zeroes using blk_aio_pwrite_zeroes\n"
    "\n";

const CmdInfo kAioReadCmd = {"aio_read",
                             nullptr,
                             nullptr,
                             2,
                             -1,
                             0,
                             0,
                             "[-Ciqv] [-P pattern] off len [len..]",
                             "asynchronously reads a number of bytes",
                             kAioReadHelp};
const CmdInfo kAioWriteCmd = {"aio_write",
                              nullptr,
                              nullptr,
                              2,
                              -1,
                              0,
                              kCmdPermWrite,
                              "[-Cfiquz] [-P pattern] off len [len..]",
                              "asynchronously writes a number of bytes",
                              kAioWriteHelp};

// One request in flight; freed by its completion.
struct AioContext {
    std::unique_ptr<IoVectorBuffer> vec;  // null for aio_write -z
    int64_t offset = 0;
    int64_t size = 0;
    bool Cflag = false, qflag = false, vflag = false, Pflag = false, zflag = false;
    int pattern = 0;
    // qemu-io never sets t1 for aio_write -z, so its report measures from
    // the clock's epoch; kept, as the report line is compared (filtered).
    struct timespec t1 = {0, 0};
};

void aio_read_done(void* opaque, int ret) {
    std::unique_ptr<AioContext> ctx(static_cast<AioContext*>(opaque));
    struct timespec t2 = now_monotonic();
    if (ret < 0) {
        std::printf("readv failed: %s\n", std::strerror(-ret));
        return;
    }
    // A mismatch is reported but, the command having returned long ago,
    // does not change the exit status (as in qemu-io).
    if (ctx->Pflag && !ctx->vec->matches(ctx->pattern)) {
        std::printf("Pattern verification failed at offset %" PRId64 ", %zu bytes\n", ctx->offset,
                    static_cast<size_t>(ctx->size));
    }
    if (ctx->qflag) return;
    if (ctx->vflag) dump_buffer(ctx->vec->data(), ctx->offset, ctx->size);
    print_report("read", time_sub(t2, ctx->t1), ctx->offset, ctx->size, ctx->size, 1, ctx->Cflag);
}

void aio_write_done(void* opaque, int ret) {
    std::unique_ptr<AioContext> ctx(static_cast<AioContext*>(opaque));
    struct timespec t2 = now_monotonic();
    if (ret < 0) {
        std::printf("aio_write failed: %s\n", std::strerror(-ret));
        return;
    }
    if (ctx->qflag) return;
    print_report("wrote", time_sub(t2, ctx->t1), ctx->offset, ctx->size, ctx->size, 1, ctx->Cflag);
}

int aio_read_f(int argc, char** argv) {
    auto ctx = std::make_unique<AioContext>();
    int c;
    while ((c = getopt(argc, argv, "CP:iqv")) != -1) {
        switch (c) {
            case 'C':
                ctx->Cflag = true;
                break;
            case 'P':
                ctx->Pflag = true;
                ctx->pattern = parse_pattern(optarg);
                if (ctx->pattern < 0) return -EINVAL;
                break;
            case 'i':
                // qemu-io only counts an invalid request in its statistics.
                std::printf("injecting invalid read request\n");
                return 0;
            case 'q':
                ctx->qflag = true;
                break;
            case 'v':
                ctx->vflag = true;
                break;
            default:
                return command_usage(kAioReadCmd);
        }
    }
    if (optind > argc - 2) return command_usage(kAioReadCmd);
    ctx->offset = cvtnum(argv[optind]);
    if (ctx->offset < 0) {
        print_cvtnum_err(ctx->offset, argv[optind]);
        return static_cast<int>(ctx->offset);
    }
    optind++;
    ctx->vec = create_iovec(argv + optind, argc - optind, 0xab);
    if (!ctx->vec) return -EINVAL;
    ctx->size = static_cast<int64_t>(ctx->vec->qiov.size());
    ctx->t1 = now_monotonic();
    AioContext* raw = ctx.release();
    shell().blk->aio_preadv(static_cast<uint64_t>(raw->offset), &raw->vec->qiov, aio_read_done,
                            raw);
    return 0;
}

int aio_write_f(int argc, char** argv) {
    auto ctx = std::make_unique<AioContext>();
    uint32_t flags = 0;
    int pattern = 0xcd;
    int c;
    while ((c = getopt(argc, argv, "CfiqP:uz")) != -1) {
        switch (c) {
            case 'C':
                ctx->Cflag = true;
                break;
            case 'f':
                flags |= kReqFua;
                break;
            case 'q':
                ctx->qflag = true;
                break;
            case 'u':
                flags |= kReqMayUnmap;
                break;
            case 'P':
                // qemu-io 7.2 never sets Pflag here, so "-z and -P" is not
                // refused: -z wins and zeroes are written.
                pattern = parse_pattern(optarg);
                if (pattern < 0) return -EINVAL;
                break;
            case 'i':
                std::printf("injecting invalid write request\n");
                return 0;
            case 'z':
                ctx->zflag = true;
                break;
            default:
                return command_usage(kAioWriteCmd);
        }
    }
    if (optind > argc - 2) return command_usage(kAioWriteCmd);
    if (ctx->zflag && optind != argc - 2) {
        std::printf("-z supports only a single length parameter\n");
        return -EINVAL;
    }
    if ((flags & kReqMayUnmap) && !ctx->zflag) {
        std::printf("-u requires -z to be specified\n");
        return -EINVAL;
    }
    if (ctx->zflag && ctx->Pflag) {
        std::printf("-z and -P cannot be specified at the same time\n");
        return -EINVAL;
    }
    ctx->offset = cvtnum(argv[optind]);
    if (ctx->offset < 0) {
        print_cvtnum_err(ctx->offset, argv[optind]);
        return static_cast<int>(ctx->offset);
    }
    optind++;
    if (ctx->zflag) {
        int64_t count = cvtnum(argv[optind]);
        if (count < 0) {
            print_cvtnum_err(count, argv[optind]);
            return static_cast<int>(count);
        }
        ctx->size = count;
        AioContext* raw = ctx.release();
        shell().blk->aio_pwrite_zeroes(static_cast<uint64_t>(raw->offset),
                                       static_cast<uint64_t>(count), aio_write_done, raw, flags);
        return 0;
    }
    ctx->vec = create_iovec(argv + optind, argc - optind, pattern);
    if (!ctx->vec) return -EINVAL;
    ctx->size = static_cast<int64_t>(ctx->vec->qiov.size());
    ctx->t1 = now_monotonic();
    AioContext* raw = ctx.release();
    shell().blk->aio_pwritev(static_cast<uint64_t>(raw->offset), &raw->vec->qiov, aio_write_done,
                             raw, flags);
    return 0;
}

// qemu-io's aio_flush is blk_drain_all: wait for every request, flush nothing.
int aio_flush_f(int, char**) {
    shell().blk->drain();
    return 0;
}

}  // namespace

void register_aio_commands() {
    CmdInfo aio_read = kAioReadCmd, aio_write = kAioWriteCmd;
    aio_read.handler = aio_read_f;
    aio_write.handler = aio_write_f;
    add_command(aio_read);
    add_command(aio_write);
    add_command({"aio_flush", nullptr, aio_flush_f, 0, 0, 0, 0, nullptr,
                 "completes all outstanding aio requests", nullptr});
}

}  // namespace coblock::io
