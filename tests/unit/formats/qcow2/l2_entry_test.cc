// Tests of qcow2 L1/L2 entries: lossless decode/encode, cluster and
// subcluster classification, validation messages, compressed descriptors for
// several cluster sizes (the bit split depends on cluster_bits).
#include "formats/qcow2/l2_entry.h"

#include <random>

#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

const Geometry k64k{16, false, 4};
const Geometry k64kExtended{16, true, 4};

TEST(Qcow2L1Entry, DecodeEncodeValidate) {
    const L1Entry e = decode_l1_entry(0x8000000000050000);
    EXPECT_EQ(e, (L1Entry{0x50000, true, 0}));
    EXPECT_EQ(encode_l1_entry(e), 0x8000000000050000u);
    EXPECT_THAT(validate_l1_entry(e, k64k, 0), IsOk());

    const L1Entry reserved = decode_l1_entry(0x0100000000050001);
    EXPECT_EQ(reserved.reserved_bits, 0x0100000000000001u);
    EXPECT_EQ(encode_l1_entry(reserved), 0x0100000000050001u);
    EXPECT_THAT(
        validate_l1_entry(reserved, k64k, 3),
        IsCorrupt("l1 entry 3 (0x100000000050001) has reserved bits 0x100000000000001 set"));
    EXPECT_THAT(validate_l1_entry(decode_l1_entry(0x50200), k64k, 7),
                IsCorrupt("l1 entry 7 (0x50200) l2 table offset 0x50200 is not cluster aligned"));
    EXPECT_THAT(validate_l1_entry(decode_l1_entry(0x50200), Geometry{9, false, 4}, 7), IsOk());
    EXPECT_THAT(validate_l1_entry(decode_l1_entry(0), k64k, 0), IsOk());
}

TEST(Qcow2L2Entry, StandardTypes) {
    struct Case {
        uint64_t word;
        ClusterType type;
    };
    const Case cases[] = {
        {0x0000000000000000, ClusterType::kUnallocated},
        {0x8000000000050000, ClusterType::kNormal},
        {0x0000000000050000, ClusterType::kNormal},  // shared (COPIED clear)
        {0x0000000000000001, ClusterType::kZeroPlain},
        {0x8000000000060001, ClusterType::kZeroAlloc},
        {0x4cc0000000056501, ClusterType::kCompressed},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(hex_string(c.word));
        const L2Entry e = decode_l2_entry(c.word, 0, k64k);
        EXPECT_EQ(classify_l2_entry(e, k64k), c.type);
        EXPECT_EQ(*encode_l2_entry(e, k64k), c.word);
        EXPECT_THAT(validate_l2_entry(e, k64k, {}, 0), IsOk());
    }
    const L2Entry zero_alloc = decode_l2_entry(0x8000000000060001, 0, k64k);
    EXPECT_TRUE(zero_alloc.copied);
    EXPECT_TRUE(zero_alloc.zero);
    EXPECT_EQ(zero_alloc.host_offset, 0x60000u);
    // External data file: offset 0 with COPIED is guest cluster 0, allocated.
    const L2Entry data_file = decode_l2_entry(0x8000000000000000, 0, k64k);
    EXPECT_EQ(classify_l2_entry(data_file, k64k, false), ClusterType::kUnallocated);
    EXPECT_EQ(classify_l2_entry(data_file, k64k, true), ClusterType::kNormal);
    EXPECT_EQ(subcluster_type(data_file, k64k, 0, true), SubclusterType::kNormal);
    EXPECT_EQ(subcluster_type(zero_alloc, k64k, 0), SubclusterType::kZeroAlloc);
    EXPECT_EQ(subcluster_type(decode_l2_entry(0, 0, k64k), k64k, 0),
              SubclusterType::kUnallocatedPlain);
}

TEST(Qcow2L2Entry, ValidationErrors) {
    const L2Context v3;
    const L2Context v2{2, false};
    const L2Context data_file{3, true};
    EXPECT_THAT(validate_l2_entry(decode_l2_entry(0x8000000000050002, 0, k64k), k64k, v3, 4),
                IsCorrupt("l2 entry 4 (0x8000000000050002) has reserved bits 0x2 set"));
    EXPECT_THAT(validate_l2_entry(decode_l2_entry(0x0200000000050000, 0, k64k), k64k, v3, 4),
                IsCorrupt("has reserved bits 0x200000000000000 set"));
    EXPECT_THAT(validate_l2_entry(decode_l2_entry(0x8000000000050200, 0, k64k), k64k, v3, 9),
                IsCorrupt("l2 entry 9 (0x8000000000050200) host offset 0x50200 is not cluster "
                          "aligned"));
    EXPECT_THAT(validate_l2_entry(decode_l2_entry(0x1, 0, k64k), k64k, v2, 1),
                IsCorrupt("l2 entry 1 (0x1) has the zero flag in a version 2 image"));
    EXPECT_THAT(validate_l2_entry(decode_l2_entry(0xcc00000000056501, 0, k64k), k64k, v3, 2),
                IsCorrupt("l2 entry 2 (0xcc00000000056501) is compressed with COPIED set"));
    EXPECT_THAT(validate_l2_entry(decode_l2_entry(0x4cc0000000056501, 0, k64k), k64k, data_file, 2),
                IsCorrupt("is compressed in an image with an external data file"));
    // cluster_bits 9: the offset field has 61 bits; bits above 55 must be 0.
    const Geometry k512{9, false, 4};
    EXPECT_THAT(validate_l2_entry(decode_l2_entry(0x4100000000000000, 0, k512), k512, v3, 0),
                IsCorrupt("compressed offset 0x100000000000000 has bits above 55 set"));
}

TEST(Qcow2L2Entry, ExtendedSubclusters) {
    // 4 KiB written at guest 4 KiB of a 64 KiB-cluster image (notes §12).
    const L2Entry e = decode_l2_entry(0x8000000000050000, 0x0000000c, k64kExtended);
    EXPECT_EQ(classify_l2_entry(e, k64kExtended), ClusterType::kNormal);
    EXPECT_EQ(k64kExtended.subcluster_size(), 2048u);
    for (uint32_t sc = 0; sc < 32; ++sc) {
        EXPECT_EQ(subcluster_type(e, k64kExtended, sc),
                  sc == 2 || sc == 3 ? SubclusterType::kNormal : SubclusterType::kUnallocatedAlloc)
            << sc;
    }
    EXPECT_THAT(validate_l2_entry(e, k64kExtended, {}, 0), IsOk());

    // The full table of notes §12.
    const L2Entry alloc_zero = decode_l2_entry(0x8000000000050000, 1ull << 33, k64kExtended);
    EXPECT_EQ(subcluster_type(alloc_zero, k64kExtended, 1), SubclusterType::kZeroAlloc);
    const L2Entry plain = decode_l2_entry(0, (1ull << 32) | (1ull << 63), k64kExtended);
    EXPECT_EQ(classify_l2_entry(plain, k64kExtended), ClusterType::kUnallocated);
    EXPECT_EQ(subcluster_type(plain, k64kExtended, 0), SubclusterType::kZeroPlain);
    EXPECT_EQ(subcluster_type(plain, k64kExtended, 31), SubclusterType::kZeroPlain);
    EXPECT_EQ(subcluster_type(plain, k64kExtended, 1), SubclusterType::kUnallocatedPlain);
    EXPECT_EQ(subcluster_type(plain, k64kExtended, 32), SubclusterType::kInvalid);
    EXPECT_THAT(validate_l2_entry(plain, k64kExtended, {}, 0), IsOk());
    // Bit 0 (zero flag) is ignored with extended L2 entries.
    const L2Entry zero_flag = decode_l2_entry(0x1, 0, k64kExtended);
    EXPECT_EQ(classify_l2_entry(zero_flag, k64kExtended), ClusterType::kUnallocated);
    EXPECT_EQ(subcluster_type(zero_flag, k64kExtended, 0), SubclusterType::kUnallocatedPlain);

    // Invalid: a subcluster both allocated and zero (anywhere in the bitmap).
    const L2Entry both =
        decode_l2_entry(0x8000000000050000, (1ull << 37) | (1ull << 5) | 1, k64kExtended);
    EXPECT_EQ(subcluster_type(both, k64kExtended, 0), SubclusterType::kInvalid);
    EXPECT_THAT(validate_l2_entry(both, k64kExtended, {}, 6),
                IsCorrupt("l2 entry 6 (0x8000000000050000) bitmap 0x2000000021 marks subclusters "
                          "both allocated and zero (0x20)"));
    // Invalid: allocation bits without a host cluster.
    const L2Entry no_cluster = decode_l2_entry(0, 0x1, k64kExtended);
    EXPECT_EQ(subcluster_type(no_cluster, k64kExtended, 5), SubclusterType::kInvalid);
    EXPECT_THAT(validate_l2_entry(no_cluster, k64kExtended, {}, 0),
                IsCorrupt("bitmap 0x1 allocates subclusters of an unallocated cluster"));
    // Compressed: bitmap must be zero; the entry has no subclusters.
    const L2Entry compressed = decode_l2_entry(0x4cc0000000056501, 0x10, k64kExtended);
    EXPECT_EQ(subcluster_type(compressed, k64kExtended, 4), SubclusterType::kCompressed);
    EXPECT_THAT(validate_l2_entry(compressed, k64kExtended, {}, 0),
                IsCorrupt("is compressed with bitmap 0x10"));
}

TEST(Qcow2L2Entry, TableAccess) {
    std::vector<std::byte> table(64);
    ASSERT_THAT(write_l2_entry(table, 3, false, {0x8000000000050000, 0xdead}), IsOk());
    EXPECT_EQ(load_be<uint64_t>(table.data() + 24), 0x8000000000050000u);
    EXPECT_EQ(*read_l2_entry(table, 3, false), (RawL2Entry{0x8000000000050000, 0}));
    EXPECT_THAT(read_l2_entry(table, 8, false), IsError(ErrorKind::kOutOfRange, "l2 index 8"));

    ASSERT_THAT(write_l2_entry(table, 1, true, {0x8000000000070000, 0xc}), IsOk());
    EXPECT_EQ(load_be<uint64_t>(table.data() + 16), 0x8000000000070000u);
    EXPECT_EQ(load_be<uint64_t>(table.data() + 24), 0xcu);
    EXPECT_EQ(*read_l2_entry(table, 1, true), (RawL2Entry{0x8000000000070000, 0xc}));
    EXPECT_THAT(read_l2_entry(table, 4, true), IsError(ErrorKind::kOutOfRange, "l2 index 4"));
    EXPECT_THAT(write_l2_entry(table, 4, true, {}), IsError(ErrorKind::kOutOfRange, "l2 index 4"));
}

TEST(Qcow2L2Entry, LosslessForEveryWordAndClusterSize) {
    std::mt19937_64 rng(7);
    for (uint32_t bits = kMinClusterBits; bits <= kMaxClusterBits; ++bits) {
        const Geometry g{bits, false, 4};
        for (int i = 0; i < 2000; ++i) {
            const uint64_t word = rng();
            const L2Entry e = decode_l2_entry(word, 0, g);
            auto encoded = encode_l2_entry(e, g);
            ASSERT_THAT(encoded, IsOk());
            ASSERT_EQ(*encoded, word) << "cluster_bits " << bits;
            // Validation never crashes, whatever the bits.
            (void)validate_l2_entry(e, g, {}, i);
            (void)subcluster_type(e, g, 0);
        }
    }
}

TEST(Qcow2L2Entry, EncoderRejectsFieldsOutOfRange) {
    L2Entry e;
    e.host_offset = 0x50001;
    EXPECT_THAT(encode_l2_entry(e, k64k), IsInvalid("host offset 0x50001 does not fit"));
    e = L2Entry{};
    e.reserved_bits = 1ull << 62;
    EXPECT_THAT(encode_l2_entry(e, k64k), IsInvalid("outside the reserved mask"));
    e = L2Entry{};
    e.additional_sectors = 1;
    EXPECT_THAT(encode_l2_entry(e, k64k), IsInvalid("standard l2 entry with a compressed"));
    e = L2Entry{};
    e.compressed = true;
    e.additional_sectors = 256;
    EXPECT_THAT(encode_l2_entry(e, k64k), IsInvalid("additional sectors 256 exceed 255"));
    e.additional_sectors = 0;
    e.host_offset = 1ull << 54;
    EXPECT_THAT(encode_l2_entry(e, k64k), IsInvalid("does not fit in 54 bits"));
    e.host_offset = 0;
    e.zero = true;
    EXPECT_THAT(encode_l2_entry(e, k64k), IsInvalid("compressed l2 entry with standard fields"));
}

TEST(Qcow2Compressed, QemuWorkedExample) {
    // qcow2-notes.md §11.4: two consecutive compressed clusters, 64 KiB clusters.
    const L2Entry first = decode_l2_entry(0x4cc0000000056501, 0, k64k);
    EXPECT_TRUE(first.compressed);
    EXPECT_FALSE(first.copied);
    EXPECT_EQ(first.host_offset, 0x56501u);
    EXPECT_EQ(first.additional_sectors, 51u);
    EXPECT_EQ(compressed_read_extent(first), (Extent{0x56501, 26367}));
    EXPECT_EQ(compressed_host_clusters(first, k64k), (ClusterRange{5, 5}));

    const L2Entry second = decode_l2_entry(0x4c8000000005ca05, 0, k64k);
    EXPECT_EQ(second.host_offset, 0x5ca05u);
    EXPECT_EQ(second.additional_sectors, 50u);
    EXPECT_EQ(compressed_host_clusters(second, k64k), (ClusterRange{5, 6}));

    auto made = make_compressed_entry(0x56501, 25860, k64k);
    ASSERT_THAT(made, IsOk());
    EXPECT_EQ(*made, first);
    EXPECT_EQ(*encode_l2_entry(*made, k64k), 0x4cc0000000056501u);
}

TEST(Qcow2Compressed, BitSplitPerClusterSize) {
    struct Case {
        uint32_t cluster_bits;
        uint32_t x;
        uint64_t max_sectors;
    };
    // qcow2-notes.md §11.1 table.
    const Case cases[] = {{9, 61, 1}, {12, 58, 15}, {16, 54, 255}, {21, 49, 8191}};
    for (const Case& c : cases) {
        SCOPED_TRACE(c.cluster_bits);
        const Geometry g{c.cluster_bits, false, 4};
        EXPECT_EQ(compressed_offset_bits(g), c.x);
        EXPECT_EQ(max_additional_sectors(g), c.max_sectors);
        // Offset just below the limit (2^x and 2^56), maximal sector count.
        const uint64_t offset = std::min<uint64_t>((1ull << c.x), 1ull << 56) - 1 - 511;
        const uint64_t word = kCompressedFlag | (c.max_sectors << c.x) | offset;
        const L2Entry e = decode_l2_entry(word, 0, g);
        EXPECT_EQ(e.host_offset, offset);
        EXPECT_EQ(e.additional_sectors, c.max_sectors);
        EXPECT_EQ(compressed_read_extent(e).length, (c.max_sectors + 1) * 512 - (offset & 511));
        EXPECT_THAT(validate_l2_entry(e, g, {}, 0), IsOk());
        EXPECT_EQ(*encode_l2_entry(e, g), word);

        // The largest describable length from a sector boundary.
        const uint64_t max_bytes = (c.max_sectors + 1) * 512;
        auto made = make_compressed_entry(0x100000, max_bytes, g);
        ASSERT_THAT(made, IsOk());
        EXPECT_EQ(made->additional_sectors, c.max_sectors);
        EXPECT_THAT(make_compressed_entry(0x100000, max_bytes + 1, g),
                    IsInvalid("additional sectors, limit " + std::to_string(c.max_sectors)));
        // An unaligned start costs a sector.
        EXPECT_THAT(make_compressed_entry(0x100001, max_bytes, g), IsInvalid("needs"));
    }
    EXPECT_THAT(make_compressed_entry(1ull << 54, 100, k64k),
                IsInvalid("does not fit the descriptor"));
    EXPECT_THAT(make_compressed_entry(1ull << 56, 100, Geometry{9, false, 4}),
                IsInvalid("does not fit the descriptor"));
    EXPECT_THAT(make_compressed_entry(0x1000, 0, k64k), IsInvalid("compressed length 0"));
}

TEST(Qcow2Geometry, WorkedTranslation) {
    // qcow2-notes.md §1: guest offset 0x1_2345_6789.
    const uint64_t guest = 0x123456789;
    EXPECT_EQ(k64k.l1_index(guest), 9u);
    EXPECT_EQ(k64k.l2_index(guest), 837u);
    EXPECT_EQ(k64k.offset_in_cluster(guest), 0x6789u);
    EXPECT_EQ(k64kExtended.l1_index(guest), 18u);
    EXPECT_EQ(k64kExtended.l2_index(guest), 0x345u);
    EXPECT_EQ(k64kExtended.subcluster_index(guest), 12u);
    EXPECT_EQ(k64k.subcluster_index(guest), 0u);
}

}  // namespace
}  // namespace coblock::qcow2
