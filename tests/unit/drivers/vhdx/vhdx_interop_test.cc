// Interop with QEMU 7.2 (the oracle): images made by qemu-img and written
// by qemu-io read byte-identical in coblock; images made and written by
// coblock pass qemu-img check and compare equal to a raw shadow; a log left
// pending by a crash is replayed by coblock and by qemu-img check -r all to
// the same content. Skipped when qemu-img/qemu-io are not installed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "block/create.h"
#include "coroutine/event_loop.h"
#include "tests/unit/drivers/vhdx/vhdx_test_util.h"

namespace coblock {
namespace {

using namespace vhdx_test;
using vhdx::kMiB;

struct ImageConfig {
    const char* subformat;
    uint64_t block_size;
    uint64_t log_size;
    uint64_t size;
};

std::string describe(const ImageConfig& c) {
    return std::string(c.subformat) + "_bs" + std::to_string(c.block_size / kMiB) + "M_log" +
           std::to_string(c.log_size / kMiB) + "M_" + std::to_string(c.size / kMiB) + "M";
}

const ImageConfig kConfigs[] = {
    {"dynamic", 1 * kMiB, 1 * kMiB, 24 * kMiB},  {"dynamic", 8 * kMiB, 2 * kMiB, 40 * kMiB},
    {"dynamic", 32 * kMiB, 1 * kMiB, 70 * kMiB}, {"dynamic", 256 * kMiB, 4 * kMiB, 300 * kMiB},
    {"fixed", 1 * kMiB, 1 * kMiB, 6 * kMiB},     {"fixed", 8 * kMiB, 3 * kMiB, 20 * kMiB},
    {"fixed", 32 * kMiB, 1 * kMiB, 40 * kMiB},   {"fixed", 256 * kMiB, 1 * kMiB, 16 * kMiB},
};

class VhdxInteropTest : public ::testing::TestWithParam<ImageConfig> {
  protected:
    void SetUp() override {
        if (!have_qemu()) GTEST_SKIP() << "qemu-img/qemu-io not installed";
        block_layer_init();
        ASSERT_TRUE(dir_.ok());
        path_ = dir_.path("disk.vhdx");
    }

    // A few writes that hit block starts, block ends and crossings, the
    // disk's end and an unaligned range.
    std::vector<std::pair<uint64_t, uint64_t>> write_ranges(const ImageConfig& c) const {
        const uint64_t boundary = c.block_size < c.size ? c.block_size : c.size / 2;
        return {{0, 4096},
                {boundary - 512, 2048},
                {c.size / 2 + 512, 70000 & ~uint64_t{511}},
                {c.size - 4096, 4096},
                {kMiB + 3 * 512, 512}};
    }

    void write_raw(const std::string& path, const std::vector<uint8_t>& data) {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<long>(data.size()));
    }

    void expect_reads(const std::string& path, const std::vector<uint8_t>& shadow) {
        auto blk = open_vhdx(path, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        ASSERT_EQ((*blk)->length(), shadow.size());
        std::vector<uint8_t> got(shadow.size());
        ASSERT_TRUE((*blk)->pread(0, got.data(), got.size()).ok());
        for (size_t i = 0; i < got.size(); i += 512)
            ASSERT_EQ(std::memcmp(got.data() + i, shadow.data() + i, 512), 0)
                << "sector at " << i << " differs";
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
    std::string path_;
};

TEST_P(VhdxInteropTest, QemuWrittenImagesReadIdentical) {
    const ImageConfig c = GetParam();
    std::string out;
    ASSERT_EQ(run("qemu-img create -q -f vhdx -o subformat=" + std::string(c.subformat) +
                      ",block_size=" + std::to_string(c.block_size) + ",log_size=" +
                      std::to_string(c.log_size) + " " + path_ + " " + std::to_string(c.size),
                  &out),
              0)
        << out;
    std::vector<uint8_t> shadow(c.size, 0);
    std::string cmd = "qemu-io -f vhdx";
    int seed = 0x11;
    for (auto [offset, bytes] : write_ranges(c)) {
        cmd += " -c 'write -P " + std::to_string(seed) + " " + std::to_string(offset) + " " +
               std::to_string(bytes) + "'";
        std::memset(shadow.data() + offset, seed, bytes);
        seed += 0x11;
    }
    ASSERT_EQ(run(cmd + " " + path_, &out), 0) << out;
    const auto before = read_whole_file(path_);
    expect_reads(path_, shadow);
    EXPECT_EQ(read_whole_file(path_), before);
}

TEST_P(VhdxInteropTest, CoblockWrittenImagesPassQemuCheckAndCompare) {
    const ImageConfig c = GetParam();
    qapi::OptionsTree o;
    o.set("subformat", c.subformat);
    o.set("block_size", std::to_string(c.block_size));
    o.set("log_size", std::to_string(c.log_size));
    ASSERT_TRUE(create_vhdx(path_, c.size, o).ok());
    std::vector<uint8_t> shadow(c.size, 0);
    {
        auto blk = open_vhdx(path_, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        uint32_t seed = 1;
        for (auto [offset, bytes] : write_ranges(c)) {
            auto data = pattern(bytes, seed++);
            ASSERT_TRUE((*blk)->pwrite(offset, data.data(), data.size()).ok());
            std::memcpy(shadow.data() + offset, data.data(), bytes);
        }
        // Zero writes: a partial one and, where the disk has two blocks, a
        // whole block.
        ASSERT_TRUE((*blk)->pwrite_zeroes(1024, 2048).ok());
        std::memset(shadow.data() + 1024, 0, 2048);
        if (c.size >= 2 * c.block_size) {
            ASSERT_TRUE((*blk)->pwrite_zeroes(0, c.block_size).ok());
            std::memset(shadow.data(), 0, c.block_size);
        }
    }
    const std::string raw = dir_.path("shadow.raw");
    write_raw(raw, shadow);
    std::string out;
    EXPECT_EQ(run("qemu-img check -f vhdx " + path_, &out), 0) << out;
    EXPECT_NE(out.find("No errors were found on the image."), std::string::npos) << out;
    EXPECT_EQ(run("qemu-img compare -f vhdx -F raw " + path_ + " " + raw, &out), 0) << out;
    expect_reads(path_, shadow);
}

INSTANTIATE_TEST_SUITE_P(Configs, VhdxInteropTest, ::testing::ValuesIn(kConfigs),
                         [](const auto& info) { return describe(info.param); });

// ---- Log replay against qemu-img check -r all ----------------------------------------

class VhdxReplayInteropTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_qemu()) GTEST_SKIP() << "qemu-img/qemu-io not installed";
        block_layer_init();
        ASSERT_TRUE(dir_.ok());
    }
    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
};

TEST_F(VhdxReplayInteropTest, PendingLogReplaysLikeQemu) {
    // A QEMU-made image, written by coblock, stopped after the log entry of
    // an allocating write was written and before it was applied.
    const std::string img = dir_.path("crash.vhdx");
    std::string out;
    ASSERT_EQ(run("qemu-img create -q -f vhdx -o block_size=1M " + img + " 8M", &out), 0) << out;
    ASSERT_EQ(run("qemu-io -f vhdx -c 'write -P 0x5a 0 1M' " + img, &out), 0) << out;
    std::vector<uint8_t> shadow(8 * kMiB, 0);
    std::memset(shadow.data(), 0x5a, kMiB);
    {
        auto faulty = open_faulty(img);
        ASSERT_TRUE(faulty.ok()) << faulty.error().to_string();
        faulty->filter()->trip_offset = vhdx_node(*faulty->blk)->header().log_offset;
        faulty->filter()->trip_length = vhdx_node(*faulty->blk)->header().log_length;
        auto data = pattern(3 * kMiB + 4096, 81);  // four blocks, one log entry
        EXPECT_FALSE(faulty->blk->pwrite(2 * kMiB, data.data(), data.size()).ok());
        ASSERT_TRUE(faulty->filter()->tripped);
        std::memcpy(shadow.data() + 2 * kMiB, data.data(), data.size());
    }
    const std::string raw = dir_.path("shadow.raw");
    {
        std::ofstream o(raw, std::ios::binary);
        o.write(reinterpret_cast<const char*>(shadow.data()), static_cast<long>(shadow.size()));
    }
    // QEMU sees the pending log too: it refuses read-only opens.
    EXPECT_NE(run("qemu-img info " + img, &out), 0);
    EXPECT_NE(out.find("contains a log that needs to be replayed"), std::string::npos) << out;

    const std::string by_qemu = dir_.path("by_qemu.vhdx");
    const std::string by_coblock = dir_.path("by_coblock.vhdx");
    std::filesystem::copy_file(img, by_qemu);
    std::filesystem::copy_file(img, by_coblock);

    // coblock read-only: right data, file untouched.
    const auto before = read_whole_file(by_coblock);
    {
        auto blk = open_vhdx(by_coblock, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        std::vector<uint8_t> got(shadow.size());
        ASSERT_TRUE((*blk)->pread(0, got.data(), got.size()).ok());
        EXPECT_TRUE(got == shadow);
    }
    EXPECT_EQ(read_whole_file(by_coblock), before);
    // coblock read-write replays; QEMU then opens it and agrees.
    {
        auto blk = open_vhdx(by_coblock, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    }
    EXPECT_EQ(run("qemu-img check " + by_coblock, &out), 0) << out;
    EXPECT_EQ(run("qemu-img compare -f vhdx -F raw " + by_coblock + " " + raw, &out), 0) << out;

    // qemu-img check -r all replays the same log to the same content.
    EXPECT_EQ(run("qemu-img check -r all " + by_qemu, &out), 0) << out;
    EXPECT_EQ(run("qemu-img compare -f vhdx -F raw " + by_qemu + " " + raw, &out), 0) << out;
    auto blk = open_vhdx(by_qemu, true);
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    std::vector<uint8_t> got(shadow.size());
    ASSERT_TRUE((*blk)->pread(0, got.data(), got.size()).ok());
    EXPECT_TRUE(got == shadow);
}

TEST_F(VhdxReplayInteropTest, CoblockReplaysALogQemuWrote) {
    // Spec §16: after a QEMU write session the log still holds its last
    // entry; pointing the header's LogGuid at it and undoing the BAT entry
    // it wrote forges a pending log in QEMU's own encoding.
    const std::string img = dir_.path("q.vhdx");
    std::string out;
    ASSERT_EQ(run("qemu-img create -q -f vhdx -o block_size=1M " + img + " 8M", &out), 0) << out;
    ASSERT_EQ(run("qemu-io -f vhdx -c 'write -P 0xa5 4096 4096' " + img, &out), 0) << out;
    auto bytes = read_whole_file(img);
    auto* base = reinterpret_cast<const std::byte*>(bytes.data());
    auto sel = vhdx::select_header(ByteSpan(base + vhdx::kHeader1Offset, vhdx::kHeaderSize),
                                   ByteSpan(base + vhdx::kHeader2Offset, vhdx::kHeaderSize));
    ASSERT_TRUE(sel.ok());
    vhdx::Header h = sel->current;
    const vhdx::Guid entry_guid = vhdx::Guid::from_bytes(ByteSpan(base + h.log_offset + 32, 16));
    ASSERT_FALSE(entry_guid.is_zero());
    h.log_guid = entry_guid;
    std::vector<std::byte> slot(vhdx::kHeaderSize);
    ASSERT_TRUE(vhdx::encode_header(h, slot).ok());
    write_at(img, vhdx::header_slot_offset(sel->current_slot), slot.data(), slot.size());
    const uint64_t zero_state = 2;  // BAT entry 0 (at 2 MiB) back to ZERO
    write_at(img, 2 * kMiB, &zero_state, 8);

    std::vector<uint8_t> shadow(8 * kMiB, 0);
    std::memset(shadow.data() + 4096, 0xa5, 4096);
    const std::string raw = dir_.path("shadow.raw");
    {
        std::ofstream o(raw, std::ios::binary);
        o.write(reinterpret_cast<const char*>(shadow.data()), static_cast<long>(shadow.size()));
    }
    EXPECT_NE(run("qemu-img info " + img, &out), 0) << out;  // QEMU sees it pending
    const auto before = read_whole_file(img);
    {
        auto blk = open_vhdx(img, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        EXPECT_TRUE(vhdx_node(**blk)->log_in_overlay());
        std::vector<uint8_t> got(shadow.size());
        ASSERT_TRUE((*blk)->pread(0, got.data(), got.size()).ok());
        EXPECT_TRUE(got == shadow);
    }
    EXPECT_EQ(read_whole_file(img), before);
    {
        auto blk = open_vhdx(img, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    }
    EXPECT_EQ(run("qemu-img check " + img, &out), 0) << out;
    EXPECT_EQ(run("qemu-img compare -f vhdx -F raw " + img + " " + raw, &out), 0) << out;
}

TEST_F(VhdxReplayInteropTest, QemuRefusesDifferencingImagesCoblockMakes) {
    // QEMU 7.2 cannot open differencing VHDX (spec §15.1); coblock's child
    // must be recognised as one (ENOTSUP), not as a broken image.
    const std::string parent = dir_.path("p.vhdx");
    const std::string child = dir_.path("c.vhdx");
    ASSERT_TRUE(create_vhdx(parent, 4 * kMiB).ok());
    ASSERT_TRUE(create_vhdx(child, 0, {}, "p.vhdx").ok());
    std::string out;
    EXPECT_NE(run("qemu-img info " + child, &out), 0);
    EXPECT_NE(out.find("Operation not supported"), std::string::npos) << out;
    EXPECT_EQ(run("qemu-img check " + parent, &out), 0) << out;
}

}  // namespace
}  // namespace coblock
