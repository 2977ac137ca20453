// Tests of formats/vhdx/layout: images built for every type parse back
// through every pure parser, with the expected placement; option errors.
#include "formats/vhdx/layout.h"

#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

CreateOptions options(ImageType type, uint64_t size, uint32_t block_size = 0) {
    CreateOptions o;
    o.type = type;
    o.virtual_disk_size = size;
    o.block_size = block_size;
    o.file_write_guid = test_guid(1);
    o.data_write_guid = test_guid(2);
    o.virtual_disk_id = test_guid(3);
    o.sequence_number = 41;
    return o;
}

TEST(VhdxLayout, AutomaticBlockSize) {
    EXPECT_EQ(automatic_block_size(kGiB), 8 * kMiB);
    EXPECT_EQ(automatic_block_size(kGiB + 512), 16 * kMiB);
    EXPECT_EQ(automatic_block_size(100 * kGiB + 512), 32 * kMiB);
    EXPECT_EQ(automatic_block_size(32 * kTiB + 512), 64 * kMiB);
}

TEST(VhdxLayout, DynamicImageParsesBack) {
    auto layout = build_image_layout(options(ImageType::kDynamic, 100 * kMiB));
    ASSERT_OK(layout);
    EXPECT_EQ(layout->header.log_offset, kMiB);
    EXPECT_EQ(layout->regions.metadata.file_offset, 2 * kMiB);
    EXPECT_EQ(layout->regions.bat.file_offset, 3 * kMiB);
    EXPECT_EQ(layout->data_offset, 4 * kMiB);
    EXPECT_EQ(layout->file_size, 4 * kMiB);
    for (const FileWrite& w : layout->writes)
        EXPECT_NE(w.offset, 3 * kMiB) << "all-zero bat written";

    const Bytes file = materialize(*layout);
    auto p = parse_image(file);
    ASSERT_OK(p);
    EXPECT_EQ(p->identifier.creator, u"coblock");
    EXPECT_EQ(p->headers.current_slot, 1);
    EXPECT_EQ(p->headers.current.sequence_number, 42u);
    EXPECT_EQ(p->headers.other.sequence_number, 41u);
    EXPECT_EQ(p->headers.current.file_write_guid, test_guid(1));
    EXPECT_EQ(p->headers.current.data_write_guid, test_guid(2));
    EXPECT_TRUE(p->headers.current.log_guid.is_zero());
    EXPECT_EQ(p->headers.current, layout->header);
    EXPECT_EQ(p->regions, layout->regions);
    EXPECT_TRUE(p->regions.bat.required);
    EXPECT_EQ(p->metadata, layout->metadata);
    EXPECT_EQ(p->metadata.file_parameters, (FileParameters{8 * kMiB, false, false}));
    EXPECT_EQ(p->metadata.physical_sector_size, 4096u);
    EXPECT_EQ(p->geometry, layout->geometry);
    EXPECT_EQ(p->geometry.entry_count, 13u);
    for (std::byte b : p->bat)
        ASSERT_EQ(b, std::byte{0});
    // Both region table copies are identical.
    EXPECT_TRUE(std::equal(file.begin() + kRegionTable1Offset,
                           file.begin() + kRegionTable1Offset + kRegionTableSize,
                           file.begin() + kRegionTable2Offset));
}

TEST(VhdxLayout, DynamicWithZeroState) {
    CreateOptions o = options(ImageType::kDynamic, 100 * kMiB);
    o.block_state_zero = true;
    auto layout = build_image_layout(o);
    ASSERT_OK(layout);
    auto p = parse_image(materialize(*layout));
    ASSERT_OK(p);
    for (uint64_t i = 0; i < p->geometry.entry_count; ++i)
        EXPECT_EQ(read_bat_entry(p->bat, i)->state, static_cast<uint8_t>(PayloadState::kZero));
}

TEST(VhdxLayout, FixedImageAllocatesEveryBlock) {
    auto layout = build_image_layout(options(ImageType::kFixed, 20 * kMiB, 8 * kMiB));
    ASSERT_OK(layout);
    EXPECT_EQ(layout->file_size, 4 * kMiB + 3 * 8 * kMiB);  // whole blocks, MiB multiple
    auto p = parse_image(materialize(*layout));
    ASSERT_OK(p);
    EXPECT_TRUE(p->metadata.file_parameters.leave_block_allocated);
    ASSERT_EQ(p->geometry.entry_count, 3u);
    for (uint64_t b = 0; b < 3; ++b) {
        auto e = read_bat_entry(p->bat, payload_bat_index(p->geometry, b));
        ASSERT_OK(e);
        EXPECT_EQ(e->state, static_cast<uint8_t>(PayloadState::kFullyPresent));
        EXPECT_EQ(e->file_offset(), 4 * kMiB + b * 8 * kMiB);
    }
}

TEST(VhdxLayout, FixedImageAcrossChunks) {
    // 1 MiB blocks, 512: chunk ratio 4096; 4100 blocks span two chunks and
    // the bitmap slot between them stays NOT_PRESENT.
    auto layout = build_image_layout(options(ImageType::kFixed, 4100 * kMiB, kMiB));
    ASSERT_OK(layout);
    const BatGeometry& g = layout->geometry;
    EXPECT_EQ(g.entry_count, 4101u);
    const FileWrite* bat = nullptr;
    for (const FileWrite& w : layout->writes)
        if (w.offset == layout->regions.bat.file_offset) bat = &w;
    ASSERT_NE(bat, nullptr);
    EXPECT_EQ(read_bat_entry(bat->bytes, 4096)->state, kSectorBitmapNotPresent);
    EXPECT_EQ(read_bat_entry(bat->bytes, 4097)->file_offset(), layout->data_offset + 4096 * kMiB);
    const std::vector<Extent> extents = image_extents(layout->header, layout->regions);
    EXPECT_TRUE(check_bat(g, bat->bytes, layout->file_size, extents).ok());
}

TEST(VhdxLayout, DifferencingImage) {
    CreateOptions o = options(ImageType::kDifferencing, 10 * kGiB);
    o.logical_sector_size = 4096;
    VhdxParentLinkage link;
    link.parent_linkage = test_guid(8);
    link.relative_path = ".\\base.vhdx";
    link.absolute_win32_path = "C:\\vms\\base.vhdx";
    o.parent = link;
    auto layout = build_image_layout(o);
    ASSERT_OK(layout);
    auto p = parse_image(materialize(*layout));
    ASSERT_OK(p);
    EXPECT_EQ(p->metadata.file_parameters, (FileParameters{2 * kMiB, false, true}));
    EXPECT_EQ(p->metadata.logical_sector_size, 4096u);
    ASSERT_TRUE(p->metadata.parent_locator.has_value());
    auto decoded = decode_vhdx_parent_locator(*p->metadata.parent_locator);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, link);
    // Chunk ratio 2^23 * 4096 / 2 MiB = 16384; 5120 blocks fit one chunk.
    EXPECT_EQ(p->geometry.chunk_ratio, 16384u);
    EXPECT_EQ(p->geometry.entry_count, 16385u);
}

TEST(VhdxLayout, LargeLogAndLargeBat) {
    CreateOptions o = options(ImageType::kDynamic, 64 * kTiB, 64 * kMiB);
    o.log_size = 8 * kMiB;
    auto layout = build_image_layout(o);
    ASSERT_OK(layout);
    EXPECT_EQ(layout->regions.metadata.file_offset, 9 * kMiB);
    EXPECT_EQ(layout->regions.bat.file_offset, 10 * kMiB);
    // Chunk ratio 64: 2^20 blocks + (2^20 - 1) / 64 bitmap slots, 8 bytes each: over 8 MiB.
    EXPECT_EQ(layout->geometry.entry_count, 1048576u + 16383u);
    EXPECT_EQ(layout->regions.bat.length, 9 * kMiB);
    EXPECT_EQ(layout->file_size, 19 * kMiB);
    auto p = parse_image(materialize(*layout));
    ASSERT_OK(p);
}

TEST(VhdxLayout, EmptyDisk) {
    auto layout = build_image_layout(options(ImageType::kDynamic, 0));
    ASSERT_OK(layout);
    EXPECT_EQ(layout->regions.bat.length, kMiB);  // never a zero-length region
    auto p = parse_image(materialize(*layout));
    ASSERT_OK(p);
    EXPECT_EQ(p->geometry.entry_count, 0u);
}

TEST(VhdxLayout, OptionErrors) {
    auto err = [](CreateOptions o) { return build_image_layout(o); };
    CreateOptions o = options(ImageType::kDynamic, kGiB, 3 * kMiB);
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "block size 3145728");
    o = options(ImageType::kDynamic, kGiB, 512 * kMiB);
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "block size 536870912");
    o = options(ImageType::kDynamic, kGiB + 100);
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument,
                 "virtual disk size 1073741924 is not a multiple");
    o = options(ImageType::kDynamic, 64 * kTiB + 512);
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "exceeds limit 70368744177664");
    o = options(ImageType::kDynamic, kGiB);
    o.logical_sector_size = 1024;
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "logical sector size 1024");
    o = options(ImageType::kDynamic, kGiB);
    o.physical_sector_size = 2048;
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "physical sector size 2048");
    o = options(ImageType::kDynamic, kGiB);
    o.log_size = 0;
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "log size 0");
    o.log_size = kMiB + 4096;
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "log size 1052672");
    o.log_size = 4 * kGiB;
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "log size 4294967296");
    o = options(ImageType::kDynamic, kGiB);
    o.data_write_guid = Guid{};
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "write guids must be non-zero");
    o = options(ImageType::kDifferencing, kGiB);
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument,
                 "a differencing image needs a parent linkage");
    o = options(ImageType::kFixed, kGiB);
    o.parent = VhdxParentLinkage{};
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "only a differencing image has a parent");
    o = options(ImageType::kDynamic, kGiB);
    o.sequence_number = UINT64_MAX;
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "leaves no room for header 2");
    o = options(ImageType::kDynamic, kGiB);
    o.creator = std::u16string(300, u'c');
    EXPECT_ERROR(err(o), ErrorKind::kInvalidArgument, "creator of 300 utf-16 units");
}

}  // namespace
}  // namespace coblock::vhdx
