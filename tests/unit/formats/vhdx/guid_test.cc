// Tests of formats/vhdx/guid: on-disk byte order, text parse/format, compare.
#include "formats/vhdx/guid.h"

#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using testing::Bytes;

TEST(VhdxGuid, KnownGuidsHaveSpecDiskBytes) {
    const uint8_t bat[16] = {0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
                             0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08};
    EXPECT_TRUE(std::equal(std::begin(bat), std::end(bat), kBatRegionGuid.bytes.begin()));
    const uint8_t locator[16] = {0xB7, 0xEF, 0x4A, 0xB0, 0x9E, 0xD1, 0x81, 0x4A,
                                 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13};
    EXPECT_TRUE(std::equal(std::begin(locator), std::end(locator),
                           kVhdxParentLocatorTypeGuid.bytes.begin()));
    EXPECT_EQ(kMetadataRegionGuid.to_string(), "8b7ca206-4790-4b9a-b8fe-575f050f886e");
}

TEST(VhdxGuid, TextRoundTrip) {
    auto g = parse_guid_text("2DC27766-F623-4200-9D64-115E9BFD4A08");
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(*g, kBatRegionGuid);
    EXPECT_EQ(g->to_string(true), "{2dc27766-f623-4200-9d64-115e9bfd4a08}");
    auto braced = parse_guid_text("{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}");
    ASSERT_TRUE(braced.ok());
    EXPECT_EQ(braced->to_string(), "83ed0ec3-24c8-49a6-a959-5e4bf1288bfb");
    auto again = parse_guid_text(braced->to_string(true));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *braced);
}

TEST(VhdxGuid, RejectsMalformedText) {
    for (const char* bad :
         {"", "2DC27766F6234200-9D64-115E9BFD4A08", "2DC27766-F623-4200-9D64-115E9BFD4A0",
          "{2DC27766-F623-4200-9D64-115E9BFD4A08", "2DC27766-F623-4200-9D64-115E9BFD4AXY",
          "2DC27766-F623-4200+9D64-115E9BFD4A08"}) {
        EXPECT_ERROR(parse_guid_text(bad), ErrorKind::kInvalidArgument, "malformed guid text");
    }
}

TEST(VhdxGuid, CompareAndZero) {
    EXPECT_TRUE(Guid{}.is_zero());
    EXPECT_FALSE(kBatRegionGuid.is_zero());
    EXPECT_NE(kBatRegionGuid, kMetadataRegionGuid);
    EXPECT_TRUE(kBatRegionGuid < kMetadataRegionGuid || kMetadataRegionGuid < kBatRegionGuid);
    Bytes raw(16);
    for (size_t i = 0; i < 16; ++i)
        raw[i] = static_cast<std::byte>(kBatRegionGuid.bytes[i]);
    EXPECT_EQ(Guid::from_bytes(raw), kBatRegionGuid);
    EXPECT_TRUE(Guid::from_bytes(ByteSpan(raw).first(15)).is_zero());
}

TEST(VhdxGuid, ReadWriteThroughCursor) {
    Bytes buf(20);
    ByteWriter w(buf);
    write_guid(w, kParentLocatorGuid);
    ASSERT_TRUE(w.ok());
    ByteReader r(buf);
    EXPECT_EQ(read_guid(r), kParentLocatorGuid);
    ByteReader short_reader(ByteSpan(buf).first(10));
    EXPECT_TRUE(read_guid(short_reader).is_zero());
    EXPECT_FALSE(short_reader.ok());
}

}  // namespace
}  // namespace coblock::vhdx
