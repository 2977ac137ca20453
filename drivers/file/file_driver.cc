// The `file` protocol driver (and `host_device`): descriptors, the runtime
// and create option schemas of QEMU 7.2 block/file-posix.c (raw_runtime_opts,
// raw_create_opts), opening and image creation (raw_co_create).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "block/create.h"
#include "block/driver.h"
#include "block/graph.h"
#include "coroutine/coroutine.h"
#include "coroutine/thread_pool.h"
#include "drivers/file/file_locks.h"
#include "drivers/file/file_node.h"
#include "drivers/file/file_posix.h"
#include "qapi/schema.h"

namespace coblock {

namespace {

// ---- Options ------------------------------------------------------------------------

enum class OnOffAuto { kAuto, kOn, kOff };

// raw_runtime_opts. aio and locking have no schema default: an absent aio
// takes the block layer's flags (qemu-io -k / -i), locking defaults to auto.
struct FileOptions {
    std::string filename;
    std::optional<AioMode> aio;
    uint64_t aio_max_batch = 0;  // accepted; requests are submitted one by one
    std::optional<OnOffAuto> locking;
    std::optional<std::string> pr_manager;
    bool drop_cache = true;            // migration only: accepted, no effect
    bool check_cache_dropped = false;  // migration only: accepted, no effect
};

const qapi::Schema<FileOptions>& file_options_schema() {
    using qapi::EnumErrorStyle;
    static const qapi::Schema<FileOptions> schema(
        "file",
        {
            qapi::string_field("filename", &FileOptions::filename, qapi::kNoDefault,
                               "File name of the image"),
            qapi::enum_field("aio", &FileOptions::aio,
                             {{"threads", AioMode::kThreads},
                              {"native", AioMode::kNative},
                              {"io_uring", AioMode::kIoUring}},
                             qapi::kNoDefault,
                             "host AIO implementation (threads, native, io_uring)",
                             EnumErrorStyle::kEnumParse),
            qapi::uint_field("aio-max-batch", &FileOptions::aio_max_batch, qapi::kNoDefault,
                             "AIO max batch size (0 = auto handled by AIO backend, default: 0)"),
            qapi::enum_field(
                "locking", &FileOptions::locking,
                {{"auto", OnOffAuto::kAuto}, {"on", OnOffAuto::kOn}, {"off", OnOffAuto::kOff}},
                qapi::kNoDefault, "file locking mode (on/off/auto, default: auto)",
                EnumErrorStyle::kEnumParse),
            qapi::string_field("pr-manager", &FileOptions::pr_manager, qapi::kNoDefault,
                               "id of persistent reservation manager object (default: none)"),
            qapi::bool_field("drop-cache", &FileOptions::drop_cache, qapi::kNoDefault,
                             "invalidate page cache during live migration (default: on)"),
            qapi::bool_field("x-check-cache-dropped", &FileOptions::check_cache_dropped,
                             qapi::kNoDefault,
                             "check that page cache was dropped on live migration (default: off)"),
        });
    return schema;
}

// raw_create_opts, in QEMU's order (qemu-img create prints them so).
struct FileCreateOptions {
    std::optional<uint64_t> size;
    bool nocow = false;
    Prealloc preallocation = Prealloc::kOff;
    std::optional<uint64_t> extent_size_hint;
};

const qapi::Schema<FileCreateOptions>& file_create_schema() {
    static const qapi::Schema<FileCreateOptions> schema(
        "file",
        {
            qapi::size_field("size", &FileCreateOptions::size, qapi::kNoDefault,
                             "Virtual disk size"),
            qapi::bool_field("nocow", &FileCreateOptions::nocow, qapi::kNoDefault,
                             "Turn off copy-on-write (valid only on btrfs)"),
            // "metadata" parses (PreallocMode has it) and then fails as in
            // QEMU: "Unsupported preallocation mode: metadata".
            qapi::enum_field("preallocation", &FileCreateOptions::preallocation,
                             {{"off", Prealloc::kOff},
                              {"metadata", Prealloc::kMetadata},
                              {"falloc", Prealloc::kFalloc},
                              {"full", Prealloc::kFull}},
                             qapi::kNoDefault,
                             "Preallocation mode (allowed values: off, falloc, full)",
                             qapi::EnumErrorStyle::kEnumParse),
            qapi::size_field("extent_size_hint", &FileCreateOptions::extent_size_hint,
                             qapi::kNoDefault, "Extent size hint for the image file, 0 to disable"),
        });
    return schema;
}

// raw_parse_filename: "file:/path" names /path.
std::string strip_protocol(const std::string& filename, const std::string& prefix) {
    const std::string with_colon = prefix + ":";
    if (filename.rfind(with_colon, 0) == 0) return filename.substr(with_colon.size());
    return filename;
}

// ---- Open ------------------------------------------------------------------------------

Result<std::unique_ptr<BlockNode>> co_open_posix(OpenContext& ctx, const BlockDriver& driver,
                                                 bool devices_only) {
    qapi::OptionsTree& options = ctx.options();
    // The block layer normally takes these; a node opened directly may
    // still carry them.
    if (auto v = options.take("cache.direct")) {
        ASSIGN_OR_RETURN(ctx.mutable_flags().cache_direct,
                         qapi::parse_bool_option("cache.direct", *v));
    }
    if (auto v = options.take("cache.no-flush")) {
        ASSIGN_OR_RETURN(ctx.mutable_flags().cache_no_flush,
                         qapi::parse_bool_option("cache.no-flush", *v));
    }
    ASSIGN_OR_RETURN(FileOptions opts, file_options_schema().parse(options));
    if (opts.pr_manager && !opts.pr_manager->empty())
        return make_error(ErrorKind::kNotFound,
                          "No persistent reservation manager with id '" + *opts.pr_manager + "'");

    FileNodeConfig config;
    config.path =
        strip_protocol(opts.filename.empty() ? ctx.filename() : opts.filename, driver.name);
    if (config.path.empty())
        return invalid_argument("The '" + driver.name + "' block driver requires a file name");
    config.aio = opts.aio.value_or(ctx.flags().aio);
    const OnOffAuto locking =
        opts.locking.value_or(ctx.flags().locking ? OnOffAuto::kAuto : OnOffAuto::kOff);
    config.use_locks = locking != OnOffAuto::kOff;  // Linux always has OFD locks
    config.devices_only = devices_only;

    ASSIGN_OR_RETURN(std::unique_ptr<FileNode> node,
                     FileNode::co_open(driver, config, ctx.flags(), ctx.warnings()));
    ctx.mutable_flags().aio = node->aio_mode();  // what is really in use
    return std::unique_ptr<BlockNode>(std::move(node));
}

const BlockDriver& file_driver();
const BlockDriver& host_device_driver();

Result<std::unique_ptr<BlockNode>> co_open_file(OpenContext& ctx) {
    return co_open_posix(ctx, file_driver(), false);
}

Result<std::unique_ptr<BlockNode>> co_open_host_device(OpenContext& ctx) {
    return co_open_posix(ctx, host_device_driver(), true);
}

// ---- Create ----------------------------------------------------------------------------

// Best effort, as QEMU: NOCOW for btrfs, an extent size hint for XFS.
void apply_create_hints(int fd, const FileCreateOptions& opts) {
    if (opts.nocow) {
        int attr = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
            attr |= FS_NOCOW_FL;
            (void)ioctl(fd, FS_IOC_SETFLAGS, &attr);
        }
    }
    struct fsxattr xattr;
    if (ioctl(fd, FS_IOC_FSGETXATTR, &xattr) == 0) {
        xattr.fsx_xflags |= FS_XFLAG_EXTSIZE;
        xattr.fsx_extsize = static_cast<uint32_t>(opts.extent_size_hint.value_or(1u << 20));
        (void)ioctl(fd, FS_IOC_FSSETXATTR, &xattr);
    }
}

// raw_co_create: create (never truncate first), lock, check nobody else
// uses the file, then empty it and give it its size. The lock check comes
// before the truncation so an image in use is never clobbered.
Status create_file(const std::string& path, uint64_t size, const FileCreateOptions& opts) {
    ASSIGN_OR_RETURN(int fd, file_posix::open_file(path, O_RDWR | O_CREAT, 0644));
    // We discard everything (write) and set the size (resize); nobody may
    // resize meanwhile, as the size is what we promise.
    const uint32_t perm = kPermWrite | kPermResize;
    const uint32_t shared = kPermAll & ~kPermResize;
    Status status = FileLocks::lock_for_create(fd, perm, shared, path);
    if (status.ok()) status = file_posix::truncate_regular(fd, 0, Prealloc::kOff);
    if (status.ok()) {
        apply_create_hints(fd, opts);
        status = file_posix::truncate_regular(fd, size, opts.preallocation);
    }
    FileLocks::release_all(fd);
    if (close(fd) != 0 && status.ok()) return errno_error(errno, "Could not close the new file");
    return status;
}

Status co_create_file(CreateContext& ctx) {
    ASSIGN_OR_RETURN(FileCreateOptions opts, file_create_schema().parse(ctx.options()));
    const std::string path = strip_protocol(ctx.filename(), "file");
    // QEMU rounds the size of a new file up to whole sectors.
    const uint64_t size = (opts.size.value_or(ctx.size()) + 511) / 512 * 512;
    if (in_coroutine()) return co_run([&] { return create_file(path, size, opts); });
    return create_file(path, size, opts);
}

// ---- Registration ------------------------------------------------------------------------

const BlockDriver& file_driver() {
    static const BlockDriver driver = [] {
        BlockDriver d;
        d.name = "file";
        d.kind = DriverKind::kProtocol;
        d.protocol_prefixes = {"file"};
        d.co_open = &co_open_file;
        d.co_create = &co_create_file;
        d.create_options = &file_create_schema().descriptor();
        return d;
    }();
    return driver;
}

// QEMU's host_device: the same node, for block and character devices only.
const BlockDriver& host_device_driver() {
    static const BlockDriver driver = [] {
        BlockDriver d;
        d.name = "host_device";
        d.kind = DriverKind::kProtocol;
        d.protocol_prefixes = {"host_device"};
        d.co_open = &co_open_host_device;
        return d;
    }();
    return driver;
}

void register_file_drivers() {
    register_block_driver(&file_driver());
    register_block_driver(&host_device_driver());
}

}  // namespace

block_init(register_file_drivers);

}  // namespace coblock
