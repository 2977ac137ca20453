// Tests of the qcow2 fixed header: probe, decode of every field (v2 and v3),
// every validation error with its message, encoder and round trips.
#include "formats/qcow2/header.h"

#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

TEST(Qcow2Probe, ReturnsClusterSize) {
    Bytes b = v3_cluster(16);
    auto r = probe_cluster_size(ByteSpan(b).first(kHeaderProbeBytes));
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(*r, 65536u);
    b.be32(kClusterBitsAt, 9);
    EXPECT_EQ(*probe_cluster_size(b), 512u);
}

TEST(Qcow2Probe, Errors) {
    Bytes b = v3_cluster();
    EXPECT_THAT(probe_cluster_size(ByteSpan(b).first(23)), IsCorrupt("header truncated: 23 bytes"));
    b.be32(kMagicAt, 0x514649fc);
    EXPECT_THAT(probe_cluster_size(b), IsCorrupt("bad magic 0x514649fc"));
    b.be32(kMagicAt, 0x514649fb).be32(kVersionAt, 4);
    EXPECT_THAT(probe_cluster_size(b), IsUnsupported("unsupported version 4"));
    b.be32(kVersionAt, 1);
    EXPECT_THAT(probe_cluster_size(b), IsUnsupported("unsupported version 1"));
    b.be32(kVersionAt, 3).be32(kClusterBitsAt, 8);
    EXPECT_THAT(probe_cluster_size(b), IsCorrupt("cluster_bits 8 out of range 9..21"));
    b.be32(kClusterBitsAt, 22);
    EXPECT_THAT(probe_cluster_size(b), IsCorrupt("cluster_bits 22 out of range 9..21"));
}

TEST(Qcow2Header, DecodesEveryV3Field) {
    Bytes b(65536);
    b.be32(kMagicAt, 0x514649fb)
        .be32(kVersionAt, 3)
        .be64(kBackingOffsetAt, 0x200)
        .be32(kBackingSizeAt, 7)
        .be32(kClusterBitsAt, 16)
        .be64(kSizeAt, 0x123456789a00)
        .be32(kCryptAt, 0)
        .be32(kL1SizeAt, 0x11223)
        .be64(kL1OffsetAt, 0x40000)
        .be64(kRefcountTableOffsetAt, 0x50000)
        .be32(kRefcountTableClustersAt, 3)
        .be32(kNbSnapshotsAt, 5)
        .be64(kSnapshotsOffsetAt, 0x60000)
        .be64(kIncompatAt, 0x1f)
        .be64(kCompatAt, 0x8000000000000001)
        .be64(kAutoclearAt, 0x4000000000000003)
        .be32(kRefcountOrderAt, 6)
        .be32(kHeaderLengthAt, 128)
        .u8(kCompressionTypeAt, 1)
        .be64(112, 0x0102030405060708)
        .be64(120, 0x1112131415161718);
    auto r = decode_header(b);
    ASSERT_THAT(r, IsOk());
    const Header& h = *r;
    EXPECT_EQ(h.version, 3u);
    EXPECT_EQ(h.backing_file_offset, 0x200u);
    EXPECT_EQ(h.backing_file_size, 7u);
    EXPECT_EQ(h.cluster_bits, 16u);
    EXPECT_EQ(h.size, 0x123456789a00u);
    EXPECT_EQ(h.crypt_method, 0u);
    EXPECT_EQ(h.l1_size, 0x11223u);
    EXPECT_EQ(h.l1_table_offset, 0x40000u);
    EXPECT_EQ(h.refcount_table_offset, 0x50000u);
    EXPECT_EQ(h.refcount_table_clusters, 3u);
    EXPECT_EQ(h.nb_snapshots, 5u);
    EXPECT_EQ(h.snapshots_offset, 0x60000u);
    EXPECT_EQ(h.incompatible_features, 0x1fu);
    EXPECT_EQ(h.compatible_features, 0x8000000000000001u);
    EXPECT_EQ(h.autoclear_features, 0x4000000000000003u);
    EXPECT_EQ(h.refcount_order, 6u);
    EXPECT_EQ(h.header_length, 128u);
    EXPECT_EQ(h.compression_type, 1u);
    ASSERT_EQ(h.unknown_fields.size(), 16u);
    EXPECT_EQ(h.unknown_fields[0], std::byte{0x01});
    EXPECT_EQ(h.unknown_fields[15], std::byte{0x18});

    // Round trip through the encoder gives the same bytes and the same struct.
    auto encoded = encode_header(h);
    ASSERT_THAT(encoded, IsOk());
    ASSERT_EQ(encoded->size(), 128u);
    EXPECT_TRUE(std::equal(encoded->begin(), encoded->end(), b.data().begin()));
    EXPECT_EQ(*decode_header(*encoded), h);
}

TEST(Qcow2Header, DecodesV2WithImpliedValues) {
    Bytes b = v2_cluster();
    // Bytes beyond 72 are not fields in v2 (they belong to extensions/name).
    b.be64(kIncompatAt, 0xffffffffffffffff).be32(kRefcountOrderAt, 9);
    auto r = decode_header(b);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->version, 2u);
    EXPECT_EQ(r->incompatible_features, 0u);
    EXPECT_EQ(r->compatible_features, 0u);
    EXPECT_EQ(r->autoclear_features, 0u);
    EXPECT_EQ(r->refcount_order, 4u);
    EXPECT_EQ(r->header_length, 72u);
    EXPECT_EQ(r->compression_type, 0u);
    EXPECT_THAT(validate_header(*r), IsOk());
    auto encoded = encode_header(*r);
    ASSERT_THAT(encoded, IsOk());
    EXPECT_EQ(encoded->size(), 72u);
    EXPECT_EQ(*decode_header(*encoded), *r);
    // v2 needs only 72 bytes.
    EXPECT_THAT(decode_header(ByteSpan(b).first(72)), IsOk());
    EXPECT_THAT(decode_header(ByteSpan(b).first(71)), IsCorrupt("header truncated: 71 bytes"));
}

TEST(Qcow2Header, HeaderLengthRules) {
    Bytes b = v3_cluster(12);
    b.be32(kHeaderLengthAt, 100);
    EXPECT_THAT(decode_header(b), IsCorrupt("header_length 100 below minimum 104"));
    b.be32(kHeaderLengthAt, 4097);
    EXPECT_THAT(decode_header(b), IsCorrupt("header_length 4097 exceeds cluster_size 4096"));
    b.be32(kHeaderLengthAt, 4096);
    EXPECT_THAT(decode_header(b), IsOk());
    b.be32(kHeaderLengthAt, 120);
    EXPECT_THAT(decode_header(ByteSpan(b).first(119)),
                IsCorrupt("header truncated: 119 bytes, need header_length 120"));
    EXPECT_THAT(decode_header(ByteSpan(b).first(90)), IsCorrupt("header truncated: 90 bytes"));
    // Not a multiple of 8: accepted like QEMU does.
    b.be32(kHeaderLengthAt, 108);
    EXPECT_THAT(decode_header(b), IsOk());
    // header_length 104: compression_type is absent, byte 104 is not read.
    b.be32(kHeaderLengthAt, 104).u8(kCompressionTypeAt, 1);
    auto r = decode_header(b);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->compression_type, 0u);
    EXPECT_TRUE(r->unknown_fields.empty());
}

TEST(Qcow2Header, BackingFileOffsetRules) {
    Bytes b = v3_cluster(16);
    b.be64(kBackingOffsetAt, 0x10001);
    EXPECT_THAT(decode_header(b), IsCorrupt("backing_file_offset 0x10001 outside"));
    b.be64(kBackingOffsetAt, 100);
    EXPECT_THAT(decode_header(b), IsCorrupt("backing_file_offset 0x64 outside"));
    b.be64(kBackingOffsetAt, 0x10000).be32(kBackingSizeAt, 0);
    EXPECT_THAT(parse_header(b), IsOk());
    b.be64(kBackingOffsetAt, 0xfff0).be32(kBackingSizeAt, 17);
    EXPECT_THAT(parse_header(b), IsCorrupt("backing file name at 0xfff0 with length 17"));
    b.be64(kBackingOffsetAt, 0x200).be32(kBackingSizeAt, 1024);
    EXPECT_THAT(parse_header(b), IsCorrupt("backing_file_size 1024 exceeds limit 1023"));
    b.be32(kBackingSizeAt, 1023);
    EXPECT_THAT(parse_header(b), IsOk());
    // Without a backing file the size is undefined and not checked.
    b.be64(kBackingOffsetAt, 0).be32(kBackingSizeAt, 0xffffffff);
    EXPECT_THAT(parse_header(b), IsOk());
}

TEST(Qcow2Header, CompressionType) {
    Bytes b = v3_cluster();
    b.be64(kIncompatAt, kIncompatCompression);
    EXPECT_THAT(parse_header(b), IsCorrupt("incompatible bit 3 (compression type) is set but "
                                           "compression_type is 0"));
    b.u8(kCompressionTypeAt, 1);
    auto r = parse_header(b);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->compression_type, kCompressionZstd);
    b.be64(kIncompatAt, 0);
    EXPECT_THAT(parse_header(b), IsCorrupt("compression_type 1 requires incompatible bit 3"));
    b.u8(kCompressionTypeAt, 2).be64(kIncompatAt, kIncompatCompression);
    EXPECT_THAT(parse_header(b), IsUnsupported("compression_type 2 is not supported"));
}

TEST(Qcow2Header, ExtendedL2NeedsLargeClusters) {
    Bytes b = v3_cluster(13);
    b.be64(kIncompatAt, kIncompatExtendedL2);
    EXPECT_THAT(parse_header(b), IsCorrupt("extended l2 entries need cluster_bits >= 14, got 13"));
    Bytes ok = v3_cluster(14);
    ok.be64(kIncompatAt, kIncompatExtendedL2).be32(kL1SizeAt, 64);
    EXPECT_THAT(parse_header(ok), IsOk());
}

TEST(Qcow2Header, RefcountOrder) {
    Bytes b = v3_cluster();
    for (uint32_t order = 0; order <= 6; ++order) {
        b.be32(kRefcountOrderAt, order);
        EXPECT_THAT(parse_header(b), IsOk()) << order;
    }
    b.be32(kRefcountOrderAt, 7);
    EXPECT_THAT(parse_header(b), IsCorrupt("refcount_order 7 exceeds limit 6"));
}

TEST(Qcow2Header, CryptMethodRefused) {
    Bytes b = v3_cluster();
    b.be32(kCryptAt, 1);
    EXPECT_THAT(parse_header(b), IsUnsupported("crypt_method 1 (aes) is not supported"));
    b.be32(kCryptAt, 2);
    EXPECT_THAT(parse_header(b), IsUnsupported("crypt_method 2 (luks) is not supported"));
    b.be32(kCryptAt, 3);
    EXPECT_THAT(parse_header(b), IsUnsupported("crypt_method 3 is not a known encryption method"));
}

TEST(Qcow2Header, RawDataFileNeedsDataFile) {
    Bytes b = v3_cluster();
    b.be64(kAutoclearAt, kAutoclearDataFileRaw);
    EXPECT_THAT(parse_header(b), IsCorrupt("autoclear bit 1 (raw external data) requires"));
    b.be64(kIncompatAt, kIncompatDataFile);
    EXPECT_THAT(parse_header(b), IsOk());
}

TEST(Qcow2Header, RefcountTableChecks) {
    Bytes b = v3_cluster();
    b.be32(kRefcountTableClustersAt, 0);
    EXPECT_THAT(parse_header(b), IsCorrupt("does not contain a refcount table"));
    EXPECT_THAT(parse_header(b, {.check_mode = true}), IsOk());
    b.be32(kRefcountTableClustersAt, 129);
    EXPECT_THAT(parse_header(b),
                IsCorrupt("refcount_table_clusters 129 (8454144 bytes) exceeds limit 8388608"));
    b.be32(kRefcountTableClustersAt, 128);
    EXPECT_THAT(parse_header(b), IsOk());
    b.be64(kRefcountTableOffsetAt, 0x10200);
    EXPECT_THAT(parse_header(b), IsCorrupt("refcount table offset 0x10200 is not cluster aligned"));
    b.be64(kRefcountTableOffsetAt, 0x7fffffffffff0000);
    EXPECT_THAT(parse_header(b), IsCorrupt("refcount table at 0x7fffffffffff0000 with length"));
    b.be64(kRefcountTableOffsetAt, 0xffffffffffff0000);
    EXPECT_THAT(parse_header(b), IsCorrupt("exceeds the maximum image offset"));
}

TEST(Qcow2Header, SnapshotTableChecks) {
    Bytes b = v3_cluster();
    b.be64(kSnapshotsOffsetAt, 0x100);
    EXPECT_THAT(parse_header(b), IsCorrupt("snapshot table offset 0x100 is not cluster aligned"));
    // Skipped in check mode, as QEMU does.
    EXPECT_THAT(parse_header(b, {.check_mode = true}), IsOk());
    b.be64(kSnapshotsOffsetAt, 0x40000).be32(kNbSnapshotsAt, 65537);
    EXPECT_THAT(parse_header(b), IsCorrupt("nb_snapshots 65537 exceeds limit 65536"));
    b.be32(kNbSnapshotsAt, 65536);
    EXPECT_THAT(parse_header(b), IsOk());
    b.be64(kSnapshotsOffsetAt, 0x7fffffffffff0000);
    EXPECT_THAT(parse_header(b), IsCorrupt("exceeds the maximum image offset"));
}

TEST(Qcow2Header, L1TableChecks) {
    Bytes b = v3_cluster();
    b.be32(kL1SizeAt, 0xffffffff);
    EXPECT_THAT(parse_header(b), IsCorrupt("l1_size 4294967295 exceeds limit 4194304"));
    b.be32(kL1SizeAt, 4194304);
    EXPECT_THAT(parse_header(b), IsOk());
    b.be32(kL1SizeAt, 1);
    EXPECT_THAT(parse_header(b),
                IsCorrupt("l1_size 1 too small for virtual size 1073741824 (needs 2)"));
    b.be32(kL1SizeAt, 2).be64(kL1OffsetAt, 0x30008);
    EXPECT_THAT(parse_header(b), IsCorrupt("l1 table offset 0x30008 is not cluster aligned"));
    // Alignment is checked even for an empty L1 table.
    b.be32(kL1SizeAt, 0).be64(kSizeAt, 0);
    EXPECT_THAT(parse_header(b), IsCorrupt("l1 table offset 0x30008 is not cluster aligned"));
    b.be64(kL1OffsetAt, 0);
    EXPECT_THAT(parse_header(b), IsOk());
    // A size beyond what the largest L1 can map is refused through l1_size.
    b.be64(kSizeAt, 0xffffffffffffffff).be32(kL1SizeAt, 4194304).be64(kL1OffsetAt, 0x30000);
    EXPECT_THAT(parse_header(b), IsCorrupt("too small for virtual size 18446744073709551615"));
}

TEST(Qcow2Header, UnknownIncompatibleBits) {
    Bytes b = v3_cluster();
    b.be64(kIncompatAt, 0x20);
    EXPECT_THAT(parse_header(b), IsUnsupported("unsupported incompatible features 0x20"));
    // Unknown compatible and autoclear bits are fine.
    b.be64(kIncompatAt, 0).be64(kCompatAt, ~0ull).be64(kAutoclearAt, ~0ull & ~2ull);
    EXPECT_THAT(parse_header(b), IsOk());
}

TEST(Qcow2Header, Encoder) {
    Header h;
    h.cluster_bits = 16;
    h.header_length = 104;
    auto r = encode_header(h);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->size(), 104u);
    h.compression_type = 1;
    EXPECT_THAT(encode_header(h), IsInvalid("compression_type needs header_length > 104"));
    h.header_length = 108;
    r = encode_header(h);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->size(), 108u);
    EXPECT_EQ((*r)[104], std::byte{1});
    EXPECT_EQ(decode_header(*r)->compression_type, 1);
    h.header_length = 120;
    EXPECT_THAT(encode_header(h), IsInvalid("0 unknown header field bytes do not match"));
    h.unknown_fields.resize(8);
    EXPECT_THAT(encode_header(h), IsOk());
    std::vector<std::byte> small(119);
    EXPECT_THAT(encode_header(h, small), IsInvalid("header buffer of 119 bytes, need 120"));
    h.header_length = 100;
    EXPECT_THAT(encode_header(h), IsInvalid("header_length 100 below minimum"));

    Header v2;
    v2.version = 2;
    v2.header_length = 72;
    EXPECT_THAT(encode_header(v2), IsOk());
    v2.compatible_features = 1;
    EXPECT_THAT(encode_header(v2), IsInvalid("version 2 header with version 3 fields"));
    v2.version = 4;
    EXPECT_THAT(encode_header(v2), IsInvalid("cannot encode header version 4"));
}

TEST(Qcow2Header, PlanAndDerivedValues) {
    Bytes b = v3_cluster();
    b.be32(kNbSnapshotsAt, 2).be64(kSnapshotsOffsetAt, 0x50000).be64(kSizeAt, (1ull << 30) + 1000);
    b.be32(kL1SizeAt, 3);
    auto h = parse_header(b);
    ASSERT_THAT(h, IsOk());
    const HeaderPlan plan = header_plan(*h);
    EXPECT_EQ(plan.l1_table, (Extent{0x30000, 3 * 8}));
    EXPECT_EQ(plan.refcount_table, (Extent{0x10000, 0x10000}));
    EXPECT_EQ(plan.snapshots_offset, 0x50000u);
    EXPECT_EQ(plan.nb_snapshots, 2u);
    EXPECT_EQ(virtual_disk_size(*h), (1ull << 30) + 512);
    EXPECT_EQ(header_geometry(*h), (Geometry{16, false, 4}));
}

}  // namespace
}  // namespace coblock::qcow2
