// `coblock-img resize`: qemu-img 7.2's img_resize: [+|-]size parsed as a
// QemuOpts size, grow freely, shrink only with --shrink, --preallocation
// only when growing. Texts: specs/qemu-img-output.md §10.
#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "qapi/json_output.h"
#include "qapi/schema.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"

namespace coblock::img {
namespace {

enum : int {
    kOptionPreallocation = kOptionFirstOwn,
    kOptionShrink,
};

}  // namespace

int img_resize(int argc, char** argv) {
    // The size is taken off argv before getopt so that "-5G" is not an
    // option (qemu-img does the same).
    if (argc < 3) error_exit("Not enough arguments");
    const char* size_text = argv[--argc];

    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"preallocation", required_argument, nullptr, kOptionPreallocation},
        {"shrink", no_argument, nullptr, kOptionShrink},
        {"output", required_argument, nullptr, kOptionOutput},
        {nullptr, 0, nullptr, 0},
    };
    ImageSpec spec;
    bool quiet = false;
    bool shrink = false;
    bool json = false;
    Prealloc prealloc = Prealloc::kOff;
    int c;
    while ((c = getopt_long(argc, argv, ":f:hq", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, &spec)) continue;
        switch (c) {
            case 'q':
                quiet = true;
                break;
            case kOptionPreallocation:
                if (!parse_prealloc(optarg, prealloc)) {
                    error_report(std::string("Invalid preallocation mode '") + optarg + "'");
                    return 1;
                }
                break;
            case kOptionShrink:
                shrink = true;
                break;
            case kOptionOutput:
                if (!parse_output_format(optarg, &json)) return 1;
                break;
        }
    }
    if (optind != argc - 1) error_exit("Expecting image file name and size");
    spec.filename = argv[optind];

    int relative = 0;
    if (size_text[0] == '+') {
        relative = 1;
        ++size_text;
    } else if (size_text[0] == '-') {
        relative = -1;
        ++size_text;
    }
    Result<uint64_t> parsed = qapi::parse_size_option("size", size_text);
    if (!parsed) {
        error_report(parsed.error().to_string());
        return 1;
    }
    const int64_t n = static_cast<int64_t>(*parsed);

    std::unique_ptr<BlockBackend> blk = open_image(spec);
    if (!blk) return 1;
    const int64_t current = static_cast<int64_t>(blk->length());
    const int64_t total = relative ? current + n * relative : n;
    if (total <= 0) {
        error_report("New image size must be positive");
        return 1;
    }
    if (total <= current && prealloc != Prealloc::kOff) {
        error_report("Preallocation can only be used for growing images");
        return 1;
    }
    if (total < current && !shrink) {
        error_report("Use the --shrink option to perform a shrink operation.");
        warn_report(
            "Shrinking an image will delete all data beyond the shrunken image's end. Before "
            "performing such an operation, make sure there is no important data there.");
        return 1;
    }
    Status status = blk->truncate(static_cast<uint64_t>(total), false, prealloc, true);
    if (!status) {
        error_report(status.error().to_string());
        return 1;
    }
    if (quiet) return 0;
    if (json) {
        // coblock extension: the old and new virtual sizes.
        nlohmann::ordered_json out = nlohmann::ordered_json::object();
        out["old-size"] = current;
        out["new-size"] = static_cast<int64_t>(blk->length());
        std::printf("%s\n", qapi::to_qemu_json_pretty(out).c_str());
    } else {
        std::printf("Image resized.\n");
    }
    return 0;
}

}  // namespace coblock::img
