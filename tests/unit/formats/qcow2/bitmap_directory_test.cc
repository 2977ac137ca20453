// Tests of the qcow2 bitmap directory parser: entries built by hand (fields,
// extra data, 8-byte padding), and every malformed case refused with a
// message naming the entry.
#include "formats/qcow2/bitmap_directory.h"

#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

// Writes one entry at `at`; returns the padded end.
size_t put_entry(Bytes& b, size_t at, uint64_t table_offset, uint32_t flags, uint8_t gran_bits,
                 const std::string& extra, const std::string& name, uint16_t name_size = 0) {
    b.be64(at, table_offset)
        .be32(at + 8, 3)
        .be32(at + 12, flags)
        .u8(at + 16, 1)
        .u8(at + 17, gran_bits)
        .be16(at + 18, name_size ? name_size : static_cast<uint16_t>(name.size()))
        .be32(at + 20, static_cast<uint32_t>(extra.size()));
    b.str(at + 24, extra).str(at + 24 + extra.size(), name);
    return (at + 24 + extra.size() + name.size() + 7) / 8 * 8;
}

TEST(BitmapDirectory, ParsesEntriesWithPaddingAndExtraData) {
    Bytes b(64);
    size_t end = put_entry(b, 0, 0x50000, kBitmapFlagAuto, 16, "", "bm0");
    EXPECT_EQ(end, 32u);
    end = put_entry(b, end, 0x60000, kBitmapFlagInUse | kBitmapFlagExtraDataCompatible, 17, "xy",
                    "second");
    ASSERT_EQ(end, 64u);
    Result<std::vector<BitmapDirectoryEntry>> entries = parse_bitmap_directory(b, 2);
    ASSERT_TRUE(entries) << entries.error().to_string();
    ASSERT_EQ(entries->size(), 2u);
    EXPECT_EQ((*entries)[0].name, "bm0");
    EXPECT_EQ((*entries)[0].bitmap_table_offset, 0x50000u);
    EXPECT_EQ((*entries)[0].bitmap_table_size, 3u);
    EXPECT_EQ((*entries)[0].flags, kBitmapFlagAuto);
    EXPECT_EQ((*entries)[0].granularity_bits, 16);
    EXPECT_EQ((*entries)[0].type, 1);
    EXPECT_TRUE((*entries)[0].extra_data.empty());
    EXPECT_EQ((*entries)[1].name, "second");
    EXPECT_EQ((*entries)[1].granularity_bits, 17);
    EXPECT_EQ((*entries)[1].extra_data.size(), 2u);
}

TEST(BitmapDirectory, RefusesEmptyAndOverlongNames) {
    Bytes b(32);
    put_entry(b, 0, 0x50000, 0, 16, "", "bm0", /*name_size=*/0);
    b.be16(18, 0);
    Result<std::vector<BitmapDirectoryEntry>> empty = parse_bitmap_directory(b, 1);
    ASSERT_FALSE(empty);
    EXPECT_THAT(empty.error().to_string(), ::testing::HasSubstr("entry 0 has a name of 0 bytes"));
    b.be16(18, 1024);
    Result<std::vector<BitmapDirectoryEntry>> long_name = parse_bitmap_directory(b, 1);
    ASSERT_FALSE(long_name);
    EXPECT_THAT(long_name.error().to_string(), ::testing::HasSubstr("name of 1024 bytes"));
}

TEST(BitmapDirectory, RefusesEntriesPastTheDirectory) {
    Bytes b(32);
    put_entry(b, 0, 0x50000, 0, 16, "", "bm0");
    // A second entry the directory has no room for.
    Result<std::vector<BitmapDirectoryEntry>> two = parse_bitmap_directory(b, 2);
    ASSERT_FALSE(two);
    EXPECT_THAT(two.error().to_string(), ::testing::HasSubstr("entry 1 runs past"));
    // Extra data claiming 4 GiB - 1: no overflow, a clean error.
    b.be32(20, 0xffffffffu);
    Result<std::vector<BitmapDirectoryEntry>> huge = parse_bitmap_directory(b, 1);
    ASSERT_FALSE(huge);
    EXPECT_EQ(huge.error().kind, ErrorKind::kCorrupt);
    // A directory too short for the fixed part.
    Result<std::vector<BitmapDirectoryEntry>> shortdir =
        parse_bitmap_directory(std::span<const std::byte>(b.data().data(), 20), 1);
    EXPECT_FALSE(shortdir);
}

TEST(BitmapDirectory, EntriesMustFillTheDirectoryExactly) {
    Bytes b(40);
    put_entry(b, 0, 0x50000, 0, 16, "", "bm0");
    Result<std::vector<BitmapDirectoryEntry>> trailing = parse_bitmap_directory(b, 1);
    ASSERT_FALSE(trailing);
    EXPECT_THAT(trailing.error().to_string(), ::testing::HasSubstr("does not end with entry 1"));
}

}  // namespace
}  // namespace coblock::qcow2
