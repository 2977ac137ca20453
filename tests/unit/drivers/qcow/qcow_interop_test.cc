// Interoperability with qemu-img / qemu-io 7.2: images QEMU made and wrote
// read the same in coblock, images coblock made and wrote read the same in
// QEMU (qemu-img compare against a raw shadow), compressed clusters both
// ways, and creation byte-identical to `qemu-img create -f qcow`. Skips when
// the tools are not installed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <random>
#include <set>

#include "block/create.h"
#include "formats/qcow/qcow_tables.h"
#include "qcow_test_util.h"
#include "tests/unit/drivers/file/file_test_util.h"

namespace coblock::qcow {
namespace {

using namespace coblock::qcow::testing;
using coblock::testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;

bool have_qemu_tools() {
    return std::system(
               "command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1") == 0;
}

#define SKIP_WITHOUT_QEMU() \
    if (!have_qemu_tools()) GTEST_SKIP() << "qemu-img/qemu-io not installed"

struct CommandResult {
    int status = -1;
    std::string output;
};

CommandResult run(const std::string& command) {
    CommandResult r;
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        r.output.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::vector<std::byte> file_bytes(const std::string& path) {
    auto raw = coblock::testing::read_file(path, 0, coblock::testing::file_size(path));
    std::vector<std::byte> out(raw.size());
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
}

std::vector<uint8_t> read(BlockBackend& blk, uint64_t offset, size_t n) {
    std::vector<uint8_t> out(n, 0xee);
    Status s = blk.pread(offset, out.data(), n);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
}

void put(std::vector<uint8_t>& shadow, uint64_t off, size_t len, uint8_t value) {
    std::fill(shadow.begin() + off, shadow.begin() + off + len, value);
}

TEST(QcowInterop, QemuWrittenImageReadsTheSame) {
    SKIP_WITHOUT_QEMU();
    TempDir dir;
    const std::string img = dir.path("q.qcow");
    ASSERT_EQ(run("qemu-img create -q -f qcow " + img + " 8M").status, 0);
    CommandResult w =
        run("qemu-io -f qcow -c 'write -P 0x11 0 4k' -c 'write -P 0x22 5000 3000' "
            "-c 'write -P 0x33 2M 64k' -c 'write -c -P 0x44 1M 4k' "
            "-c 'write -P 0x55 1049600 512' -c 'write -c -P 0x66 6M 4k' " +
            img);
    ASSERT_EQ(w.status, 0) << w.output;
    std::vector<uint8_t> shadow(8 * kMiB, 0);
    put(shadow, 0, 4096, 0x11);
    put(shadow, 5000, 3000, 0x22);
    put(shadow, 2 * kMiB, 65536, 0x33);
    put(shadow, kMiB, 4096, 0x44);
    put(shadow, kMiB + 1024, 512, 0x55);
    put(shadow, 6 * kMiB, 4096, 0x66);
    auto blk = BlockBackend::open(img, {}, OpenFlags{.read_only = true});
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->root()->driver().name, "qcow");
    EXPECT_EQ(read(**blk, 0, shadow.size()), shadow);
}

TEST(QcowInterop, QemuBackingChainReadsTheSame) {
    SKIP_WITHOUT_QEMU();
    TempDir dir;
    const std::string base = dir.path("base.qcow");
    const std::string top = dir.path("top.qcow");
    ASSERT_EQ(run("qemu-img create -q -f qcow " + base + " 4M").status, 0);
    ASSERT_EQ(run("qemu-io -f qcow -c 'write -P 0xaa 0 4M' " + base).status, 0);
    ASSERT_EQ(
        run("cd " + dir.dir() + " && qemu-img create -q -f qcow -b base.qcow -F qcow top.qcow")
            .status,
        0);
    ASSERT_EQ(
        run("qemu-io -f qcow -c 'write -P 0xbb 512 1024' -c 'write -P 0xcc 3M 8k' " + top).status,
        0);
    std::vector<uint8_t> shadow(4 * kMiB, 0xaa);
    put(shadow, 512, 1024, 0xbb);
    put(shadow, 3 * kMiB, 8192, 0xcc);
    auto blk = BlockBackend::open(top, {}, OpenFlags{.read_only = true});
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    ASSERT_NE((*blk)->root()->backing(), nullptr);
    EXPECT_EQ((*blk)->root()->backing_filename(), "base.qcow");
    EXPECT_EQ(read(**blk, 0, shadow.size()), shadow);
}

TEST(QcowInterop, CreateIsByteIdenticalToQemuImg) {
    SKIP_WITHOUT_QEMU();
    TempDir dir;
    const std::pair<std::string, uint64_t> sizes[] = {
        {"100M", 100 * kMiB}, {"1000", 1000}, {"3G", uint64_t{3} << 30}};
    for (const auto& [text, size] : sizes) {
        SCOPED_TRACE(text);
        ASSERT_EQ(run("qemu-img create -q -f qcow " + dir.path("q.qcow") + " " + text).status, 0);
        ASSERT_TRUE(create_image("qcow", dir.path("c.qcow"), size, {}).ok());
        EXPECT_EQ(file_bytes(dir.path("c.qcow")), file_bytes(dir.path("q.qcow")));
    }
    // With a backing file (QEMU's 512-byte cluster geometry).
    ASSERT_EQ(
        run("cd " + dir.dir() + " && qemu-img create -q -f qcow -b q.qcow -F qcow qb.qcow").status,
        0);
    qapi::OptionsTree options;
    options.set("backing_file", "q.qcow");
    options.set("backing_fmt", "qcow");
    ASSERT_TRUE(
        create_image("qcow", dir.path("cb.qcow"), uint64_t{3} << 30, options, "q.qcow", "qcow")
            .ok());
    EXPECT_EQ(file_bytes(dir.path("cb.qcow")), file_bytes(dir.path("qb.qcow")));
}

// Random writes through coblock (byte-granular, across clusters and L2
// tables, some compressed), mirrored into a raw shadow that qemu-img then
// compares with the image.
void random_writes(BlockBackend& blk, std::vector<uint8_t>& shadow, uint64_t cluster_size,
                   uint32_t seed, int ops) {
    std::mt19937 rng(seed);
    std::set<uint64_t> touched;
    const uint64_t size = shadow.size();
    for (int i = 0; i < ops; ++i) {
        const uint8_t value = static_cast<uint8_t>(1 + rng() % 250);
        if (rng() % 5 == 0) {
            const uint64_t cluster = rng() % (size / cluster_size);
            if (touched.count(cluster)) continue;
            touched.insert(cluster);
            std::vector<uint8_t> data(cluster_size, value);
            for (size_t j = 0; j < data.size(); j += 97)
                data[j] = static_cast<uint8_t>(j);
            ASSERT_TRUE(
                blk.pwrite(cluster * cluster_size, data.data(), data.size(), kReqWriteCompressed)
                    .ok());
            std::copy(data.begin(), data.end(), shadow.begin() + cluster * cluster_size);
            continue;
        }
        const uint64_t len = 1 + rng() % (3 * cluster_size);
        const uint64_t off = rng() % (size - len);
        std::vector<uint8_t> data = pattern(len, value);
        Status s = blk.pwrite(off, data.data(), data.size());
        ASSERT_TRUE(s.ok()) << s.error().message;
        std::copy(data.begin(), data.end(), shadow.begin() + off);
        for (uint64_t c = off / cluster_size; c <= (off + len - 1) / cluster_size; ++c)
            touched.insert(c);
    }
}

void write_shadow(const std::string& path, const std::vector<uint8_t>& shadow) {
    coblock::testing::make_file(path, shadow.size());
    coblock::testing::write_file(path, 0, shadow);
}

TEST(QcowInterop, CoblockWrittenImageComparesEqualInQemu) {
    SKIP_WITHOUT_QEMU();
    TempDir dir;
    const std::string img = dir.path("c.qcow");
    ASSERT_TRUE(create_image("qcow", img, 8 * kMiB, {}).ok());
    std::vector<uint8_t> shadow(8 * kMiB, 0);
    {
        auto blk = BlockBackend::open(img, {}, OpenFlags{});
        ASSERT_TRUE(blk.ok()) << blk.error().message;
        random_writes(**blk, shadow, 4096, 7, 300);
        ASSERT_TRUE((*blk)->flush().ok());
        EXPECT_EQ(read(**blk, 0, shadow.size()), shadow);
    }
    write_shadow(dir.path("shadow.raw"), shadow);
    CommandResult cmp =
        run("qemu-img compare -f qcow -F raw " + img + " " + dir.path("shadow.raw"));
    EXPECT_EQ(cmp.status, 0) << cmp.output;
    // qcow has no consistency check in QEMU: exit 63.
    EXPECT_EQ(run("qemu-img check -f qcow " + img).status, 63);
}

TEST(QcowInterop, CompressedClustersBothWays) {
    SKIP_WITHOUT_QEMU();
    TempDir dir;
    const std::string img = dir.path("z.qcow");
    ASSERT_TRUE(create_image("qcow", img, 4 * kMiB, {}).ok());
    {
        auto blk = BlockBackend::open(img, {}, OpenFlags{});
        ASSERT_TRUE(blk.ok());
        auto data = filled(4096, 0x3c);
        ASSERT_TRUE((*blk)->pwrite(8192, data.data(), data.size(), kReqWriteCompressed).ok());
    }
    const std::vector<std::byte> bytes = file_bytes(img);
    const uint64_t entry = be64_at(bytes, be64_at(bytes, 48) + 2 * 8);
    EXPECT_TRUE(entry & kCompressedFlag);
    CommandResult r = run("qemu-io -f qcow -c 'read -P 0x3c 8k 4k' -c 'read -P 0 0 8k' " + img);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output.find("Pattern verification failed"), std::string::npos) << r.output;
    // And QEMU's compressed cluster, partially overwritten by coblock.
    ASSERT_EQ(run("qemu-io -f qcow -c 'write -c -P 0x5e 1M 4k' " + img).status, 0);
    {
        auto blk = BlockBackend::open(img, {}, OpenFlags{});
        ASSERT_TRUE(blk.ok());
        EXPECT_EQ(read(**blk, kMiB, 4096), filled(4096, 0x5e));
        auto data = filled(512, 0x7f);
        ASSERT_TRUE((*blk)->pwrite(kMiB + 2048, data.data(), data.size()).ok());
    }
    r =
        run("qemu-io -f qcow -c 'read -P 0x5e 1M 2k' -c 'read -P 0x7f 1050624 512' "
            "-c 'read -P 0x5e 1051136 1536' -c 'read -P 0x3c 8k 4k' " +
            img);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output.find("Pattern verification failed"), std::string::npos) << r.output;
}

TEST(QcowInterop, CoblockCopyOnWriteOverBackingComparesEqual) {
    SKIP_WITHOUT_QEMU();
    TempDir dir;
    // A raw backing file with data, and an overlay with 4 KiB clusters (a
    // geometry qemu-img would not pick with a backing file: partial writes
    // need copy-on-write, which QEMU's qcow lacks and coblock does).
    std::vector<uint8_t> shadow = pattern(4 * kMiB, 9);
    write_shadow(dir.path("base.raw"), shadow);
    const std::string top = dir.path("top.qcow");
    auto image = custom_image(4 * kMiB, 12, 9, "base.raw");
    {
        std::vector<uint8_t> raw(image.size());
        std::memcpy(raw.data(), image.data(), image.size());
        write_shadow(top, raw);
    }
    {
        auto blk = BlockBackend::open(top, {}, OpenFlags{});
        ASSERT_TRUE(blk.ok()) << blk.error().message;
        random_writes(**blk, shadow, 4096, 11, 150);
    }
    write_shadow(dir.path("shadow.raw"), shadow);
    CommandResult cmp =
        run("qemu-img compare -f qcow -F raw " + top + " " + dir.path("shadow.raw"));
    EXPECT_EQ(cmp.status, 0) << cmp.output;
    // Same with QEMU's own geometry for backed images (512-byte clusters).
    const std::string top2 = dir.path("top2.qcow");
    shadow = pattern(4 * kMiB, 9);
    qapi::OptionsTree options;
    ASSERT_TRUE(create_image("qcow", top2, 4 * kMiB, options, "base.raw", "raw").ok());
    {
        auto blk = BlockBackend::open(top2, {}, OpenFlags{});
        ASSERT_TRUE(blk.ok()) << blk.error().message;
        random_writes(**blk, shadow, 512, 12, 150);
    }
    write_shadow(dir.path("shadow2.raw"), shadow);
    cmp = run("qemu-img compare -f qcow -F raw " + top2 + " " + dir.path("shadow2.raw"));
    EXPECT_EQ(cmp.status, 0) << cmp.output;
}

}  // namespace
}  // namespace coblock::qcow
