// Tests of formats/vhdx/region_table and formats/vhdx/extents: decode,
// encode, copy fallback, classification and the placement checker.
#include "formats/vhdx/region_table.h"

#include "formats/crc32c.h"
#include "formats/vhdx/extents.h"
#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

struct RawEntry {
    Guid guid;
    uint64_t offset;
    uint32_t length;
    uint32_t required;
};

Bytes table_bytes(const std::vector<RawEntry>& entries, uint32_t count_override = UINT32_MAX) {
    Bytes b(kRegionTableSize);
    put_text(b, 0, "regi");
    put32(b, 8,
          count_override != UINT32_MAX ? count_override : static_cast<uint32_t>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
        const size_t off = 16 + 32 * i;
        put_guid(b, off, entries[i].guid);
        put64(b, off + 16, entries[i].offset);
        put32(b, off + 24, entries[i].length);
        put32(b, off + 28, entries[i].required);
    }
    put32(b, 4, crc32c(b));
    return b;
}

const std::vector<RawEntry> kQemuRegions = {{kBatRegionGuid, 2 * kMiB, kMiB, 0},
                                            {kMetadataRegionGuid, 3 * kMiB, kMiB, 0}};

TEST(VhdxRegionTable, ParseQemuTable) {
    auto t = parse_region_table(table_bytes(kQemuRegions));
    ASSERT_OK(t);
    ASSERT_EQ(t->entries.size(), 2u);
    EXPECT_EQ(t->entries[0].guid, kBatRegionGuid);
    EXPECT_EQ(t->entries[0].file_offset, 2 * kMiB);
    EXPECT_EQ(t->entries[0].length, kMiB);
    EXPECT_FALSE(t->entries[0].required);
    auto known = classify_regions(*t);
    ASSERT_OK(known);  // QEMU's Required = 0 is accepted
    EXPECT_EQ(known->bat.file_offset, 2 * kMiB);
    EXPECT_EQ(known->metadata.file_offset, 3 * kMiB);
    EXPECT_TRUE(known->others.empty());
}

TEST(VhdxRegionTable, RoundTrip) {
    RegionTable t;
    t.entries = {{kMetadataRegionGuid, 2 * kMiB, kMiB, true},
                 {kBatRegionGuid, 3 * kMiB, 2 * kMiB, true},
                 {test_guid(4), 5 * kMiB, kMiB, false}};
    Bytes out(kRegionTableSize);
    ASSERT_OK(encode_region_table(t, out));
    auto back = parse_region_table(out);
    ASSERT_OK(back);
    EXPECT_EQ(*back, t);
    Bytes again(kRegionTableSize);
    ASSERT_OK(encode_region_table(*back, again));
    EXPECT_EQ(again, out);
}

TEST(VhdxRegionTable, ParseErrors) {
    Bytes b = table_bytes(kQemuRegions);
    put_text(b, 0, "rego");
    EXPECT_ERROR(parse_region_table(b), ErrorKind::kCorrupt, "region table signature 0x6f676572");
    b = table_bytes(kQemuRegions);
    put8(b, 60000, 1);  // the checksum covers the reserved tail too
    EXPECT_ERROR(parse_region_table(b), ErrorKind::kCorrupt, "region table checksum");
    EXPECT_ERROR(parse_region_table(table_bytes(kQemuRegions, 4097)), ErrorKind::kCorrupt,
                 "region table entry count 4097 exceeds limit 2047");
    EXPECT_ERROR(parse_region_table(ByteSpan(b).first(4096)), ErrorKind::kInvalidArgument,
                 "got 4096");
    RegionTable big;
    big.entries.resize(2048);
    EXPECT_ERROR(encode_region_table(big, b), ErrorKind::kInvalidArgument,
                 "entry count 2048 exceeds limit 2047");
}

TEST(VhdxRegionTable, MaximumEntryCountFits) {
    std::vector<RawEntry> many;
    many.push_back(kQemuRegions[0]);
    many.push_back(kQemuRegions[1]);
    for (uint32_t i = 2; i < kMaxRegionTableEntries; ++i)
        many.push_back({Guid::make(i, 0, 0, 0), (4 + i) * kMiB, kMiB, 0});
    auto t = parse_region_table(table_bytes(many));
    ASSERT_OK(t);
    EXPECT_EQ(t->entries.size(), 2047u);
    auto known = classify_regions(*t);
    ASSERT_OK(known);
    EXPECT_EQ(known->others.size(), 2045u);
}

TEST(VhdxRegionTable, FallsBackToSecondCopy) {
    Bytes good = table_bytes(kQemuRegions);
    Bytes bad = good;
    put32(bad, 4, 0);
    auto choice = select_region_table(bad, good);
    ASSERT_OK(choice);
    EXPECT_EQ(choice->copy, 1);
    choice = select_region_table(good, bad);
    ASSERT_OK(choice);
    EXPECT_EQ(choice->copy, 0);
    EXPECT_ERROR(select_region_table(bad, bad), ErrorKind::kCorrupt, "region table checksum 0x0");
}

TEST(VhdxRegionTable, ClassifyErrors) {
    auto classify = [](std::vector<RegionTableEntry> entries) {
        return classify_regions(RegionTable{std::move(entries)});
    };
    const RegionTableEntry bat{kBatRegionGuid, 2 * kMiB, kMiB, true};
    const RegionTableEntry meta{kMetadataRegionGuid, 3 * kMiB, kMiB, true};
    EXPECT_ERROR(classify({bat}), ErrorKind::kCorrupt, "region table has no metadata region");
    EXPECT_ERROR(classify({meta}), ErrorKind::kCorrupt, "region table has no bat region");
    EXPECT_ERROR(classify({bat, meta, bat}), ErrorKind::kCorrupt, "lists bat region twice");
    const Guid unknown = parse_guid_text("01234567-89ab-cdef-0123-456789abcdef").value();
    EXPECT_ERROR(classify({bat, meta, {unknown, 5 * kMiB, kMiB, true}}), ErrorKind::kUnsupported,
                 "unknown required region 01234567-89ab-cdef-0123-456789abcdef");
    auto optional = classify({bat, meta, {unknown, 5 * kMiB, kMiB, false}});
    ASSERT_OK(optional);
    EXPECT_EQ(optional->others.size(), 1u);
    EXPECT_ERROR(classify({{kBatRegionGuid, 0x80000, kMiB, true}, meta}), ErrorKind::kCorrupt,
                 "bat region offset 0x80000 is not a mib-aligned");
    EXPECT_ERROR(classify({{kBatRegionGuid, 0x180000, kMiB, true}, meta}), ErrorKind::kCorrupt,
                 "bat region offset 0x180000");
    EXPECT_ERROR(classify({bat, {kMetadataRegionGuid, 3 * kMiB, 0x1000, true}}),
                 ErrorKind::kCorrupt, "metadata region length 0x1000");
    EXPECT_ERROR(classify({bat, {kMetadataRegionGuid, 3 * kMiB, 0, true}}), ErrorKind::kCorrupt,
                 "metadata region length 0x0");
    EXPECT_ERROR(classify({bat, {kMetadataRegionGuid, UINT64_MAX - kMiB + 1, kMiB, true}}),
                 ErrorKind::kCorrupt, "plus length overflows");
}

TEST(VhdxExtents, AcceptsDisjointInsideFile) {
    const std::vector<Extent> extents = {{"header section", 0, kMiB},
                                         {"log", kMiB, kMiB},
                                         {"bat region", 2 * kMiB, kMiB},
                                         {"metadata region", 3 * kMiB, kMiB},
                                         {"empty", 5 * kMiB, 0}};
    EXPECT_TRUE(check_extents(extents, 4 * kMiB).ok());
}

TEST(VhdxExtents, ReportsOverlapNamingBoth) {
    const std::vector<Extent> extents = {
        {"header section", 0, kMiB}, {"log", kMiB, 2 * kMiB}, {"bat region", 2 * kMiB, kMiB}};
    EXPECT_ERROR(check_extents(extents, 8 * kMiB), ErrorKind::kCorrupt,
                 "log 0x100000+0x200000 overlaps bat region 0x200000+0x100000");
    // An extent hidden inside a long earlier one is still found.
    const std::vector<Extent> nested = {
        {"a", kMiB, 10 * kMiB}, {"b", 2 * kMiB, kMiB}, {"c", 8 * kMiB, kMiB}};
    EXPECT_ERROR(check_extents(nested, 16 * kMiB), ErrorKind::kCorrupt,
                 "a 0x100000+0xa00000 overlaps b");
    const std::vector<Extent> header_overlap = {{"header section", 0, kMiB}, {"log", 0, kMiB}};
    EXPECT_ERROR(check_extents(header_overlap, 8 * kMiB), ErrorKind::kCorrupt,
                 "header section 0x0+0x100000 overlaps log 0x0+0x100000");
}

TEST(VhdxExtents, ReportsOutsideFileAndOverflow) {
    const std::vector<Extent> past = {{"metadata region", 3 * kMiB, kMiB}};
    EXPECT_ERROR(check_extents(past, 3 * kMiB + 4096), ErrorKind::kCorrupt,
                 "metadata region 0x300000+0x100000 ends past the end of the file at 0x301000");
    const std::vector<Extent> overflow = {{"bat region", UINT64_MAX, 2}};
    EXPECT_ERROR(check_extents(overflow, UINT64_MAX), ErrorKind::kCorrupt, "overflows");
}

TEST(VhdxExtents, ImageExtentsListsEverything) {
    Header h;
    h.log_offset = kMiB;
    h.log_length = kMiB;
    KnownRegions r{{kBatRegionGuid, 2 * kMiB, kMiB, false},
                   {kMetadataRegionGuid, 3 * kMiB, kMiB, false},
                   {{test_guid(1), 4 * kMiB, kMiB, false}}};
    const std::vector<Extent> e = image_extents(h, r);
    ASSERT_EQ(e.size(), 5u);
    EXPECT_EQ(e[0], (Extent{"header section", 0, kMiB}));
    EXPECT_EQ(e[1], (Extent{"log", kMiB, kMiB}));
    EXPECT_EQ(e[4].name, "region " + test_guid(1).to_string());
    h.log_length = 0;
    EXPECT_EQ(image_extents(h, r).size(), 4u);
    // A log that overlaps the BAT region is reported.
    h.log_length = 2 * kMiB;
    EXPECT_ERROR(check_extents(image_extents(h, r), 8 * kMiB), ErrorKind::kCorrupt,
                 "log 0x100000+0x200000 overlaps bat region");
}

}  // namespace
}  // namespace coblock::vhdx
