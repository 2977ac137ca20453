// compress: the filter that turns every write into a compressed write
// (QEMU 7.2 block/filter-compress.c). Its file must be a format that writes
// compressed clusters (qcow, qcow2); requests are aligned to, and split at,
// the file's cluster size, so the request layer turns a partial write into a
// read-modify-write of whole clusters, as QEMU's does. Reads, zero writes,
// discards and resizes pass through unchanged.
#include <cstring>
#include <memory>
#include <string>

#include "block/child.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/io.h"

namespace coblock {
namespace {

const BlockDriver& compress_driver();

class CompressNode final : public BlockNode {
  public:
    CompressNode() : BlockNode(compress_driver()) {}

    // QEMU's compress_open and compress_refresh_limits.
    Status init() {
        file_ = file();
        BlockNode* below = file_->node();
        if (!(below->supported_write_flags() & kReqWriteCompressed))
            return make_error(
                ErrorKind::kUnsupported,
                "Compression is not supported for underlying format: " + below->driver().name);
        Result<NodeInfo> info = below->get_info();
        if (!info.ok())
            return make_error(ErrorKind::kUnsupported,
                              "Could not get cluster_size: " +
                                  std::string(std::strerror(info.error().as_errno())));
        if (info->cluster_size <= 0 || info->cluster_size > (int64_t{1} << 30))
            return invalid_argument("Could not get cluster_size: cluster size " +
                                    std::to_string(info->cluster_size) + " is not usable");
        set_size(below->size());
        BlockLimits& limits = mutable_limits();
        limits = below->limits();
        limits.request_alignment = static_cast<uint32_t>(info->cluster_size);
        limits.max_transfer = static_cast<uint64_t>(info->cluster_size);
        set_supported_write_flags(below->supported_write_flags() & kReqFua);
        set_supported_zero_flags(below->supported_zero_flags() &
                                 (kReqFua | kReqMayUnmap | kReqNoFallback));
        return {};
    }

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        return co_child_preadv(file_, offset, bytes, qiov, flags);
    }

    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        return co_child_pwritev(file_, offset, bytes, qiov, flags | kReqWriteCompressed);
    }

    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
        return co_child_pwrite_zeroes(file_, offset, bytes, flags);
    }

    Status co_pdiscard(uint64_t offset, uint64_t bytes) override {
        return co_child_pdiscard(file_, offset, bytes);
    }

    // QEMU's bdrv_co_truncate hands a filter's resize to its filtered child.
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override {
        TRY(co_child_truncate(file_, size, exact, prealloc, shrink_ok));
        set_size(file_->node()->size());
        return {};
    }

    bool is_filter() const override { return true; }

  private:
    BdrvChild* file_ = nullptr;
};

Result<std::unique_ptr<BlockNode>> co_open_compress(OpenContext& ctx) {
    auto node = std::make_unique<CompressNode>();
    TRY(ctx.co_open_child(*node, "file", kRoleFilteredChild, ctx.filename(),
                          /*probe_format=*/false));
    TRY(node->init());
    return std::unique_ptr<BlockNode>(std::move(node));
}

// Like copy-on-read: no protocol prefix, so it opens (and lists) as a format.
const BlockDriver kCompress{
    .name = "compress", .kind = DriverKind::kFormat, .co_open = co_open_compress};

const BlockDriver& compress_driver() {
    return kCompress;
}

void register_compress_driver() {
    register_block_driver(&kCompress);
}

}  // namespace
}  // namespace coblock

block_init(coblock::register_compress_driver);
