// The vhdx driver on its own (no QEMU needed): create, open, read and write
// every block state, zero writes, differencing chains and parent lookup,
// growing, check, refusal of corrupt images, and log replay after a crash
// between writing and applying the log (through the test fault filter).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>

#include "block/check.h"
#include "block/create.h"
#include "coroutine/event_loop.h"
#include "formats/crc32c.h"
#include "tests/unit/drivers/vhdx/vhdx_test_util.h"

namespace coblock {
namespace {

using namespace vhdx_test;
using vhdx::kMiB;

class VhdxDriverTest : public ::testing::Test {
  protected:
    void SetUp() override {
        block_layer_init();
        ASSERT_TRUE(dir_.ok());
        path_ = dir_.path("disk.vhdx");
    }

    // Writes through the backend and mirrors the bytes into the shadow.
    void write(BlockBackend& blk, std::vector<uint8_t>& shadow, uint64_t offset,
               const std::vector<uint8_t>& data) {
        Status s = blk.pwrite(offset, data.data(), data.size());
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        std::memcpy(shadow.data() + offset, data.data(), data.size());
    }
    void expect_content(BlockBackend& blk, const std::vector<uint8_t>& shadow) {
        std::vector<uint8_t> got(shadow.size());
        Status s = blk.pread(0, got.data(), got.size());
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        for (size_t i = 0; i < got.size(); i += 512) {
            if (std::memcmp(got.data() + i, shadow.data() + i, 512) != 0) {
                ADD_FAILURE() << "content differs in sector at " << i;
                return;
            }
        }
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
    std::string path_;
};

TEST_F(VhdxDriverTest, ProbesAndCreatesWithQemuOptions) {
    const BlockDriver* d = find_block_driver("vhdx");
    ASSERT_NE(d, nullptr);
    ASSERT_NE(d->create_options, nullptr);
    for (const char* name : {"size", "log_size", "block_size", "subformat", "block_state_zero"})
        EXPECT_NE(d->create_options->find(name), nullptr) << name;
    ASSERT_TRUE(create_vhdx(path_, 64 * kMiB).ok());
    auto head = read_whole_file(path_);
    ASSERT_GE(head.size(), 8u);
    EXPECT_EQ(std::memcmp(head.data(), "vhdxfile", 8), 0);
    EXPECT_EQ(d->probe(ByteSpan(reinterpret_cast<const std::byte*>(head.data()), 512), path_), 100);
    EXPECT_EQ(head.size() % kMiB, 0u);

    qapi::OptionsTree bad;
    bad.set("subformat", "weird");
    Status s = create_vhdx(dir_.path("bad.vhdx"), kMiB, bad);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Parameter 'subformat' does not accept value 'weird'");
    qapi::OptionsTree bs;
    bs.set("block_size", "3M");
    s = create_vhdx(dir_.path("bad.vhdx"), kMiB, bs);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Block size must be a power of two");
}

TEST_F(VhdxDriverTest, DynamicWritesPersistAndReadOnlyOpenLeavesTheFile) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 8 * kMiB, o).ok());
    std::vector<uint8_t> shadow(8 * kMiB, 0);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_EQ((*blk)->length(), 8 * kMiB);
        expect_content(**blk, shadow);
        write(**blk, shadow, 4096, pattern(4096, 1));
        write(**blk, shadow, kMiB - 1000, pattern(3000, 2));   // unaligned, crosses blocks
        write(**blk, shadow, 3 * kMiB, pattern(2 * kMiB, 3));  // whole blocks
        write(**blk, shadow, 8 * kMiB - 512, pattern(512, 4));
        expect_content(**blk, shadow);
        ASSERT_TRUE((*blk)->flush().ok());
        EXPECT_TRUE(vhdx_node(**blk)->header().log_guid.is_zero());
    }
    const auto before = read_whole_file(path_);
    {
        auto blk = open_vhdx(path_, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        expect_content(**blk, shadow);
    }
    EXPECT_EQ(read_whole_file(path_), before);
    {
        // A read-write open that only reads changes nothing either.
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok());
        expect_content(**blk, shadow);
    }
    EXPECT_EQ(read_whole_file(path_), before);
}

TEST_F(VhdxDriverTest, FirstWriteChangesFileAndDataWriteGuids) {
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB).ok());
    vhdx::Header h0, h1;
    {
        auto blk = open_vhdx(path_, true);
        ASSERT_TRUE(blk.ok());
        h0 = vhdx_node(**blk)->header();
    }
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok());
        auto data = pattern(512, 9);
        ASSERT_TRUE((*blk)->pwrite(0, data.data(), data.size()).ok());
        // The log stays live until the next flush (entries are applied).
        EXPECT_FALSE(vhdx_node(**blk)->header().log_guid.is_zero());
        ASSERT_TRUE((*blk)->flush().ok());
        h1 = vhdx_node(**blk)->header();
    }
    EXPECT_NE(h0.file_write_guid, h1.file_write_guid);
    EXPECT_NE(h0.data_write_guid, h1.data_write_guid);
    EXPECT_TRUE(h1.log_guid.is_zero());
    EXPECT_GT(h1.sequence_number, h0.sequence_number);
}

TEST_F(VhdxDriverTest, FixedImagesAnd4KSectors) {
    qapi::OptionsTree o;
    o.set("subformat", "fixed");
    o.set("block_size", "1M");
    o.set("logical_sector_size", "4096");
    ASSERT_TRUE(create_vhdx(path_, 6 * kMiB, o).ok());
    std::vector<uint8_t> shadow(6 * kMiB, 0);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_EQ(vhdx_node(**blk)->metadata().logical_sector_size, 4096u);
        EXPECT_TRUE(vhdx_node(**blk)->metadata().file_parameters.leave_block_allocated);
        const uint64_t size_before = std::filesystem::file_size(path_);
        write(**blk, shadow, 100, pattern(10000, 5));  // RMW to 4 KiB sectors
        write(**blk, shadow, 2 * kMiB, pattern(kMiB, 6));
        ASSERT_TRUE((*blk)->pwrite_zeroes(2 * kMiB, kMiB).ok());
        std::memset(shadow.data() + 2 * kMiB, 0, kMiB);
        expect_content(**blk, shadow);
        // Fixed: nothing is allocated, every block stays present.
        EXPECT_EQ(std::filesystem::file_size(path_), size_before);
        for (uint64_t b = 0; b < 6; ++b)
            EXPECT_EQ(vhdx_node(**blk)->bat_entry(b).state, 6) << b;
    }
    auto blk = open_vhdx(path_, true);
    ASSERT_TRUE(blk.ok());
    expect_content(**blk, shadow);
}

TEST_F(VhdxDriverTest, ZeroWritesBecomeZeroBlocks) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB, o).ok());
    std::vector<uint8_t> shadow(4 * kMiB, 0);
    auto blk = open_vhdx(path_, false);
    ASSERT_TRUE(blk.ok());
    write(**blk, shadow, 0, pattern(4 * kMiB, 7));
    const uint64_t size_before = std::filesystem::file_size(path_);
    ASSERT_TRUE((*blk)->pwrite_zeroes(kMiB, kMiB + 4096).ok());
    std::memset(shadow.data() + kMiB, 0, kMiB + 4096);
    expect_content(**blk, shadow);
    EXPECT_EQ(vhdx_node(**blk)->bat_entry(1).state, 2);  // ZERO
    EXPECT_EQ(vhdx_node(**blk)->bat_entry(1).file_offset_mb, 0u);
    EXPECT_EQ(vhdx_node(**blk)->bat_entry(2).state, 6);  // partial: zeros written in place
    EXPECT_EQ(std::filesystem::file_size(path_), size_before);
    // Block status: the zero block says so, data blocks map into the file.
    auto st = run_sync([&] { return co_node_block_status((*blk)->root(), kMiB, kMiB, true); });
    ASSERT_TRUE(st.ok());
    EXPECT_TRUE(st->flags & kStatusZero);
    st = run_sync([&] { return co_node_block_status((*blk)->root(), 0, kMiB, true); });
    ASSERT_TRUE(st.ok());
    EXPECT_TRUE(st->flags & kStatusOffsetValid);
    EXPECT_GE(st->offset, kMiB);
}

TEST_F(VhdxDriverTest, DifferencingReadsFallThroughAndWritesStayInTheChild) {
    const std::string parent = dir_.path("parent.vhdx");
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(parent, 6 * kMiB, o).ok());
    std::vector<uint8_t> shadow(6 * kMiB, 0);
    {
        auto blk = open_vhdx(parent, false);
        ASSERT_TRUE(blk.ok());
        write(**blk, shadow, 0, pattern(5 * kMiB, 11));
    }
    const auto parent_bytes = read_whole_file(parent);
    qapi::OptionsTree co;
    co.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 0, co, "parent.vhdx").ok());
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_TRUE(vhdx_node(**blk)->has_parent());
        EXPECT_EQ((*blk)->length(), 6 * kMiB);
        expect_content(**blk, shadow);
        write(**blk, shadow, kMiB + 4096, pattern(8192, 12));      // partially present
        write(**blk, shadow, kMiB + 512 * 100, pattern(512, 13));  // same block, in place
        write(**blk, shadow, 3 * kMiB, pattern(kMiB, 14));         // whole block
        write(**blk, shadow, 5 * kMiB + 512, pattern(1024, 15));   // over the parent's zeros
        expect_content(**blk, shadow);
        EXPECT_EQ(vhdx_node(**blk)->bat_entry(1).state, 7);
        EXPECT_EQ(vhdx_node(**blk)->bat_entry(3).state, 6);
        // Block status: child sectors allocated, the rest not (from the parent).
        auto st = run_sync([&] { return co_node_block_status((*blk)->root(), kMiB, kMiB, true); });
        ASSERT_TRUE(st.ok());
        EXPECT_FALSE(st->flags & kStatusAllocated);
        EXPECT_EQ(st->bytes, 4096u);
        st =
            run_sync([&] { return co_node_block_status((*blk)->root(), kMiB + 4096, kMiB, true); });
        ASSERT_TRUE(st.ok());
        EXPECT_TRUE(st->flags & kStatusAllocated);
        EXPECT_EQ(st->bytes, 8192u);
    }
    EXPECT_EQ(read_whole_file(parent), parent_bytes);  // never written
    {
        auto blk = open_vhdx(path_, true);
        ASSERT_TRUE(blk.ok());
        expect_content(**blk, shadow);
        EXPECT_EQ(vhdx_node(**blk)->backing_filename(), "parent.vhdx");
    }
    // Moving both files keeps the relative path working.
    const std::string moved_dir = dir_.path("moved");
    std::filesystem::create_directory(moved_dir);
    std::filesystem::rename(parent, moved_dir + "/parent.vhdx");
    std::filesystem::rename(path_, moved_dir + "/child.vhdx");
    {
        auto blk = open_vhdx(moved_dir + "/child.vhdx", true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        expect_content(**blk, shadow);
    }
    // A modified parent no longer matches the child's parent_linkage.
    {
        auto blk = open_vhdx(moved_dir + "/parent.vhdx", false);
        ASSERT_TRUE(blk.ok());
        auto data = pattern(512, 16);
        ASSERT_TRUE((*blk)->pwrite(0, data.data(), data.size()).ok());
    }
    auto stale = open_vhdx(moved_dir + "/child.vhdx", true);
    ASSERT_FALSE(stale.ok());
    EXPECT_NE(stale.error().message.find("DataWriteGuid"), std::string::npos)
        << stale.error().message;
    // A missing parent is named.
    std::filesystem::remove(moved_dir + "/parent.vhdx");
    auto missing = open_vhdx(moved_dir + "/child.vhdx", true);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST_F(VhdxDriverTest, DifferencingAcrossManyChunks) {
    // 18 chunks of 4 GiB: more sector bitmaps than the driver caches.
    constexpr uint64_t kChunk = uint64_t{4} << 30;
    constexpr int kChunks = 18;
    const std::string parent = dir_.path("big.vhdx");
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(parent, kChunks * kChunk, o).ok());
    {
        auto blk = open_vhdx(parent, false);
        ASSERT_TRUE(blk.ok());
        for (int c = 0; c < kChunks; ++c) {
            auto data = pattern(16384, 100 + c);
            ASSERT_TRUE((*blk)->pwrite(c * kChunk, data.data(), data.size()).ok());
        }
    }
    ASSERT_TRUE(create_vhdx(path_, 0, o, "big.vhdx").ok());
    auto expect = [&](BlockBackend& blk) {
        for (int c = 0; c < kChunks; ++c) {
            auto want = pattern(16384, 100 + c);
            auto mine = pattern(512, 200 + c);
            std::memcpy(want.data() + 4096, mine.data(), 512);
            std::vector<uint8_t> got(16384);
            ASSERT_TRUE(blk.pread(c * kChunk, got.data(), got.size()).ok());
            ASSERT_TRUE(got == want) << "chunk " << c;
        }
    };
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        for (int c = 0; c < kChunks; ++c) {
            auto mine = pattern(512, 200 + c);
            ASSERT_TRUE((*blk)->pwrite(c * kChunk + 4096, mine.data(), mine.size()).ok());
        }
        expect(**blk);
    }
    auto blk = open_vhdx(path_, true);
    ASSERT_TRUE(blk.ok());
    expect(**blk);
}

TEST_F(VhdxDriverTest, DifferencingChainOfThree) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    const std::string base = dir_.path("base.vhdx");
    const std::string mid = dir_.path("mid.vhdx");
    ASSERT_TRUE(create_vhdx(base, 3 * kMiB, o).ok());
    std::vector<uint8_t> shadow(3 * kMiB, 0);
    {
        auto blk = open_vhdx(base, false);
        ASSERT_TRUE(blk.ok());
        write(**blk, shadow, 0, pattern(3 * kMiB, 21));
    }
    ASSERT_TRUE(create_vhdx(mid, 0, {}, base).ok());  // absolute parent path
    {
        auto blk = open_vhdx(mid, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        write(**blk, shadow, 512, pattern(1024, 22));
    }
    ASSERT_TRUE(create_vhdx(path_, 0, {}, "mid.vhdx").ok());
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        write(**blk, shadow, 1024, pattern(1024, 23));
        expect_content(**blk, shadow);
    }
}

TEST_F(VhdxDriverTest, ParentLoopIsRefused) {
    // b's parent is a; then a is replaced by a child of b: a -> b -> a.
    const std::string a = dir_.path("a.vhdx");
    const std::string b = dir_.path("b.vhdx");
    ASSERT_TRUE(create_vhdx(a, 2 * kMiB).ok());
    ASSERT_TRUE(create_vhdx(b, 0, {}, "a.vhdx").ok());
    ASSERT_TRUE(create_vhdx(dir_.path("a2.vhdx"), 0, {}, "b.vhdx").ok());
    // The replacement carries its own DataWriteGuid; b's linkage no longer
    // matches, but the loop must be caught (or the linkage checked) without
    // recursing forever.
    std::filesystem::rename(dir_.path("a2.vhdx"), a);
    auto blk = open_vhdx(b, true);
    ASSERT_FALSE(blk.ok());
    EXPECT_NE(blk.error().message.find("deeper than"), std::string::npos) << blk.error().message;
}

TEST_F(VhdxDriverTest, GrowKeepsDataAndReadsZerosBeyond) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 2 * kMiB, o).ok());
    std::vector<uint8_t> shadow(2 * kMiB, 0);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok());
        write(**blk, shadow, 0, pattern(2 * kMiB, 31));
        Status s = (*blk)->truncate(5 * kMiB, true, Prealloc::kOff);
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        EXPECT_EQ((*blk)->length(), 5 * kMiB);
        shadow.resize(5 * kMiB, 0);
        write(**blk, shadow, 4 * kMiB, pattern(4096, 32));
        EXPECT_FALSE((*blk)->truncate(kMiB, true, Prealloc::kOff, true).ok());  // no shrink
    }
    auto blk = open_vhdx(path_, true);
    ASSERT_TRUE(blk.ok());
    EXPECT_EQ((*blk)->length(), 5 * kMiB);
    expect_content(**blk, shadow);
}

// A 1 GiB image with 1 MiB blocks has a 1 MiB BAT region (131072
// entries); 300 GiB needs 307275 entries, so the region moves.
constexpr uint64_t kGrownSize = uint64_t{300} << 30;
constexpr uint64_t kFarOffset = uint64_t{200} << 30;

TEST_F(VhdxDriverTest, GrowMovesTheBatRegionWhenItIsTooSmall) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, uint64_t{1} << 30, o).ok());
    const std::vector<uint8_t> low(65536, 0x5a), high(65536, 0x6b), last(4096, 0x7c);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok());
        ASSERT_TRUE((*blk)->pwrite(0, low.data(), low.size()).ok());
        ASSERT_TRUE((*blk)->pwrite(kMiB - 4096, low.data(), 8192).ok());  // two blocks
        const uint64_t entries_before = vhdx_node(**blk)->geometry().entry_count;
        Status s = (*blk)->truncate(kGrownSize, true, Prealloc::kOff);
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        EXPECT_EQ((*blk)->length(), kGrownSize);
        EXPECT_GT(vhdx_node(**blk)->geometry().entry_count, 131072u);
        EXPECT_LT(entries_before, 131072u);
        ASSERT_TRUE((*blk)->pwrite(kFarOffset, high.data(), high.size()).ok());
        ASSERT_TRUE((*blk)->pwrite(kGrownSize - 4096, last.data(), last.size()).ok());
    }
    auto expect_data = [&](BlockBackend& blk) {
        std::vector<uint8_t> got(65536);
        ASSERT_TRUE(blk.pread(0, got.data(), got.size()).ok());
        EXPECT_EQ(got, low);
        ASSERT_TRUE(blk.pread(kFarOffset, got.data(), got.size()).ok());
        EXPECT_EQ(got, high);
        ASSERT_TRUE(blk.pread(kFarOffset - 65536, got.data(), got.size()).ok());
        EXPECT_EQ(got, std::vector<uint8_t>(65536, 0));
        got.resize(4096);
        ASSERT_TRUE(blk.pread(kGrownSize - 4096, got.data(), got.size()).ok());
        EXPECT_EQ(got, last);
    };
    for (bool read_only : {true, false}) {
        auto blk = open_vhdx(path_, read_only);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_EQ((*blk)->length(), kGrownSize);
        expect_data(**blk);
        CheckResult r;
        ASSERT_TRUE(run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kNone); }).ok());
        EXPECT_EQ(r.corruptions, 0);
        EXPECT_EQ(r.allocated_clusters, 4);
    }
    if (!have_qemu()) GTEST_SKIP() << "qemu-img not installed: the moved BAT is checked by coblock";
    std::string out;
    EXPECT_EQ(run("qemu-img check " + path_, &out), 0) << out;
    EXPECT_EQ(run("qemu-io -r -f vhdx -c 'read -P 0x5a 0 64k' -c 'read -P 0x6b 200G 64k' -c "
                  "'read -P 0x7c " +
                      std::to_string(kGrownSize - 4096) + " 4k' -c 'read -P 0 199G 64k' " + path_,
                  &out),
              0)
        << out;
    EXPECT_EQ(out.find("fail"), std::string::npos) << out;
    EXPECT_EQ(run("qemu-img info " + path_, &out), 0) << out;
    EXPECT_NE(out.find("300 GiB"), std::string::npos) << out;
}

TEST_F(VhdxDriverTest, GrowFixedAllocatesTheNewBlocks) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    o.set("subformat", "fixed");
    ASSERT_TRUE(create_vhdx(path_, 2 * kMiB + 512, o).ok());
    std::vector<uint8_t> shadow(2 * kMiB + 512, 0);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok());
        write(**blk, shadow, 0, pattern(2 * kMiB + 512, 33));
        Status s = (*blk)->truncate(4 * kMiB, true, Prealloc::kOff);
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        shadow.resize(4 * kMiB, 0);
        expect_content(**blk, shadow);
        for (uint64_t b = 0; b < 4; ++b)
            EXPECT_EQ(vhdx_node(**blk)->bat_entry(b).state, 6) << b;
    }
    auto blk = open_vhdx(path_, true);
    ASSERT_TRUE(blk.ok());
    expect_content(**blk, shadow);
}

TEST_F(VhdxDriverTest, CheckCountsAllocatedBlocks) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB, o).ok());
    auto blk = open_vhdx(path_, false);
    ASSERT_TRUE(blk.ok());
    auto data = pattern(4096, 41);
    ASSERT_TRUE((*blk)->pwrite(2 * kMiB, data.data(), data.size()).ok());
    CheckResult r;
    ASSERT_TRUE(run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kNone); }).ok());
    EXPECT_EQ(r.corruptions, 0);
    EXPECT_EQ(r.total_clusters, 4);
    EXPECT_EQ(r.allocated_clusters, 1);
}

// ---- Refusing corrupt images ----------------------------------------------------

class VhdxCorruptTest : public VhdxDriverTest {
  protected:
    // Rewrites both region tables with `edit` applied, re-checksummed.
    void edit_region_tables(const std::function<void(vhdx::RegionTable&)>& edit) {
        auto bytes = read_whole_file(path_);
        auto span =
            ByteSpan(reinterpret_cast<const std::byte*>(bytes.data()) + vhdx::kRegionTable1Offset,
                     vhdx::kRegionTableSize);
        auto table = vhdx::parse_region_table(span);
        ASSERT_TRUE(table.ok());
        edit(*table);
        std::vector<std::byte> out(vhdx::kRegionTableSize);
        ASSERT_TRUE(vhdx::encode_region_table(*table, out).ok());
        write_at(path_, vhdx::kRegionTable1Offset, out.data(), out.size());
        write_at(path_, vhdx::kRegionTable2Offset, out.data(), out.size());
    }
    void expect_refused(const std::string& needle) {
        const auto before = read_whole_file(path_);
        auto blk = open_vhdx(path_, false);
        ASSERT_FALSE(blk.ok());
        EXPECT_NE(blk.error().to_string().find(needle), std::string::npos)
            << blk.error().to_string();
        EXPECT_EQ(read_whole_file(path_), before);  // never written
    }
};

TEST_F(VhdxCorruptTest, UnknownRequiredRegionIsRefusedByGuid) {
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB).ok());
    edit_region_tables([](vhdx::RegionTable& t) {
        vhdx::RegionTableEntry e;
        e.guid = vhdx::Guid::make(0x12345678, 0x9abc, 0xdef0, 0x1122334455667788);
        e.file_offset = 5 * kMiB;
        e.length = kMiB;
        e.required = true;
        t.entries.push_back(e);
    });
    expect_refused("12345678-9abc-def0-1122-334455667788");
}

TEST_F(VhdxCorruptTest, UnknownRequiredMetadataItemIsRefusedByGuid) {
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB).ok());
    auto bytes = read_whole_file(path_);
    auto table = vhdx::parse_region_table(
        ByteSpan(reinterpret_cast<const std::byte*>(bytes.data()) + vhdx::kRegionTable1Offset,
                 vhdx::kRegionTableSize));
    ASSERT_TRUE(table.ok());
    uint64_t meta_offset = 0, meta_length = 0;
    for (auto& e : table->entries)
        if (e.guid == vhdx::kMetadataRegionGuid) {
            meta_offset = e.file_offset;
            meta_length = e.length;
        }
    ASSERT_NE(meta_offset, 0u);
    auto meta = vhdx::parse_metadata_table(
        ByteSpan(reinterpret_cast<const std::byte*>(bytes.data()) + meta_offset,
                 vhdx::kMetadataTableSize),
        meta_length);
    ASSERT_TRUE(meta.ok()) << meta.error().to_string();
    vhdx::MetadataTableEntry extra;
    extra.item_id = vhdx::Guid::make(0xabcdef01, 0x2345, 0x6789, 0xaabbccddeeff0011);
    extra.offset = 0x20000;
    extra.length = 8;
    extra.is_required = true;
    meta->entries.push_back(extra);
    std::vector<std::byte> out(vhdx::kMetadataTableSize);
    ASSERT_TRUE(vhdx::encode_metadata_table(*meta, out).ok());
    write_at(path_, meta_offset, out.data(), out.size());
    expect_refused("abcdef01-2345-6789-aabb-ccddeeff0011");
}

TEST_F(VhdxCorruptTest, OverlappingRegionsAreRefused) {
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB).ok());
    edit_region_tables([](vhdx::RegionTable& t) {
        for (auto& e : t.entries)
            if (e.guid == vhdx::kBatRegionGuid) e.file_offset = kMiB;  // onto the log
    });
    expect_refused("overlaps");
}

TEST_F(VhdxCorruptTest, BothHeadersWithBadChecksumsAreRefused) {
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB).ok());
    // One bad header is survivable: the other one is used.
    const uint8_t junk = 0xa5;
    write_at(path_, vhdx::header_slot_offset(0) + 200, &junk, 1);
    {
        auto blk = open_vhdx(path_, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    }
    write_at(path_, vhdx::header_slot_offset(1) + 200, &junk, 1);
    expect_refused("no valid header");
    auto blk = open_vhdx(path_, true);
    ASSERT_FALSE(blk.ok());
    EXPECT_NE(blk.error().message.find("checksum"), std::string::npos) << blk.error().message;
}

TEST_F(VhdxCorruptTest, DuplicateMetadataItemsAreRefused) {
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB).ok());
    auto bytes = read_whole_file(path_);
    auto table = vhdx::parse_region_table(
        ByteSpan(reinterpret_cast<const std::byte*>(bytes.data()) + vhdx::kRegionTable1Offset,
                 vhdx::kRegionTableSize));
    ASSERT_TRUE(table.ok());
    uint64_t meta_offset = 0, meta_length = 0;
    for (auto& e : table->entries)
        if (e.guid == vhdx::kMetadataRegionGuid) {
            meta_offset = e.file_offset;
            meta_length = e.length;
        }
    ASSERT_NE(meta_offset, 0u);
    auto meta = vhdx::parse_metadata_table(
        ByteSpan(reinterpret_cast<const std::byte*>(bytes.data()) + meta_offset,
                 vhdx::kMetadataTableSize),
        meta_length);
    ASSERT_TRUE(meta.ok()) << meta.error().to_string();
    // The virtual disk size listed a second time (same value, same place).
    for (const auto& e : meta->entries)
        if (e.item_id == vhdx::kVirtualDiskSizeGuid) {
            meta->entries.push_back(e);
            break;
        }
    std::vector<std::byte> out(vhdx::kMetadataTableSize);
    ASSERT_TRUE(vhdx::encode_metadata_table(*meta, out).ok());
    write_at(path_, meta_offset, out.data(), out.size());
    expect_refused("listed twice");
    auto blk = open_vhdx(path_, true);
    EXPECT_FALSE(blk.ok());
}

// Points BAT entry `index` at `file_offset` as FULLY_PRESENT.
void poke_bat(const std::string& path, uint64_t index, uint64_t file_offset) {
    auto bytes = read_whole_file(path);
    auto table = vhdx::parse_region_table(
        ByteSpan(reinterpret_cast<const std::byte*>(bytes.data()) + vhdx::kRegionTable1Offset,
                 vhdx::kRegionTableSize));
    ASSERT_TRUE(table.ok());
    uint64_t bat_offset = 0;
    for (auto& e : table->entries)
        if (e.guid == vhdx::kBatRegionGuid) bat_offset = e.file_offset;
    ASSERT_NE(bat_offset, 0u);
    const uint64_t entry = file_offset | 6;
    write_at(path, bat_offset + index * 8, &entry, 8);
}

TEST_F(VhdxCorruptTest, BadBatEntriesAreReportedRefusedAndRepaired) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB, o).ok());
    std::vector<uint8_t> shadow(4 * kMiB, 0);
    uint64_t block0 = 0;
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok());
        write(**blk, shadow, 0, pattern(kMiB, 91));
        block0 = vhdx_node(**blk)->bat_entry(0).file_offset();
    }
    poke_bat(path_, 1, uint64_t{4096} << 20);  // 4 GiB: far beyond the file
    poke_bat(path_, 2, block0);                // the same space as block 0
    const auto before = read_whole_file(path_);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        std::vector<uint8_t> buf(4096);
        Status s = (*blk)->pread(kMiB, buf.data(), buf.size());
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.error().as_errno(), EIO);
        EXPECT_NE(s.error().message.find("BAT entry 1"), std::string::npos) << s.error().message;
        EXPECT_FALSE((*blk)->pwrite(3 * kMiB, buf.data(), buf.size()).ok());  // refused
        CheckResult r;
        ASSERT_TRUE(run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kNone); }).ok());
        EXPECT_EQ(r.corruptions, 2);
    }
    EXPECT_EQ(read_whole_file(path_), before);  // nothing written without repair
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok());
        CheckResult r;
        ASSERT_TRUE(run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kAll); }).ok());
        EXPECT_EQ(r.corruptions, 0);
        EXPECT_EQ(r.corruptions_fixed, 2);
        expect_content(**blk, shadow);  // the bad blocks now read as zeros
        write(**blk, shadow, 2 * kMiB, pattern(4096, 92));
    }
    auto blk = open_vhdx(path_, true);
    ASSERT_TRUE(blk.ok());
    CheckResult r;
    ASSERT_TRUE(run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kNone); }).ok());
    EXPECT_EQ(r.corruptions, 0);
    expect_content(**blk, shadow);
}

// Mutated metadata, BAT and log bytes: every open either fails cleanly or
// serves reads and writes without crashing (run under ASan in CI).
TEST_F(VhdxCorruptTest, MutatedImagesNeverCrash) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    const std::string base = dir_.path("base.vhdx");
    ASSERT_TRUE(create_vhdx(base, 4 * kMiB, o).ok());
    {
        auto blk = open_vhdx(base, false);
        ASSERT_TRUE(blk.ok());
        auto data = pattern(kMiB + 8192, 95);
        ASSERT_TRUE((*blk)->pwrite(512, data.data(), data.size()).ok());
    }
    const auto original = read_whole_file(base);
    // Our layout: log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB.
    const uint64_t targets[][2] = {{kMiB, 4096},                        // log entry
                                   {2 * kMiB, 0x10000 + 0x100},         // metadata
                                   {3 * kMiB, 64},                      // BAT entries
                                   {vhdx::kRegionTable1Offset, 0x60}};  // (checksummed)
    uint32_t x = 12345;
    auto next = [&] { return x = x * 1103515245u + 12345u; };
    int opened = 0;
    for (int i = 0; i < 160; ++i) {
        auto bytes = original;
        const auto& t = targets[i % 4];
        for (int k = 0; k < 1 + static_cast<int>(next() % 3); ++k) {
            const uint64_t at = t[0] + next() % t[1];
            if (at < bytes.size()) bytes[at] = static_cast<uint8_t>(next() >> 16);
        }
        {
            std::ofstream out(path_, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
        }
        for (bool read_only : {true, false}) {
            auto blk = open_vhdx(path_, read_only);
            if (!blk.ok()) continue;
            ++opened;
            std::vector<uint8_t> buf((*blk)->length());
            (void)(*blk)->pread(0, buf.data(), buf.size());
            if (!read_only && (*blk)->length() >= 2 * kMiB) {
                auto data = pattern(4096, i);
                (void)(*blk)->pwrite(next() % ((*blk)->length() / 512 - 8) * 512, data.data(),
                                     data.size());
                (void)(*blk)->pread(0, buf.data(), buf.size());
            }
        }
    }
    EXPECT_GT(opened, 0);
}

// ---- Log replay after a crash ---------------------------------------------------

class VhdxReplayTest : public VhdxDriverTest {
  protected:
    // Creates an image with data, then writes `data` at `offset` through
    // the fault filter, stopping right after the log entry is written.
    void crash_after_log_write(uint64_t offset, const std::vector<uint8_t>& data,
                               std::vector<uint8_t>& shadow) {
        qapi::OptionsTree o;
        o.set("block_size", "1M");
        ASSERT_TRUE(create_vhdx(path_, 4 * kMiB, o).ok());
        shadow.assign(4 * kMiB, 0);
        {
            auto blk = open_vhdx(path_, false);
            ASSERT_TRUE(blk.ok());
            write(**blk, shadow, 0, pattern(4096, 51));
        }
        auto img = open_faulty(path_);
        ASSERT_TRUE(img.ok()) << img.error().to_string();
        img->filter()->trip_offset = vhdx_node(*img->blk)->header().log_offset;
        img->filter()->trip_length = vhdx_node(*img->blk)->header().log_length;
        Status s = img->blk->pwrite(offset, data.data(), data.size());
        EXPECT_FALSE(s.ok());  // stopped before the BAT was applied
        EXPECT_TRUE(img->filter()->tripped);
        std::memcpy(shadow.data() + offset, data.data(), data.size());
    }
};

TEST_F(VhdxReplayTest, ReadOnlyOpenServesTheLogAndLeavesTheFile) {
    std::vector<uint8_t> shadow;
    crash_after_log_write(2 * kMiB + 512, pattern(8192, 52), shadow);
    const auto before = read_whole_file(path_);
    {
        auto blk = open_vhdx(path_, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_TRUE(vhdx_node(**blk)->log_replayed());
        EXPECT_TRUE(vhdx_node(**blk)->log_in_overlay());
        expect_content(**blk, shadow);
        CheckResult r;
        ASSERT_TRUE(run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kNone); }).ok());
        EXPECT_EQ(r.corruptions, 1);  // the file still needs the replay
    }
    EXPECT_EQ(read_whole_file(path_), before);
}

TEST_F(VhdxReplayTest, ReadWriteOpenReplaysAndClearsTheLog) {
    std::vector<uint8_t> shadow;
    crash_after_log_write(kMiB, pattern(kMiB, 53), shadow);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_TRUE(vhdx_node(**blk)->log_replayed());
        EXPECT_FALSE(vhdx_node(**blk)->log_in_overlay());
        EXPECT_TRUE(vhdx_node(**blk)->header().log_guid.is_zero());
        expect_content(**blk, shadow);
        write(**blk, shadow, 3 * kMiB, pattern(512, 54));  // the log works again
    }
    auto blk = open_vhdx(path_, true);
    ASSERT_TRUE(blk.ok());
    EXPECT_FALSE(vhdx_node(**blk)->log_replayed());
    expect_content(**blk, shadow);
}

TEST_F(VhdxReplayTest, ReopenReadWriteReplaysTheOverlay) {
    std::vector<uint8_t> shadow;
    crash_after_log_write(kMiB + 4096, pattern(4096, 55), shadow);
    auto blk = open_vhdx(path_, true);
    ASSERT_TRUE(blk.ok());
    ASSERT_TRUE(vhdx_node(**blk)->log_in_overlay());
    Status s = run_sync([&] { return co_reopen((*blk)->root(), false); });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_FALSE(vhdx_node(**blk)->log_in_overlay());
    EXPECT_TRUE(vhdx_node(**blk)->header().log_guid.is_zero());
    expect_content(**blk, shadow);
    blk->reset();
    auto again = open_vhdx(path_, true);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(vhdx_node(**again)->log_replayed());
    expect_content(**again, shadow);
}

TEST_F(VhdxReplayTest, CrashBeforeTheLogLosesOnlyTheUnpublishedWrite) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 4 * kMiB, o).ok());
    std::vector<uint8_t> shadow(4 * kMiB, 0);
    {
        auto img = open_faulty(path_);
        ASSERT_TRUE(img.ok());
        write(*img->blk, shadow, 0, pattern(4096, 61));  // completes
        // The next allocating write stops after its payload: 1 write.
        img->filter()->trip_after_writes = img->filter()->writes + 1;
        auto data = pattern(4096, 62);
        EXPECT_FALSE(img->blk->pwrite(2 * kMiB, data.data(), data.size()).ok());
    }
    auto blk = open_vhdx(path_, false);
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    expect_content(**blk, shadow);
}

TEST_F(VhdxReplayTest, DifferencingBitmapUpdatesReplay) {
    const std::string parent = dir_.path("p.vhdx");
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(parent, 2 * kMiB, o).ok());
    std::vector<uint8_t> shadow(2 * kMiB, 0);
    {
        auto blk = open_vhdx(parent, false);
        ASSERT_TRUE(blk.ok());
        write(**blk, shadow, 0, pattern(2 * kMiB, 71));
    }
    qapi::OptionsTree co;
    co.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, 0, co, "p.vhdx").ok());
    {
        auto img = open_faulty(path_);
        ASSERT_TRUE(img.ok()) << img.error().to_string();
        img->filter()->trip_offset = vhdx_node(*img->blk)->header().log_offset;
        img->filter()->trip_length = vhdx_node(*img->blk)->header().log_length;
        auto data = pattern(4096, 72);
        EXPECT_FALSE(img->blk->pwrite(kMiB + 8192, data.data(), data.size()).ok());
        std::memcpy(shadow.data() + kMiB + 8192, data.data(), data.size());
    }
    {
        auto blk = open_vhdx(path_, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        expect_content(**blk, shadow);
    }
    auto blk = open_vhdx(path_, false);
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    expect_content(**blk, shadow);
}

// A log entry that fails its checks (a torn write looks the same) is not
// part of any sequence: nothing is replayed, the unpublished write is lost
// as if the crash came before the log, and no open writes the file.
class VhdxBadLogTest : public VhdxReplayTest {
  protected:
    void expect_entry_ignored(const std::function<void(std::vector<uint8_t>& entry)>& spoil) {
        std::vector<uint8_t> shadow;
        crash_after_log_write(2 * kMiB, pattern(8192, 81), shadow);
        std::vector<uint8_t> before_write(4 * kMiB, 0);
        auto first = pattern(4096, 51);
        std::memcpy(before_write.data(), first.data(), first.size());
        uint64_t log_offset = 0;
        {
            auto blk = open_vhdx(path_, true);
            ASSERT_TRUE(blk.ok());
            ASSERT_TRUE(vhdx_node(**blk)->log_replayed());  // the entry is good so far
            log_offset = vhdx_node(**blk)->header().log_offset;
        }
        auto bytes = read_whole_file(path_);
        uint32_t entry_length = 0;
        std::memcpy(&entry_length, bytes.data() + log_offset + 8, 4);
        ASSERT_GE(entry_length, 8192u);
        std::vector<uint8_t> entry(bytes.begin() + log_offset,
                                   bytes.begin() + log_offset + entry_length);
        spoil(entry);
        write_at(path_, log_offset, entry.data(), entry.size());
        const auto spoiled = read_whole_file(path_);
        for (bool read_only : {true, false}) {
            auto blk = open_vhdx(path_, read_only);
            ASSERT_TRUE(blk.ok()) << blk.error().to_string();
            EXPECT_FALSE(vhdx_node(**blk)->log_replayed());
            expect_content(**blk, before_write);
            blk->reset();
            EXPECT_EQ(read_whole_file(path_), spoiled) << (read_only ? "read-only" : "read-write");
        }
    }
    // Recomputes the entry checksum (offset 4, over the whole entry).
    static void reseal(std::vector<uint8_t>& entry) {
        std::memset(entry.data() + 4, 0, 4);
        const uint32_t crc =
            crc32c(ByteSpan(reinterpret_cast<const std::byte*>(entry.data()), entry.size()));
        std::memcpy(entry.data() + 4, &crc, 4);
    }
};

TEST_F(VhdxBadLogTest, EntryWithBadChecksumIsNotReplayed) {
    expect_entry_ignored([](std::vector<uint8_t>& entry) { entry[entry.size() - 100] ^= 0xff; });
}

TEST_F(VhdxBadLogTest, EntryWithInconsistentSequenceNumbersIsNotReplayed) {
    // Valid checksum, but the header's sequence number no longer matches
    // its descriptors' and data sectors'.
    expect_entry_ignored([](std::vector<uint8_t>& entry) {
        entry[16] ^= 0x40;
        reseal(entry);
    });
}

TEST_F(VhdxBadLogTest, EntryOfAnotherLogIsNotReplayed) {
    // A stale entry from an earlier log GUID (offset 32), checksum intact.
    expect_entry_ignored([](std::vector<uint8_t>& entry) {
        entry[32] ^= 0x01;
        reseal(entry);
    });
}

TEST_F(VhdxReplayTest, GrowthThatMovesTheBatIsAtomic) {
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(path_, uint64_t{1} << 30, o).ok());
    const std::vector<uint8_t> low(65536, 0x5a);
    // Stopped once the log entry (region tables and size) is written, or
    // once the new table is written but before the log: after replay the
    // image is wholly grown, or wholly as before.
    for (bool reach_log : {true, false}) {
        SCOPED_TRACE(reach_log ? "stopped after the log entry" : "stopped before the log");
        ASSERT_TRUE(create_vhdx(path_, uint64_t{1} << 30, o).ok());
        {
            auto blk = open_vhdx(path_, false);
            ASSERT_TRUE(blk.ok());
            ASSERT_TRUE((*blk)->pwrite(0, low.data(), low.size()).ok());
        }
        {
            auto img = open_faulty(path_);
            ASSERT_TRUE(img.ok()) << img.error().to_string();
            if (reach_log) {
                img->filter()->trip_offset = vhdx_node(*img->blk)->header().log_offset;
                img->filter()->trip_length = vhdx_node(*img->blk)->header().log_length;
            } else {
                // The header updates of the session (2), then the table.
                img->filter()->trip_after_writes = 3;
            }
            EXPECT_FALSE(img->blk->truncate(kGrownSize, true, Prealloc::kOff).ok());
            EXPECT_TRUE(img->filter()->tripped);
        }
        for (bool read_only : {true, false}) {
            auto blk = open_vhdx(path_, read_only);
            ASSERT_TRUE(blk.ok()) << blk.error().to_string();
            EXPECT_EQ((*blk)->length(), reach_log ? kGrownSize : uint64_t{1} << 30);
            std::vector<uint8_t> got(65536);
            ASSERT_TRUE((*blk)->pread(0, got.data(), got.size()).ok());
            EXPECT_EQ(got, low);
            CheckResult r;
            ASSERT_TRUE(
                run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kNone); }).ok());
            EXPECT_EQ(r.corruptions, read_only && reach_log ? 1 : 0);  // 1: replay pending
        }
    }
}

}  // namespace
}  // namespace coblock
