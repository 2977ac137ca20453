// `coblock-img convert`: qemu-img 7.2's img_convert: options and their
// refusals, sources (-l snapshots, concatenation), target creation and
// opening (-n, --target-image-opts, -B), then the copy (convert_engine.cc).
#include <getopt.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "block/create.h"
#include "block/driver.h"
#include "block/io.h"
#include "coroutine/co_mutex.h"
#include "coroutine/co_queue.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "coroutine/run_sync.h"
#include "coroutine/sleep.h"
#include "formats/qcow2/constants.h"
#include "formats/qcow2/header.h"
#include "qapi/json_output.h"
#include "qapi/keyval.h"
#include "tools/img/commands.h"
#include "tools/img/convert_engine.h"
#include "tools/img/options.h"
#include "tools/img/qcow2_snapshot_reader.h"
#include "tools/img/qcow2_snapshots.h"

namespace coblock::img {
namespace {

enum : int {
    kOptionTargetImageOpts = kOptionFirstOwn,
    kOptionTargetIsZero,
    kOptionSalvage,
    kOptionBitmaps,
};

constexpr int kMaxCoroutines = 16;
constexpr int64_t kMaxBufSectors = 32768;  // -S limit (16 MiB), as qemu-img

// Formats whose driver writes compressed clusters (QEMU's
// block_driver_can_compress), checked before anything is created.
bool format_can_compress(const std::string& format) {
    return format == "qcow2" || format == "qcow" || format == "vmdk";
}

// -l snapshot.id=...,snapshot.name=...: QEMU's internal_snapshot_opts
// accept exactly these two keys.
bool parse_snapshot_opts(const char* text, std::optional<std::string>* id,
                         std::optional<std::string>* name) {
    Result<qapi::OptionsTree> parsed = qapi::parse_qemu_opts(text);
    bool ok = static_cast<bool>(parsed);
    if (!parsed) {
        error_report(parsed.error().to_string());
    } else {
        for (const auto& [key, value] : *parsed) {
            if (key == "snapshot.id") {
                *id = value.text;
            } else if (key == "snapshot.name") {
                *name = value.text;
            } else {
                error_report("Invalid parameter '" + key + "'");
                ok = false;
                break;
            }
        }
    }
    if (!ok) error_report(std::string("Failed in parsing snapshot param '") + text + "'");
    return ok;
}

// bdrv_snapshot_load_tmp(_by_id_or_name): QEMU's messages for a format
// without internal snapshots and for a snapshot that is not there; for
// qcow2 a read-only view of the snapshot (nullptr after printing an error).
std::unique_ptr<Qcow2SnapshotReader> load_snapshot(BlockNode* node, bool by_opts,
                                                   const std::optional<std::string>& id,
                                                   const std::optional<std::string>& name,
                                                   const std::optional<std::string>& id_or_name) {
    const std::string prefix = "Failed to load snapshot: ";
    if (node->driver().name != "qcow2") {
        error_report(prefix + "Block format '" + node->driver().name +
                     "' used by device '' does not support temporarily loading internal "
                     "snapshots");
        return nullptr;
    }
    Result<std::vector<qcow2::SnapshotEntry>> entries = read_qcow2_snapshots(node);
    if (!entries) {
        error_report(prefix + entries.error().to_string());
        return nullptr;
    }
    const qcow2::SnapshotEntry* found = by_opts ? find_snapshot(*entries, id, name)
                                                : find_snapshot(*entries, id_or_name, std::nullopt);
    if (!by_opts && found == nullptr) found = find_snapshot(*entries, std::nullopt, id_or_name);
    if (found == nullptr) {
        error_report(prefix + "Can't find snapshot");
        return nullptr;
    }
    Result<std::unique_ptr<Qcow2SnapshotReader>> reader = Qcow2SnapshotReader::open(node, *found);
    if (!reader) {
        error_report(prefix + reader.error().to_string());
        return nullptr;
    }
    return std::move(*reader);
}

// --bitmaps: qemu-img copies persistent dirty bitmaps (qcow2 only). Only a
// qcow2 source can have them; coblock's qcow2 driver does not carry them,
// so a source that has some is refused rather than copied without them.
bool check_source_bitmaps(BlockNode* node) {
    if (node->driver().name != "qcow2" || node->file() == nullptr) {
        error_report("Source lacks bitmap support");
        return false;
    }
    std::vector<std::byte> head(512);
    Status read = run_sync([&] { return co_child_pread(node->file(), 0, head.data(), 512); });
    Result<qcow2::Header> header =
        read ? qcow2::decode_header(head) : Result<qcow2::Header>(read.error());
    if (!header) {
        error_report("Could not read the source's header: " + header.error().to_string());
        return false;
    }
    if (header->autoclear_features & qcow2::kAutoclearBitmaps) {
        error_report(
            "Copying persistent bitmaps is not supported by coblock-img: the source has "
            "bitmaps (autoclear bit 0 set)");
        return false;
    }
    return true;
}

int64_t pow2floor(int64_t value) {
    int64_t p = 1;
    while (p * 2 <= value)
        p *= 2;
    return p;
}

}  // namespace

int img_convert(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"force-share", no_argument, nullptr, 'U'},
        {"target-image-opts", no_argument, nullptr, kOptionTargetImageOpts},
        {"salvage", no_argument, nullptr, kOptionSalvage},
        {"target-is-zero", no_argument, nullptr, kOptionTargetIsZero},
        {"bitmaps", no_argument, nullptr, kOptionBitmaps},
        {"output", required_argument, nullptr, kOptionOutput},
        {nullptr, 0, nullptr, 0},
    };
    ImageSpec src_spec;
    src_spec.flags.read_only = true;
    std::string out_format;
    std::string options;
    bool has_options = false;
    std::string out_backing;
    std::string backing_format;
    std::string cache = "unsafe";  // qemu-img convert's default target cache
    bool skip_create = false;
    bool target_is_zero = false;
    bool progress = false;
    bool quiet = false;
    bool copy_range = false;
    bool json = false;  // coblock extension: a summary of the copy
    bool explicit_min_sparse = false;
    bool target_image_opts = false;
    bool bitmaps = false;
    // -l: a snapshot name or id, or snapshot.id=/snapshot.name= options.
    std::optional<std::string> snapshot_id_or_name;
    bool snapshot_opts = false;
    std::optional<std::string> snapshot_id, snapshot_name;
    ConvertConfig config;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:", kLongOptions,
                            nullptr)) != -1) {
        if (handle_shared_option(c, argv, &src_spec)) continue;
        switch (c) {
            case 'O':
                out_format = optarg;
                break;
            case 'B':
                out_backing = optarg;
                break;
            case 'F':
                backing_format = optarg;
                break;
            case 'C':
                // Copy offloading: QEMU falls back to reading and writing
                // when the copy_range call fails, which is what we do.
                copy_range = true;
                break;
            case 'c':
                config.compressed = true;
                break;
            case 'o':
                if (!is_valid_option_list(optarg)) {
                    error_report(std::string("Invalid option list: ") + optarg);
                    return 1;
                }
                if (has_options) options += ',';
                options += optarg;
                has_options = true;
                break;
            case 'l':
                if (std::strncmp(optarg, "snapshot.", 9) == 0) {
                    if (!parse_snapshot_opts(optarg, &snapshot_id, &snapshot_name)) return 1;
                    snapshot_opts = true;
                } else {
                    snapshot_id_or_name = optarg;
                }
                break;
            case 'S': {
                std::optional<int64_t> value = cvtnum("buffer size for sparse output", optarg);
                if (!value || *value % kSector != 0 || *value / kSector > kMaxBufSectors) {
                    if (value)
                        error_report(
                            "Invalid buffer size for sparse output specified. Valid sizes are "
                            "multiples of 512 up to 16777216. Select 0 to disable sparse "
                            "detection (fully allocates output).");
                    return 1;
                }
                config.min_sparse = *value / kSector;
                explicit_min_sparse = true;
                break;
            }
            case 'p':
                progress = true;
                break;
            case 't':
                cache = optarg;
                break;
            case 'T':
                if (!parse_cache_mode(optarg, src_spec.flags)) {
                    error_report(std::string("Invalid source cache option: ") + optarg);
                    return 1;
                }
                break;
            case 'q':
                quiet = true;
                break;
            case 'n':
                skip_create = true;
                break;
            case 'm': {
                std::optional<unsigned long> value = parse_ulong(optarg);
                if (!value || *value < 1 || *value > kMaxCoroutines) {
                    error_report(
                        "Invalid number of coroutines. Allowed number of coroutines is "
                        "between 1 and 16");
                    return 1;
                }
                config.num_coroutines = static_cast<int>(*value);
                break;
            }
            case 'W':
                config.in_order = false;
                break;
            case 'r': {
                std::optional<int64_t> rate = cvtnum("rate limit", optarg);
                if (!rate) return 1;
                config.rate_limit = *rate;
                break;
            }
            case kOptionTargetImageOpts:
                target_image_opts = true;
                break;
            case kOptionTargetIsZero:
                target_is_zero = true;
                break;
            case kOptionSalvage:
                config.salvage = true;
                break;
            case kOptionOutput:
                if (!parse_output_format(optarg, &json)) return 1;
                break;
            case kOptionBitmaps:
                bitmaps = true;
                break;
        }
    }
    const bool explicit_out_format = !out_format.empty();
    if (out_format.empty() && !target_image_opts) out_format = "raw";
    config.quiet = quiet;
    if (quiet || json) progress = false;
    if (copy_range && config.compressed) {
        error_report("Cannot enable copy offloading when -c is used");
        return 1;
    }
    if (copy_range && explicit_min_sparse) {
        error_report("Cannot enable copy offloading when -S is used");
        return 1;
    }
    if (copy_range && config.salvage) {
        error_report("Cannot use copy offloading in salvaging mode");
        return 1;
    }
    if (target_image_opts && !skip_create) {
        error_report("--target-image-opts requires use of -n flag");
        return 1;
    }
    if (has_options && qapi::has_help_option(options))
        return print_create_help(optind < argc ? argv[argc - 1] : nullptr, out_format);

    const int sources = argc - optind - 1;
    if (sources < 1) {
        error_report("Must specify image file name");
        return 1;
    }
    if (target_is_zero && !skip_create) {
        error_report("--target-is-zero requires use of -n flag");
        return 1;
    }
    if (skip_create && has_options) {
        error_report("-o has no effect when skipping image creation");
        return 1;
    }
    const std::string out_filename = argv[argc - 1];

    Progress meter(progress, 1.0f);
    meter.print(0, 100);
    // Every exit from here on ends the progress line, as qemu-img's "out:".
    struct EndProgress {
        Progress& meter;
        ~EndProgress() { meter.end(); }
    } end_progress{meter};

    // Several sources are concatenated, each starting on a sector boundary.
    std::vector<std::unique_ptr<BlockBackend>> srcs;
    std::unique_ptr<Qcow2SnapshotReader> snapshot;
    std::vector<SourcePart> parts;
    int64_t total_sectors = 0;
    for (int i = 0; i < sources; ++i) {
        src_spec.filename = argv[optind + i];
        std::unique_ptr<BlockBackend> src = open_image(src_spec);
        if (!src) return 1;
        SourcePart part;
        part.blk = src.get();
        part.bytes = static_cast<int64_t>(src->length());
        part.sectors = (part.bytes + kSector - 1) / kSector;
        part.start_sector = total_sectors;
        total_sectors += part.sectors;
        parts.push_back(part);
        srcs.push_back(std::move(src));
    }
    if (bitmaps) {
        if (sources > 1) {
            error_report("Copying bitmaps only possible with single source");
            return 1;
        }
        if (!check_source_bitmaps(srcs[0]->root())) return 1;
    }
    if (snapshot_opts || snapshot_id_or_name) {
        if (!snapshot_opts && sources > 1) {
            error_report("No support for concatenating multiple snapshot");
            return 1;
        }
        snapshot = load_snapshot(srcs[0]->root(), snapshot_opts, snapshot_id, snapshot_name,
                                 snapshot_id_or_name);
        if (!snapshot) return 1;
        parts[0].snapshot = snapshot.get();
    }
    const uint64_t size = sources == 1 ? static_cast<uint64_t>(parts[0].bytes)
                                       : static_cast<uint64_t>(total_sectors * kSector);

    const BlockDriver* driver = out_format.empty() ? nullptr : find_block_driver(out_format);
    if (driver == nullptr && !target_image_opts) {
        error_report("Unknown file format '" + out_format + "'");
        return 1;
    }
    if (!out_backing.empty() && driver && !driver->supports_backing) {
        error_report("Backing file not supported for file format '" + out_format + "'");
        return 1;
    }
    if (!backing_format.empty() && driver && !driver->supports_backing) {
        error_report("Backing file format not supported for file format '" + out_format + "'");
        return 1;
    }
    if (sources > 1 && !out_backing.empty()) {
        error_report(
            "Having a backing file for the target makes no sense when concatenating multiple "
            "input images");
        return 1;
    }
    if (!out_backing.empty() && backing_format.empty()) {
        error_report("Use of backing file requires explicit backing format");
        return 1;
    }
    if (!backing_format.empty() && out_backing.empty()) {
        error_report(out_filename + ": error while converting " + out_format +
                     ": Backing format cannot be used without backing file");
        return 1;
    }
    if (config.compressed && driver && !format_can_compress(out_format)) {
        error_report("Compression not supported for this file format");
        return 1;
    }

    if (!skip_create) {
        Result<qapi::OptionsTree> parsed = qapi::parse_qemu_opts(options);
        if (!parsed) {
            error_report(parsed.error().to_string());
            return 1;
        }
        Status created = create_image(out_format, out_filename, size, std::move(*parsed),
                                      out_backing, backing_format);
        if (!created) {
            error_report(out_filename + ": " + created.error().to_string());
            return 1;
        }
    }

    ImageSpec dst_spec;
    dst_spec.filename = out_filename;
    // --target-image-opts: the target is an option string; -O with it is
    // refused by img_open, as qemu-img does.
    dst_spec.image_opts = target_image_opts;
    dst_spec.format = target_image_opts && !explicit_out_format ? std::string() : out_format;
    if (!parse_cache_mode(cache, dst_spec.flags)) {
        error_report("Invalid cache option: " + cache);
        return 1;
    }
    std::unique_ptr<BlockBackend> dst = open_image(dst_spec);
    if (!dst) return 1;
    if (skip_create && dst->length() < size) {
        error_report("output file is smaller than input file");
        return 1;
    }
    if (bitmaps && dst->root()->driver().name != "qcow2") {
        error_report("Format driver '" + dst->root()->driver().name + "' does not support bitmaps");
        return 1;
    }
    if (config.compressed && !(dst->root()->supported_write_flags() & kReqWriteCompressed)) {
        error_report("Compression not supported for this file format");
        return 1;
    }

    config.target_has_backing = !out_backing.empty();
    if (config.target_has_backing && dst->root()->backing() != nullptr)
        config.target_backing_sectors =
            static_cast<int64_t>(dst->root()->backing()->node()->size()) / kSector;
    config.has_zero_init = skip_create ? target_is_zero : !config.target_has_backing;
    const ImageFacts facts = image_facts(dst->root());
    if (config.compressed) {
        if (facts.cluster_size <= 0 || facts.cluster_size % kSector != 0) {
            error_report("invalid cluster size");
            return 1;
        }
        config.cluster_sectors = facts.cluster_size / kSector;
        config.compressed_starts_in_order =
            dst->root()->driver().name == "qcow2" || dst->root()->driver().name == "qcow";
    }
    config.alignment = std::max<int64_t>(
        {pow2floor(std::max<int64_t>(config.min_sparse, 1)),
         static_cast<int64_t>(dst->root()->limits().request_alignment) / kSector, int64_t{1}});
    config.alignment = pow2floor(config.alignment);

    // -B: what is in the new backing file is not copied: walk the source
    // only down to its own backing file.
    if (config.target_has_backing && srcs[0]->root()->backing() != nullptr)
        parts[0].base = srcs[0]->root()->backing()->node();

    ConvertStats stats;
    int ret = run_convert(std::move(parts), *dst, config, meter, progress, &stats);
    if (ret == 0) {
        Status flushed = dst->flush();
        if (!flushed) {
            error_report(std::string("error while flushing: ") +
                         std::strerror(flushed.error().as_errno()));
            ret = -1;
        }
    }
    if (ret == 0) meter.print(100, 0);
    if (ret == 0 && json) {
        nlohmann::ordered_json summary = nlohmann::ordered_json::object();
        summary["filename"] = out_filename;
        summary["format"] = dst->root()->driver().name;
        summary["virtual-size"] = size;
        summary["compressed"] = config.compressed;
        summary["data-bytes"] = stats.data_bytes;
        summary["zero-bytes"] = stats.zero_bytes;
        summary["backing-bytes"] = stats.backing_bytes;
        const int64_t allocated = dst->root()->allocated_size();
        if (allocated >= 0) summary["actual-size"] = allocated;
        std::printf("%s\n", qapi::to_qemu_json_pretty(summary).c_str());
    }
    return ret == 0 ? 0 : 1;
}

}  // namespace coblock::img
