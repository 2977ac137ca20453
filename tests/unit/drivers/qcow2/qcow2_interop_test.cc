// Interoperability with QEMU 7.2: images made and written by qemu-img /
// qemu-io read byte-identical in coblock; images made and written by
// coblock pass `qemu-img check` and `qemu-img compare` against a raw
// shadow; co_check statistics agree with `qemu-img check --output=json`.
// Skips when qemu-img / qemu-io are not installed.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "block/io.h"
#include "coroutine/run_sync.h"
#include "tests/unit/drivers/qcow2/qcow2_test_util.h"

namespace coblock {
namespace {

using testing::check_image;
using testing::create_qcow2;
using testing::have_tool;
using testing::open_qcow2;
using testing::pattern;
using testing::run_command;
using testing::run_output;
using testing::TempDir;

constexpr const char* kQemuImg = "/usr/bin/qemu-img";
constexpr const char* kQemuIo = "/usr/bin/qemu-io";

class Qcow2InteropTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_tool(kQemuImg) || !have_tool(kQemuIo))
            GTEST_SKIP() << "qemu-img/qemu-io not installed";
        ASSERT_TRUE(dir_.ok());
        block_layer_init();
    }
    std::string p(const std::string& name) { return dir_.path(name); }

    // Reads the whole image through coblock and through qemu-img convert.
    void expect_same_as_qemu(const std::string& image, const std::string& fmt = "qcow2") {
        const std::string raw = image + ".raw";
        ASSERT_EQ(run_command(std::string(kQemuImg) + " convert -f " + fmt + " -O raw " + image +
                              " " + raw),
                  0);
        const uint64_t size = testing::file_size(raw);
        auto expected = testing::read_file(raw, 0, size);
        auto blk = open_qcow2(image, true);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        ASSERT_EQ((*blk)->length(), size);
        std::vector<uint8_t> got(size);
        QCOW2_ASSERT_OK((*blk)->pread(0, got.data(), size));
        EXPECT_TRUE(got == expected) << image << " differs from qemu-img convert output";
    }

    void expect_qemu_check_clean(const std::string& image) {
        const std::string out = run_output(std::string(kQemuImg) + " check " + image);
        EXPECT_EQ(run_command(std::string(kQemuImg) + " check " + image), 0) << out;
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
};

TEST_F(Qcow2InteropTest, QemuWrittenImagesReadIdentical) {
    const std::vector<std::string> configs = {
        "compat=0.10",
        "compat=1.1,cluster_size=512",
        "cluster_size=2M",
        "lazy_refcounts=on",
        "extended_l2=on",
        "compression_type=zstd,refcount_bits=1",
        "refcount_bits=64,cluster_size=4096",
    };
    int n = 0;
    for (const auto& opts : configs) {
        SCOPED_TRACE(opts);
        const std::string img = p("q" + std::to_string(n++) + ".qcow2");
        ASSERT_EQ(
            run_command(std::string(kQemuImg) + " create -f qcow2 -o " + opts + " " + img + " 8M"),
            0);
        ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 0xab 1000 100k' " +
                              "-c 'write -P 0xcd 1M 64k' -c 'write -P 0x11 3M 5000' " +
                              "-c 'write -z 1M 4k' -c 'write -P 0x22 7M 1M' " +
                              "-c 'discard 7M 64k' " + img),
                  0);
        expect_same_as_qemu(img);
    }
}

TEST_F(Qcow2InteropTest, QemuCompressedImagesReadIdentical) {
    const std::string raw = p("src.raw");
    testing::make_file(raw, 4 << 20);
    std::vector<uint8_t> data(3 << 20);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>((i / 300) * 7 + (i % 5));
    testing::write_file(raw, 100, data);
    for (const char* type : {"zlib", "zstd"}) {
        SCOPED_TRACE(type);
        const std::string img = p(std::string("c-") + type + ".qcow2");
        ASSERT_EQ(run_command(std::string(kQemuImg) + " convert -c -f raw -O qcow2 -o " +
                              "compression_type=" + type + " " + raw + " " + img),
                  0);
        expect_same_as_qemu(img);
    }
}

TEST_F(Qcow2InteropTest, QemuBackingChainReadsIdentical) {
    const std::string base = p("base.qcow2"), top = p("top.qcow2");
    ASSERT_EQ(run_command(std::string(kQemuImg) + " create -f qcow2 " + base + " 4M"), 0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 0x31 0 4M' " + base), 0);
    ASSERT_EQ(run_command(std::string(kQemuImg) + " create -f qcow2 -b base.qcow2 -F qcow2 " + top +
                          " 6M"),
              0);
    ASSERT_EQ(
        run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 0x42 70000 3000' " +
                    "-c 'write -z 1M 64k' -c 'discard 2M 128k' -c 'write -P 0x43 4M 100k' " + top),
        0);
    expect_same_as_qemu(top);
}

TEST_F(Qcow2InteropTest, CoblockWrittenImagesPassQemuCheckAndCompare) {
    struct Config {
        const char* name;
        qapi::OptionsTree options;
    };
    std::vector<Config> configs;
    configs.push_back({"default", {}});
    configs.push_back({"v2", {{"compat", "0.10"}}});
    configs.push_back({"512", {{"cluster_size", "512"}}});
    configs.push_back({"2M", {{"cluster_size", "2M"}}});
    configs.push_back({"extl2", {{"extended_l2", "on"}}});
    configs.push_back({"lazy", {{"lazy_refcounts", "on"}}});
    configs.push_back({"rc1", {{"refcount_bits", "1"}, {"cluster_size", "4096"}}});
    constexpr uint64_t kSize = 6 << 20;
    for (auto& c : configs) {
        SCOPED_TRACE(c.name);
        const std::string img = p(std::string(c.name) + ".qcow2");
        const std::string shadow_path = p(std::string(c.name) + ".raw");
        QCOW2_ASSERT_OK(create_qcow2(img, kSize, c.options));
        std::vector<uint8_t> shadow(kSize, 0);
        {
            auto blk = open_qcow2(img, false, {{"discard", "unmap"}});
            ASSERT_TRUE(blk.ok()) << blk.error().to_string();
            std::mt19937_64 rng(11);
            for (int i = 0; i < 60; ++i) {
                const uint64_t len = 1 + rng() % 300000;
                const uint64_t off = rng() % (kSize - len);
                const int op = static_cast<int>(rng() % 6);
                if (op == 0) {
                    QCOW2_ASSERT_OK(
                        (*blk)->pwrite_zeroes(off, len, (rng() & 1) ? uint32_t{kReqMayUnmap} : 0u));
                    std::memset(shadow.data() + off, 0, len);
                } else if (op == 1) {
                    QCOW2_ASSERT_OK((*blk)->pdiscard(off, len));
                    // Discard may leave data or zeros: read back what it did.
                    std::vector<uint8_t> now(len);
                    QCOW2_ASSERT_OK((*blk)->pread(off, now.data(), len));
                    for (size_t k = 0; k < len; ++k)
                        ASSERT_TRUE(now[k] == shadow[off + k] || now[k] == 0);
                    std::memcpy(shadow.data() + off, now.data(), len);
                } else {
                    auto data = pattern(len, static_cast<uint8_t>(i * 3));
                    QCOW2_ASSERT_OK((*blk)->pwrite(off, data.data(), len));
                    std::memcpy(shadow.data() + off, data.data(), len);
                }
            }
            auto r = check_image(**blk);
            ASSERT_TRUE(r.ok());
            EXPECT_EQ(r->corruptions, 0);
            EXPECT_EQ(r->leaks, 0);
        }
        testing::make_file(shadow_path, kSize);
        testing::write_file(shadow_path, 0, shadow);
        expect_qemu_check_clean(img);
        EXPECT_EQ(run_command(std::string(kQemuImg) + " compare -f qcow2 -F raw " + img + " " +
                              shadow_path),
                  0);
    }
}

TEST_F(Qcow2InteropTest, CoblockCompressedWritesReadByQemu) {
    for (const char* type : {"zlib", "zstd"}) {
        SCOPED_TRACE(type);
        const std::string img = p(std::string("cw-") + type + ".qcow2");
        const std::string shadow_path = img + ".shadow";
        constexpr uint64_t kSize = 1 << 20;
        QCOW2_ASSERT_OK(create_qcow2(img, kSize, {{"compression_type", type}}));
        std::vector<uint8_t> shadow(kSize, 0);
        {
            auto blk = open_qcow2(img);
            ASSERT_TRUE(blk.ok());
            for (uint64_t c = 0; c < 8; ++c) {
                std::vector<uint8_t> data(65536);
                for (size_t i = 0; i < data.size(); ++i)
                    data[i] = static_cast<uint8_t>(c * 17 + (i / 100));
                ASSERT_TRUE(
                    (*blk)->pwrite(c * 65536, data.data(), data.size(), kReqWriteCompressed).ok());
                std::memcpy(shadow.data() + c * 65536, data.data(), data.size());
            }
        }
        testing::make_file(shadow_path, kSize);
        testing::write_file(shadow_path, 0, shadow);
        expect_qemu_check_clean(img);
        EXPECT_EQ(run_command(std::string(kQemuImg) + " compare -f qcow2 -F raw " + img + " " +
                              shadow_path),
                  0);
    }
}

TEST_F(Qcow2InteropTest, CheckStatisticsMatchQemu) {
    const std::string raw = p("s.raw"), img = p("s.qcow2");
    testing::make_file(raw, 4 << 20);
    testing::write_file(raw, 0, pattern(1 << 20, 1));
    testing::write_file(raw, 3 << 20, pattern(100000, 2));
    ASSERT_EQ(run_command(std::string(kQemuImg) + " convert -c -f raw -O qcow2 " + raw + " " + img),
              0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 1 2M 200k' " + img), 0);
    auto q = nlohmann::json::parse(
        run_output(std::string(kQemuImg) + " check --output=json " + img), nullptr, false);
    ASSERT_FALSE(q.is_discarded());
    auto blk = open_qcow2(img, true);
    ASSERT_TRUE(blk.ok());
    auto r = check_image(**blk);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->total_clusters, q["total-clusters"].get<int64_t>());
    EXPECT_EQ(r->allocated_clusters, q["allocated-clusters"].get<int64_t>());
    EXPECT_EQ(r->fragmented_clusters, q["fragmented-clusters"].get<int64_t>());
    EXPECT_EQ(r->compressed_clusters, q["compressed-clusters"].get<int64_t>());
    EXPECT_EQ(r->image_end_offset, q["image-end-offset"].get<int64_t>());
    EXPECT_EQ(r->leaks, 0);
    EXPECT_EQ(r->corruptions, 0);
}

TEST_F(Qcow2InteropTest, CheckFindsAndFixesLeaks) {
    const std::string img = p("leak.qcow2");
    ASSERT_EQ(
        run_command(std::string(kQemuImg) + " create -f qcow2 -o lazy_refcounts=on " + img + " 4M"),
        0);
    // Crash after a write with lazy refcounts: stale refcounts, dirty bit.
    run_command(std::string(kQemuIo) + " -f qcow2 -c 'write 0 128k' -c abort " + img);
    {
        auto blk = open_qcow2(img, true);
        ASSERT_TRUE(blk.ok());
        auto r = check_image(**blk);
        ASSERT_TRUE(r.ok());
        EXPECT_GT(r->corruptions, 0);
    }
    // A read-write open repairs it.
    {
        auto blk = open_qcow2(img);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    }
    expect_qemu_check_clean(img);
}

// qemu-img map --output=json of a single image, rebuilt from coblock's block
// status with qemu-img's merge rule.
nlohmann::json coblock_map(BlockBackend& blk) {
    nlohmann::json out = nlohmann::json::array();
    const uint64_t size = blk.length();
    for (uint64_t off = 0; off < size;) {
        auto st = run_sync([&] { return co_node_block_status(blk.root(), off, size - off, true); });
        if (!st.ok() || st->bytes == 0) break;
        nlohmann::json e = {{"start", off},
                            {"length", st->bytes},
                            {"present", (st->flags & kStatusAllocated) != 0},
                            {"zero", (st->flags & kStatusZero) != 0},
                            {"data", (st->flags & kStatusData) != 0}};
        if (st->flags & kStatusOffsetValid) e["offset"] = st->offset;
        if (!out.empty()) {
            auto& last = out.back();
            const bool same = last["present"] == e["present"] && last["zero"] == e["zero"] &&
                              last["data"] == e["data"] &&
                              last.contains("offset") == e.contains("offset");
            const bool contiguous =
                !same || !e.contains("offset") ||
                last["offset"].get<uint64_t>() + last["length"].get<uint64_t>() ==
                    e["offset"].get<uint64_t>();
            if (same && contiguous) {
                last["length"] = last["length"].get<uint64_t>() + st->bytes;
                off += st->bytes;
                continue;
            }
        }
        out.push_back(e);
        off += st->bytes;
    }
    return out;
}

TEST_F(Qcow2InteropTest, BlockStatusMatchesQemuMap) {
    const std::string raw = p("m.raw"), img = p("m.qcow2");
    testing::make_file(raw, 4 << 20);
    testing::write_file(raw, 0, pattern(300000, 1));
    ASSERT_EQ(run_command(std::string(kQemuImg) + " convert -c -f raw -O qcow2 " + raw + " " + img),
              0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 1 1M 192k' " +
                          "-c 'write -z 2M 64k' -c 'write -P 3 3M 128k' -c 'write -z 3M 64k' " +
                          "-c 'write -z -u 3136k 64k' -c 'discard 1088k 64k' " + img),
              0);
    // Whole-cluster writes only: whether QEMU recurses into the file for
    // holes inside data clusters depends on a heuristic over the file's
    // allocated size, which changes as the page cache is written back.
    ASSERT_EQ(run_command("sync " + img), 0);
    auto q = nlohmann::json::parse(run_output(std::string(kQemuImg) + " map --output=json " + img),
                                   nullptr, false);
    ASSERT_FALSE(q.is_discarded());
    for (auto& e : q) {
        e.erase("depth");
        e.erase("compressed");
    }
    auto blk = open_qcow2(img, true);
    ASSERT_TRUE(blk.ok());
    EXPECT_EQ(coblock_map(**blk).dump(), q.dump());
}

TEST_F(Qcow2InteropTest, CreateIsByteIdenticalToQemuImg) {
    const std::vector<std::pair<std::string, qapi::OptionsTree>> configs = {
        {"", {}},
        {"-o cluster_size=4096,lazy_refcounts=on",
         {{"cluster_size", "4096"}, {"lazy_refcounts", "on"}}},
        {"-o compat=0.10", {{"compat", "0.10"}}},
        {"-o refcount_bits=1,extended_l2=on", {{"refcount_bits", "1"}, {"extended_l2", "on"}}},
        {"-o compression_type=zstd", {{"compression_type", "zstd"}}},
        {"-o preallocation=metadata", {{"preallocation", "metadata"}}},
    };
    for (const auto& [qemu_opts, options] : configs) {
        SCOPED_TRACE(qemu_opts);
        const std::string q = p("q.img"), c = p("c.img");
        ASSERT_EQ(run_command(std::string(kQemuImg) + " create -q -f qcow2 " + qemu_opts + " " + q +
                              " 10M"),
                  0);
        QCOW2_ASSERT_OK(create_qcow2(c, 10 << 20, options));
        ASSERT_EQ(testing::file_size(q), testing::file_size(c));
        EXPECT_TRUE(testing::read_file(q, 0, testing::file_size(q)) ==
                    testing::read_file(c, 0, testing::file_size(c)));
    }
}

TEST_F(Qcow2InteropTest, WritesAfterInternalSnapshotKeepSnapshotIntact) {
    const std::string img = p("snap.qcow2"), before = p("before.raw"), after = p("after.raw");
    ASSERT_EQ(run_command(std::string(kQemuImg) + " create -q -f qcow2 " + img + " 4M"), 0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 0x61 0 1M' " +
                          "-c 'write -c -P 0x62 2M 64k' " + img),
              0);
    ASSERT_EQ(run_command(std::string(kQemuImg) + " snapshot -c s1 " + img), 0);
    ASSERT_EQ(run_command(std::string(kQemuImg) + " convert -O raw " + img + " " + before), 0);
    std::vector<uint8_t> shadow = testing::read_file(before, 0, 4 << 20);
    {
        auto blk = open_qcow2(img);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        // Shared data clusters, a shared L2 table and a compressed cluster.
        auto data = pattern(100000, 9);
        for (uint64_t off : {uint64_t{5000}, uint64_t{(2 << 20) + 100}, uint64_t{3 << 20}}) {
            QCOW2_ASSERT_OK((*blk)->pwrite(off, data.data(), data.size()));
            std::memcpy(shadow.data() + off, data.data(), data.size());
        }
        QCOW2_ASSERT_OK((*blk)->pwrite_zeroes(65536 * 8, 65536 * 2));
        std::memset(shadow.data() + 65536 * 8, 0, 65536 * 2);
    }
    expect_qemu_check_clean(img);
    testing::make_file(after, 4 << 20);
    testing::write_file(after, 0, shadow);
    EXPECT_EQ(run_command(std::string(kQemuImg) + " compare -f qcow2 -F raw " + img + " " + after),
              0);
    // The snapshot still reads as before.
    const std::string snap = p("snap.raw");
    ASSERT_EQ(run_command(std::string(kQemuImg) + " convert -l s1 -O raw " + img + " " + snap), 0);
    EXPECT_TRUE(testing::read_file(snap, 0, 4 << 20) == testing::read_file(before, 0, 4 << 20));
}

TEST_F(Qcow2InteropTest, OverlapWithMetadataMarksImageCorrupt) {
    const std::string img = p("ov.qcow2");
    ASSERT_EQ(run_command(std::string(kQemuImg) + " create -q -f qcow2 " + img + " 4M"), 0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 1 0 64k' " + img), 0);
    // Point guest cluster 0 at the refcount table (cluster 1), COPIED set.
    // Layout of a fresh 64k image: header, reftable, refblock, L1, L2 (0x40000).
    testing::write_file(img, 0x40000, {0x80, 0, 0, 0, 0, 0x01, 0, 0});
    {
        auto blk = open_qcow2(img);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        std::vector<uint8_t> data(512, 7);
        Status st = (*blk)->pwrite(0, data.data(), data.size());
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().as_errno(), EIO);
        // The node is unusable afterwards.
        EXPECT_FALSE((*blk)->pread(65536, data.data(), data.size()).ok());
    }
    EXPECT_NE(run_output(std::string(kQemuImg) + " info " + img).find("corrupt: true"),
              std::string::npos);
    auto rw = open_qcow2(img);
    EXPECT_FALSE(rw.ok());
}

TEST_F(Qcow2InteropTest, CheckModeOpenRepairsDirtyAndCorruptImages) {
    const std::string img = p("dirty.qcow2");
    ASSERT_EQ(run_command(std::string(kQemuImg) + " create -q -f qcow2 -o lazy_refcounts=on " +
                          img + " 4M"),
              0);
    run_command(std::string(kQemuIo) + " -f qcow2 -c 'write 0 128k' -c abort " + img);
    // Mark it corrupt as well (incompatible bits: dirty | corrupt).
    testing::write_file(img, 72, {0, 0, 0, 0, 0, 0, 0, 3});
    OpenFlags flags;
    flags.check = true;
    {
        qapi::OptionsTree options{{"driver", "qcow2"}};
        auto blk = BlockBackend::open(img, options, flags);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        auto r = check_image(**blk, CheckFix::kNone);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->corruptions, 4);  // two refcounts, two COPIED flags (qcow2-notes §7)
        auto fixed = check_image(**blk, CheckFix::kAll);
        ASSERT_TRUE(fixed.ok());
        EXPECT_EQ(fixed->corruptions, 0);
        // Once the refcounts are repaired the COPIED flags are right again.
        EXPECT_EQ(fixed->corruptions_fixed, 2);
    }
    auto word = testing::read_file(img, 72, 8);
    EXPECT_EQ(word[7], 0) << "dirty and corrupt bits cleared";
    expect_qemu_check_clean(img);
}

}  // namespace
}  // namespace coblock

namespace coblock {
namespace {

// Growing an image over a longer backing file: the new area reads as zeros
// (v3: zero clusters and an explicitly zeroed head cluster, as QEMU 7.2);
// v2 refuses as QEMU does.
TEST_F(Qcow2InteropTest, GrowOverLongerBackingReadsZeros) {
    const std::string base = p("base.raw");
    ASSERT_EQ(run_command(std::string(kQemuImg) + " create -f raw " + base + " 2M"), 0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f raw -c 'write -P 0x55 0 2M' " + base), 0);
    for (const char* compat : {"1.1", "0.10"}) {
        SCOPED_TRACE(compat);
        const std::string top = p(std::string("top-") + compat + ".qcow2");
        QCOW2_ASSERT_OK(create_qcow2(top, 1000 << 10, {{"compat", compat}}, base, "raw"));
        auto blk = open_qcow2(top);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        Status st = (*blk)->truncate(2 << 20, false, Prealloc::kOff);
        if (std::string(compat) == "0.10") {
            ASSERT_FALSE(st.ok());
            EXPECT_EQ(st.error().message,
                      "Failed to zero out new clusters: Operation not supported");
            EXPECT_EQ((*blk)->length(), 1000u << 10);
            continue;
        }
        QCOW2_ASSERT_OK(st);
        std::vector<uint8_t> got(2 << 20);
        QCOW2_ASSERT_OK((*blk)->pread(0, got.data(), got.size()));
        std::vector<uint8_t> want(2 << 20, 0);
        std::fill(want.begin(), want.begin() + (1000 << 10), 0x55);
        EXPECT_TRUE(got == want);
        blk->reset();
        expect_qemu_check_clean(top);
        // qemu-io sees the same.
        EXPECT_EQ(
            run_command(std::string(kQemuIo) + " -f qcow2 -c 'read -P 0 1000k 1048k' -c " +
                        "'read -P 0x55 0 1000k' " + top + " | grep -q Pattern; test $? -ne 0"),
            0);
    }
}

// Shrinking frees what lies past the new end as QEMU does: L1 entries
// cleared, their L2 tables freed, the file cut after the last used cluster;
// qemu-img check finds no leak and the file is as long as QEMU's.
TEST_F(Qcow2InteropTest, ShrinkFreesL2TablesAndTruncatesLikeQemu) {
    const std::string ours = p("ours.qcow2"), theirs = p("theirs.qcow2");
    for (const std::string& img : {ours, theirs})
        ASSERT_EQ(run_command(std::string(kQemuImg) + " create -f qcow2 -o cluster_size=4096 " +
                              img + " 8M"),
                  0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 7 0 8M' " + ours), 0);
    ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 7 0 8M' " + theirs), 0);
    {
        auto blk = open_qcow2(ours);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        QCOW2_ASSERT_OK((*blk)->truncate(3 << 20, false, Prealloc::kOff, true));
        std::vector<uint8_t> got(3 << 20);
        QCOW2_ASSERT_OK((*blk)->pread(0, got.data(), got.size()));
        EXPECT_TRUE(got == std::vector<uint8_t>(3 << 20, 7));
    }
    ASSERT_EQ(run_command(std::string(kQemuImg) + " resize --shrink " + theirs + " 3M"), 0);
    expect_qemu_check_clean(ours);
    EXPECT_EQ(testing::file_size(ours), testing::file_size(theirs));
    // L1 entries 2 and 3 (4 KiB clusters: 2 MiB per table) are cleared.
    auto header = testing::read_file(ours, 40, 8);
    uint64_t l1 = 0;
    for (uint8_t b : header)
        l1 = (l1 << 8) | b;
    EXPECT_EQ(testing::read_file(ours, l1 + 16, 16), std::vector<uint8_t>(16, 0));
    EXPECT_EQ(
        run_command(std::string(kQemuImg) + " compare -f qcow2 -F qcow2 " + ours + " " + theirs),
        0);
}

}  // namespace
}  // namespace coblock

namespace coblock {
namespace {

// A used cluster whose refcount is 0: `check -r leaks` reports it, asks for
// a rebuild and fails (exit 1) without writing, as qemu-img 7.2 does; a
// refcount too low but not 0 is reported and left alone (exit 2).
TEST_F(Qcow2InteropTest, CheckLeaksModeLeavesTooLowRefcountsAsQemu) {
    for (uint16_t stored : {uint16_t{0}, uint16_t{1}}) {
        SCOPED_TRACE("stored refcount " + std::to_string(stored));
        const std::string img = p("low.qcow2");
        std::remove(img.c_str());
        ASSERT_EQ(run_command(std::string(kQemuImg) + " create -f qcow2 -o cluster_size=4096 " +
                              img + " 1M"),
                  0);
        // Two references to one cluster: an internal snapshot shares it.
        ASSERT_EQ(run_command(std::string(kQemuIo) + " -f qcow2 -c 'write -P 1 0 8k' " + img), 0);
        if (stored == 1) {
            ASSERT_EQ(run_command(std::string(kQemuImg) + " snapshot -c s " + img), 0);
        }
        auto f = testing::read_file(img, 0, testing::file_size(img));
        auto be64 = [&](uint64_t off) {
            uint64_t v = 0;
            for (int i = 0; i < 8; ++i)
                v = (v << 8) | f[off + i];
            return v;
        };
        const uint64_t refblock = be64(be64(48));
        const uint64_t l2 = be64(be64(40)) & 0x00fffffffffffe00ull;
        const uint64_t data = be64(l2) & 0x00fffffffffffe00ull;
        testing::write_file(img, refblock + 2 * (data / 4096),
                            {static_cast<uint8_t>(stored >> 8), static_cast<uint8_t>(stored)});
        const auto before = testing::read_file(img, 0, testing::file_size(img));
        const std::string copy = p("low-qemu.qcow2");
        ASSERT_EQ(run_command("cp " + img + " " + copy), 0);
        const int qemu_rc = run_command(std::string(kQemuImg) + " check -r leaks " + copy);
        EXPECT_EQ(qemu_rc, stored == 0 ? 1 : 2);
        {
            auto blk = open_qcow2(img, false, {{"lazy-refcounts", "off"}});
            ASSERT_TRUE(blk.ok()) << blk.error().to_string();
            CheckResult result;
            Status st =
                run_sync([&] { return (*blk)->root()->co_check(result, CheckFix::kLeaks); });
            if (stored == 0) {
                ASSERT_FALSE(st.ok());
                EXPECT_EQ(st.error().as_errno(), EIO);
                EXPECT_EQ(result.check_errors, 1);
            } else {
                QCOW2_ASSERT_OK(st);
                EXPECT_GT(result.corruptions, 0);
            }
            EXPECT_EQ(result.corruptions_fixed, 0);
        }
        EXPECT_TRUE(testing::read_file(img, 0, testing::file_size(img)) == before)
            << "check -r leaks wrote to the image";
        EXPECT_TRUE(testing::read_file(copy, 0, testing::file_size(copy)) == before)
            << "(qemu-img check -r leaks wrote to its copy)";
    }
}

}  // namespace
}  // namespace coblock
