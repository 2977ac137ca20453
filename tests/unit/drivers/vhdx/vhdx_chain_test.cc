// Differencing VHDX chains (issue 6): random writes at every level of a
// chain of depth 3, each level checked against its own shadow (its writes
// over its parent's view), with 512- and 4096-byte logical sectors;
// partially present blocks that become fully present once every sector is
// written in the child; and block status of fixed images (data, as QEMU).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "block/check.h"
#include "block/create.h"
#include "coroutine/event_loop.h"
#include "tests/unit/drivers/vhdx/vhdx_test_util.h"

namespace coblock {
namespace {

using namespace vhdx_test;
using vhdx::kMiB;

constexpr uint8_t kFullyPresent = 6;
constexpr uint8_t kPartiallyPresent = 7;

class VhdxChainTest : public ::testing::Test {
  protected:
    void SetUp() override {
        block_layer_init();
        ASSERT_TRUE(dir_.ok());
    }

    static void write(BlockBackend& blk, std::vector<uint8_t>& shadow, uint64_t offset,
                      const std::vector<uint8_t>& data) {
        Status s = blk.pwrite(offset, data.data(), data.size());
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        std::memcpy(shadow.data() + offset, data.data(), data.size());
    }
    static void expect_content(BlockBackend& blk, const std::vector<uint8_t>& shadow,
                               const std::string& what) {
        std::vector<uint8_t> got(shadow.size());
        Status s = blk.pread(0, got.data(), got.size());
        ASSERT_TRUE(s.ok()) << what << ": " << s.error().to_string();
        for (size_t i = 0; i < got.size(); i += 512)
            ASSERT_EQ(std::memcmp(got.data() + i, shadow.data() + i, 512), 0)
                << what << ": content differs in the sector at " << i;
    }
    static void expect_clean_check(BlockBackend& blk, const std::string& what) {
        CheckResult r;
        Status s = run_sync([&] { return blk.root()->co_check(r, CheckFix::kNone); });
        ASSERT_TRUE(s.ok()) << what << ": " << s.error().to_string();
        EXPECT_EQ(r.corruptions, 0) << what;
        EXPECT_EQ(r.check_errors, 0) << what;
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
};

class VhdxChainSectorTest : public VhdxChainTest, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(VhdxChainSectorTest, RandomWritesAtEveryLevelOfADepthThreeChain) {
    const uint64_t lss = GetParam();
    constexpr uint64_t kSize = 10 * kMiB + 512 * 1024;  // a half block at the end
    const std::vector<std::string> names = {"base.vhdx", "mid.vhdx", "top.vhdx"};
    std::vector<std::vector<uint8_t>> views;
    std::mt19937 rng(static_cast<uint32_t>(lss));
    auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
    for (size_t level = 0; level < names.size(); ++level) {
        const std::string path = dir_.path(names[level]);
        qapi::OptionsTree o;
        o.set("block_size", "1M");
        if (level == 0) {
            o.set("logical_sector_size", std::to_string(lss));
            ASSERT_TRUE(create_vhdx(path, kSize, o).ok());
            views.emplace_back(kSize, 0);
        } else {
            // The middle link by absolute path, the top by relative path.
            const std::string parent = level == 1 ? dir_.path(names[level - 1]) : names[level - 1];
            Status s = create_vhdx(path, 0, o, parent);
            ASSERT_TRUE(s.ok()) << s.error().to_string();
            views.push_back(views.back());
        }
        std::vector<uint8_t>& shadow = views.back();
        auto blk = open_vhdx(path, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_EQ(vhdx_node(**blk)->metadata().logical_sector_size, lss);
        for (int i = 0; i < 80; ++i) {
            uint64_t offset, length;
            const uint64_t kind = pick(10);
            if (kind == 0) {  // a whole block
                offset = pick(kSize / kMiB) * kMiB;
                length = kMiB;
            } else if (kind == 1) {  // across a block boundary
                offset = (1 + pick(kSize / kMiB - 1)) * kMiB - lss * (1 + pick(16));
                length = lss * (2 + pick(40));
            } else {  // a few sectors anywhere (partially present blocks)
                offset = pick(kSize / lss) * lss;
                length = lss * (1 + pick(24));
            }
            length = std::min(length, kSize - offset);
            if (pick(8) == 0) {
                Status s = (*blk)->pwrite_zeroes(offset, length);
                ASSERT_TRUE(s.ok()) << s.error().to_string();
                std::memset(shadow.data() + offset, 0, length);
            } else {
                write(**blk, shadow, offset, pattern(length, level * 100 + i));
            }
        }
        expect_content(**blk, shadow, names[level] + " while open");
        expect_clean_check(**blk, names[level]);
    }
    // Every level, reopened read-only, serves its own view.
    bool saw_partial = false;
    for (size_t level = 0; level < names.size(); ++level) {
        auto blk = open_vhdx(dir_.path(names[level]), true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        expect_content(**blk, views[level], names[level] + " reopened");
        for (uint64_t b = 0; b < (kSize + kMiB - 1) / kMiB; ++b)
            saw_partial |= vhdx_node(**blk)->bat_entry(b).state == kPartiallyPresent;
    }
    EXPECT_TRUE(saw_partial) << "the workload made no partially present block";
    if (!have_qemu()) GTEST_SKIP() << "qemu-img not installed: chain checked by coblock only";
    // QEMU 7.2 opens no differencing VHDX and no 4096-byte logical sectors
    // (spec §15.1): it checks the base and compares it with its shadow; the
    // children are compared above.
    if (lss != 512) return;
    const std::string raw = dir_.path("base.raw");
    std::ofstream(raw, std::ios::binary)
        .write(reinterpret_cast<const char*>(views[0].data()),
               static_cast<std::streamsize>(views[0].size()));
    std::string out;
    EXPECT_EQ(run("qemu-img check " + dir_.path("base.vhdx"), &out), 0) << out;
    EXPECT_EQ(run("qemu-img compare -f vhdx -F raw " + dir_.path("base.vhdx") + " " + raw, &out), 0)
        << out;
}

INSTANTIATE_TEST_SUITE_P(SectorSizes, VhdxChainSectorTest, ::testing::Values(512, 4096));

TEST_F(VhdxChainTest, PartiallyPresentBlockBecomesFullyPresentWhenEverySectorIsWritten) {
    constexpr uint64_t kSize = 3 * kMiB + 512 * 1024;  // block 3 is half inside the disk
    const std::string parent = dir_.path("parent.vhdx");
    const std::string child = dir_.path("child.vhdx");
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(parent, kSize, o).ok());
    std::vector<uint8_t> shadow(kSize, 0);
    {
        auto blk = open_vhdx(parent, false);
        ASSERT_TRUE(blk.ok());
        write(**blk, shadow, 0, pattern(kSize, 1));
    }
    ASSERT_TRUE(create_vhdx(child, 0, o, "parent.vhdx").ok());
    {
        auto blk = open_vhdx(child, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        VhdxNode* node = vhdx_node(**blk);
        // Block 1 in four quarters, out of order: partial until the last.
        const uint64_t q = kMiB / 4;
        for (uint64_t part : {2, 0, 3}) {
            write(**blk, shadow, kMiB + part * q, pattern(q, 10 + part));
            EXPECT_EQ(node->bat_entry(1).state, kPartiallyPresent) << part;
        }
        write(**blk, shadow, kMiB + q, pattern(q, 11));
        EXPECT_EQ(node->bat_entry(1).state, kFullyPresent);
        // Block 0: one sector, then the whole block over it (in place).
        write(**blk, shadow, 4096, pattern(512, 20));
        EXPECT_EQ(node->bat_entry(0).state, kPartiallyPresent);
        write(**blk, shadow, 0, pattern(kMiB, 21));
        EXPECT_EQ(node->bat_entry(0).state, kFullyPresent);
        // Block 3 ends with the disk: its two halves inside fill it.
        write(**blk, shadow, 3 * kMiB + 256 * 1024, pattern(256 * 1024, 30));
        EXPECT_EQ(node->bat_entry(3).state, kPartiallyPresent);
        write(**blk, shadow, 3 * kMiB, pattern(256 * 1024, 31));
        EXPECT_EQ(node->bat_entry(3).state, kFullyPresent);
        // Block 2: all but its last sector stays partial.
        write(**blk, shadow, 2 * kMiB, pattern(kMiB - 512, 40));
        EXPECT_EQ(node->bat_entry(2).state, kPartiallyPresent);
        expect_content(**blk, shadow, "child");
        // Fully present blocks report data without a parent fall-through.
        auto st = run_sync([&] { return co_node_block_status(node, kMiB, kMiB, true); });
        ASSERT_TRUE(st.ok());
        EXPECT_TRUE(st->flags & kStatusAllocated);
        EXPECT_EQ(st->bytes, kMiB);
        expect_clean_check(**blk, "child");
    }
    // The promotion went through the log to the file.
    auto blk = open_vhdx(child, true);
    ASSERT_TRUE(blk.ok());
    VhdxNode* node = vhdx_node(**blk);
    EXPECT_EQ(node->bat_entry(0).state, kFullyPresent);
    EXPECT_EQ(node->bat_entry(1).state, kFullyPresent);
    EXPECT_EQ(node->bat_entry(2).state, kPartiallyPresent);
    EXPECT_EQ(node->bat_entry(3).state, kFullyPresent);
    expect_content(**blk, shadow, "child reopened");
}

TEST_F(VhdxChainTest, FixedImagesReportDataLikeQemu) {
    // Ours (FULLY_PRESENT blocks) and, when available, QEMU's (created with
    // ZERO entries by block_state_zero=on): every block is data.
    std::vector<std::string> images;
    const std::string ours = dir_.path("ours.vhdx");
    qapi::OptionsTree o;
    o.set("subformat", "fixed");
    o.set("block_size", "1M");
    ASSERT_TRUE(create_vhdx(ours, 4 * kMiB, o).ok());
    images.push_back(ours);
    if (have_qemu()) {
        const std::string theirs = dir_.path("theirs.vhdx");
        std::string out;
        ASSERT_EQ(run("qemu-img create -q -f vhdx -o subformat=fixed " + theirs + " 8M", &out), 0)
            << out;
        images.push_back(theirs);
    }
    for (const std::string& path : images) {
        auto blk = open_vhdx(path, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        uint64_t offset = 0;
        while (offset < (*blk)->length()) {
            auto st = run_sync([&] {
                return co_node_block_status((*blk)->root(), offset, (*blk)->length() - offset,
                                            true);
            });
            ASSERT_TRUE(st.ok()) << st.error().to_string();
            EXPECT_TRUE(st->flags & kStatusData) << path << " at " << offset;
            EXPECT_TRUE(st->flags & kStatusAllocated) << path << " at " << offset;
            EXPECT_FALSE(st->flags & kStatusZero) << path << " at " << offset;
            ASSERT_GT(st->bytes, 0u);
            offset += st->bytes;
        }
    }
}

}  // namespace
}  // namespace coblock
