// `coblock-img map`: qemu-img 7.2's img_map, get_block_status, entry_mergeable
// and dump_map_entry: block status through the backing chain, merged into
// extents, printed as the human table or the hand-written JSON lines.
// Texts: specs/qemu-img-output.md §5.
#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "block/io.h"
#include "coroutine/run_sync.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"

namespace coblock::img {
namespace {

struct MapEntry {
    int64_t start = 0;
    int64_t length = 0;
    bool data = false;
    bool zero = false;
    bool present = false;
    bool has_offset = false;
    int64_t offset = 0;
    int depth = 0;
    std::string filename;
};

bool entry_mergeable(const MapEntry& curr, const MapEntry& next) {
    if (curr.length == 0) return false;
    if (curr.zero != next.zero || curr.data != next.data || curr.depth != next.depth ||
        curr.present != next.present || curr.has_offset != next.has_offset ||
        curr.filename != next.filename)
        return false;
    if (curr.has_offset && curr.offset + curr.length != next.offset) return false;
    return true;
}

// False when the human table cannot show the entry (data without a host
// offset); the error is printed here.
bool dump_entry(bool json, const MapEntry& e, bool has_next) {
    if (json) {
        std::printf(
            "{ \"start\": %lld, \"length\": %lld, \"depth\": %d, \"present\": %s, \"zero\": %s, "
            "\"data\": %s",
            static_cast<long long>(e.start), static_cast<long long>(e.length), e.depth,
            e.present ? "true" : "false", e.zero ? "true" : "false", e.data ? "true" : "false");
        if (e.has_offset) std::printf(", \"offset\": %lld", static_cast<long long>(e.offset));
        std::putchar('}');
        if (has_next) std::puts(",");
        return true;
    }
    if (e.data && !e.has_offset) {
        error_report("File contains external, encrypted or compressed clusters.");
        return false;
    }
    if (e.data && !e.zero) {
        std::printf("%#-16llx%#-16llx%#-16llx%s\n", static_cast<unsigned long long>(e.start),
                    static_cast<unsigned long long>(e.length),
                    static_cast<unsigned long long>(e.offset), e.filename.c_str());
    }
    return true;
}

}  // namespace

int img_map(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"format", required_argument, nullptr, 'f'},
        {"output", required_argument, nullptr, kOptionOutput},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"force-share", no_argument, nullptr, 'U'},
        {"start-offset", required_argument, nullptr, 's'},
        {"max-length", required_argument, nullptr, 'l'},
        {nullptr, 0, nullptr, 0},
    };
    ImageSpec spec;
    spec.flags.read_only = true;
    bool json = false;
    int64_t start_offset = 0;
    int64_t max_length = -1;
    int c;
    while ((c = getopt_long(argc, argv, ":f:s:l:hU", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, &spec)) continue;
        switch (c) {
            case kOptionOutput:
                if (!parse_output_format(optarg, &json)) return 1;
                break;
            case 's': {
                std::optional<int64_t> value = cvtnum("start offset", optarg);
                if (!value) return 1;
                start_offset = *value;
                break;
            }
            case 'l': {
                std::optional<int64_t> value = cvtnum("max length", optarg);
                if (!value) return 1;
                max_length = *value;
                break;
            }
        }
    }
    if (optind != argc - 1) error_exit("Expecting one image file name");
    spec.filename = argv[optind];

    std::unique_ptr<BlockBackend> blk = open_image_for_reading(spec);
    if (!blk) return 1;
    BlockNode* top = blk->root();

    int64_t length = static_cast<int64_t>(blk->length());
    if (json)
        std::putchar('[');
    else
        std::printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");

    if (max_length >= 0 && start_offset <= INT64_MAX - max_length)
        length = std::min(length, start_offset + max_length);
    MapEntry curr;
    curr.start = start_offset;
    bool ok = true;
    while (curr.start + curr.length < length) {
        const int64_t offset = curr.start + curr.length;
        Result<BlockStatus> status = run_sync([&] {
            return co_block_status_above(top, nullptr, static_cast<uint64_t>(offset),
                                         static_cast<uint64_t>(length - offset), true);
        });
        if (!status || status->bytes == 0) {
            error_report(std::string("Could not read file metadata: ") +
                         std::strerror(status ? EIO : status.error().as_errno()));
            ok = false;
            break;
        }
        MapEntry next;
        next.start = offset;
        next.length = static_cast<int64_t>(status->bytes);
        next.data = status->flags & kStatusData;
        next.zero = status->flags & kStatusZero;
        next.present = status->flags & kStatusAllocated;
        next.has_offset = status->flags & kStatusOffsetValid;
        next.offset = next.has_offset ? static_cast<int64_t>(status->offset) : 0;
        next.depth = status->depth;
        if (next.has_offset && status->file != nullptr) next.filename = status->file->filename();
        if (entry_mergeable(curr, next)) {
            next.start = curr.start;
            next.length += curr.length;
            next.offset = curr.offset;
        } else if (curr.length > 0) {
            if (!dump_entry(json, curr, true)) {
                ok = false;
                break;
            }
        }
        curr = next;
    }
    if (ok) ok = dump_entry(json, curr, false);
    if (json) std::puts("]");
    return ok ? 0 : 1;
}

}  // namespace coblock::img
