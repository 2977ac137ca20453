// Tests of qcow2 geometry: derived sizes, maximum sizes from the spec,
// table extent validation and 64-bit table decoding.
#include "formats/qcow2/geometry.h"

#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

TEST(Qcow2Geometry, MakeGeometryChecks) {
    EXPECT_THAT(make_geometry(16, false, 4), IsOk());
    EXPECT_THAT(make_geometry(8, false, 4), IsCorrupt("cluster_bits 8 out of range 9..21"));
    EXPECT_THAT(make_geometry(22, false, 4), IsCorrupt("cluster_bits 22 out of range 9..21"));
    EXPECT_THAT(make_geometry(13, true, 4),
                IsCorrupt("extended l2 entries need cluster_bits >= 14, got 13"));
    EXPECT_THAT(make_geometry(16, false, 7), IsCorrupt("refcount_order 7 exceeds limit 6"));
}

TEST(Qcow2Geometry, DerivedSizes) {
    const Geometry g{16, false, 4};
    EXPECT_EQ(g.cluster_size(), 65536u);
    EXPECT_EQ(g.l2_entry_size(), 8u);
    EXPECT_EQ(g.l2_bits(), 13u);
    EXPECT_EQ(g.l2_entries(), 8192u);
    EXPECT_EQ(g.l2_coverage(), 512ull << 20);
    EXPECT_EQ(g.subclusters(), 1u);
    EXPECT_EQ(g.subcluster_size(), 65536u);
    EXPECT_EQ(g.refcount_bits(), 16u);
    EXPECT_EQ(g.refcount_block_entries(), 32768u);
    EXPECT_EQ(g.refcount_max(), 65535u);
    const Geometry x{16, true, 6};
    EXPECT_EQ(x.l2_entry_size(), 16u);
    EXPECT_EQ(x.l2_entries(), 4096u);
    EXPECT_EQ(x.subclusters(), 32u);
    EXPECT_EQ(x.subcluster_size(), 2048u);
    EXPECT_EQ(x.refcount_block_entries(), 8192u);
    EXPECT_EQ(x.refcount_max(), ~0ull);
    EXPECT_EQ((Geometry{9, false, 0}).refcount_block_entries(), 4096u);
    EXPECT_EQ((Geometry{9, false, 0}).refcount_max(), 1u);

    // Refcount indices of a host offset.
    EXPECT_EQ(g.refcount_table_index(0x80000000ull), 1u);  // cluster 32768
    EXPECT_EQ(g.refcount_block_index(0x80010000ull), 1u);
}

TEST(Qcow2Geometry, L1SizesAndMaximums) {
    const Geometry g{16, false, 4};
    EXPECT_EQ(l1_entries_for_size(g, 0), 0u);
    EXPECT_EQ(l1_entries_for_size(g, 1), 1u);
    EXPECT_EQ(l1_entries_for_size(g, 1ull << 30), 2u);
    EXPECT_EQ(l1_entries_for_size(g, (1ull << 30) + 512), 3u);
    EXPECT_EQ(l1_entries_for_size(g, ~0ull), 1ull << 35);
    // The spec's figures: 512-byte clusters reach 128 GiB, 64 KiB clusters 2 PiB.
    EXPECT_EQ(max_virtual_size(Geometry{9, false, 4}), 128ull << 30);
    EXPECT_EQ(max_virtual_size(g), 2ull << 50);
    EXPECT_EQ(max_virtual_size(Geometry{21, false, 4}), 1ull << 61);
    // Host: 64 KiB/16 bit -> 2 PiB; 512 B/64 bit -> 32 GiB; 2 MiB/16 bit -> 2 EiB.
    EXPECT_EQ(max_host_size(g), 2ull << 50);
    EXPECT_EQ(max_host_size(Geometry{9, false, 6}), 32ull << 30);
    EXPECT_EQ(max_host_size(Geometry{21, false, 4}), 1ull << 61);
    EXPECT_EQ(max_host_size(Geometry{21, false, 0}), kMaxImageOffset + 1);  // saturated
    EXPECT_EQ(refcount_blocks_for_clusters(g, 0), 0u);
    EXPECT_EQ(refcount_blocks_for_clusters(g, 32768), 1u);
    EXPECT_EQ(refcount_blocks_for_clusters(g, 32769), 2u);
}

TEST(Qcow2Geometry, TableExtents) {
    const Geometry g{16, false, 4};
    EXPECT_THAT(validate_table_extent("l1 table", 0x30000, 16, g), IsOk());
    EXPECT_THAT(validate_table_extent("l1 table", 0x30200, 16, g),
                IsCorrupt("l1 table offset 0x30200 is not cluster aligned (cluster_size 65536)"));
    EXPECT_THAT(validate_table_extent("l1 table", 0xffffffffffff0000, 0x10000, g),
                IsCorrupt("l1 table at 0xffffffffffff0000 with length 65536 exceeds the maximum "
                          "image offset"));
    // Against the file size: ending mid-cluster past EOF is tolerated.
    EXPECT_THAT(validate_table_extent("l1 table", 0x30000, 16, g, 0x30010), IsOk());
    EXPECT_THAT(validate_table_extent("l1 table", 0x30000, 0x10000, g, 0x30010), IsOk());
    EXPECT_THAT(validate_table_extent("l1 table", 0x30000, 0x10001, g, 0x30010),
                IsCorrupt("l1 table at 0x30000 with length 65537 exceeds file size 196624"));
    EXPECT_THAT(validate_table_extent("refcount table", 0x40000, 8, g, 0x30010),
                IsCorrupt("refcount table at 0x40000"));
    EXPECT_THAT(validate_table_extent("l1 table", 0x30000, 8, g, 0x30000),
                IsCorrupt("exceeds file size 196608"));
    EXPECT_THAT(validate_table_extent("empty", 0x90000, 0, g, 0x30000), IsOk());
    EXPECT_THAT(validate_table_extent("l1 table", 0x30000, 8, g, ~0ull), IsOk());
    auto err = validate_table_extent("l1 table", 0x30200, 16, g);
    EXPECT_EQ(err.error().offset, 0x30200u);
}

TEST(Qcow2Geometry, Be64Tables) {
    Bytes b(24);
    b.be64(0, 0x8000000000050000).be64(8, 0).be64(16, 0x123);
    auto r = decode_be64_table(b, 3, "l1 table");
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(*r, (std::vector<uint64_t>{0x8000000000050000, 0, 0x123}));
    EXPECT_EQ(encode_be64_table(*r), b.data());
    EXPECT_THAT(decode_be64_table(b, 4, "l1 table"),
                IsCorrupt("l1 table of 4 entries truncated to 24 bytes"));
    EXPECT_THAT(decode_be64_table(b, ~0ull, "refcount table"), IsCorrupt("refcount table of"));
    EXPECT_EQ(hex_string(0xabc), "0xabc");
}

}  // namespace
}  // namespace coblock::qcow2
