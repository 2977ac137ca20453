// Shared pieces of coblock-img: program name, error reporting, number
// parsing and image opening as QEMU 7.2 qemu-img.c (error_exit, cvtnum_full,
// img_open) does them; texts checked against the qemu-img 7.2 binary.
#include "tools/img/options.h"

#include <getopt.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "block/driver.h"
#include "qapi/keyval.h"
#include "qapi/schema.h"

#ifndef COBLOCK_VERSION
#define COBLOCK_VERSION "unknown"
#endif

namespace coblock::img {
namespace {

std::string& program_name_storage() {
    static std::string name = "coblock-img";
    return name;
}

}  // namespace

void set_program_name(const char* argv0) {
    if (argv0 == nullptr || *argv0 == '\0') return;
    const char* slash = std::strrchr(argv0, '/');
    program_name_storage() = slash ? slash + 1 : argv0;
}

const std::string& program_name() {
    return program_name_storage();
}

const char* version_string() {
    static const std::string text = program_name() + " version " COBLOCK_VERSION
                                                     " (coblock)\n"
                                                     "Copyright (c) 2026 The coblock authors\n";
    return text.c_str();
}

void error_report(std::string_view message) {
    std::fflush(stdout);  // keep stdout lines before the error, as QEMU's line buffering does
    std::fprintf(stderr, "%s: %.*s\n", program_name().c_str(), static_cast<int>(message.size()),
                 message.data());
}

void warn_report(std::string_view message) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: warning: %.*s\n", program_name().c_str(),
                 static_cast<int>(message.size()), message.data());
}

void error_exit(std::string_view message) {
    error_report(message);
    std::fprintf(stderr, "Try '%s --help' for more information\n", program_name().c_str());
    std::exit(EXIT_FAILURE);
}

void missing_argument(const char* option) {
    error_exit(std::string("missing argument for option '") + option + "'");
}

void unrecognized_option(const char* option) {
    error_exit(std::string("unrecognized option '") + option + "'");
}

void print_help_and_exit() {
    std::vector<std::string> names;
    for (const BlockDriver* driver : block_drivers())
        names.push_back(driver->name);
    std::sort(names.begin(), names.end());  // qemu-img lists them sorted
    std::string formats;
    for (const std::string& name : names)
        formats += " " + name;
    const std::string& prog = program_name();
    std::printf(
        "%s"
        "usage: %s [standard options] command [command options]\n"
        "coblock disk image utility\n"
        "\n"
        "    '-h', '--help'       display this help and exit\n"
        "    '-V', '--version'    output version information and exit\n"
        "\n"
        "Command syntax:\n"
        "  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] "
        "[-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] "
        "[-S step_size] [-t cache] [-w] [-U] [--image-opts] filename\n"
        "  check [-q] [-p] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] "
        "[--image-opts] filename\n"
        "  compare [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] [--output=ofmt] "
        "[--image-opts] "
        "filename1 filename2\n"
        "  convert [-c] [-p] [-q] [-n] [-U] [-W] [--target-is-zero] [-f fmt] [-t cache] "
        "[-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] "
        "[-S sparse_size] [-m num_coroutines] filename [filename2 [...]] output_filename\n"
        "  create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] "
        "filename [size]\n"
        "  info [-f fmt] [--output=ofmt] [--backing-chain] [-U] [--image-opts] filename\n"
        "  map [-f fmt] [--output=ofmt] [--start-offset=offset] [--max-length=len] [-U] "
        "[--image-opts] filename\n"
        "  resize [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] "
        "[--output=ofmt] filename [+ | -]size\n"
        "\n"
        "Command parameters:\n"
        "  'filename' is a disk image filename\n"
        "  'fmt' is the disk image format. It is guessed automatically in most cases\n"
        "  'cache' is the cache mode used to write the output disk image, the valid\n"
        "    options are: 'none', 'writeback' (default), 'writethrough',\n"
        "    'directsync' and 'unsafe'\n"
        "  'aio' is the AIO backend: 'threads' (default), 'native' or 'io_uring'\n"
        "  'size' is the disk image size in bytes. Optional suffixes\n"
        "    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' (gigabyte, 1024M),\n"
        "    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' (exabyte, 1024P)  are\n"
        "    supported. 'b' is ignored.\n"
        "  'options' is a comma separated list of format specific options in a\n"
        "    name=value format. Use -o help for an overview of the options supported by\n"
        "    the used format\n"
        "  '-u' allows unsafe backing chains. For image creation, allow creating\n"
        "       without attempting to open the backing file.\n"
        "  '-h' with or without a command shows this help and lists the supported formats\n"
        "  '-q' use Quiet mode - do not print any output (except errors)\n"
        "\n"
        "Parameters to bench subcommand:\n"
        "  '-n' uses native AIO (aio=native; needs '-t none')\n"
        "  '-U' opens the image without locking it (force share)\n"
        "\n"
        "Supported formats:%s\n",
        version_string(), prog.c_str(), formats.c_str());
    std::exit(EXIT_SUCCESS);
}

std::optional<int64_t> cvtnum(std::string_view what, const char* text, int64_t min, int64_t max) {
    bool hex_with_suffix = false;
    Result<uint64_t> value = qapi::strtosz(text, &hex_with_suffix);
    if (!value && value.error().kind != ErrorKind::kOutOfRange) {
        error_report("Invalid " + std::string(what) +
                     " specified. You may use k, M, G, T, P or E suffixes for");
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        return std::nullopt;
    }
    if (hex_with_suffix)
        warn_report(std::string("Using a multiplier suffix on hex numbers is deprecated: ") + text);
    if (!value || *value > static_cast<uint64_t>(max) || static_cast<int64_t>(*value) < min) {
        error_report("Invalid " + std::string(what) + " specified. Must be between " +
                     std::to_string(min) + " and " + std::to_string(max) + ".");
        return std::nullopt;
    }
    return static_cast<int64_t>(*value);
}

std::optional<unsigned long> parse_ulong(const char* text) {
    if (text == nullptr) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0') return std::nullopt;
    return value;
}

namespace {

bool is_lock_conflict(const Error& error) {
    return error.message.find("Is another process using the image") != std::string::npos;
}

// open_image; with `lock_retry`, an image whose lock another process holds
// is opened again with force-share after a warning (nothing else printed
// for the first attempt).
std::unique_ptr<BlockBackend> open_image_impl(ImageSpec spec, bool lock_retry) {
    qapi::OptionsTree options;
    std::string filename = spec.filename;
    if (spec.image_opts) {
        if (!spec.format.empty()) {
            error_report("--image-opts and --format are mutually exclusive");
            return nullptr;
        }
        std::vector<std::string> warnings;
        Result<qapi::OptionsTree> parsed = qapi::parse_qemu_opts(spec.filename, "file", &warnings);
        for (const std::string& warning : warnings)
            warn_report(warning);
        if (!parsed) {
            error_report(parsed.error().to_string());
            return nullptr;
        }
        options = std::move(*parsed);
        filename.clear();
    } else if (!spec.format.empty()) {
        options.set("driver", spec.format);
    }
    std::vector<std::string> warnings;
    Result<std::unique_ptr<BlockBackend>> blk =
        BlockBackend::open(filename, options, spec.flags, &warnings);
    if (!blk && lock_retry && !spec.flags.force_share && is_lock_conflict(blk.error())) {
        warn_report("'" + spec.filename +
                    "' is in use by another process (write lock held); opened read-only with "
                    "force-share, the result may be inconsistent");
        spec.flags.force_share = true;
        warnings.clear();
        blk = BlockBackend::open(filename, std::move(options), spec.flags, &warnings);
    }
    std::fflush(stdout);
    for (const std::string& warning : warnings) {
        // QEMU's raw driver warns about a probed format only when the image
        // is writable (raw_open); the block layer reports it either way.
        if (spec.flags.read_only &&
            warning.rfind("WARNING: Image format was not specified", 0) == 0)
            continue;
        std::fprintf(stderr, "%s\n", warning.c_str());
    }
    if (!blk) {
        error_report("Could not open '" + spec.filename + "': " + blk.error().to_string());
        return nullptr;
    }
    return std::move(*blk);
}

}  // namespace

bool handle_shared_option(int c, char** argv, ImageSpec* spec) {
    switch (c) {
        case ':':
            missing_argument(argv[optind - 1]);
        case '?':
            unrecognized_option(argv[optind - 1]);
        case 'h':
            print_help_and_exit();
        case kOptionObject:
            return true;
        default:
            break;
    }
    if (spec == nullptr) return false;
    switch (c) {
        case 'f':
            spec->format = optarg;
            return true;
        case 'U':
            spec->flags.force_share = true;
            return true;
        case kOptionImageOpts:
            spec->image_opts = true;
            return true;
        default:
            return false;
    }
}

std::unique_ptr<BlockBackend> open_image(const ImageSpec& spec) {
    return open_image_impl(spec, false);
}

}  // namespace coblock::img

// ---- Helpers shared by info, check, map, compare, convert, resize --------

#include <cmath>

#include "block/io.h"
#include "coroutine/run_sync.h"
#include "formats/qcow/qcow_header.h"
#include "formats/qcow2/header.h"
#include "formats/vhdx/common.h"
#include "formats/vhdx/metadata.h"
#include "formats/vhdx/region_table.h"

namespace coblock::img {

std::string size_to_str(uint64_t value) {
    static const char* const kSuffixes[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int exponent = 0;
    std::frexp(static_cast<double>(value) / (1000.0 / 1024.0), &exponent);
    int i = value == 0 ? 0 : (exponent - 1) / 10;
    if (i < 0) i = 0;
    if (i > 6) i = 6;
    char text[64];
    std::snprintf(text, sizeof text, "%0.3g %s",
                  static_cast<double>(value) / std::ldexp(1.0, i * 10), kSuffixes[i]);
    return text;
}

// qemu-img's is_valid_option_list: not empty, not starting with ',' and not
// ending in an odd number of commas (",," is an escaped comma).
bool is_valid_option_list(const char* text) {
    const size_t len = std::strlen(text);
    if (len == 0 || text[0] == ',') return false;
    size_t i = len;
    while (i > 0 && text[i - 1] == ',')
        --i;
    return (len - i) % 2 == 0;
}

bool parse_output_format(const char* text, bool* json) {
    if (std::strcmp(text, "json") == 0) {
        *json = true;
        return true;
    }
    if (std::strcmp(text, "human") == 0) {
        *json = false;
        return true;
    }
    error_report("--output must be used with human or json as argument.");
    return false;
}

std::unique_ptr<BlockBackend> open_image_for_reading(ImageSpec spec) {
    return open_image_impl(std::move(spec), true);
}

void Progress::print(float delta, int max) {
    if (!enabled_) return;
    float current = max == 0 ? delta : current_ + delta / 100 * static_cast<float>(max);
    if (current > 100) current = 100;
    current_ = current;
    if (current > last_print_ + min_skip_ || current == 100 || current == 0) {
        last_print_ = current_;
        std::printf("    (%3.2f/100%%)\r", static_cast<double>(current_));
        std::fflush(stdout);
    }
}

void Progress::end() {
    if (!enabled_) return;
    std::printf("\n");
    std::fflush(stdout);
}

namespace {

Status read_file(BdrvChild* file, uint64_t offset, std::vector<std::byte>& buf) {
    return run_sync([&] {
        const uint64_t size = file->node()->size();
        const uint64_t bytes = offset >= size ? 0 : std::min<uint64_t>(buf.size(), size - offset);
        buf.resize(bytes);
        if (bytes == 0) return Status{};
        return co_child_pread(file, offset, buf.data(), bytes);
    });
}

// The VHDX block size ("cluster_size" in qemu-img info): region table copy
// 1, then the metadata region's file parameters item.
int64_t vhdx_block_size(BdrvChild* file) {
    std::vector<std::byte> table_bytes(64 * 1024);
    if (!read_file(file, vhdx::kRegionTable1Offset, table_bytes)) return 0;
    Result<vhdx::RegionTable> table = vhdx::parse_region_table(table_bytes);
    if (!table) return 0;
    Result<vhdx::KnownRegions> regions = vhdx::classify_regions(*table);
    if (!regions) return 0;
    const uint64_t length = std::min<uint64_t>(regions->metadata.length, 4 * 1024 * 1024);
    std::vector<std::byte> region(length);
    if (!read_file(file, regions->metadata.file_offset, region) || region.size() != length)
        return 0;
    Result<vhdx::MetadataTable> metadata =
        vhdx::parse_metadata_table(region, regions->metadata.length);
    if (!metadata) return 0;
    Result<vhdx::ImageMetadata> image = vhdx::parse_image_metadata_from_region(*metadata, region);
    if (!image) return 0;
    return image->file_parameters.block_size;
}

}  // namespace

ImageFacts image_facts(BlockNode* node) {
    ImageFacts facts;
    const std::string& name = node->driver().name;
    BdrvChild* file = node->file();
    if (file == nullptr) return facts;
    if (name == "vhdx") {
        facts.cluster_size = vhdx_block_size(file);
        return facts;
    }
    if (name != "qcow2" && name != "qcow") return facts;
    std::vector<std::byte> head(512);
    if (!read_file(file, 0, head)) return facts;
    if (name == "qcow2") {
        Result<qcow2::Header> header = qcow2::decode_header(head);
        if (!header) return facts;
        facts.cluster_size = int64_t{1} << header->cluster_bits;
        facts.encrypted = header->crypt_method != qcow2::kCryptNone;
        facts.dirty = (header->incompatible_features & qcow2::kIncompatDirty) != 0;
    } else {
        Result<qcow::Header> header = qcow::decode_header(head);
        if (!header) return facts;
        facts.cluster_size = int64_t{1} << header->cluster_bits;
        facts.encrypted = header->crypt_method != qcow::kCryptNone;
    }
    return facts;
}

std::string full_backing_filename(const std::string& image, const std::string& backing) {
    if (backing.empty() || backing[0] == '/' || qapi::split_protocol_prefix(backing))
        return backing;
    const size_t slash = image.rfind('/');
    if (slash == std::string::npos) return backing;
    return image.substr(0, slash + 1) + backing;
}

}  // namespace coblock::img
