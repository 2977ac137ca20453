// raw: the format that passes I/O through to its file, optionally through an
// `offset`/`size` window (QEMU's block/raw-format.c). It is the probe
// fallback; when it was guessed, writes to sector 0 that would make the image
// probe as another format are refused, as QEMU does.
#include <memory>

#include "block/create.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/io.h"

namespace coblock {
namespace {

constexpr uint64_t kSectorSize = 512;

struct RawOptions {
    uint64_t offset = 0;
    std::optional<uint64_t> size;
};

const qapi::Schema<RawOptions> kRawSchema(
    "raw", {
               qapi::size_field("offset", &RawOptions::offset, "0", "offset in the file"),
               qapi::size_field("size", &RawOptions::size, qapi::kNoDefault, "virtual disk size"),
           });

// raw's own create option is the size; everything else (preallocation,
// nocow, ...) belongs to the protocol, as in QEMU.
struct RawCreateOptions {
    uint64_t size = 0;
};

const qapi::Schema<RawCreateOptions> kRawCreateSchema(
    "raw",
    {
        qapi::size_field("size", &RawCreateOptions::size, qapi::kNoDefault, "Virtual disk size"),
    });

class RawNode final : public BlockNode {
  public:
    RawNode(const BlockDriver& driver, bool probed) : BlockNode(driver), probed_(probed) {}

    Status init(const RawOptions& options) {
        file_ = file();
        offset_ = options.offset;
        has_size_ = options.size.has_value();
        const uint64_t file_size = file_->node()->size();
        if (offset_ > file_size)
            return invalid_argument("Offset (" + std::to_string(offset_) +
                                    ") cannot be greater than size of the containing file (" +
                                    std::to_string(file_size) + ")");
        uint64_t size = has_size_ ? *options.size : file_size - offset_;
        if (has_size_ && (size > file_size - offset_))
            return invalid_argument("The sum of offset (" + std::to_string(offset_) +
                                    ") and size (" + std::to_string(size) +
                                    ") has to be smaller or equal to the  actual size of the "
                                    "containing file (" +
                                    std::to_string(file_size) + ")");
        set_size(size);
        // FUA only where the file has it (QEMU's raw): below a blkdebug node
        // the write is flushed here, as in QEMU.
        set_supported_write_flags(kReqFua & file_->node()->supported_write_flags());
        set_supported_zero_flags((kReqFua | kReqMayUnmap) & file_->node()->supported_zero_flags());
        // Partial writes to a probed sector 0 cannot be checked: require whole
        // sectors then (QEMU does the same).
        if (probed_) mutable_limits().request_alignment = kSectorSize;
        return {};
    }

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        coblock::co_debug_event(file_, BlkdebugEvent::kReadAio);
        return co_child_preadv(file_, offset_ + offset, bytes, qiov, flags);
    }

    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        if (probed_ && offset == 0) TRY(check_sector0(qiov));
        coblock::co_debug_event(file_, BlkdebugEvent::kWriteAio);
        return co_child_pwritev(file_, offset_ + offset, bytes, qiov, flags);
    }

    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
        return co_child_pwrite_zeroes(file_, offset_ + offset, bytes, flags);
    }

    Status co_pdiscard(uint64_t offset, uint64_t bytes) override {
        return co_child_pdiscard(file_, offset_ + offset, bytes);
    }

    // The file decides (QEMU's BDRV_BLOCK_RAW): ask it at the mapped offset.
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) override {
        ASSIGN_OR_RETURN(BlockStatus status,
                         co_node_block_status(file_->node(), offset_ + offset, bytes, want_zero));
        if (status.bytes == 0) {  // beyond the file's end: reads return zeros
            status.bytes = bytes;
            status.flags = kStatusZero;
            return status;
        }
        // QEMU's BDRV_BLOCK_RAW: the file's answer, allocation included (raw
        // over an unallocated qcow2 run is unallocated too).
        status.flags = (status.flags & ~kStatusEof) | kStatusFinal;
        return status;
    }

    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override {
        if (has_size_ || offset_)
            return unsupported_error("Cannot resize a raw image with an offset or size window");
        TRY(co_child_truncate(file_, size, exact, prealloc, shrink_ok));
        set_size(size);
        return {};
    }

    bool is_filter() const override { return !has_size_ && offset_ == 0; }
    // QEMU's raw_get_info: whatever the file says, window or not.
    Result<NodeInfo> get_info() override { return file_->node()->get_info(); }

  private:
    // Refuses a write that would make a probed raw image look like another
    // format on the next open.
    Status check_sector0(const IoVector& qiov) {
        std::byte head[kSectorSize] = {};
        qiov.copy_to(0, head, std::min<size_t>(qiov.size(), kSectorSize));
        const BlockDriver* guessed = probe_format(ByteSpan(head, kSectorSize), filename());
        if (guessed != &driver())
            return Error{ErrorKind::kPermission, EPERM,
                         "write to sector 0 of a probed raw image would change its format to " +
                             guessed->name,
                         std::nullopt};
        return {};
    }

    bool probed_;
    BdrvChild* file_ = nullptr;
    uint64_t offset_ = 0;
    bool has_size_ = false;
};

Result<std::unique_ptr<BlockNode>> co_open_raw(OpenContext& ctx);
Status co_create_raw(CreateContext& ctx);
int probe_raw(ByteSpan, std::string_view) {
    return 1;
}

const BlockDriver kRaw{.name = "raw",
                       .kind = DriverKind::kFormat,
                       .probe = probe_raw,
                       .co_open = co_open_raw,
                       .co_create = co_create_raw,
                       .create_options = &kRawCreateSchema.descriptor()};

Result<std::unique_ptr<BlockNode>> co_open_raw(OpenContext& ctx) {
    ASSIGN_OR_RETURN(RawOptions options, kRawSchema.parse(ctx.options()));
    auto node = std::make_unique<RawNode>(kRaw, ctx.format_probed());
    const bool window = options.offset != 0 || options.size.has_value();
    const uint32_t role =
        kRoleData | kRolePrimary | (window ? 0u : static_cast<uint32_t>(kRoleFiltered));
    TRY(ctx.co_open_child(*node, "file", role, ctx.filename(), /*probe_format=*/false));
    TRY(node->init(options));
    return std::unique_ptr<BlockNode>(std::move(node));
}

Status co_create_raw(CreateContext& ctx) {
    ASSIGN_OR_RETURN(RawCreateOptions options, kRawCreateSchema.parse(ctx.options()));
    (void)options;  // the size comes through ctx.size()
    ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> file,
                     ctx.co_create_file(ctx.size(), std::move(ctx.options())));
    return {};
}

void register_raw_driver() {
    register_block_driver(&kRaw);
}

}  // namespace
}  // namespace coblock

block_init(coblock::register_raw_driver);
