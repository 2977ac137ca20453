// Block status through a backing chain: unallocated runs are answered by the
// backing node, `depth` says where, and ranges past a short backing file or
// with no backing at all read as zeros.
#include <gtest/gtest.h>

#include <vector>

#include "block/graph.h"
#include "block/io.h"
#include "coroutine/run_sync.h"
#include "drivers/memory/memory_node.h"

namespace coblock {
namespace {

const BlockDriver kOverlayDriver{
    .name = "test-overlay", .kind = DriverKind::kFormat, .supports_backing = true};

// A format node that has allocated exactly [alloc_begin, alloc_end) itself.
class OverlayNode final : public BlockNode {
  public:
    OverlayNode(uint64_t size, uint64_t alloc_begin, uint64_t alloc_end)
        : BlockNode(kOverlayDriver), begin_(alloc_begin), end_(alloc_end) {
        set_size(size);
    }
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool) override {
        BlockStatus s;
        if (offset >= begin_ && offset < end_) {
            s.flags = kStatusData;
            s.bytes = std::min(bytes, end_ - offset);
        } else {
            s.bytes = std::min(bytes, offset < begin_ ? begin_ - offset : size() - offset);
        }
        return s;
    }

  private:
    uint64_t begin_, end_;
};

NodeRef named(BlockNode* node) {
    NodeRef ref(node);
    node->set_node_name(*allocate_node_name(""));
    return ref;
}

void attach_backing(BlockNode* top, BlockNode* below) {
    auto edge =
        attach_child(top, {}, below, "backing", kRoleBacking, kPermConsistentRead, kPermAll);
    ASSERT_TRUE(edge.ok());
    top->adopt_child(std::move(*edge));
}

TEST(BlockStatusAbove, WalksTheChainAndReportsDepth) {
    // base: memory (all data), 1 MiB; mid: allocates [64k,128k); top: [0,64k).
    NodeRef base = named(new MemoryNode(std::vector<std::byte>(1 << 20)));
    NodeRef mid = named(new OverlayNode(2 << 20, 64 << 10, 128 << 10));
    NodeRef top = named(new OverlayNode(2 << 20, 0, 64 << 10));
    attach_backing(mid.get(), base.get());
    attach_backing(top.get(), mid.get());
    run_sync([&] {
        auto s = co_block_status_above(top.get(), nullptr, 0, 2 << 20, true);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->depth, 0);
        EXPECT_EQ(s->bytes, 64u << 10);
        EXPECT_TRUE(s->flags & kStatusAllocated);

        s = co_block_status_above(top.get(), nullptr, 64 << 10, 2 << 20, true);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->depth, 1);
        EXPECT_EQ(s->bytes, 64u << 10);
        EXPECT_TRUE(s->flags & kStatusData);

        s = co_block_status_above(top.get(), nullptr, 128 << 10, 2 << 20, true);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->depth, 2);  // the base (a protocol node) has it
        EXPECT_EQ(s->bytes, (1u << 20) - (128u << 10));

        // Past the end of the shorter base: zeros, not allocated anywhere.
        s = co_block_status_above(top.get(), nullptr, 1 << 20, 2 << 20, true);
        ASSERT_TRUE(s.ok());
        EXPECT_TRUE(s->flags & kStatusZero);
        EXPECT_FALSE(s->flags & kStatusAllocated);
        EXPECT_TRUE(s->flags & kStatusEof);

        // Stopping at `base` = mid: the range below mid is unallocated above it.
        s = co_block_status_above(top.get(), mid.get(), 64 << 10, 64 << 10, true);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->depth, 0);
        EXPECT_FALSE(s->flags & kStatusAllocated);

        bool allocated = true;
        auto n = co_is_allocated(top.get(), 64 << 10, 1 << 20, &allocated);
        ASSERT_TRUE(n.ok());
        EXPECT_FALSE(allocated);
        EXPECT_EQ(*n, 1u << 20);  // the whole request: top has none of it
    });
}

TEST(BlockStatusAbove, NoBackingReadsAsZeros) {
    NodeRef top = named(new OverlayNode(1 << 20, 0, 4096));
    run_sync([&] {
        auto s = co_node_block_status(top.get(), 4096, 1 << 20, true);
        ASSERT_TRUE(s.ok());
        EXPECT_TRUE(s->flags & kStatusZero);
        EXPECT_FALSE(s->flags & kStatusAllocated);
        EXPECT_EQ(s->bytes, (1u << 20) - 4096);
    });
}

}  // namespace
}  // namespace coblock
