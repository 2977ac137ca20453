// Malformed qcow2 images (issue 5, Tests): truncated files, bad magic,
// tables outside the file, overlapping metadata, huge L1 / refcount tables,
// compressed descriptors pointing outside the file, refcount 0 for used
// clusters. Each one, opened read-only and read-write, gives a clear error
// naming the structure and the value (at open or at the first request that
// meets it), never crashes, and leaves the file byte-identical. The one
// write a read-write node may make is QEMU's: setting the corrupt bit when it
// meets an inconsistency at run time (qcow2-notes.md §9), and the test
// checks that nothing else changed.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "block/io.h"
#include "formats/bytes.h"
#include "tests/unit/drivers/qcow2/qcow2_test_util.h"

namespace coblock {
namespace {

using testing::create_qcow2;
using testing::open_qcow2;
using testing::TempDir;

constexpr uint64_t kCluster = 4096;
constexpr uint64_t kDiskSize = 1 << 20;

void put_be64(std::vector<uint8_t>& f, uint64_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i)
        f[off + i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
void put_be32(std::vector<uint8_t>& f, uint64_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        f[off + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void put_be16(std::vector<uint8_t>& f, uint64_t off, uint16_t v) {
    f[off] = static_cast<uint8_t>(v >> 8);
    f[off + 1] = static_cast<uint8_t>(v);
}
uint64_t get_be64(const std::vector<uint8_t>& f, uint64_t off) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = (v << 8) | f[off + i];
    return v;
}

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Where the pieces of the base image are.
struct BaseLayout {
    uint64_t l1 = 0, reftable = 0, refblock = 0, l2 = 0;
    uint64_t data = 0;        // host cluster of guest cluster 0
    uint64_t compressed = 0;  // L2 entry index of the compressed guest cluster
};

// What must happen with a malformed image.
struct Expect {
    enum When { kOpen, kRead, kWrite, kCheckOnly } when = kOpen;
    std::vector<std::string> words;  // the error names these (structure, value)
};

struct Case {
    std::string name;
    std::function<void(std::vector<uint8_t>&, const BaseLayout&)> mutate;
    Expect expect;
    // Read-write: guest writes that meet the damage (by default an
    // allocating write of one cluster into an unallocated area).
    std::vector<uint64_t> writes = {kDiskSize / 2 + 7};
};

class Qcow2MalformedTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(dir_.ok());
        block_layer_init();
        path_ = dir_.path("bad.qcow2");
        // A small image: data in guest clusters 0-1, a compressed cluster 4.
        QCOW2_ASSERT_OK(create_qcow2(path_, kDiskSize, {{"cluster_size", "4096"}}));
        {
            auto blk = open_qcow2(path_);
            ASSERT_TRUE(blk.ok()) << blk.error().to_string();
            std::vector<uint8_t> data(2 * kCluster, 0x11);
            QCOW2_ASSERT_OK((*blk)->pwrite(0, data.data(), data.size()));
            std::vector<uint8_t> compressible(kCluster, 0x22);
            QCOW2_ASSERT_OK(
                (*blk)->pwrite(4 * kCluster, compressible.data(), kCluster, kReqWriteCompressed));
        }
        base_ = testing::read_file(path_, 0, testing::file_size(path_));
        layout_.l1 = get_be64(base_, 40);
        layout_.reftable = get_be64(base_, 48);
        layout_.refblock = get_be64(base_, layout_.reftable) & ~uint64_t{0x1ff};
        layout_.l2 = get_be64(base_, layout_.l1) & 0x00fffffffffffe00ull;
        layout_.data = get_be64(base_, layout_.l2) & 0x00fffffffffffe00ull;
        layout_.compressed = 4;
        ASSERT_NE(layout_.l2, 0u);
        ASSERT_NE(get_be64(base_, layout_.l2 + 8 * 4) & (1ull << 62), 0u) << "cluster 4 compressed";
    }

    // Writes the mutated image, runs every open mode, checks the file.
    void run(const Case& c) {
        SCOPED_TRACE(c.name);
        std::vector<uint8_t> image = base_;
        c.mutate(image, layout_);
        for (bool read_only : {true, false}) {
            SCOPED_TRACE(read_only ? "read-only" : "read-write");
            testing::make_file(path_, 0);
            testing::write_file(path_, 0, image);
            std::string error;
            exercise(c, read_only, &error);
            // Writes (and check) meet the damage only in read-write mode.
            const bool must_fail = c.expect.when == Expect::kOpen ||
                                   c.expect.when == Expect::kRead ||
                                   (c.expect.when == Expect::kWrite && !read_only);
            if (must_fail) {
                ASSERT_FALSE(error.empty()) << "no error for " << c.name;
                for (const std::string& w : c.expect.words)
                    EXPECT_NE(lower(error).find(lower(w)), std::string::npos)
                        << "error \"" << error << "\" does not name \"" << w << "\"";
            }
            expect_unchanged(image, read_only);
        }
    }

    // Opens, reads everything, writes over the damaged area and elsewhere.
    // Stores the first error met (at the stage the case expects) in `error`.
    void exercise(const Case& c, bool read_only, std::string* error) {
        auto blk = open_qcow2(path_, read_only);
        if (!blk.ok()) {
            *error = blk.error().message;
            EXPECT_EQ(c.expect.when, Expect::kOpen) << "open failed: " << *error;
            return;
        }
        EXPECT_NE(c.expect.when, Expect::kOpen) << "open succeeded";
        std::vector<uint8_t> all(kDiskSize);
        Status st = (*blk)->pread(0, all.data(), all.size());
        if (!st.ok() && error->empty()) *error = st.error().message;
        if (!read_only && c.expect.when == Expect::kWrite) {
            // A write that allocates (a new cluster, an L2 table, refcounts).
            std::vector<uint8_t> data(100, 0x33);
            for (uint64_t off : c.writes) {
                st = (*blk)->pwrite(off, data.data(), data.size());
                if (!st.ok() && error->empty()) *error = st.error().message;
            }
            (void)(*blk)->flush();
        }
        if (c.expect.when == Expect::kCheckOnly) {
            auto r = testing::check_image(**blk);
            ASSERT_TRUE(r.ok());
            EXPECT_GT(r->corruptions, 0) << "check does not see the damage";
        }
    }

    // The file is as it was, except (read-write only) the corrupt bit.
    void expect_unchanged(const std::vector<uint8_t>& image, bool read_only) {
        std::vector<uint8_t> now = testing::read_file(path_, 0, testing::file_size(path_));
        std::vector<uint8_t> expected = image;
        if (!read_only && now.size() == image.size() && now.size() >= 80 && (now[79] & 0x02) &&
            !(image[79] & 0x02))
            expected[79] |= 0x02;  // QEMU's "Marking image as corrupt"
        if (now == expected) return;
        size_t first = 0;
        while (first < now.size() && first < expected.size() && now[first] == expected[first])
            ++first;
        ADD_FAILURE() << "file changed (" << expected.size() << " -> " << now.size()
                      << " bytes), first difference at byte " << first;
    }

    TempDir dir_;
    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    std::string path_;
    std::vector<uint8_t> base_;
    BaseLayout layout_;
};

TEST_F(Qcow2MalformedTest, TruncatedHeader) {
    for (size_t keep : {size_t{0}, size_t{3}, size_t{40}, size_t{100}}) {
        run({"truncated to " + std::to_string(keep),
             [keep](std::vector<uint8_t>& f, const BaseLayout&) { f.resize(keep); },
             {Expect::kOpen, {}}});
    }
}

TEST_F(Qcow2MalformedTest, TruncatedBeforeTheTables) {
    run({"truncated before the L2 table",
         [](std::vector<uint8_t>& f, const BaseLayout& l) { f.resize(l.l2); },
         {Expect::kRead, {"L2 table", "0x"}}});
}

TEST_F(Qcow2MalformedTest, BadMagic) {
    run({"bad magic",
         [](std::vector<uint8_t>& f, const BaseLayout&) { f[3] = 0x00; },
         {Expect::kOpen, {"magic", "0x51464900"}}});
}

TEST_F(Qcow2MalformedTest, BadVersionAndClusterBits) {
    run({"version 7",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be32(f, 4, 7); },
         {Expect::kOpen, {"version 7"}}});
    run({"cluster_bits 40",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be32(f, 20, 40); },
         {Expect::kOpen, {"cluster_bits 40"}}});
}

TEST_F(Qcow2MalformedTest, TablesOutsideTheFile) {
    run({"L1 table beyond the end of the file",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be64(f, 40, 0x40000000); },
         {Expect::kOpen, {"L1 table", "0x40000000"}}});
    run({"refcount table beyond the end of the file",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be64(f, 48, 0x40000000); },
         {Expect::kOpen, {"refcount table", "0x40000000"}}});
    run({"L1 table offset past 2^63",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be64(f, 40, 0xfffffffffffff000); },
         {Expect::kOpen, {"L1 table", "0xfffffffffffff000"}}});
    run({"L2 table beyond the end of the file",
         [](std::vector<uint8_t>& f, const BaseLayout& l) {
             put_be64(f, l.l1, 0x8000000040000000ull);
         },
         {Expect::kRead, {"L2 table", "0x40000000"}}});
    run({"refcount block beyond the end of the file",
         [](std::vector<uint8_t>& f, const BaseLayout& l) { put_be64(f, l.reftable, 0x40000000); },
         {Expect::kWrite, {"refcount block", "0x40000000"}}});
}

TEST_F(Qcow2MalformedTest, OverlappingMetadata) {
    run({"L1 table over the refcount table",
         [](std::vector<uint8_t>& f, const BaseLayout& l) { put_be64(f, 40, l.reftable); },
         {Expect::kOpen, {"L1 table", "refcount table"}}});
    run({"refcount table over the header",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be64(f, 48, 0); },
         {Expect::kOpen, {"refcount table", "header cluster"}}});
    run({"L2 table is the refcount block",
         [](std::vector<uint8_t>& f, const BaseLayout& l) {
             put_be64(f, l.l1, l.refblock | (1ull << 63));
         },
         {Expect::kWrite, {"overlaps with refcount block"}}});
    run({"data cluster is the L1 table",
         [](std::vector<uint8_t>& f, const BaseLayout& l) {
             put_be64(f, l.l2, l.l1 | (1ull << 63));
         },
         {Expect::kWrite, {"overlaps with active L1 table"}},
         {100}});
}

TEST_F(Qcow2MalformedTest, HugeTables) {
    run({"l1_size 2^31-1",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be32(f, 36, 0x7fffffff); },
         {Expect::kOpen, {"l1_size 2147483647"}}});
    run({"refcount_table_clusters 2^32-1",
         [](std::vector<uint8_t>& f, const BaseLayout&) { put_be32(f, 56, 0xffffffff); },
         {Expect::kOpen, {"refcount_table_clusters 4294967295"}}});
    run({"nb_snapshots 2^32-1",
         [](std::vector<uint8_t>& f, const BaseLayout&) {
             put_be32(f, 60, 0xffffffff);
             put_be64(f, 64, 0x10000);
         },
         {Expect::kOpen, {"nb_snapshots 4294967295"}}});
}

TEST_F(Qcow2MalformedTest, CompressedDescriptorOutsideTheFile) {
    run({"compressed cluster beyond the end of the file",
         [](std::vector<uint8_t>& f, const BaseLayout& l) {
             const uint64_t off = l.l2 + 8 * l.compressed;
             const uint64_t e = get_be64(f, off);
             // Keep the sector count bits (cluster_bits 12: offset in the
             // low 62 - (12 - 8) = 58 bits), move the offset.
             const uint64_t offset_mask = (1ull << 58) - 1;
             put_be64(f, off, (e & ~offset_mask) | 0x40000000);
         },
         {Expect::kRead, {"compressed", "0x40000000"}},
         {4 * kCluster + 10}});
    run({"compressed cluster offset at the 2^56 limit",
         [](std::vector<uint8_t>& f, const BaseLayout& l) {
             const uint64_t off = l.l2 + 8 * l.compressed;
             const uint64_t e = get_be64(f, off);
             const uint64_t offset_mask = (1ull << 58) - 1;
             put_be64(f, off, (e & ~offset_mask) | ((1ull << 56) - 16));
         },
         {Expect::kRead, {"compressed"}},
         {4 * kCluster + 10}});
}

TEST_F(Qcow2MalformedTest, ZeroRefcountForUsedClusters) {
    // The L2 table's refcount is 0: the next allocation would pick that
    // cluster; the overlap check refuses the write.
    run({"L2 table with refcount 0",
         [](std::vector<uint8_t>& f, const BaseLayout& l) {
             put_be16(f, l.refblock + 2 * (l.l2 / kCluster), 0);
         },
         {Expect::kWrite, {"overlaps with active L2 table"}}});
    // A data cluster with refcount 0 is invisible until something counts:
    // check reports it.
    run({"data cluster with refcount 0",
         [](std::vector<uint8_t>& f, const BaseLayout& l) {
             put_be16(f, l.refblock + 2 * (l.data / kCluster), 0);
         },
         {Expect::kCheckOnly, {}}});
}

}  // namespace
}  // namespace coblock
