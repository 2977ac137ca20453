// qcow2 driver: open validation, reads and writes against a shadow buffer,
// copy-on-write from a backing file, zero writes, discard, truncate,
// compressed writes, reopen and refcount consistency via co_check.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "block/io.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/bytes.h"
#include "qapi/help.h"
#include "tests/unit/drivers/qcow2/qcow2_test_util.h"

namespace coblock {
namespace {

using testing::check_image;
using testing::create_qcow2;
using testing::open_qcow2;
using testing::pattern;
using testing::TempDir;

class Qcow2Test : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(dir_.ok());
        block_layer_init();
        path_ = dir_.path("a.qcow2");
    }
    std::unique_ptr<BlockBackend> open(const std::string& path, bool ro = false,
                                       qapi::OptionsTree options = {}) {
        auto blk = open_qcow2(path, ro, std::move(options));
        EXPECT_TRUE(blk.ok()) << (blk.ok() ? "" : blk.error().to_string());
        return blk.ok() ? std::move(*blk) : nullptr;
    }
    void expect_clean(BlockBackend& blk) {
        auto r = check_image(blk);
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        EXPECT_EQ(r->corruptions, 0);
        EXPECT_EQ(r->leaks, 0);
        EXPECT_EQ(r->check_errors, 0);
    }
    void expect_contents(BlockBackend& blk, const std::vector<uint8_t>& shadow) {
        std::vector<uint8_t> got(shadow.size());
        ASSERT_TRUE(blk.pread(0, got.data(), got.size()).ok());
        size_t first = 0;
        while (first < got.size() && got[first] == shadow[first])
            ++first;
        ASSERT_TRUE(got == shadow) << "contents differ from shadow at byte " << first;
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
    std::string path_;
};

TEST_F(Qcow2Test, RegisteredWithProbe) {
    const BlockDriver* d = find_block_driver("qcow2");
    ASSERT_NE(d, nullptr);
    EXPECT_TRUE(d->supports_backing);
    const std::byte good[8] = {std::byte{'Q'}, std::byte{'F'}, std::byte{'I'}, std::byte{0xfb},
                               std::byte{0},   std::byte{0},   std::byte{0},   std::byte{3}};
    EXPECT_EQ(d->probe(ByteSpan(good, 8), "x"), 100);
    const std::byte bad[8] = {};
    EXPECT_EQ(d->probe(ByteSpan(bad, 8), "x"), 0);
    ASSERT_NE(d->create_options, nullptr);
    EXPECT_TRUE(qapi::check_schema(*d->create_options).ok());
}

TEST_F(Qcow2Test, CreateOpenInfo) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 64 << 20));
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    EXPECT_EQ(blk->length(), 64u << 20);
    auto info = blk->root()->info_specific();
    EXPECT_EQ(info.dump(),
              R"({"type":"qcow2","data":{"compat":"1.1","compression-type":"zlib",)"
              R"("lazy-refcounts":false,"refcount-bits":16,"corrupt":false,"extended-l2":false}})");
    std::vector<uint8_t> buf(4096, 0xaa);
    QCOW2_ASSERT_OK(blk->pread(0, buf.data(), buf.size()));
    EXPECT_EQ(buf, std::vector<uint8_t>(4096, 0));
    expect_clean(*blk);
}

TEST_F(Qcow2Test, RefusesBadHeaders) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 1 << 20));
    // Unknown incompatible bit 10.
    std::vector<uint8_t> word(8, 0);
    word[6] = 0x04;
    testing::write_file(path_, 72, word);
    auto blk = open_qcow2(path_);
    ASSERT_FALSE(blk.ok());
    EXPECT_EQ(blk.error().kind, ErrorKind::kUnsupported);
    // Corrupt bit: read-only only.
    word.assign(8, 0);
    word[7] = 0x02;
    testing::write_file(path_, 72, word);
    blk = open_qcow2(path_);
    ASSERT_FALSE(blk.ok());
    EXPECT_NE(blk.error().message.find("Image is corrupt; cannot be opened read/write"),
              std::string::npos);
    EXPECT_TRUE(open_qcow2(path_, true).ok());
    // cluster_bits 22.
    testing::write_file(path_, 72, std::vector<uint8_t>(8, 0));
    testing::write_file(path_, 20, {0, 0, 0, 22});
    EXPECT_FALSE(open_qcow2(path_).ok());
}

TEST_F(Qcow2Test, RandomWritesMatchShadowAndStayConsistent) {
    constexpr uint64_t kSize = 8 << 20;
    QCOW2_ASSERT_OK(create_qcow2(path_, kSize, {{"cluster_size", "4096"}}));
    std::vector<uint8_t> shadow(kSize, 0);
    {
        auto blk = open(path_, false, {{"l2-cache-size", "8192"}, {"refcount-cache-size", "16k"}});
        ASSERT_TRUE(blk);
        std::mt19937_64 rng(42);
        for (int i = 0; i < 200; ++i) {
            uint64_t len = 1 + rng() % 20000;
            uint64_t off = rng() % (kSize - len);
            auto data = pattern(len, static_cast<uint8_t>(i));
            QCOW2_ASSERT_OK(blk->pwrite(off, data.data(), len));
            std::memcpy(shadow.data() + off, data.data(), len);
        }
        expect_contents(*blk, shadow);
        QCOW2_ASSERT_OK(blk->flush());
        expect_clean(*blk);
    }
    auto blk = open(path_, true);
    ASSERT_TRUE(blk);
    expect_contents(*blk, shadow);
    expect_clean(*blk);
}

TEST_F(Qcow2Test, CopyOnWriteFromBacking) {
    const std::string base = dir_.path("base.qcow2");
    QCOW2_ASSERT_OK(create_qcow2(base, 2 << 20));
    std::vector<uint8_t> shadow = pattern(2 << 20, 3);
    {
        auto b = open(base);
        ASSERT_TRUE(b);
        ASSERT_TRUE(b->pwrite(0, shadow.data(), shadow.size()).ok());
    }
    // The overlay is larger than the backing file: the rest reads as zeros.
    QCOW2_ASSERT_OK(create_qcow2(path_, 3 << 20, {}, "base.qcow2", "qcow2"));
    shadow.resize(3 << 20, 0);
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    EXPECT_EQ(blk->root()->backing_filename(), "base.qcow2");
    EXPECT_EQ(blk->root()->backing_format(), "qcow2");
    expect_contents(*blk, shadow);
    std::vector<uint8_t> data(1000, 0x5a);
    for (uint64_t off : {uint64_t{100}, uint64_t{70000}, uint64_t{(2 << 20) - 500}}) {
        QCOW2_ASSERT_OK(blk->pwrite(off, data.data(), data.size()));
        std::memcpy(shadow.data() + off, data.data(), data.size());
    }
    expect_contents(*blk, shadow);
    // backing=null: no backing file, unallocated clusters read as zeros.
    blk.reset();
    auto nb = open(path_, true, {{"backing", ""}});
    ASSERT_TRUE(nb);
    std::vector<uint8_t> got(1000);
    ASSERT_TRUE(nb->pread(200000, got.data(), got.size()).ok());
    EXPECT_EQ(got, std::vector<uint8_t>(1000, 0));
    ASSERT_TRUE(nb->pread(100, got.data(), got.size()).ok());
    EXPECT_EQ(got, data);
}

TEST_F(Qcow2Test, ZeroWritesAndDiscard) {
    const std::string base = dir_.path("base.qcow2");
    QCOW2_ASSERT_OK(create_qcow2(base, 1 << 20));
    std::vector<uint8_t> shadow = pattern(1 << 20, 9);
    {
        auto b = open(base);
        ASSERT_TRUE(b->pwrite(0, shadow.data(), shadow.size()).ok());
    }
    QCOW2_ASSERT_OK(create_qcow2(path_, 1 << 20, {}, "base.qcow2", "qcow2"));
    // Discards reach a node only with discard=unmap (QEMU's BDRV_O_UNMAP).
    auto blk = open(path_, false, {{"discard", "unmap"}});
    ASSERT_TRUE(blk);
    std::vector<uint8_t> data = pattern(200000, 1);
    QCOW2_ASSERT_OK(blk->pwrite(0, data.data(), data.size()));
    std::memcpy(shadow.data(), data.data(), data.size());
    // Unaligned zero write: the cluster part becomes zero clusters, the
    // rest is written as zero buffers by the request layer.
    QCOW2_ASSERT_OK(blk->pwrite_zeroes(1000, 150000));
    std::memset(shadow.data() + 1000, 0, 150000);
    QCOW2_ASSERT_OK(blk->pwrite_zeroes(196608, 65536, kReqMayUnmap));
    std::memset(shadow.data() + 196608, 0, 65536);
    // Discard of whole clusters with a backing file reads zeros (v3).
    QCOW2_ASSERT_OK(blk->pdiscard(393216, 131072));
    std::memset(shadow.data() + 393216, 0, 131072);
    expect_contents(*blk, shadow);
    QCOW2_ASSERT_OK(blk->flush());
    expect_clean(*blk);
}

TEST_F(Qcow2Test, TruncateGrowAndShrink) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 1 << 20, {{"cluster_size", "512"}}));
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    std::vector<uint8_t> data = pattern(4096, 4);
    QCOW2_ASSERT_OK(blk->pwrite((1 << 20) - 4096, data.data(), data.size()));
    QCOW2_ASSERT_OK(blk->truncate(64 << 20, false, Prealloc::kOff));
    EXPECT_EQ(blk->length(), 64u << 20);
    QCOW2_ASSERT_OK(blk->pwrite((64 << 20) - 4096, data.data(), data.size()));
    std::vector<uint8_t> got(4096);
    QCOW2_ASSERT_OK(blk->pread((64 << 20) - 4096, got.data(), got.size()));
    EXPECT_EQ(got, data);
    EXPECT_FALSE(blk->truncate(1 << 20, false, Prealloc::kOff, false).ok());
    QCOW2_ASSERT_OK(blk->truncate(1 << 20, false, Prealloc::kOff, true));
    QCOW2_ASSERT_OK(blk->pread((1 << 20) - 4096, got.data(), got.size()));
    EXPECT_EQ(got, data);
    QCOW2_ASSERT_OK(blk->flush());
    expect_clean(*blk);
    blk.reset();
    blk = open(path_);
    EXPECT_EQ(blk->length(), 1u << 20);
}

TEST_F(Qcow2Test, CompressedWritesReadBack) {
    for (const char* type : {"zlib", "zstd"}) {
        SCOPED_TRACE(type);
        QCOW2_ASSERT_OK(create_qcow2(path_, 1 << 20, {{"compression_type", type}}));
        auto blk = open(path_);
        ASSERT_TRUE(blk);
        std::vector<uint8_t> text(65536);
        for (size_t i = 0; i < text.size(); ++i)
            text[i] = "compressible "[i % 13];
        QCOW2_ASSERT_OK(blk->pwrite(65536, text.data(), text.size(), kReqWriteCompressed));
        std::vector<uint8_t> got(65536);
        QCOW2_ASSERT_OK(blk->pread(65536, got.data(), got.size()));
        EXPECT_EQ(got, text);
        auto st = run_sync([&] { return co_node_block_status(blk->root(), 65536, 65536, true); });
        ASSERT_TRUE(st.ok());
        EXPECT_TRUE(st->flags & kStatusCompressed);
        // Overwriting a compressed cluster allocates a normal one.
        QCOW2_ASSERT_OK(blk->pwrite(70000, text.data(), 100));
        std::memcpy(text.data() + 70000 - 65536, text.data(), 100);
        QCOW2_ASSERT_OK(blk->pread(65536, got.data(), got.size()));
        EXPECT_EQ(got, text);
        QCOW2_ASSERT_OK(blk->flush());
        expect_clean(*blk);
    }
}

TEST_F(Qcow2Test, ExtendedL2WritesAndReads) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 4 << 20, {{"extended_l2", "on"}}));
    std::vector<uint8_t> shadow(4 << 20, 0);
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 50; ++i) {
        uint64_t len = 1 + rng() % 100000;
        uint64_t off = rng() % (shadow.size() - len);
        auto data = pattern(len, static_cast<uint8_t>(i));
        QCOW2_ASSERT_OK(blk->pwrite(off, data.data(), len));
        std::memcpy(shadow.data() + off, data.data(), len);
    }
    QCOW2_ASSERT_OK(blk->pwrite_zeroes(65536, 65536 * 3));
    std::memset(shadow.data() + 65536, 0, 65536 * 3);
    expect_contents(*blk, shadow);
    QCOW2_ASSERT_OK(blk->flush());
    expect_clean(*blk);
}

TEST_F(Qcow2Test, ExtendedL2SubclusterAllocationAsQemu) {
    // qcow2-notes.md §12: 4 KiB at guest 4 KiB of a fresh 64 KiB-cluster
    // image -> entry 0x8000000000050000, bitmap 0x0c (subclusters 2, 3).
    QCOW2_ASSERT_OK(create_qcow2(path_, 10 << 20, {{"extended_l2", "on"}}));
    {
        auto blk = open(path_);
        ASSERT_TRUE(blk);
        std::vector<uint8_t> data(4096, 0x77);
        QCOW2_ASSERT_OK(blk->pwrite(4096, data.data(), data.size()));
    }
    auto entry = testing::read_file(path_, 0x40000, 16);
    EXPECT_EQ(entry,
              (std::vector<uint8_t>{0x80, 0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c}));
}

TEST_F(Qcow2Test, ExtendedL2WithBackingReadsThroughUnallocatedSubclusters) {
    const std::string base = dir_.path("base.qcow2");
    QCOW2_ASSERT_OK(create_qcow2(base, 2 << 20));
    std::vector<uint8_t> shadow = pattern(2 << 20, 21);
    {
        auto b = open(base);
        QCOW2_ASSERT_OK(b->pwrite(0, shadow.data(), shadow.size()));
    }
    QCOW2_ASSERT_OK(create_qcow2(path_, 2 << 20, {{"extended_l2", "on"}}, "base.qcow2", "qcow2"));
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    std::mt19937_64 rng(3);
    for (int i = 0; i < 40; ++i) {
        uint64_t len = 1 + rng() % 9000;
        uint64_t off = rng() % (shadow.size() - len);
        auto data = pattern(len, static_cast<uint8_t>(100 + i));
        QCOW2_ASSERT_OK(blk->pwrite(off, data.data(), len));
        std::memcpy(shadow.data() + off, data.data(), len);
    }
    expect_contents(*blk, shadow);
    QCOW2_ASSERT_OK(blk->flush());
    expect_clean(*blk);
}

TEST_F(Qcow2Test, LazyRefcountsDirtyBitRepairedOnOpen) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 4 << 20, {{"lazy_refcounts", "on"}}));
    {
        auto blk = open(path_);
        ASSERT_TRUE(blk);
        std::vector<uint8_t> data = pattern(300000, 2);
        QCOW2_ASSERT_OK(blk->pwrite(0, data.data(), data.size()));
        QCOW2_ASSERT_OK(blk->flush());
        // The dirty bit is on disk while the node is open.
        auto word = testing::read_file(path_, 72, 8);
        EXPECT_EQ(word[7] & 1, 1);
    }
    // Clean close cleared it.
    auto word = testing::read_file(path_, 72, 8);
    EXPECT_EQ(word[7] & 1, 0);
    auto blk = open(path_);
    expect_clean(*blk);
}

TEST_F(Qcow2Test, ConcurrentAllocatingWritesToOneCluster) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 1 << 20));
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    struct Req {
        std::vector<uint8_t> data;
        IoVector iov;
        int ret = 1;
    };
    std::vector<Req> reqs(8);
    for (int i = 0; i < 8; ++i) {
        reqs[i].data.assign(4096, static_cast<uint8_t>(i + 1));
        reqs[i].iov = IoVector(reqs[i].data.data(), 4096);
        blk->aio_pwritev(
            i * 4096, &reqs[i].iov,
            [](void* opaque, int ret) { static_cast<Req*>(opaque)->ret = ret; }, &reqs[i]);
    }
    blk->drain();
    std::vector<uint8_t> got(8 * 4096);
    QCOW2_ASSERT_OK(blk->pread(0, got.data(), got.size()));
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(reqs[i].ret, 0);
        EXPECT_EQ(got[i * 4096], i + 1);
        EXPECT_EQ(got[i * 4096 + 4095], i + 1);
    }
    QCOW2_ASSERT_OK(blk->flush());
    expect_clean(*blk);
}

TEST_F(Qcow2Test, ConcurrentAllocatingWritesAcrossClusters) {
    // 4 KiB clusters, 5000-byte requests: neighbours share clusters, so
    // allocations of one cluster must serialise while others run.
    QCOW2_ASSERT_OK(create_qcow2(path_, 1 << 20, {{"cluster_size", "4096"}}));
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    struct Req {
        std::vector<uint8_t> data;
        IoVector iov;
        int ret = 1;
    };
    constexpr int kReqs = 100;
    std::vector<Req> reqs(kReqs);
    std::vector<uint8_t> shadow(1 << 20, 0);
    for (int i = 0; i < kReqs; ++i) {
        // Submit in a scrambled order.
        const int slot = (i * 37) % kReqs;
        reqs[i].data = pattern(5000, static_cast<uint8_t>(slot));
        reqs[i].iov = IoVector(reqs[i].data.data(), 5000);
        std::memcpy(shadow.data() + slot * 5000, reqs[i].data.data(), 5000);
        blk->aio_pwritev(
            slot * 5000, &reqs[i].iov,
            [](void* opaque, int ret) { static_cast<Req*>(opaque)->ret = ret; }, &reqs[i]);
    }
    blk->drain();
    for (const auto& r : reqs)
        EXPECT_EQ(r.ret, 0);
    expect_contents(*blk, shadow);
    QCOW2_ASSERT_OK(blk->flush());
    expect_clean(*blk);
}

TEST_F(Qcow2Test, ConcurrentMixedRequestsStayConsistent) {
    // Writes, zero writes, discards and reads in flight together over a
    // backing file; each request owns its own 40000-byte slot so the final
    // contents are defined.
    const std::string base = dir_.path("base.qcow2");
    QCOW2_ASSERT_OK(create_qcow2(base, 4 << 20, {{"cluster_size", "4096"}}));
    std::vector<uint8_t> shadow = pattern(4 << 20, 77);
    {
        auto b = open(base);
        QCOW2_ASSERT_OK(b->pwrite(0, shadow.data(), shadow.size()));
    }
    QCOW2_ASSERT_OK(
        create_qcow2(path_, 4 << 20, {{"cluster_size", "4096"}}, "base.qcow2", "qcow2"));
    auto blk = open(path_, false, {{"discard", "unmap"}});
    ASSERT_TRUE(blk);
    struct Req {
        std::vector<uint8_t> data;
        IoVector iov;
        int ret = 1;
    };
    constexpr uint64_t kSlot = 40000;
    constexpr int kSlots = 100;
    std::vector<Req> reqs(kSlots);
    auto done = [](void* opaque, int ret) { static_cast<Req*>(opaque)->ret = ret; };
    for (int i = 0; i < kSlots; ++i) {
        const int slot = (i * 31) % kSlots;
        const uint64_t off = slot * kSlot;
        Req& r = reqs[i];
        switch (slot % 4) {
            case 0:
            case 1:
                r.data = pattern(kSlot, static_cast<uint8_t>(slot));
                r.iov = IoVector(r.data.data(), kSlot);
                std::memcpy(shadow.data() + off, r.data.data(), kSlot);
                blk->aio_pwritev(off, &r.iov, done, &r);
                break;
            case 2:
                std::memset(shadow.data() + off, 0, kSlot);
                blk->aio_pwrite_zeroes(off, kSlot, done, &r,
                                       slot % 8 == 2 ? uint32_t{kReqMayUnmap} : 0u);
                break;
            case 3:
                r.data.resize(kSlot);
                r.iov = IoVector(r.data.data(), kSlot);
                blk->aio_preadv(off, &r.iov, done, &r);
                break;
        }
    }
    blk->drain();
    for (int i = 0; i < kSlots; ++i) {
        EXPECT_EQ(reqs[i].ret, 0);
        const int slot = (i * 31) % kSlots;
        if (slot % 4 == 3) {
            EXPECT_TRUE(std::equal(reqs[i].data.begin(), reqs[i].data.end(),
                                   shadow.begin() + slot * kSlot));
        }
    }
    expect_contents(*blk, shadow);
    QCOW2_ASSERT_OK(blk->flush());
    expect_clean(*blk);
}

TEST_F(Qcow2Test, RefcountTableGrowsWithSmallClusters) {
    // 512-byte clusters, 64-bit refcounts: one refcount block covers 32 KiB
    // of file, one refcount table cluster 64 blocks (2 MiB): writing 3 MiB
    // needs new blocks and a bigger table.
    QCOW2_ASSERT_OK(
        create_qcow2(path_, 4 << 20, {{"cluster_size", "512"}, {"refcount_bits", "64"}}));
    std::vector<uint8_t> data = pattern(5 << 19, 5);
    {
        // cache.no-flush: hundreds of metadata flushes are not the point here.
        auto blk = open(path_, false, {{"cache.no-flush", "on"}});
        ASSERT_TRUE(blk);
        QCOW2_ASSERT_OK(blk->pwrite(0, data.data(), data.size()));
        QCOW2_ASSERT_OK(blk->flush());
        expect_clean(*blk);
    }
    if (testing::have_tool("/usr/bin/qemu-img")) {
        EXPECT_EQ(testing::run_command("/usr/bin/qemu-img check " + path_), 0);
    }
    auto blk = open(path_, true);
    std::vector<uint8_t> got(data.size());
    QCOW2_ASSERT_OK(blk->pread(0, got.data(), got.size()));
    EXPECT_TRUE(got == data);
}

TEST_F(Qcow2Test, CreateOptionsRefusedClearly) {
    EXPECT_EQ(create_qcow2(path_, 1 << 20, {{"encrypt.format", "luks"}}).error().kind,
              ErrorKind::kUnsupported);
    EXPECT_EQ(create_qcow2(path_, 1 << 20, {{"data_file", "x.raw"}}).error().kind,
              ErrorKind::kUnsupported);
    EXPECT_FALSE(create_qcow2(path_, 1 << 20, {{"cluster_size", "1000"}}).ok());
    EXPECT_FALSE(create_qcow2(path_, 1 << 20, {{"compat", "0.10"}, {"lazy_refcounts", "on"}}).ok());
}

}  // namespace
}  // namespace coblock

namespace coblock {
namespace {

qcow2drv::Qcow2Node::CacheInfo cache_info_of(BlockBackend& blk) {
    auto* node = dynamic_cast<qcow2drv::Qcow2Node*>(blk.root());
    EXPECT_NE(node, nullptr);
    return node ? node->cache_info() : qcow2drv::Qcow2Node::CacheInfo{};
}

// Cache sizes as QEMU 7.2's read_cache_sizes computes them.
TEST_F(Qcow2Test, CacheSizesAsQemu) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 1ull << 30));
    struct Want {
        qapi::OptionsTree options;
        uint64_t l2_entries, l2_entry_size, refcount_entries;
    };
    const std::vector<Want> wants = {
        // The whole 1 GiB disk: 16384 entries * 8 bytes = 2 tables; 4 refblocks.
        {{}, 2, 65536, 4},
        // cache-size: the L2 part covers the disk, the rest is refcounts.
        {{{"cache-size", "1M"}}, 2, 65536, 14},
        // Too small for both: refcounts get their minimum first.
        {{{"cache-size", "200K"}}, 2, 65536, 4},
        {{{"cache-size", "1M"}, {"l2-cache-size", "64K"}}, 2, 65536, 15},
        {{{"cache-size", "1M"}, {"refcount-cache-size", "512K"}}, 8, 65536, 8},
        {{{"l2-cache-entry-size", "4096"}, {"l2-cache-size", "64K"}}, 16, 4096, 4},
        {{{"l2-cache-entry-size", "512"}}, 256, 512, 4},
    };
    for (size_t i = 0; i < wants.size(); ++i) {
        const Want& w = wants[i];
        auto blk = open(path_, true, w.options);
        ASSERT_TRUE(blk);
        const auto info = cache_info_of(*blk);
        EXPECT_EQ(info.l2_entries, w.l2_entries) << "case " << i;
        EXPECT_EQ(info.l2_entry_size, w.l2_entry_size) << "case " << i;
        EXPECT_EQ(info.refcount_entries, w.refcount_entries) << "case " << i;
    }
    for (const char* bad : {"256", "3000", "131072"}) {
        auto blk = open_qcow2(path_, true, {{"l2-cache-entry-size", bad}});
        ASSERT_FALSE(blk.ok()) << bad;
        EXPECT_NE(blk.error().message.find("L2 cache entry size must be a power of two between "
                                           "512 and the cluster size (65536)"),
                  std::string::npos)
            << blk.error().message;
    }
    auto all3 =
        open_qcow2(path_, true,
                   {{"cache-size", "1M"}, {"l2-cache-size", "1M"}, {"refcount-cache-size", "1M"}});
    ASSERT_FALSE(all3.ok());
    EXPECT_NE(all3.error().message.find("may not be set at the same time"), std::string::npos);
    auto l2_over = open_qcow2(path_, true, {{"cache-size", "1M"}, {"l2-cache-size", "2M"}});
    ASSERT_FALSE(l2_over.ok());
    EXPECT_NE(l2_over.error().message.find("l2-cache-size may not exceed cache-size"),
              std::string::npos);
}

// Default L2 cache of a disk larger than 32 MiB of tables: capped at 32 MiB.
TEST_F(Qcow2Test, DefaultL2CacheCappedAt32MiB) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 1ull << 40));
    auto blk = open(path_, true);
    ASSERT_TRUE(blk);
    EXPECT_EQ(cache_info_of(*blk).l2_entries * cache_info_of(*blk).l2_entry_size, 32u << 20);
}

// Small slices with evictions, plain and extended L2: random writes, zero
// writes and discards match a shadow, and the image stays clean.
TEST_F(Qcow2Test, SmallL2SlicesWithEvictions) {
    for (bool extended : {false, true}) {
        SCOPED_TRACE(extended ? "extended L2" : "standard L2");
        constexpr uint64_t kSize = 8 << 20;
        const uint64_t cs = extended ? 16384 : 4096;
        std::remove(path_.c_str());
        QCOW2_ASSERT_OK(create_qcow2(
            path_, kSize,
            {{"cluster_size", std::to_string(cs)}, {"extended_l2", extended ? "on" : "off"}}));
        std::vector<uint8_t> shadow(kSize, 0);
        {
            auto blk = open(
                path_, false,
                {{"l2-cache-entry-size", "512"}, {"l2-cache-size", "2048"}, {"discard", "unmap"}});
            ASSERT_TRUE(blk);
            EXPECT_EQ(cache_info_of(*blk).l2_entry_size, 512u);
            EXPECT_EQ(cache_info_of(*blk).l2_entries, 4u);
            std::mt19937_64 rng(extended ? 11 : 12);
            for (int i = 0; i < 300; ++i) {
                const uint32_t kind = rng() % 10;
                if (kind < 7) {
                    uint64_t len = 1 + rng() % (5 * cs);
                    uint64_t off = rng() % (kSize - len);
                    auto data = pattern(len, static_cast<uint8_t>(i));
                    QCOW2_ASSERT_OK(blk->pwrite(off, data.data(), len));
                    std::memcpy(shadow.data() + off, data.data(), len);
                } else {
                    uint64_t len = cs * (1 + rng() % 40);
                    uint64_t off = (rng() % (kSize - len)) / cs * cs;
                    if (kind < 9) {
                        QCOW2_ASSERT_OK(blk->pwrite_zeroes(off, len, kind == 8 ? kReqMayUnmap : 0));
                    } else {
                        QCOW2_ASSERT_OK(blk->pdiscard(off, len));
                    }
                    std::memset(shadow.data() + off, 0, len);
                }
            }
            expect_contents(*blk, shadow);
            QCOW2_ASSERT_OK(blk->flush());
            expect_clean(*blk);
        }
        auto blk = open(path_, true);
        ASSERT_TRUE(blk);
        expect_contents(*blk, shadow);
        expect_clean(*blk);
        if (testing::have_tool("/usr/bin/qemu-img"))
            EXPECT_EQ(testing::run_command("/usr/bin/qemu-img check " + path_), 0);
    }
}

}  // namespace
}  // namespace coblock

namespace coblock {
namespace {

// Until write_compressed indexes L2 slices, compressed writes are refused
// (clearly, writing nothing) when a slice is smaller than a table.
TEST_F(Qcow2Test, CompressedWritesNeedWholeTableSlices) {
    QCOW2_ASSERT_OK(create_qcow2(path_, 1 << 20, {{"cluster_size", "4096"}}));
    std::vector<uint8_t> data(4096, 0x42);
    {
        auto blk = open(path_, false, {{"l2-cache-entry-size", "512"}});
        ASSERT_TRUE(blk);
        const auto before = testing::read_file(path_, 0, testing::file_size(path_));
        Status st = blk->pwrite(0, data.data(), data.size(), kReqWriteCompressed);
        ASSERT_FALSE(st.ok());
        EXPECT_NE(st.error().message.find("l2-cache-entry-size"), std::string::npos);
        EXPECT_TRUE(testing::read_file(path_, 0, testing::file_size(path_)) == before);
    }
    auto blk = open(path_);
    ASSERT_TRUE(blk);
    QCOW2_ASSERT_OK(blk->pwrite(0, data.data(), data.size(), kReqWriteCompressed));
    std::vector<uint8_t> got(4096);
    QCOW2_ASSERT_OK(blk->pread(0, got.data(), got.size()));
    EXPECT_EQ(got, data);
}

}  // namespace
}  // namespace coblock
