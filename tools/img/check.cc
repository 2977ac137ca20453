// `coblock-img check`: qemu-img 7.2's img_check, collect_image_check and the
// human/JSON dumps: per-problem lines come from the driver on stderr, the
// summary on stdout, exit 0/1/2/3/63. Texts: specs/qemu-img-output.md §4.
// Beyond qemu-img: an image locked for writing by another process is
// checked read-only with force-share after a warning, and -p is accepted.
#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "block/check.h"
#include "block/driver.h"
#include "coroutine/run_sync.h"
#include "qapi/json_output.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"

namespace coblock::img {
namespace {

Status run_check(BlockNode* node, CheckResult& result, CheckFix fix) {
    return run_sync([&] { return node->co_check(result, fix); });
}

// The ImageCheck object: members in schema order, optional ones only when
// non-zero (has_* in collect_image_check).
nlohmann::ordered_json to_json(const CheckResult& r, const std::string& filename,
                               const std::string& format) {
    nlohmann::ordered_json check = nlohmann::ordered_json::object();
    check["filename"] = filename;
    check["format"] = format;
    check["check-errors"] = r.check_errors;
    auto optional = [&](const char* key, int64_t value) {
        if (value != 0) check[key] = value;
    };
    optional("image-end-offset", r.image_end_offset);
    optional("corruptions", r.corruptions);
    optional("leaks", r.leaks);
    optional("corruptions-fixed", r.corruptions_fixed);
    optional("leaks-fixed", r.leaks_fixed);
    optional("total-clusters", r.total_clusters);
    optional("allocated-clusters", r.allocated_clusters);
    optional("fragmented-clusters", r.fragmented_clusters);
    optional("compressed-clusters", r.compressed_clusters);
    return qapi::qdict_ordered(check);
}

void dump_human(const CheckResult& r) {
    if (!(r.corruptions || r.leaks || r.check_errors)) {
        std::printf("No errors were found on the image.\n");
    } else {
        if (r.corruptions)
            std::printf(
                "\n%lld errors were found on the image.\n"
                "Data may be corrupted, or further writes to the image may corrupt it.\n",
                static_cast<long long>(r.corruptions));
        if (r.leaks)
            std::printf(
                "\n%lld leaked clusters were found on the image.\n"
                "This means waste of disk space, but no harm to data.\n",
                static_cast<long long>(r.leaks));
        if (r.check_errors)
            std::printf("\n%lld internal errors have occurred during the check.\n",
                        static_cast<long long>(r.check_errors));
    }
    if (r.total_clusters != 0 && r.allocated_clusters != 0) {
        const double alloc = static_cast<double>(r.allocated_clusters);
        std::printf(
            "%lld/%lld = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
            static_cast<long long>(r.allocated_clusters), static_cast<long long>(r.total_clusters),
            alloc * 100 / static_cast<double>(r.total_clusters),
            static_cast<double>(r.fragmented_clusters) * 100 / alloc,
            static_cast<double>(r.compressed_clusters) * 100 / alloc);
    }
    if (r.image_end_offset)
        std::printf("Image end offset: %lld\n", static_cast<long long>(r.image_end_offset));
}

}  // namespace

int img_check(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"format", required_argument, nullptr, 'f'},
        {"repair", required_argument, nullptr, 'r'},
        {"output", required_argument, nullptr, kOptionOutput},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"force-share", no_argument, nullptr, 'U'},
        {nullptr, 0, nullptr, 0},
    };
    ImageSpec spec;
    spec.flags.read_only = true;
    // As qemu-img (BDRV_O_CHECK): formats open what a normal open refuses
    // (a corrupt qcow2 read-write for -r) and leave dirty images for the
    // check to repair and report instead of repairing them silently.
    spec.flags.check = true;
    bool json = false;
    bool quiet = false;
    bool progress = false;
    CheckFix fix = CheckFix::kNone;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:r:T:qUp", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, &spec)) continue;
        switch (c) {
            case 'r':
                spec.flags.read_only = false;
                if (std::strcmp(optarg, "leaks") == 0) {
                    fix = CheckFix::kLeaks;
                } else if (std::strcmp(optarg, "all") == 0) {
                    fix = CheckFix::kAll;
                } else {
                    error_exit(std::string("Unknown option value for -r (expecting 'leaks' or "
                                           "'all'): ") +
                               optarg);
                }
                break;
            case 'T':
                if (!parse_cache_mode(optarg, spec.flags)) {
                    error_report(std::string("Invalid source cache option: ") + optarg);
                    return 1;
                }
                break;
            case 'q':
                quiet = true;
                break;
            case 'p':
                progress = true;  // coblock extension: qemu-img check has no -p
                break;
            case kOptionOutput:
                if (!parse_output_format(optarg, &json)) return 1;
                break;
        }
    }
    if (optind != argc - 1) error_exit("Expecting one image file name");
    spec.filename = argv[optind];

    std::unique_ptr<BlockBackend> blk =
        fix == CheckFix::kNone ? open_image_for_reading(spec) : open_image(spec);
    if (!blk) return 1;
    BlockNode* node = blk->root();
    const std::string format = node->driver().name;

    // A check is one driver call: the meter shows its start and its end
    // (human output only, so that JSON stays parseable).
    Progress meter(progress && !quiet && !json, 1.0f);
    meter.print(0, 100);
    CheckResult result;
    Status status = run_check(node, result, fix);
    meter.print(100, 0);
    meter.end();
    if (!status && status.error().kind == ErrorKind::kUnsupported &&
        status.error().message.find("does not support checks") != std::string::npos) {
        error_report("This image format does not support checks");
        return 63;
    }
    if (status && (result.corruptions_fixed || result.leaks_fixed)) {
        const int64_t leaks_fixed = result.leaks_fixed;
        const int64_t corruptions_fixed = result.corruptions_fixed;
        if (!json && !quiet) {
            std::printf(
                "The following inconsistencies were found and repaired:\n\n"
                "    %lld leaked clusters\n"
                "    %lld corruptions\n\n"
                "Double checking the fixed image now...\n",
                static_cast<long long>(leaks_fixed), static_cast<long long>(corruptions_fixed));
        }
        result = CheckResult{};
        status = run_check(node, result, CheckFix::kNone);
        result.leaks_fixed = leaks_fixed;
        result.corruptions_fixed = corruptions_fixed;
    }
    if (status && !quiet) {
        if (json)
            std::printf("%s\n",
                        qapi::to_qemu_json_pretty(to_json(result, spec.filename, format)).c_str());
        else
            dump_human(result);
    }
    if (!status || result.check_errors) {
        if (!status)
            error_report(std::string("Check failed: ") + std::strerror(status.error().as_errno()));
        else
            error_report("Check failed");
        return 1;
    }
    if (result.corruptions) return 2;
    if (result.leaks) return 3;
    return 0;
}

}  // namespace coblock::img
