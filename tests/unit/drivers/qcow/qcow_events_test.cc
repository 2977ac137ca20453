// The debug events the qcow driver raises on its file (what blkdebug sees),
// in order with the writes and flushes around them. Same events as QEMU
// 7.2's qcow (blkdebug.md §12.3); the order differs where coblock writes
// contents before pointers, and runs of clusters share one data write.
#include <gtest/gtest.h>

#include "crash_node.h"
#include "qcow_test_util.h"

namespace coblock::qcow {
namespace {

using namespace coblock::qcow::testing;

using Log = std::vector<std::string>;

struct Traced {
    CrashNode* node = nullptr;
    NodeRef ref;
    std::unique_ptr<BlockBackend> blk;
};

Traced open_traced(std::vector<std::byte> image) {
    Traced t;
    t.node = new CrashNode(std::move(image), ~uint64_t{0});
    t.ref = NodeRef(t.node);
    t.node->set_node_name(*allocate_node_name(""));
    auto blk = open_qcow(t.node);
    EXPECT_TRUE(blk.ok()) << blk.error().message;
    if (blk.ok()) t.blk = std::move(*blk);
    t.node->log().clear();
    return t;
}

TEST(QcowEvents, FirstWriteThenRewriteThenRead) {
    Traced t = open_traced(new_image(100 << 20));
    std::vector<uint8_t> data(4096, 1);
    ASSERT_TRUE(t.blk->pwrite(0, data.data(), data.size()).ok());
    EXPECT_EQ(t.node->log(),
              (Log{"l2_load", "W 4096+4096", "F", "l1_update", "W 48+8", "F", "cluster_alloc",
                   "write_aio", "W 8192+4096", "F", "l2_update", "W 4096+8", "F"}));
    t.node->log().clear();
    ASSERT_TRUE(t.blk->pwrite(0, data.data(), data.size()).ok());
    EXPECT_EQ(t.node->log(), (Log{"write_aio", "W 8192+4096"}));  // L2 table cached
    t.node->log().clear();
    ASSERT_TRUE(t.blk->pread(0, data.data(), data.size()).ok());
    EXPECT_EQ(t.node->log(), (Log{"read_aio"}));
}

TEST(QcowEvents, ThreeClustersShareOneDataAndOneL2Write) {
    Traced t = open_traced(new_image(100 << 20));
    std::vector<uint8_t> data(12288, 1);
    ASSERT_TRUE(t.blk->pwrite(0, data.data(), data.size()).ok());
    EXPECT_EQ(t.node->log(), (Log{"l2_load", "W 4096+4096", "F", "l1_update", "W 48+8", "F",
                                  "cluster_alloc", "cluster_alloc", "cluster_alloc", "write_aio",
                                  "W 8192+12288", "F", "l2_update", "W 4096+24", "F"}));
}

TEST(QcowEvents, CompressedWriteReadAndPartialOverwrite) {
    Traced t = open_traced(new_image(100 << 20));
    std::vector<uint8_t> data(4096, 7);
    ASSERT_TRUE(t.blk->pwrite(0, data.data(), data.size(), kReqWriteCompressed).ok());
    ASSERT_EQ(t.node->log().size(), 13u);
    EXPECT_EQ(Log(t.node->log().begin() + 6, t.node->log().end() - 3),
              (Log{"cluster_alloc", "write_compressed", t.node->log()[8], "F"}));
    EXPECT_EQ(t.node->log()[8].rfind("W 8192+", 0), 0u);
    EXPECT_EQ(Log(t.node->log().end() - 3, t.node->log().end()),
              (Log{"l2_update_compressed", "W 4096+8", "F"}));
    t.node->log().clear();
    ASSERT_TRUE(t.blk->pread(0, data.data(), data.size()).ok());
    EXPECT_EQ(t.node->log(), (Log{"read_compressed"}));
    t.node->log().clear();
    ASSERT_TRUE(t.blk->pwrite(512, data.data(), 512).ok());
    // The decompressed cluster is cached from the read, but a write drops
    // the cache (QEMU does the same), so it is read again.
    EXPECT_EQ(t.node->log(), (Log{"cluster_alloc", "read_compressed", "write_aio", "W 12288+4096",
                                  "F", "l2_update", "W 4096+8", "F"}));
}

TEST(QcowEvents, UnallocatedReadsWithBackingRaiseReadBackingAio) {
    MemImage base = memory_image(std::vector<std::byte>(1 << 20, std::byte{1}));
    auto* node = new CrashNode(custom_image(1 << 20, 12, 9, "base"), ~uint64_t{0});
    NodeRef ref(node);
    node->set_node_name(*allocate_node_name(""));
    auto blk = open_qcow(node, base.mem);
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    node->log().clear();
    std::vector<uint8_t> data(8192);
    ASSERT_TRUE((*blk)->pread(0, data.data(), data.size()).ok());
    EXPECT_EQ(node->log(), (Log{"read_backing_aio"}));
}

}  // namespace
}  // namespace coblock::qcow
