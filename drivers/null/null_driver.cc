// null-co and null-aio: a protocol whose reads return nothing (or zeros) and
// whose writes vanish, QEMU's block/null.c. The benchmark of the block layer
// itself: every cost measured on it is ours.
#include <memory>

#include "block/driver.h"
#include "block/graph.h"
#include "coroutine/event_loop.h"
#include "coroutine/sleep.h"

namespace coblock {
namespace {

struct NullOptions {
    std::string filename;
    uint64_t size = 1ull << 30;
    bool read_zeroes = false;
    uint64_t latency_ns = 0;
};

const qapi::Schema<NullOptions> kNullSchema(
    "null", {
                qapi::string_field("filename", &NullOptions::filename, qapi::kNoDefault, ""),
                qapi::size_field("size", &NullOptions::size, "1G", "size of the null block"),
                qapi::bool_field("read-zeroes", &NullOptions::read_zeroes, "off",
                                 "return zeroes when read"),
                qapi::uint_field("latency-ns", &NullOptions::latency_ns, "0",
                                 "nanoseconds (approximated) to wait before completing request"),
            });

class NullNode final : public BlockNode {
  public:
    NullNode(const BlockDriver& driver, const NullOptions& options, bool complete_in_bh)
        : BlockNode(driver), options_(options), complete_in_bh_(complete_in_bh) {
        set_size(options.size);
        set_supported_write_flags(kReqFua);
        set_supported_zero_flags(kReqFua | kReqMayUnmap);
    }

    Status co_preadv(uint64_t, uint64_t, IoVector& qiov, uint32_t) override {
        TRY(complete());
        if (options_.read_zeroes) qiov.fill(0);
        return {};
    }
    Status co_pwritev(uint64_t, uint64_t, IoVector&, uint32_t) override { return complete(); }
    Status co_pwrite_zeroes(uint64_t, uint64_t, uint32_t) override { return complete(); }
    Status co_pdiscard(uint64_t, uint64_t) override { return complete(); }
    Status co_flush() override { return complete(); }
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool) override {
        BlockStatus status;
        status.bytes = bytes;
        status.flags = kStatusOffsetValid | (options_.read_zeroes ? uint32_t{kStatusZero} : 0u);
        status.offset = offset;
        status.file = this;
        return status;
    }

  private:
    // null-co completes in the caller; null-aio from a bottom half, as
    // QEMU's null-aio completes from its AIO callback.
    Status complete() {
        if (options_.latency_ns) {
            co_sleep_ns(static_cast<int64_t>(options_.latency_ns));
        } else if (complete_in_bh_) {
            Coroutine* self = Coroutine::self();
            BottomHalf bh(EventLoop::current(), [self] { wake(self); });
            bh.schedule();
            yield();
        }
        return {};
    }

    NullOptions options_;
    bool complete_in_bh_;
};

template <bool kAio>
Result<std::unique_ptr<BlockNode>> co_open_null(OpenContext& ctx);

const BlockDriver kNullCo{.name = "null-co",
                          .kind = DriverKind::kProtocol,
                          .protocol_prefixes = {"null-co"},
                          .co_open = co_open_null<false>};
const BlockDriver kNullAio{.name = "null-aio",
                           .kind = DriverKind::kProtocol,
                           .protocol_prefixes = {"null-aio"},
                           .co_open = co_open_null<true>};

template <bool kAio>
Result<std::unique_ptr<BlockNode>> co_open_null(OpenContext& ctx) {
    ASSIGN_OR_RETURN(NullOptions options, kNullSchema.parse(ctx.options()));
    const char* expected = kAio ? "null-aio://" : "null-co://";
    if (!options.filename.empty() && options.filename != expected)
        return invalid_argument(std::string("The only allowed filename for this driver is '") +
                                expected + "'");
    auto node = std::make_unique<NullNode>(kAio ? kNullAio : kNullCo, options, kAio);
    // QEMU's null_refresh_filename: the node is named by its protocol.
    node->set_filename(expected);
    return std::unique_ptr<BlockNode>(std::move(node));
}

void register_null_drivers() {
    register_block_driver(&kNullCo);
    register_block_driver(&kNullAio);
}

}  // namespace
}  // namespace coblock

block_init(coblock::register_null_drivers);
