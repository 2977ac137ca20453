// Commands that query or change the image as a whole: info, map, alloc,
// length, truncate, discard, flush. Output as qemu-io 7.2 prints it
// (qemu-io-cmds.c info_f, map_f, alloc_f, length_f, truncate_f, discard_f).
#include <getopt.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "block/driver.h"
#include "block/io.h"
#include "coroutine/run_sync.h"
#include "tools/io/commands.h"
#include "tools/io/cvtnum.h"
#include "tools/io/report.h"

namespace coblock::io {

namespace {

constexpr char kDiscardHelp[] =
    "\n"
    " discards a range of bytes from the given offset\n"
    "\n"
    " Example:\n"
    " 'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file\n"
    "\n"
    " Discards a segment of the currently open file.\n"
    " -C, -- report statistics in a machine parsable format\n"
    " -q, -- quiet mode, do not show I/O statistics\n"
    "\n";

const CmdInfo kDiscardCmd = {"discard",
                             "d",
                             nullptr,
                             2,
                             -1,
                             0,
                             kCmdPermWrite,
                             "[-Cq] off len",
                             "discards a number of bytes at a specified offset",
                             kDiscardHelp};
const CmdInfo kTruncateCmd = {"truncate",
                              "t",
                              nullptr,
                              1,
                              3,
                              0,
                              kCmdPermWrite,
                              "[-m prealloc_mode] off",
                              "truncates the current file at the given offset",
                              nullptr};

BlockBackend& blk() {
    return *shell().blk;
}

// QEMU's bdrv_image_info_specific_dump: nested objects indented by four
// spaces, '-' in keys shown as ' '.
void dump_specific(const nlohmann::ordered_json& value, int indent) {
    for (auto it = value.begin(); it != value.end(); ++it) {
        std::string key = value.is_object() ? it.key() : std::string();
        for (char& ch : key) {
            if (ch == '-') ch = ' ';
        }
        const auto& v = it.value();
        if (v.is_object() || v.is_array()) {
            std::printf("%*s%s:\n", indent * 4, "", key.c_str());
            dump_specific(v, indent + 1);
        } else if (v.is_string()) {
            std::printf("%*s%s: %s\n", indent * 4, "", key.c_str(), v.get<std::string>().c_str());
        } else {
            std::printf("%*s%s: %s\n", indent * 4, "", key.c_str(), v.dump().c_str());
        }
    }
}

int info_f(int, char**) {
    BlockNode* node = blk().root();
    std::printf("format name: %s\n", node->driver().name.c_str());
    // A protocol driver is both a format and a protocol in QEMU's tables,
    // so qemu-io names it twice.
    if (node->driver().kind == DriverKind::kProtocol)
        std::printf("format name: %s\n", node->driver().name.c_str());
    // Without driver information qemu-io's info fails silently here.
    Result<NodeInfo> info = node->get_info();
    if (!info.ok()) return -info.error().as_errno();
    std::printf("cluster size: %s\n", cvtstr(static_cast<double>(info->cluster_size)).c_str());
    std::printf("vm state offset: %s\n",
                cvtstr(static_cast<double>(info->vm_state_offset)).c_str());
    nlohmann::ordered_json specific = node->info_specific();
    if (!specific.is_null()) {
        std::printf("Format specific information:\n");
        dump_specific(specific.contains("data") ? specific["data"] : specific, 1);
    }
    return 0;
}

// bdrv_is_allocated(): 1 allocated, 0 not, <0 error; *num the run length
// (0 past the end of the image).
int is_allocated(int64_t offset, int64_t bytes, int64_t* num) {
    BlockNode* node = blk().root();
    if (offset >= static_cast<int64_t>(node->size())) {
        *num = 0;
        return 0;
    }
    bytes = std::min<int64_t>(bytes, static_cast<int64_t>(node->size()) - offset);
    bool allocated = false;
    Result<uint64_t> run = run_sync(blk().loop(), [&] {
        return co_is_allocated(node, static_cast<uint64_t>(offset), static_cast<uint64_t>(bytes),
                               &allocated);
    });
    if (!run.ok()) return -run.error().as_errno();
    *num = static_cast<int64_t>(std::min<uint64_t>(*run, static_cast<uint64_t>(bytes)));
    return allocated ? 1 : 0;
}

int alloc_f(int argc, char** argv) {
    int64_t offset = cvtnum(argv[1]);
    const int64_t start = offset;
    if (offset < 0) {
        print_cvtnum_err(offset, argv[1]);
        return static_cast<int>(offset);
    }
    int64_t count = 512;
    if (argc == 3) {
        count = cvtnum(argv[2]);
        if (count < 0) {
            print_cvtnum_err(count, argv[2]);
            return static_cast<int>(count);
        }
    }
    int64_t remaining = count, sum_alloc = 0;
    while (remaining) {
        int64_t num = 0;
        int ret = is_allocated(offset, remaining, &num);
        if (ret < 0) {
            std::printf("is_allocated failed: %s\n", std::strerror(-ret));
            return ret;
        }
        offset += num;
        remaining -= num;
        if (ret) sum_alloc += num;
        // Past the end: the count shrinks to what the image holds.
        if (num == 0) {
            count -= remaining;
            remaining = 0;
        }
    }
    std::printf("%" PRId64 "/%" PRId64 " bytes allocated at offset %s\n", sum_alloc, count,
                cvtstr(static_cast<double>(start)).c_str());
    return 0;
}

// Merges following runs with the same status, as qemu-io's map_is_allocated.
int map_is_allocated(int64_t offset, int64_t bytes, int64_t* pnum) {
    int64_t num = 0;
    int ret = is_allocated(offset, bytes, &num);
    if (ret < 0) return ret;
    const int first = ret;
    *pnum = num;
    while (bytes > 0 && ret == first) {
        offset += num;
        bytes -= num;
        ret = is_allocated(offset, bytes, &num);
        if (ret == first && num) {
            *pnum += num;
        } else {
            break;
        }
    }
    return first;
}

int map_f(int, char**) {
    int64_t offset = 0;
    int64_t bytes = static_cast<int64_t>(blk().length());
    while (bytes) {
        int64_t num = 0;
        int ret = map_is_allocated(offset, bytes, &num);
        if (ret < 0) {
            error_report(std::string("Failed to get allocation status: ") + std::strerror(-ret));
            return ret;
        }
        if (!num) {
            error_report("Unexpected end of image");
            return -EIO;
        }
        std::printf("%s (0x%" PRIx64 ") bytes %s at offset %s (0x%" PRIx64 ")\n",
                    cvtstr(static_cast<double>(num)).c_str(), static_cast<uint64_t>(num),
                    ret ? "    allocated" : "not allocated",
                    cvtstr(static_cast<double>(offset)).c_str(), static_cast<uint64_t>(offset));
        offset += num;
        bytes -= num;
    }
    return 0;
}

int length_f(int, char**) {
    std::printf("%s\n", cvtstr(static_cast<double>(blk().length())).c_str());
    return 0;
}

int truncate_f(int argc, char** argv) {
    Prealloc prealloc = Prealloc::kOff;
    int c;
    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
            case 'm':
                if (!parse_prealloc(optarg, prealloc)) {
                    error_report(std::string("Invalid preallocation mode '") + optarg + "'");
                    return -EINVAL;
                }
                break;
            default:
                return command_usage(kTruncateCmd);
        }
    }
    if (optind >= argc) return command_usage(kTruncateCmd);  // qemu-io would crash here
    int64_t offset = cvtnum(argv[optind]);
    if (offset < 0) {
        // qemu-io names argv[1] here, even when that is "-m".
        print_cvtnum_err(offset, argv[1]);
        return static_cast<int>(offset);
    }
    // blk_truncate(exact=false): shrinking is allowed, as in qemu-io.
    Status s = run_sync(blk().loop(), [&] {
        return blk().co_truncate(static_cast<uint64_t>(offset), false, prealloc, true);
    });
    if (!s.ok()) {
        error_report(s.error().message);
        return -status_errno(s);
    }
    return 0;
}

int discard_f(int argc, char** argv) {
    bool Cflag = false, qflag = false;
    int c;
    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
            case 'C':
                Cflag = true;
                break;
            case 'q':
                qflag = true;
                break;
            default:
                return command_usage(kDiscardCmd);
        }
    }
    if (optind != argc - 2) return command_usage(kDiscardCmd);
    int64_t offset = cvtnum(argv[optind]);
    if (offset < 0) {
        print_cvtnum_err(offset, argv[optind]);
        return static_cast<int>(offset);
    }
    optind++;
    int64_t bytes = cvtnum(argv[optind]);
    if (bytes < 0) {
        print_cvtnum_err(bytes, argv[optind]);
        return static_cast<int>(bytes);
    }
    if (bytes > kRequestMaxBytes) {
        std::printf("length cannot exceed %" PRIu64 ", given %s\n",
                    static_cast<uint64_t>(kRequestMaxBytes), argv[optind]);
        return -EINVAL;
    }
    struct timespec t1 = now_monotonic();
    Status s = run_sync(blk().loop(), [&] {
        return blk().co_pdiscard(static_cast<uint64_t>(offset), static_cast<uint64_t>(bytes));
    });
    struct timespec t2 = now_monotonic();
    if (!s.ok()) {
        std::printf("discard failed: %s\n", std::strerror(status_errno(s)));
        return -status_errno(s);
    }
    if (!qflag) print_report("discard", time_sub(t2, t1), offset, bytes, bytes, 1, Cflag);
    return 0;
}

// qemu-io's flush returns blk_flush's result and prints nothing.
int flush_f(int, char**) {
    Status s = blk().flush();
    return s.ok() ? 0 : -status_errno(s);
}

}  // namespace

void register_image_commands() {
    CmdInfo discard = kDiscardCmd, truncate = kTruncateCmd;
    discard.handler = discard_f;
    truncate.handler = truncate_f;
    add_command(discard);
    add_command(truncate);
    add_command({"info", "i", info_f, 0, 0, 0, 0, nullptr,
                 "prints information about the current file", nullptr});
    add_command(
        {"map", nullptr, map_f, 0, 0, 0, 0, "", "prints the allocated areas of a file", nullptr});
    add_command({"alloc", "a", alloc_f, 1, 2, 0, 0, "offset [count]",
                 "checks if offset is allocated in the file", nullptr});
    add_command({"length", "l", length_f, 0, 0, 0, 0, nullptr,
                 "gets the length of the current file", nullptr});
    add_command({"flush", "f", flush_f, 0, 0, 0, 0, nullptr, "flush all in-core file state to disk",
                 nullptr});
}

}  // namespace coblock::io
