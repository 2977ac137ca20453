// Tests of qcow2 refcount structures: refcount table entries and get/set of
// refcount block entries for every order 0..6 (1 to 64 bits).
#include "formats/qcow2/refcount.h"

#include <random>

#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

TEST(Qcow2RefcountTable, DecodeEncodeValidate) {
    const Geometry g{16, false, 4};
    const RefcountTableEntry e = decode_refcount_table_entry(0x20000);
    EXPECT_EQ(e, (RefcountTableEntry{0x20000, 0}));
    EXPECT_EQ(encode_refcount_table_entry(e), 0x20000u);
    EXPECT_THAT(validate_refcount_table_entry(e, g, 0), IsOk());
    // Bits 56..63 are offset bits here (unlike L1/L2 entries).
    const RefcountTableEntry high = decode_refcount_table_entry(0xff00000000020000);
    EXPECT_EQ(high.block_offset, 0xff00000000020000u);
    EXPECT_THAT(validate_refcount_table_entry(high, g, 0), IsOk());

    const RefcountTableEntry reserved = decode_refcount_table_entry(0x20001);
    EXPECT_EQ(reserved.reserved_bits, 1u);
    EXPECT_EQ(encode_refcount_table_entry(reserved), 0x20001u);
    EXPECT_THAT(validate_refcount_table_entry(reserved, g, 2),
                IsCorrupt("refcount table entry 2 (0x20001) has reserved bits 0x1 set"));
    EXPECT_THAT(validate_refcount_table_entry(decode_refcount_table_entry(0x20200), g, 5),
                IsCorrupt("refcount table entry 5 (0x20200) refcount block offset 0x20200 is not "
                          "cluster aligned"));
}

TEST(Qcow2RefcountBlock, KnownByteLayouts) {
    // 4-bit: byte 0x21 holds entry 0 = 1 and entry 1 = 2 (LSB first).
    std::vector<std::byte> b(8);
    b[0] = std::byte{0x21};
    EXPECT_EQ(*get_refcount(b, 0, 2), 1u);
    EXPECT_EQ(*get_refcount(b, 1, 2), 2u);
    // 1-bit: entry i is bit i % 8 of byte i / 8.
    b[1] = std::byte{0x82};
    EXPECT_EQ(*get_refcount(b, 8, 0), 0u);
    EXPECT_EQ(*get_refcount(b, 9, 0), 1u);
    EXPECT_EQ(*get_refcount(b, 15, 0), 1u);
    // 2-bit: byte 0x21 = 01 00 10 00 01 from the LSB: entries 1, 0, 2, 0.
    EXPECT_EQ(*get_refcount(b, 0, 1), 1u);
    EXPECT_EQ(*get_refcount(b, 1, 1), 0u);
    EXPECT_EQ(*get_refcount(b, 2, 1), 2u);
    EXPECT_EQ(*get_refcount(b, 3, 1), 0u);
    // 16-bit: big-endian at byte 2*i.
    std::vector<std::byte> c(8);
    ASSERT_THAT(set_refcount(c, 1, 4, 0x1234), IsOk());
    EXPECT_EQ(c[2], std::byte{0x12});
    EXPECT_EQ(c[3], std::byte{0x34});
    // 64-bit maximum.
    ASSERT_THAT(set_refcount(c, 0, 6, ~0ull), IsOk());
    EXPECT_EQ(*get_refcount(c, 0, 6), ~0ull);
    EXPECT_EQ(load_be<uint64_t>(c.data()), ~0ull);
}

TEST(Qcow2RefcountBlock, EveryOrderGetSetKeepsNeighbours) {
    std::mt19937_64 rng(99);
    for (uint32_t order = 0; order <= 6; ++order) {
        SCOPED_TRACE(order);
        const uint32_t bits = 1u << order;
        const uint64_t max = refcount_max_for_order(order);
        EXPECT_EQ(max, bits == 64 ? ~0ull : (1ull << bits) - 1);
        std::vector<std::byte> block(512);
        const uint64_t entries = refcount_entries_in(block.size(), order);
        EXPECT_EQ(entries, 4096u / bits);
        EXPECT_EQ(Geometry({9, false, order}).refcount_block_entries(), entries);
        std::vector<uint64_t> expected(entries);
        for (int round = 0; round < 3000; ++round) {
            const uint64_t index = rng() % entries;
            const uint64_t value = round % 7 == 0 ? max : rng() & max;
            ASSERT_THAT(set_refcount(block, index, order, value), IsOk());
            expected[index] = value;
        }
        for (uint64_t i = 0; i < entries; ++i) {
            ASSERT_EQ(*get_refcount(block, i, order), expected[i]) << "index " << i;
        }
        EXPECT_THAT(get_refcount(block, entries, order),
                    IsError(ErrorKind::kOutOfRange, "refcount index " + std::to_string(entries)));
        EXPECT_THAT(set_refcount(block, entries, order, 0),
                    IsError(ErrorKind::kOutOfRange, "outside a block of 512 bytes"));
        if (order < 6) {
            EXPECT_THAT(
                set_refcount(block, 0, order, max + 1),
                IsInvalid("refcount " + std::to_string(max + 1) + " exceeds maximum " +
                          std::to_string(max) + " for " + std::to_string(bits) + "-bit refcounts"));
        }
    }
}

TEST(Qcow2RefcountBlock, BadOrder) {
    std::vector<std::byte> block(64);
    EXPECT_THAT(get_refcount(block, 0, 7), IsInvalid("refcount_order 7 exceeds limit 6"));
    EXPECT_THAT(set_refcount(block, 0, 7, 1), IsInvalid("refcount_order 7 exceeds limit 6"));
    EXPECT_THAT(get_refcount({}, 0, 4), IsError(ErrorKind::kOutOfRange, "refcount index 0"));
}

}  // namespace
}  // namespace coblock::qcow2
