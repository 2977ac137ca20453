// The vhdx driver descriptor: probe, open, and creation of dynamic, fixed and
// differencing images with QEMU 7.2's create options (spec vhdx.md §14.1)
// plus the sector sizes, laid out by formats/vhdx/layout.
#include <filesystem>

#include "block/backend.h"
#include "block/create.h"
#include "block/io.h"
#include "drivers/vhdx/vhdx_node.h"

namespace coblock {

using namespace vhdx;

namespace {

struct VhdxCreateOptions {
    uint64_t size = 0;
    uint64_t log_size = kDefaultLogSize;
    uint64_t block_size = 0;
    std::optional<std::string> subformat;
    std::optional<bool> block_state_zero;
    std::optional<uint64_t> logical_sector_size;
    std::optional<uint64_t> physical_sector_size;
    std::optional<std::string> backing_file;  // -b: a differencing image
    std::optional<std::string> backing_fmt;
};

// QEMU's order (the "Formatting ..." line lists options in this order).
const qapi::Schema<VhdxCreateOptions> kVhdxCreateSchema(
    "vhdx",
    {
        qapi::size_field("size", &VhdxCreateOptions::size, qapi::kNoDefault,
                         "Virtual disk size; max of 64TB."),
        qapi::size_field("log_size", &VhdxCreateOptions::log_size, "1048576", "Log size; min 1MB."),
        qapi::size_field("block_size", &VhdxCreateOptions::block_size, "0",
                         "Block Size; min 1MB, max 256MB. 0 means auto-calculate based on "
                         "image size."),
        qapi::string_field("subformat", &VhdxCreateOptions::subformat, qapi::kNoDefault,
                           "VHDX format type, can be either 'dynamic' or 'fixed'. Default is "
                           "'dynamic'."),
        qapi::bool_field("block_state_zero", &VhdxCreateOptions::block_state_zero, qapi::kNoDefault,
                         "Force use of payload blocks of type 'ZERO'. Non-standard, but "
                         "default.  Do not set to 'off' when using 'qemu-img convert' with "
                         "subformat=dynamic."),
        qapi::size_field("logical_sector_size", &VhdxCreateOptions::logical_sector_size,
                         qapi::kNoDefault, "Logical sector size, 512 or 4096 (coblock)."),
        qapi::size_field("physical_sector_size", &VhdxCreateOptions::physical_sector_size,
                         qapi::kNoDefault, "Physical sector size, 512 or 4096 (coblock)."),
        qapi::string_field("backing_file", &VhdxCreateOptions::backing_file, qapi::kNoDefault,
                           "File name of a base image"),
        qapi::string_field("backing_fmt", &VhdxCreateOptions::backing_fmt, qapi::kNoDefault,
                           "Image format of the base image"),
    });

std::string windows_path(std::string path) {
    for (char& c : path)
        if (c == '/') c = '\\';
    return path;
}

// Fills the parent-dependent options of a differencing image from the
// parent's metadata and current header.
Status co_fill_parent(CreateContext& ctx, CreateOptions& options, uint64_t* size) {
    if (!ctx.backing_format().empty() && ctx.backing_format() != "vhdx")
        return unsupported_error("vhdx: the parent of a differencing image must be vhdx, not '" +
                                 ctx.backing_format() + "'");
    const std::filesystem::path child_dir = std::filesystem::absolute(ctx.filename()).parent_path();
    std::filesystem::path parent_path(ctx.backing_file());
    // As QEMU: a relative backing name is relative to the image's directory.
    const std::filesystem::path parent_abs =
        (parent_path.is_relative() ? child_dir / parent_path : parent_path).lexically_normal();
    qapi::OptionsTree open_options;
    open_options.set("driver", "vhdx");
    OpenFlags flags;
    flags.read_only = true;
    flags.no_backing = true;  // only its identity is needed
    ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> parent,
                     BlockBackend::open(parent_abs.string(), std::move(open_options), flags));
    auto* node = dynamic_cast<VhdxNode*>(parent->root());
    if (!node) return invalid_argument("vhdx: " + ctx.backing_file() + " is not a vhdx image");
    if (node->log_in_overlay())
        return make_error(ErrorKind::kBusy, "vhdx: parent " + ctx.backing_file() +
                                                " has a pending log; open it read-write first");
    options.type = ImageType::kDifferencing;
    options.virtual_disk_id = node->metadata().virtual_disk_id;
    options.logical_sector_size = node->metadata().logical_sector_size;
    options.physical_sector_size = node->metadata().physical_sector_size;
    if (*size == 0) *size = node->metadata().virtual_disk_size;
    VhdxParentLinkage linkage;
    linkage.parent_linkage = node->header().data_write_guid;
    const std::filesystem::path relative =
        parent_path.is_relative() ? parent_path : parent_abs.lexically_relative(child_dir);
    if (!relative.empty()) linkage.relative_path = windows_path(relative.string());
    linkage.absolute_win32_path = windows_path(parent_abs.string());
    options.parent = std::move(linkage);
    return {};
}

Status co_create_vhdx(CreateContext& ctx) {
    ASSIGN_OR_RETURN(VhdxCreateOptions o, kVhdxCreateSchema.parse(ctx.options()));
    if (ctx.backing_file().empty() && o.backing_file)
        ctx.set_backing(*o.backing_file, o.backing_fmt.value_or(""));
    CreateOptions options;
    uint64_t size = ctx.size() ? ctx.size() : o.size;
    if (o.subformat && *o.subformat != "dynamic" && *o.subformat != "fixed")
        return invalid_argument("Parameter 'subformat' does not accept value '" + *o.subformat +
                                "'");
    options.type = o.subformat == "fixed" ? ImageType::kFixed : ImageType::kDynamic;
    if (o.logical_sector_size) options.logical_sector_size = *o.logical_sector_size;
    if (o.physical_sector_size) options.physical_sector_size = *o.physical_sector_size;
    if (!ctx.backing_file().empty()) {
        if (options.type == ImageType::kFixed)
            return invalid_argument("vhdx: a differencing image cannot be fixed");
        TRY(co_fill_parent(ctx, options, &size));
    }
    // QEMU's rounding (qemu-img create): size to sectors, log and block
    // sizes to MiB, block sizes above 256 MiB clamp.
    if (options.logical_sector_size != 512 && options.logical_sector_size != 4096)
        return invalid_argument("vhdx: logical sector size " +
                                std::to_string(options.logical_sector_size) +
                                " is not 512 or 4096");
    if (options.physical_sector_size != 512 && options.physical_sector_size != 4096)
        return invalid_argument("vhdx: physical sector size " +
                                std::to_string(options.physical_sector_size) +
                                " is not 512 or 4096");
    size = align_up(size, options.logical_sector_size);
    if (size > kMaxVirtualDiskSize) return invalid_argument("Image size too large; max of 64TB");
    uint64_t log_size = align_up(o.log_size ? o.log_size : kDefaultLogSize, kMiB);
    if (log_size >= 4 * kGiB) return invalid_argument("Log size must be smaller than 4 GB");
    uint64_t block_size = align_up(o.block_size, kMiB);
    if (block_size > kMaxBlockSize) block_size = kMaxBlockSize;
    if (block_size && !is_power_of_two(block_size))
        return invalid_argument("Block size must be a power of two");
    options.virtual_disk_size = size;
    options.log_size = log_size;
    options.block_size = static_cast<uint32_t>(block_size);
    options.block_state_zero =
        options.type == ImageType::kDynamic && o.block_state_zero.value_or(true);
    options.file_write_guid = random_vhdx_guid();
    options.data_write_guid = random_vhdx_guid();
    if (options.type != ImageType::kDifferencing) options.virtual_disk_id = random_vhdx_guid();
    options.sequence_number = 1;
    ASSIGN_OR_RETURN(ImageLayout layout, build_image_layout(options));

    ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> file,
                     ctx.co_create_file(layout.file_size, std::move(ctx.options())));
    for (FileWrite& w : layout.writes) {
        IoVector qiov(w.bytes.data(), w.bytes.size());
        TRY(file->co_pwritev(w.offset, w.bytes.size(), qiov));
    }
    if (file->length() < layout.file_size)
        TRY(file->co_truncate(layout.file_size, true, Prealloc::kOff));
    return file->co_flush();
}

Result<std::unique_ptr<BlockNode>> co_open_vhdx(OpenContext& ctx) {
    auto node = std::make_unique<VhdxNode>(kVhdxDriver);
    TRY(ctx.co_open_child(*node, "file", kRoleFile, ctx.filename(), /*probe_format=*/false));
    TRY(node->co_init(ctx));
    return std::unique_ptr<BlockNode>(std::move(node));
}

int probe_vhdx_image(ByteSpan head, std::string_view) {
    return probe_vhdx(head) ? 100 : 0;
}

void register_vhdx_driver() {
    register_block_driver(&kVhdxDriver);
}

}  // namespace

const BlockDriver kVhdxDriver{.name = "vhdx",
                              .kind = DriverKind::kFormat,
                              .probe = probe_vhdx_image,
                              .co_open = co_open_vhdx,
                              .co_create = co_create_vhdx,
                              .create_options = &kVhdxCreateSchema.descriptor(),
                              .supports_backing = true};

}  // namespace coblock

block_init(coblock::register_vhdx_driver);
