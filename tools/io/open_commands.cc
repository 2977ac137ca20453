// open, close and reopen, and openfile() behind the command line's image
// argument. Follows qemu-io 7.2 (qemu-io.c openfile/open_f/close_f,
// qemu-io-cmds.c reopen_f): options, messages and their streams.
#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <unistd.h>

#include <cstdlib>

#include "block/child.h"
#include "block/create.h"
#include "block/graph.h"
#include "coroutine/run_sync.h"
#include "qapi/keyval.h"
#include "qapi/schema.h"
#include "tools/io/commands.h"
#include "tools/io/open_image.h"
#include "tools/io/report.h"

namespace coblock::io {

namespace {

constexpr char kOpenHelp[] =
    "\n"
    " opens a new file in the requested mode\n"
    "\n"
    " Example:\n"
    " 'open -n -o driver=raw /tmp/data' - opens raw data file read-write, uncached\n"
    "\n"
    " Opens a file for subsequent use by all of the other qemu-io commands.\n"
    " -r, -- open file read-only\n"
    " -s, -- use snapshot file\n"
    " -C, -- use copy-on-read\n"
    " -n, -- disable host cache, short for -t none\n"
    " -U, -- force shared permissions\n"
    " -k, -- use kernel AIO implementation (Linux only, prefer use of -i)\n"
    " -i, -- use AIO mode (threads, native or io_uring)\n"
    " -t, -- use the given cache mode for the image\n"
    " -d, -- use the given discard mode for the image\n"
    " -o, -- options to be given to the block driver\n";

constexpr char kReopenHelp[] =
    "\n"
    " Changes the open options of an already opened image\n"
    "\n"
    " Example:\n"
    " 'reopen -o lazy-refcounts=on' - activates lazy refcount writeback on a qcow2 image\n"
    "\n"
    " -r, -- Reopen the image read-only\n"
    " -w, -- Reopen the image read-write\n"
    " -c, -- Change the cache mode to the given value\n"
    " -o, -- Changes block driver options (cf. 'open' command)\n"
    "\n";

const CmdInfo kOpenCmd = {"open",
                          "o",
                          nullptr,
                          1,
                          -1,
                          kCmdNoFileOk,
                          0,
                          "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
                          "open the file specified by path",
                          kOpenHelp};
const CmdInfo kReopenCmd = {"reopen",
                            nullptr,
                            nullptr,
                            0,
                            -1,
                            0,
                            0,
                            "[(-r|-w)] [-c cache] [-o options]",
                            "reopens an image with new options",
                            kReopenHelp};

bool parse_discard(const char* text, OpenFlags& flags) {
    if (!std::strcmp(text, "off") || !std::strcmp(text, "ignore")) {
        flags.discard = DiscardMode::kIgnore;
    } else if (!std::strcmp(text, "on") || !std::strcmp(text, "unmap")) {
        flags.discard = DiscardMode::kUnmap;
    } else {
        return false;
    }
    return true;
}

// `open -o a -o b` accumulates into one option set; a later key wins.
bool merge_options(std::optional<qapi::OptionsTree>& into, const char* text) {
    std::optional<qapi::OptionsTree> parsed = parse_image_options(text, "");
    if (!parsed) return false;
    if (!into) into.emplace();
    into->merge(*parsed, true);
    return true;
}

int open_f(int argc, char** argv) {
    OpenFlags flags = default_open_flags();
    bool force_share = false;
    bool snapshot = false;
    std::optional<qapi::OptionsTree> options;
    int c;
    while ((c = getopt(argc, argv, "snCro:ki:t:d:U")) != -1) {
        switch (c) {
            case 's':
                snapshot = true;
                break;
            case 'n':
                flags.cache_direct = true;
                flags.writethrough = false;
                break;
            case 'C':
                flags.copy_on_read = true;
                break;
            case 'r':
                flags.read_only = true;
                break;
            case 'o':
                if (shell().image_opts) {
                    std::printf("--image-opts and 'open -o' are mutually exclusive\n");
                    return -EINVAL;
                }
                if (!merge_options(options, optarg)) return -EINVAL;
                break;
            case 'k':
                flags.aio = AioMode::kNative;
                break;
            case 't':
                if (!parse_cache_mode(optarg, flags)) {
                    error_report(std::string("Invalid cache option: ") + optarg);
                    return -EINVAL;
                }
                break;
            case 'd':
                if (!parse_discard(optarg, flags)) {
                    error_report(std::string("Invalid discard option: ") + optarg);
                    return -EINVAL;
                }
                break;
            case 'i':
                if (!parse_aio_mode(optarg, flags.aio)) {
                    error_report(std::string("Invalid aio option: ") + optarg);
                    return -EINVAL;
                }
                break;
            case 'U':
                force_share = true;
                break;
            default:
                return command_usage(kOpenCmd);
        }
    }
    // With --image-opts the argument is an option string, not a filename.
    if (shell().image_opts && optind == argc - 1) {
        if (!merge_options(options, argv[optind])) return -EINVAL;
        optind++;
    }
    int ret;
    if (optind == argc - 1) {
        ret = open_image(argv[optind], flags, force_share, std::move(options), snapshot);
    } else if (optind == argc) {
        ret = open_image(nullptr, flags, force_share, std::move(options), snapshot);
    } else {
        return command_usage(kOpenCmd);
    }
    return ret ? -EINVAL : 0;
}

int close_f(int, char**) {
    shell().blk.reset();
    return 0;
}

// Whether `key` (dotted through child names) keeps the value the node was
// opened with: QEMU accepts an unchanged option on reopen. `leaf` gets the
// name the owning node uses ("file.align" is the file's "align"), for
// QEMU's "Cannot change the option" message.
bool option_unchanged(BlockNode* node, const std::string& key, const std::string& text,
                      std::string* leaf) {
    std::string rest = key;
    for (;;) {
        size_t dot = rest.find('.');
        if (dot == std::string::npos) break;
        BdrvChild* edge = node->child(rest.substr(0, dot));
        if (!edge) break;
        node = edge->node();
        rest = rest.substr(dot + 1);
    }
    *leaf = rest;
    // A protocol's filename may come from the name rather than an option.
    if (rest == "filename" && node->filename() == text) return true;
    // The options are kept crumpled ("inject-error.0.event" is
    // {"inject-error": [{"event": ...}]}): follow the key's parts.
    const nlohmann::ordered_json* v = &node->options_json();
    std::string path = rest;
    while (!path.empty()) {
        if (v->is_object() && v->contains(path)) {  // kept flat (see to_json)
            v = &(*v)[path];
            break;
        }
        size_t dot = path.find('.');
        std::string part = path.substr(0, dot);
        path = dot == std::string::npos ? "" : path.substr(dot + 1);
        if (v->is_object() && v->contains(part)) {
            v = &(*v)[part];
        } else if (v->is_array() && !part.empty() &&
                   part.find_first_not_of("0123456789") == std::string::npos &&
                   std::stoul(part) < v->size()) {
            v = &(*v)[std::stoul(part)];
        } else {
            return false;
        }
    }
    if (v->is_string()) return v->get<std::string>() == text;
    if (v->is_object() || v->is_array()) return false;
    return v->dump() == text;
}

// Switches read-only/read-write and the device's writethrough mode. Other
// driver options cannot change yet: they are refused with QEMU's message.
int reopen_f(int argc, char** argv) {
    BlockBackend& blk = *shell().blk;
    bool read_only = blk.root()->read_only();
    OpenFlags cache_flags = blk.root()->open_flags();
    bool has_rw_option = false, has_cache_option = false;
    std::optional<qapi::OptionsTree> options;
    int c;
    while ((c = getopt(argc, argv, "c:o:rw")) != -1) {
        switch (c) {
            case 'c':
                if (!parse_cache_mode(optarg, cache_flags)) {
                    error_report(std::string("Invalid cache option: ") + optarg);
                    return -EINVAL;
                }
                has_cache_option = true;
                break;
            case 'o':
                if (!merge_options(options, optarg)) return -EINVAL;
                break;
            case 'r':
            case 'w':
                if (has_rw_option) {
                    error_report("Only one -r/-w option may be given");
                    return -EINVAL;
                }
                read_only = c == 'r';
                has_rw_option = true;
                break;
            default:
                return command_usage(kReopenCmd);
        }
    }
    if (optind != argc) return command_usage(kReopenCmd);
    bool ro_from_options = false;
    if (options) {
        if (auto ro = options->take("read-only")) {
            if (has_rw_option) {
                error_report("Cannot set both -r/-w and 'read-only'");
                return -EINVAL;
            }
            Result<bool> value = qapi::parse_bool_option("read-only", *ro);
            if (!value.ok()) {
                error_report(value.error().message);
                return -EINVAL;
            }
            read_only = *value;
            ro_from_options = true;
        }
        for (const char* key : {"cache.direct", "cache.no-flush"}) {
            if (!options->has(key)) continue;
            if (has_cache_option) {
                error_report("Cannot set both -c and the cache options");
                return -EINVAL;
            }
            Result<bool> value = qapi::parse_bool_option(key, *options->get(key));
            if (!value.ok()) {
                error_report(value.error().message);
                return -EINVAL;
            }
            if (std::string(key) == "cache.no-flush")
                cache_flags.cache_no_flush = *value;
            else
                cache_flags.cache_direct = *value;
            options->erase(key);
        }
        // Accepted as QEMU does; they only take effect for new requests.
        options->erase("discard");
        options->erase("detect-zeroes");
        for (const auto& [key, value] : *options) {
            std::string leaf;
            if (!option_unchanged(blk.root(), key, value.text, &leaf)) {
                error_report("Cannot change the option '" + leaf + "'");
                return -EINVAL;
            }
        }
    }
    // QEMU's reopen cannot take write access away from the device: only
    // -r (which changes the device's permissions too) can.
    if (ro_from_options && read_only && !blk.root()->read_only()) {
        error_report("Read-only block node '" + blk.root()->node_name() +
                     "' cannot support read-write users");
        return -EINVAL;
    }
    // cache.direct really switches O_DIRECT on the files below (-c none
    // too); the node's flags follow only when every node accepted.
    {
        blk.drain();
        Status s = run_sync(blk.loop(), [&] {
            return co_reopen_cache(blk.root(), cache_flags.cache_direct,
                                   cache_flags.cache_no_flush);
        });
        if (!s.ok()) {
            error_report(s.error().message);
            return -EINVAL;
        }
    }
    if (read_only != blk.root()->read_only()) {
        blk.drain();
        Status s = run_sync(blk.loop(), [&] { return co_reopen(blk.root(), read_only); });
        if (!s.ok()) {
            error_report(s.error().message);
            return -EINVAL;
        }
    }
    blk.set_writethrough(cache_flags.writethrough);
    return 0;
}

// -s: QEMU's bdrv_append_temp_snapshot. The image is opened read-only as a
// backing node; a temporary qcow2 overlay of the same size is created in
// $TMPDIR (default /var/tmp), opened over it and unlinked at once, so all
// writes vanish when the image is closed.
Result<std::unique_ptr<BlockBackend>> open_with_snapshot(const std::string& name,
                                                         qapi::OptionsTree tree,
                                                         const OpenFlags& flags,
                                                         std::vector<std::string>* warnings) {
    OpenFlags base_flags = flags;
    base_flags.read_only = true;
    ASSIGN_OR_RETURN(NodeRef base, run_sync([&] {
                         return co_open_node(name, std::move(tree), base_flags, true, warnings);
                     }));
    const char* dir = std::getenv("TMPDIR");
    std::string tmp = std::string(dir && *dir ? dir : "/var/tmp") + "/vl.XXXXXX";
    int fd = mkstemp(tmp.data());
    if (fd < 0)
        return Error{ErrorKind::kIo, errno,
                     std::string("Could not get temporary filename: ") + std::strerror(errno),
                     std::nullopt};
    ::close(fd);
    struct Unlink {
        std::string path;
        ~Unlink() { ::unlink(path.c_str()); }
    } unlink_tmp{tmp};
    if (!find_block_driver("qcow2"))
        return make_error(ErrorKind::kUnsupported, "Could not create temporary overlay '" + tmp +
                                                       "': Unknown driver 'qcow2'");
    Status created = create_image("qcow2", tmp, base->size(), qapi::OptionsTree());
    if (!created.ok())
        return make_error(created.error().kind, "Could not create temporary overlay '" + tmp +
                                                    "': " + created.error().message);
    qapi::OptionsTree overlay_options;
    overlay_options.set("driver", "qcow2");
    overlay_options.set("file.driver", "file");
    overlay_options.set("file.filename", tmp);
    overlay_options.set("backing", base->node_name());
    OpenFlags overlay_flags = flags;  // -s -r: a read-only overlay, as QEMU
    return run_sync([&]() -> Result<std::unique_ptr<BlockBackend>> {
        ASSIGN_OR_RETURN(NodeRef overlay, co_open_node("", std::move(overlay_options),
                                                       overlay_flags, true, warnings));
        uint32_t perm = kPermConsistentRead;
        if (!flags.read_only) perm |= kPermWrite | kPermResize;
        uint32_t shared = flags.force_share ? kPermAll : kPermConsistentRead | kPermWriteUnchanged;
        ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> blk,
                         BlockBackend::attach(overlay.get(), perm, shared));
        blk->set_writethrough(flags.writethrough);
        return blk;
    });
}

}  // namespace

OpenFlags default_open_flags() {
    OpenFlags flags;
    flags.writethrough = true;
    flags.discard = DiscardMode::kUnmap;
    return flags;
}

std::optional<qapi::OptionsTree> parse_image_options(const char* text, const char* implied_key) {
    std::vector<std::string> warnings;
    Result<qapi::OptionsTree> tree = qapi::parse_qemu_opts(text, implied_key, &warnings);
    for (const std::string& w : warnings)
        warn_report(w);
    if (!tree.ok()) {
        error_report(tree.error().message);
        return std::nullopt;
    }
    return std::move(*tree);
}

int open_image(const char* name, const OpenFlags& flags, bool force_share,
               std::optional<qapi::OptionsTree> options, bool snapshot) {
    if (shell().blk) {
        error_report("file open already, try 'help close'");
        return 1;
    }
    qapi::OptionsTree tree = options ? std::move(*options) : qapi::OptionsTree();
    if (force_share) {
        std::optional<std::string> current = tree.get("force-share");
        if (current && *current != "on") {
            error_report("-U conflicts with image options");
            return 1;
        }
        tree.set("force-share", "on");
    }
    std::vector<std::string> warnings;
    Result<std::unique_ptr<BlockBackend>> blk =
        snapshot ? open_with_snapshot(name ? name : "", std::move(tree), flags, &warnings)
                 : BlockBackend::open(name ? name : "", std::move(tree), flags, &warnings);
    for (const std::string& w : warnings)
        std::fprintf(stderr, "%s\n", w.c_str());
    if (!blk.ok()) {
        error_report(std::string("can't open") + (name ? " device " : "") + (name ? name : "") +
                     ": " + blk.error().message);
        return 1;
    }
    shell().blk = std::move(*blk);
    return 0;
}

void register_open_commands() {
    CmdInfo open = kOpenCmd, reopen = kReopenCmd;
    open.handler = open_f;
    reopen.handler = reopen_f;
    add_command(open);
    add_command(reopen);
    add_command(
        {"close", "c", close_f, 0, 0, 0, 0, nullptr, "close the current open file", nullptr});
}

}  // namespace coblock::io
