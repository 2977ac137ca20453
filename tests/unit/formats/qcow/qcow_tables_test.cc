// Tests for qcow version 1 geometry, index math, L1/L2 entries (normal and
// compressed) and table serialisation. Covers specs/qcow-v1.md §2, §4, §5.
#include "formats/qcow/qcow_tables.h"
#include "formats/qcow/qcow_geometry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace coblock::qcow {
namespace {

using ::testing::HasSubstr;

Geometry geometry(uint64_t size, uint32_t cluster_bits, uint32_t l2_bits) {
    auto g = make_geometry(size, cluster_bits, l2_bits);
    EXPECT_TRUE(g.ok()) << g.error().message;
    return g.ok() ? *g : Geometry{};
}

// QEMU's default layout without a backing file, the spec's worked example.
Geometry default_geometry() {
    return geometry(100 * 1024 * 1024, 12, 9);
}

TEST(QcowGeometry, DerivedValues) {
    Geometry g = default_geometry();
    EXPECT_EQ(g.cluster_size(), 4096u);
    EXPECT_EQ(g.l2_entries(), 512u);
    EXPECT_EQ(g.l2_table_bytes(), 4096u);
    EXPECT_EQ(g.l1_shift(), 21u);
    EXPECT_EQ(g.l1_size, 50u);
    EXPECT_EQ(g.l1_table_bytes(), 400u);

    // The L2 table size is independent of the cluster size in v1.
    Geometry backing = geometry(1 << 30, 9, 12);
    EXPECT_EQ(backing.cluster_size(), 512u);
    EXPECT_EQ(backing.l2_table_bytes(), 32768u);
    EXPECT_EQ(backing.l1_size, 512u);
}

TEST(QcowGeometry, L1SizeRoundsUp) {
    EXPECT_EQ(*l1_size_for(0, 12, 9), 0u);
    EXPECT_EQ(*l1_size_for(1, 12, 9), 1u);
    EXPECT_EQ(*l1_size_for(2 * 1024 * 1024, 12, 9), 1u);
    EXPECT_EQ(*l1_size_for(2 * 1024 * 1024 + 1, 12, 9), 2u);
    EXPECT_EQ(*l1_size_for(uint64_t{1} << 40, 16, 13), 1u << 11);
}

TEST(QcowGeometry, L1SizeErrorsNameTheValue) {
    auto bad_bits = l1_size_for(1, 8, 9);
    ASSERT_FALSE(bad_bits.ok());
    EXPECT_EQ(bad_bits.error().message, "qcow: cluster_bits 8 is below minimum 9");
    EXPECT_EQ(l1_size_for(1, 12, 14).error().message, "qcow: l2_bits 14 exceeds limit 13");

    // Largest size whose padding does not overflow, at the largest shift.
    auto at_edge = l1_size_for(~uint64_t{0} - (uint64_t{1} << 29), 16, 13);
    ASSERT_FALSE(at_edge.ok());
    EXPECT_THAT(at_edge.error().message, HasSubstr("l1_size 34359738367 exceeds limit 268435455"));
    auto overflow = l1_size_for(~uint64_t{0} - (uint64_t{1} << 29) + 1, 16, 13);
    ASSERT_FALSE(overflow.ok());
    EXPECT_THAT(overflow.error().message, HasSubstr("is too large"));
    EXPECT_THAT(overflow.error().message, HasSubstr("l1_shift 29"));

    // The largest image QEMU's limits allow with the default geometry.
    EXPECT_EQ(*l1_size_for(kMaxL1Size << 21, 12, 9), kMaxL1Size);
    EXPECT_THAT(l1_size_for((kMaxL1Size << 21) + 1, 12, 9).error().message,
                HasSubstr("l1_size 268435456 exceeds limit 268435455"));
}

TEST(QcowGeometry, IndexMathWorkedExample) {
    Geometry g = default_geometry();
    const uint64_t guest = 0x01234567;
    EXPECT_EQ(g.l1_index(guest), 9u);
    EXPECT_EQ(g.l2_index(guest), 52u);
    EXPECT_EQ(g.offset_in_cluster(guest), 0x567u);
    EXPECT_EQ(g.cluster_start(guest), 0x01234000u);
    EXPECT_EQ(g.bytes_to_cluster_end(guest), 0x1000u - 0x567u);
    EXPECT_EQ(g.bytes_to_cluster_end(0x2000), 0x1000u);
}

TEST(QcowGeometry, IndexMathAtBoundaries) {
    Geometry g = geometry(1 << 30, 9, 12);  // 512-byte clusters, 4096-entry L2
    EXPECT_EQ(g.l1_index(0), 0u);
    EXPECT_EQ(g.l2_index(0), 0u);
    EXPECT_EQ(g.l1_index((1 << 21) - 1), 0u);
    EXPECT_EQ(g.l2_index((1 << 21) - 1), 4095u);
    EXPECT_EQ(g.offset_in_cluster((1 << 21) - 1), 511u);
    EXPECT_EQ(g.l1_index(1 << 21), 1u);
    EXPECT_EQ(g.l2_index(1 << 21), 0u);
    EXPECT_EQ(g.l1_index((1 << 30) - 1), g.l1_size - 1);
    // Defined for any offset, even far beyond the image.
    EXPECT_EQ(g.l1_index(~uint64_t{0}), ~uint64_t{0} >> 21);
}

TEST(QcowL1Entry, DecodeAndEncode) {
    Geometry g = default_geometry();
    auto zero = decode_l1_entry(g, 0);
    ASSERT_TRUE(zero.ok());
    EXPECT_FALSE(zero->allocated());
    auto entry = decode_l1_entry(g, 0x5000);
    ASSERT_TRUE(entry.ok());
    EXPECT_TRUE(entry->allocated());
    EXPECT_EQ(entry->l2_table_offset, 0x5000u);
    EXPECT_EQ(*encode_l1_entry(g, *entry), 0x5000u);
    // No flag bits and no alignment requirement: QEMU takes any offset.
    EXPECT_EQ(decode_l1_entry(g, 0x1234567)->l2_table_offset, 0x1234567u);

    // The whole L2 table (4096 bytes) must end by kMaxFileOffset.
    EXPECT_TRUE(decode_l1_entry(g, kMaxFileOffset - 4096).ok());
    auto beyond = decode_l1_entry(g, kMaxFileOffset - 4095);
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.error().kind, ErrorKind::kCorrupt);
    EXPECT_EQ(beyond.error().message,
              "qcow: l1 entry 0x7ffffffffffff000: l2 table of 4096 bytes ends beyond limit "
              "0x7fffffffffffffff");
    EXPECT_THAT(decode_l1_entry(g, ~uint64_t{0}).error().message,
                HasSubstr("l1 entry 0xffffffffffffffff"));
    EXPECT_FALSE(encode_l1_entry(g, L1Entry{~uint64_t{0}}).ok());
}

TEST(QcowL2Entry, Unallocated) {
    Geometry g = default_geometry();
    auto entry = decode_l2_entry(g, 0);
    ASSERT_TRUE(entry.ok());
    EXPECT_EQ(*entry, L2Entry{});
    EXPECT_EQ(*encode_l2_entry(g, L2Entry{}), 0u);
    EXPECT_FALSE(encode_l2_entry(g, L2Entry{ClusterType::kUnallocated, 512, 0}).ok());
    EXPECT_FALSE(encode_l2_entry(g, L2Entry{ClusterType::kUnallocated, 0, 5}).ok());
}

TEST(QcowL2Entry, NormalCluster) {
    Geometry g = default_geometry();
    auto entry = decode_l2_entry(g, 0x23000);
    ASSERT_TRUE(entry.ok());
    EXPECT_EQ(*entry, (L2Entry{ClusterType::kNormal, 0x23000, 0}));
    EXPECT_EQ(*encode_l2_entry(g, *entry), 0x23000u);
    auto host = host_offset(g, *entry, 0x01234567);
    ASSERT_TRUE(host.ok());
    EXPECT_EQ(*host, 0x23567u);

    // 512-aligned is enough (QEMU allocates cluster-aligned, but reads any sector).
    EXPECT_EQ(decode_l2_entry(g, 0x23200)->type, ClusterType::kNormal);
}

TEST(QcowL2Entry, NormalClusterErrors) {
    Geometry g = default_geometry();
    auto unaligned = decode_l2_entry(g, 0x23001);
    ASSERT_FALSE(unaligned.ok());
    EXPECT_EQ(unaligned.error().kind, ErrorKind::kCorrupt);
    EXPECT_EQ(unaligned.error().message,
              "qcow: l2 entry 0x23001: cluster offset is not a multiple of 512");

    auto beyond = decode_l2_entry(g, 0x7ffffffffffffe00);
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.error().message,
              "qcow: l2 entry 0x7ffffffffffffe00: cluster ends beyond limit 0x7fffffffffffffff");
    EXPECT_TRUE(decode_l2_entry(g, kMaxFileOffset + 1 - 4096 - 512).ok());

    EXPECT_FALSE(encode_l2_entry(g, L2Entry{ClusterType::kNormal, 0, 0}).ok());
    EXPECT_FALSE(encode_l2_entry(g, L2Entry{ClusterType::kNormal, 0x23001, 0}).ok());
    EXPECT_FALSE(encode_l2_entry(g, L2Entry{ClusterType::kNormal, 0x23000, 7}).ok());
    auto flag = encode_l2_entry(g, L2Entry{ClusterType::kNormal, kCompressedFlag, 0});
    ASSERT_FALSE(flag.ok());
    EXPECT_EQ(flag.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_THAT(flag.error().message, HasSubstr("0x8000000000000000"));

    EXPECT_FALSE(host_offset(g, L2Entry{}, 0).ok());
    EXPECT_THAT(host_offset(g, L2Entry{}, 0x1000).error().message,
                HasSubstr("guest offset 0x1000"));
}

TEST(QcowL2Entry, EveryDecodableEntryEncodesBackToItsRawValue) {
    // The fuzz property, on pseudo-random values with random bit densities.
    std::mt19937_64 rng(12345);
    for (uint32_t cluster_bits = kMinClusterBits; cluster_bits <= kMaxClusterBits; ++cluster_bits) {
        Geometry g = geometry(1 << 20, cluster_bits, 9);
        for (int i = 0; i < 20000; ++i) {
            uint64_t raw = rng();
            if (i % 3 == 1) raw &= rng() & rng();
            if (i % 3 == 2) raw &= ~uint64_t{511};
            auto entry = decode_l2_entry(g, raw);
            if (!entry.ok()) {
                EXPECT_EQ(entry.error().kind, ErrorKind::kCorrupt);
                continue;
            }
            auto encoded = encode_l2_entry(g, *entry);
            ASSERT_TRUE(encoded.ok()) << std::hex << raw << ": " << encoded.error().message;
            ASSERT_EQ(*encoded, raw);
        }
    }
}

TEST(QcowL2Entry, CompressedWorkedExample) {
    // This exact value came from `qemu-img convert -c -O qcow` (spec §5).
    Geometry g = default_geometry();
    const uint64_t raw = 0xA140000000003200;
    auto entry = decode_l2_entry(g, raw);
    ASSERT_TRUE(entry.ok()) << entry.error().message;
    EXPECT_EQ(entry->type, ClusterType::kCompressed);
    EXPECT_EQ(entry->offset, 0x3200u);
    EXPECT_EQ(entry->compressed_size, 1064u);
    EXPECT_EQ(*encode_l2_entry(g, *entry), raw);
    auto extent = compressed_extent(*entry);
    ASSERT_TRUE(extent.ok());
    EXPECT_EQ(*extent, (Extent{0x3200, 1064}));
    EXPECT_FALSE(host_offset(g, *entry, 0).ok());
    EXPECT_FALSE(compressed_extent(L2Entry{ClusterType::kNormal, 512, 0}).ok());
}

TEST(QcowL2Entry, CompressedFieldWidthsPerClusterBits) {
    // The table of §4: offset bits 0..(62-cb), size bits (63-cb)..62.
    struct Case {
        uint32_t cluster_bits;
        uint64_t offset_mask;
        uint64_t max_size;
    };
    for (const Case& c :
         {Case{9, (uint64_t{1} << 54) - 1, 511}, Case{12, (uint64_t{1} << 51) - 1, 4095},
          Case{16, (uint64_t{1} << 47) - 1, 65535}}) {
        SCOPED_TRACE(c.cluster_bits);
        Geometry g = geometry(1 << 20, c.cluster_bits, 9);
        EXPECT_EQ(compressed_offset_mask(g), c.offset_mask);
        EXPECT_EQ(compressed_size_shift(g), 63 - c.cluster_bits);

        // Every bit set: the largest offset and size the fields can hold.
        auto all = decode_l2_entry(g, ~uint64_t{0});
        ASSERT_TRUE(all.ok());
        EXPECT_EQ(*all, (L2Entry{ClusterType::kCompressed, c.offset_mask, c.max_size}));
        EXPECT_EQ(*encode_l2_entry(g, *all), ~uint64_t{0});

        // Hand-built: size 1 at offset 1 (byte offsets are legal).
        const uint64_t raw = kCompressedFlag | (uint64_t{1} << (63 - c.cluster_bits)) | 1;
        EXPECT_EQ(*decode_l2_entry(g, raw), (L2Entry{ClusterType::kCompressed, 1, 1}));

        // Encode refuses what does not fit.
        auto big_offset =
            encode_l2_entry(g, L2Entry{ClusterType::kCompressed, c.offset_mask + 1, 1});
        ASSERT_FALSE(big_offset.ok());
        EXPECT_THAT(big_offset.error().message, HasSubstr("exceeds limit"));
        auto big_size =
            encode_l2_entry(g, L2Entry{ClusterType::kCompressed, 0x200, c.max_size + 1});
        ASSERT_FALSE(big_size.ok());
        EXPECT_THAT(big_size.error().message,
                    HasSubstr("compressed size " + std::to_string(c.max_size + 1)));
    }
}

TEST(QcowL2Entry, CompressedSizeZeroIsCorrupt) {
    Geometry g = default_geometry();
    auto entry = decode_l2_entry(g, kCompressedFlag | 0x3200);
    ASSERT_FALSE(entry.ok());
    EXPECT_EQ(entry.error().kind, ErrorKind::kCorrupt);
    EXPECT_EQ(entry.error().message,
              "qcow: l2 entry 0x8000000000003200: compressed cluster at 0x3200 has size 0");
    EXPECT_FALSE(encode_l2_entry(g, L2Entry{ClusterType::kCompressed, 0x3200, 0}).ok());
}

TEST(QcowL2Entry, CompressedFlagIsBit63NotBit62) {
    // qcow2's compressed flag (bit 62) is just an offset bit in v1.
    Geometry g = default_geometry();
    auto entry = decode_l2_entry(g, uint64_t{1} << 62);
    ASSERT_TRUE(entry.ok()) << entry.error().message;
    EXPECT_EQ(*entry, (L2Entry{ClusterType::kNormal, uint64_t{1} << 62, 0}));
    EXPECT_EQ(decode_l2_entry(g, kCompressedFlag | (uint64_t{1} << 51) | 0x200)->type,
              ClusterType::kCompressed);
}

TEST(QcowTables, ParseAndEncodeL1) {
    Geometry g = geometry(3 * 2 * 1024 * 1024, 12, 9);  // 3 entries
    ASSERT_EQ(g.l1_size, 3u);
    std::vector<std::byte> bytes(24);
    store_be<uint64_t>(&bytes[0], 0x1000);
    store_be<uint64_t>(&bytes[8], 0);
    store_be<uint64_t>(&bytes[16], 0x0102030405060708);
    auto table = parse_l1_table(g, bytes);
    ASSERT_TRUE(table.ok());
    EXPECT_EQ(*table, (std::vector<uint64_t>{0x1000, 0, 0x0102030405060708}));
    EXPECT_EQ(encode_table(*table), bytes);

    auto short_table = parse_l1_table(g, ByteSpan(bytes).first(23));
    ASSERT_FALSE(short_table.ok());
    EXPECT_EQ(short_table.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_EQ(short_table.error().message, "qcow: l1 table of 3 entries needs 24 bytes, got 23");

    // Entries are not judged when the table is parsed, only when used.
    std::vector<std::byte> hostile(24, std::byte{0xff});
    EXPECT_TRUE(parse_l1_table(g, hostile).ok());
}

TEST(QcowTables, ParseAndEncodeL2) {
    Geometry g = geometry(1 << 20, 9, 6);  // 64-entry L2 table
    std::vector<uint64_t> entries(64);
    entries[0] = 0x200;
    entries[63] = 0xA140000000003200;
    std::vector<std::byte> bytes = encode_table(entries);
    ASSERT_EQ(bytes.size(), 512u);
    EXPECT_EQ(bytes[0], std::byte{0});
    EXPECT_EQ(bytes[6], std::byte{0x02});
    EXPECT_EQ(bytes[63 * 8], std::byte{0xA1});
    auto parsed = parse_l2_table(g, bytes);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, entries);
    EXPECT_EQ(parse_l2_table(g, ByteSpan(bytes).first(504)).error().message,
              "qcow: l2 table of 64 entries needs 512 bytes, got 504");
}

TEST(QcowTables, EncodeTableEntryIsBigEndian) {
    auto bytes = encode_table_entry(0x0102030405060708);
    for (int i = 0; i < 8; ++i)
        EXPECT_EQ(bytes[i], std::byte(i + 1));
}

TEST(QcowTables, TableEntryOffset) {
    EXPECT_EQ(*table_entry_offset(48, 50, 0), 48u);
    EXPECT_EQ(*table_entry_offset(48, 50, 49), 48u + 49 * 8);
    auto beyond = table_entry_offset(48, 50, 50);
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.error().message, "qcow: table index 50 is beyond the table of 50 entries");
    auto overflow = table_entry_offset(~uint64_t{0} - 8, 512, 1);
    ASSERT_FALSE(overflow.ok());
    EXPECT_THAT(overflow.error().message, HasSubstr("ends beyond limit"));
    EXPECT_FALSE(table_entry_offset(kMaxFileOffset - 7, 1, 0).ok());
    EXPECT_TRUE(table_entry_offset(kMaxFileOffset - 8, 1, 0).ok());
}

TEST(QcowTables, LocateL2EntryWorkedExample) {
    Geometry g = default_geometry();
    std::vector<uint64_t> l1(g.l1_size, 0);
    l1[9] = 0x5000;
    auto location = locate_l2_entry(g, l1, 0x01234567);
    ASSERT_TRUE(location.ok()) << location.error().message;
    ASSERT_TRUE(location->has_value());
    EXPECT_EQ(**location, (L2EntryLocation{9, 0x5000, 52, 0x51A0}));

    auto unallocated = locate_l2_entry(g, l1, 0);
    ASSERT_TRUE(unallocated.ok());
    EXPECT_FALSE(unallocated->has_value());

    auto past_end = locate_l2_entry(g, l1, 100 * 1024 * 1024);
    ASSERT_FALSE(past_end.ok());
    EXPECT_EQ(past_end.error().message,
              "qcow: guest offset 0x6400000 needs l1 index 50 beyond the l1 table of 50 entries");

    l1[3] = ~uint64_t{0};
    auto hostile = locate_l2_entry(g, l1, 3 << 21);
    ASSERT_FALSE(hostile.ok());
    EXPECT_EQ(hostile.error().kind, ErrorKind::kCorrupt);
}

}  // namespace
}  // namespace coblock::qcow
