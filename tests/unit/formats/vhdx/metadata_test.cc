// Tests of formats/vhdx/metadata: the table, each system item, required
// and unknown items, and the region a writer packs.
#include "formats/vhdx/metadata.h"

#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

struct RawItem {
    Guid id;
    uint32_t offset;
    uint32_t length;
    uint32_t flags;
};

// A metadata region of `region_length` bytes holding `items` in the table.
Bytes region_bytes(const std::vector<RawItem>& items, size_t region_length = kMiB,
                   uint16_t count_override = UINT16_MAX) {
    Bytes b(region_length);
    put_text(b, 0, "metadata");
    put16(b, 10,
          count_override != UINT16_MAX ? count_override : static_cast<uint16_t>(items.size()));
    for (size_t i = 0; i < items.size(); ++i) {
        const size_t off = 32 + 32 * i;
        put_guid(b, off, items[i].id);
        put32(b, off + 16, items[i].offset);
        put32(b, off + 20, items[i].length);
        put32(b, off + 24, items[i].flags);
    }
    return b;
}

// QEMU's layout (spec §14.3): 100 MiB, 8 MiB blocks, 512/512.
Bytes qemu_region() {
    Bytes b = region_bytes({{kFileParametersGuid, 0x10000, 8, 4},
                            {kVirtualDiskSizeGuid, 0x10008, 8, 6},
                            {kVirtualDiskIdGuid, 0x10010, 16, 6},
                            {kLogicalSectorSizeGuid, 0x10020, 4, 6},
                            {kPhysicalSectorSizeGuid, 0x10024, 4, 6}});
    put32(b, 0x10000, 8 * kMiB);
    put32(b, 0x10004, 0);
    put64(b, 0x10008, 100 * kMiB);
    put_guid(b, 0x10010, test_guid(5));
    put32(b, 0x10020, 512);
    put32(b, 0x10024, 512);
    return b;
}

Result<ImageMetadata> parse_region(const Bytes& region) {
    ASSIGN_OR_RETURN(MetadataTable table, parse_metadata_table(region, region.size()));
    return parse_image_metadata_from_region(table, region);
}

TEST(VhdxMetadata, ParsesQemuLayout) {
    const Bytes region = qemu_region();
    auto table = parse_metadata_table(region, kMiB);
    ASSERT_OK(table);
    ASSERT_EQ(table->entries.size(), 5u);
    EXPECT_EQ(table->entries[0].item_id, kFileParametersGuid);
    EXPECT_TRUE(table->entries[0].is_required);
    EXPECT_FALSE(table->entries[0].is_virtual_disk);
    EXPECT_TRUE(table->entries[1].is_virtual_disk);
    EXPECT_FALSE(table->entries[1].is_user);

    auto reads = plan_metadata_item_reads(*table, 3 * kMiB);
    ASSERT_OK(reads);
    ASSERT_EQ(reads->size(), 5u);
    EXPECT_EQ((*reads)[1], (MetadataItemRead{kVirtualDiskSizeGuid, 3 * kMiB + 0x10008, 8}));

    auto m = parse_image_metadata_from_region(*table, region);
    ASSERT_OK(m);
    EXPECT_EQ(m->file_parameters, (FileParameters{8 * kMiB, false, false}));
    EXPECT_EQ(m->virtual_disk_size, 100 * kMiB);
    EXPECT_EQ(m->virtual_disk_id, test_guid(5));
    EXPECT_EQ(m->logical_sector_size, 512u);
    EXPECT_EQ(m->physical_sector_size, 512u);
    EXPECT_FALSE(m->parent_locator);
}

TEST(VhdxMetadata, TableRoundTrip) {
    MetadataTable t;
    t.entries = {{kFileParametersGuid, 0x10000, 8, false, false, true},
                 {test_guid(3), 0x20000, 100, true, true, false},
                 {test_guid(4), 0, 0, false, false, false}};
    Bytes out(kMetadataTableSize);
    ASSERT_OK(encode_metadata_table(t, out));
    auto back = parse_metadata_table(out, kMiB);
    ASSERT_OK(back);
    EXPECT_EQ(*back, t);
}

TEST(VhdxMetadata, TableErrors) {
    Bytes b = region_bytes({});
    put_text(b, 0, "metadatx");
    EXPECT_ERROR(parse_metadata_table(b, kMiB), ErrorKind::kCorrupt, "metadata table signature");
    EXPECT_ERROR(parse_metadata_table(region_bytes({}, kMiB, 2048), kMiB), ErrorKind::kCorrupt,
                 "metadata table entry count 2048 exceeds limit 2047");
    EXPECT_ERROR(parse_metadata_table(region_bytes({}), 0x8000), ErrorKind::kCorrupt,
                 "metadata region length 32768 is less than");
    EXPECT_ERROR(parse_metadata_table(ByteSpan(b).first(100), kMiB), ErrorKind::kInvalidArgument,
                 "got 100");
    const Guid g = test_guid(7);
    const std::string name = g.to_string();
    EXPECT_ERROR(
        parse_metadata_table(region_bytes({{g, 0x10000, kMiB + 1, 0}}, 4 * kMiB), 4 * kMiB),
        ErrorKind::kCorrupt, "(" + name + ") length 1048577 exceeds limit 1048576");
    EXPECT_ERROR(parse_metadata_table(region_bytes({{g, 0x10000, 0, 0}}), kMiB),
                 ErrorKind::kCorrupt, "has length 0 but offset 0x10000");
    EXPECT_ERROR(parse_metadata_table(region_bytes({{g, 0x100, 8, 0}}), kMiB), ErrorKind::kCorrupt,
                 "offset 0x100 lies inside the table");
    EXPECT_ERROR(parse_metadata_table(region_bytes({{g, 0xFFFF0, 0x20, 0}}), kMiB),
                 ErrorKind::kCorrupt, "at 0xffff0+0x20 runs past the metadata region of 0x100000");
    EXPECT_ERROR(parse_metadata_table(region_bytes({{g, 0x10000, 8, 0}, {g, 0x10010, 8, 0}}), kMiB),
                 ErrorKind::kCorrupt, "metadata entry 1 (" + name + ") is listed twice");
    // The same GUID once as system and once as user item is allowed.
    EXPECT_TRUE(
        parse_metadata_table(region_bytes({{g, 0x10000, 8, 0}, {g, 0x10010, 8, 1}}), kMiB).ok());
    EXPECT_ERROR(parse_metadata_table(
                     region_bytes({{g, 0x10000, 16, 0}, {test_guid(8), 0x10008, 8, 0}}), kMiB),
                 ErrorKind::kCorrupt, "overlaps item " + test_guid(8).to_string());
}

TEST(VhdxMetadata, AtMost1024UserEntries) {
    std::vector<RawItem> items;
    for (uint32_t i = 0; i < 1025; ++i)
        items.push_back({Guid::make(i + 1, 0, 0, 0), 0, 0, 1});
    EXPECT_ERROR(parse_metadata_table(region_bytes(items), kMiB), ErrorKind::kCorrupt,
                 "more than 1024 user entries");
    items.pop_back();
    EXPECT_TRUE(parse_metadata_table(region_bytes(items), kMiB).ok());
}

TEST(VhdxMetadata, UnknownRequiredItemRefusedNamingGuid) {
    Bytes b = qemu_region();
    const Guid unknown = parse_guid_text("deadbeef-0000-1111-2222-333344445555").value();
    put16(b, 10, 6);
    put_guid(b, 32 + 5 * 32, unknown);
    put32(b, 32 + 5 * 32 + 16, 0x10100);
    put32(b, 32 + 5 * 32 + 20, 4);
    put32(b, 32 + 5 * 32 + 24, 4);  // IsRequired
    auto table = parse_metadata_table(b, kMiB);
    ASSERT_OK(table);
    EXPECT_ERROR(plan_metadata_item_reads(*table, 0), ErrorKind::kUnsupported,
                 "unknown required metadata item deadbeef-0000-1111-2222-333344445555");
    EXPECT_ERROR(parse_image_metadata_from_region(*table, b), ErrorKind::kUnsupported,
                 "deadbeef-0000-1111-2222-333344445555");
    // Not required: ignored.
    put32(b, 32 + 5 * 32 + 24, 0);
    table = parse_metadata_table(b, kMiB);
    ASSERT_OK(table);
    EXPECT_TRUE(parse_image_metadata_from_region(*table, b).ok());
}

TEST(VhdxMetadata, RequiredUserItemUnderKnownGuidIsNotOurs) {
    Bytes b = qemu_region();
    put16(b, 10, 6);
    put_guid(b, 32 + 5 * 32, kFileParametersGuid);
    put32(b, 32 + 5 * 32 + 16, 0x10100);
    put32(b, 32 + 5 * 32 + 20, 8);
    put32(b, 32 + 5 * 32 + 24, 5);  // IsUser | IsRequired
    auto table = parse_metadata_table(b, kMiB);
    ASSERT_OK(table);
    EXPECT_ERROR(parse_image_metadata_from_region(*table, b), ErrorKind::kUnsupported,
                 "unknown required metadata item " + kFileParametersGuid.to_string());
    put32(b, 32 + 5 * 32 + 24, 1);  // a plain user item is ignored
    table = parse_metadata_table(b, kMiB);
    ASSERT_OK(table);
    EXPECT_TRUE(parse_image_metadata_from_region(*table, b).ok());
}

TEST(VhdxMetadata, MissingMandatoryItem) {
    Bytes b = qemu_region();
    put16(b, 10, 4);  // drops the physical sector size entry
    EXPECT_ERROR(parse_region(b), ErrorKind::kCorrupt,
                 "metadata item physical sector size is missing");
}

TEST(VhdxMetadata, ItemValueErrors) {
    auto with = [](size_t off, uint64_t value, int width) {
        Bytes b = qemu_region();
        if (width == 4)
            put32(b, off, static_cast<uint32_t>(value));
        else
            put64(b, off, value);
        return b;
    };
    EXPECT_ERROR(parse_region(with(0x10000, 3 * kMiB, 4)), ErrorKind::kCorrupt,
                 "block size 3145728 is not a power of two");
    EXPECT_ERROR(parse_region(with(0x10000, 512 * kMiB, 4)), ErrorKind::kCorrupt,
                 "block size 536870912");
    EXPECT_ERROR(parse_region(with(0x10000, kMiB / 2, 4)), ErrorKind::kCorrupt,
                 "block size 524288");
    EXPECT_ERROR(parse_region(with(0x10020, 1024, 4)), ErrorKind::kCorrupt,
                 "logical sector size 1024 is not 512 or 4096");
    EXPECT_ERROR(parse_region(with(0x10024, 520, 4)), ErrorKind::kCorrupt,
                 "physical sector size 520 is not 512 or 4096");
    EXPECT_ERROR(parse_region(with(0x10008, 100 * kMiB + 1, 8)), ErrorKind::kCorrupt,
                 "virtual disk size 104857601 is not a multiple of the logical sector size 512");
    EXPECT_ERROR(parse_region(with(0x10008, 64 * kTiB + 512, 8)), ErrorKind::kCorrupt,
                 "virtual disk size 70368744178176 exceeds limit 70368744177664");
    // Item lengths below the item size.
    Bytes b = qemu_region();
    put32(b, 32 + 16 + 4, 4);  // file parameters length 4
    EXPECT_ERROR(parse_region(b), ErrorKind::kCorrupt,
                 "metadata item file parameters length 4 is less than 8");
    b = qemu_region();
    put32(b, 32 + 2 * 32 + 20, 8);  // disk id length 8
    EXPECT_ERROR(parse_region(b), ErrorKind::kCorrupt, "virtual disk id length 8 is less than 16");
    // HasParent without a locator.
    b = qemu_region();
    put32(b, 0x10004, 2);
    EXPECT_ERROR(parse_region(b), ErrorKind::kCorrupt, "has_parent but there is no parent locator");
}

TEST(VhdxMetadata, FileParameterFlags) {
    Bytes item(8);
    put32(item, 0, 32 * kMiB);
    put32(item, 4, 3);
    auto fp = parse_file_parameters(item);
    ASSERT_OK(fp);
    EXPECT_TRUE(fp->leave_block_allocated);
    EXPECT_TRUE(fp->has_parent);
}

TEST(VhdxMetadata, EncodeRegionRoundTripWithLocator) {
    ImageMetadata m;
    m.file_parameters = {2 * kMiB, false, true};
    m.virtual_disk_size = 10 * kGiB;
    m.virtual_disk_id = test_guid(9);
    m.logical_sector_size = 4096;
    m.physical_sector_size = 4096;
    VhdxParentLinkage link;
    link.parent_linkage = test_guid(2);
    link.relative_path = "..\\parent.vhdx";
    m.parent_locator = make_vhdx_parent_locator(link);
    auto region = encode_metadata_region(m);
    ASSERT_OK(region);
    auto table = parse_metadata_table(*region, kMiB);
    ASSERT_OK(table);
    ASSERT_EQ(table->entries.size(), 6u);
    EXPECT_EQ(table->entries[0].offset, 0x10000u);
    EXPECT_EQ(table->entries[1].offset, 0x10008u);
    EXPECT_EQ(table->entries[5].item_id, kParentLocatorGuid);
    EXPECT_TRUE(table->entries[5].is_required);
    auto back = parse_image_metadata_from_region(*table, *region);
    ASSERT_OK(back);
    EXPECT_EQ(*back, m);
}

TEST(VhdxMetadata, EncodeRefusesInvalidValues) {
    ImageMetadata m;
    m.file_parameters.block_size = 3 * kMiB;
    EXPECT_ERROR(encode_metadata_region(m), ErrorKind::kCorrupt, "block size 3145728");
}

TEST(VhdxMetadata, SuppliedBytesMustCoverItems) {
    const Bytes region = qemu_region();
    auto table = parse_metadata_table(region, kMiB);
    ASSERT_OK(table);
    EXPECT_ERROR(parse_image_metadata_from_region(*table, ByteSpan(region).first(0x10010)),
                 ErrorKind::kInvalidArgument, "lies past the 65552 bytes supplied");
    std::vector<MetadataItemBytes> none;
    EXPECT_ERROR(parse_image_metadata(*table, none), ErrorKind::kInvalidArgument,
                 "no bytes supplied for metadata item file parameters");
}

}  // namespace
}  // namespace coblock::vhdx
