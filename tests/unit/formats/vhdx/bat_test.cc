// Tests of formats/vhdx/bat: entry encoding, geometry and the chunk-ratio
// interleave (spec §8.5's worked example), and every check of check_bat.
#include "formats/vhdx/bat.h"

#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

constexpr uint8_t kFull = static_cast<uint8_t>(PayloadState::kFullyPresent);
constexpr uint8_t kPartial = static_cast<uint8_t>(PayloadState::kPartiallyPresent);

TEST(VhdxBat, EntryEncoding) {
    const BatEntry e = decode_bat_entry(0x0000000000800006);
    EXPECT_EQ(e.state, 6);
    EXPECT_EQ(e.file_offset_mb, 8u);
    EXPECT_EQ(e.file_offset(), 8 * kMiB);
    EXPECT_EQ(e.reserved, 0u);
    EXPECT_EQ(encode_bat_entry(e), 0x800006u);
    EXPECT_EQ(make_bat_entry(6, 8 * kMiB), e);
    // Lossless for any value, including reserved bits.
    for (uint64_t raw : {0ull, 0xFFFFFFFFFFFFFFFFull, 0x123456789ABCDEF7ull, 0xFFFF8ull}) {
        EXPECT_EQ(encode_bat_entry(decode_bat_entry(raw)), raw);
    }
    EXPECT_EQ(decode_bat_entry(0xFFFF8).reserved, 0x1FFFFu);
    EXPECT_EQ(decode_bat_entry(UINT64_MAX).file_offset_mb, kMaxFileOffsetMb);
}

TEST(VhdxBat, GeometryWorkedExample) {
    // 10 GiB, 32 MiB blocks, 512-byte sectors (spec §8.5).
    auto g = compute_bat_geometry(32 * kMiB, 512, 10 * kGiB, false);
    ASSERT_OK(g);
    EXPECT_EQ(g->chunk_ratio, 128u);
    EXPECT_EQ(g->chunk_size, 4 * kGiB);
    EXPECT_EQ(g->data_blocks, 320u);
    EXPECT_EQ(g->bitmap_blocks, 3u);
    EXPECT_EQ(g->entry_count, 322u);
    EXPECT_EQ(g->table_bytes(), 2576u);
    auto d = compute_bat_geometry(32 * kMiB, 512, 10 * kGiB, true);
    ASSERT_OK(d);
    EXPECT_EQ(d->entry_count, 387u);

    EXPECT_EQ(payload_bat_index(*g, 127), 127u);
    EXPECT_EQ(sector_bitmap_bat_index(*g, 0), 128u);
    EXPECT_EQ(payload_bat_index(*g, 128), 129u);
    EXPECT_EQ(sector_bitmap_bat_index(*g, 1), 257u);
    EXPECT_EQ(payload_bat_index(*g, 256), 258u);
    EXPECT_EQ(payload_bat_index(*g, 319), 321u);
    EXPECT_EQ(sector_bitmap_bat_index(*d, 2), 386u);
    EXPECT_TRUE(is_sector_bitmap_index(*g, 128));
    EXPECT_TRUE(is_sector_bitmap_index(*g, 257));
    EXPECT_FALSE(is_sector_bitmap_index(*g, 129));
    EXPECT_EQ(chunk_of_bat_index(*g, 257), 1u);
    // The inverse maps back for every payload block.
    for (uint64_t b = 0; b < g->data_blocks; ++b) {
        const uint64_t i = payload_bat_index(*g, b);
        ASSERT_FALSE(is_sector_bitmap_index(*g, i));
        ASSERT_EQ(block_of_bat_index(*g, i), b);
    }

    auto loc = locate_virtual_offset(*g, 5369761792);
    ASSERT_OK(loc);
    EXPECT_EQ(loc->block, 160u);
    EXPECT_EQ(loc->offset_in_block, 1052672u);
    EXPECT_EQ(loc->bat_index, 161u);
    EXPECT_EQ(loc->chunk, 1u);
    EXPECT_EQ(loc->bitmap_bat_index, 257u);
    EXPECT_EQ(loc->sector_in_chunk, 2099208u);
    EXPECT_EQ(loc->sector_in_chunk / 8, 262401u);
    EXPECT_EQ(loc->bytes_left_in_block, 32 * kMiB - 1052672);
    auto last = locate_virtual_offset(*g, 10 * kGiB - 512);
    ASSERT_OK(last);
    EXPECT_EQ(last->bytes_left_in_block, 512u);
    EXPECT_ERROR(locate_virtual_offset(*g, 10 * kGiB), ErrorKind::kInvalidArgument,
                 "virtual offset 10737418240 is not below the virtual disk size 10737418240");
}

TEST(VhdxBat, ChunkRatios) {
    struct Case {
        uint64_t block_size, lss, ratio;
    };
    for (const Case& c : {Case{kMiB, 512, 4096}, Case{256 * kMiB, 512, 16}, Case{kMiB, 4096, 32768},
                          Case{256 * kMiB, 4096, 128}, Case{8 * kMiB, 512, 512}}) {
        auto g = compute_bat_geometry(c.block_size, c.lss, 0, false);
        ASSERT_OK(g);
        EXPECT_EQ(g->chunk_ratio, c.ratio) << c.block_size << "/" << c.lss;
        EXPECT_EQ(g->entry_count, 0u);  // size 0: no entries (QEMU underflows here)
    }
}

TEST(VhdxBat, EntryCountsAtChunkBoundaries) {
    // 8 MiB blocks, 512: chunk ratio 512, chunk 4 GiB.
    auto one_chunk = compute_bat_geometry(8 * kMiB, 512, 4 * kGiB, false);
    ASSERT_OK(one_chunk);
    EXPECT_EQ(one_chunk->entry_count, 512u);  // no trailing bitmap entry
    auto diff = compute_bat_geometry(8 * kMiB, 512, 4 * kGiB, true);
    ASSERT_OK(diff);
    EXPECT_EQ(diff->entry_count, 513u);
    auto plus_one = compute_bat_geometry(8 * kMiB, 512, 4 * kGiB + 512, false);
    ASSERT_OK(plus_one);
    EXPECT_EQ(plus_one->entry_count, 514u);
    auto max = compute_bat_geometry(kMiB, 512, kMaxVirtualDiskSize, true);
    ASSERT_OK(max);
    EXPECT_EQ(max->entry_count, 16384u * 4097u);
}

TEST(VhdxBat, GeometryErrors) {
    EXPECT_ERROR(compute_bat_geometry(3 * kMiB, 512, 0, false), ErrorKind::kCorrupt,
                 "block size 3145728");
    EXPECT_ERROR(compute_bat_geometry(512 * kMiB, 512, 0, false), ErrorKind::kCorrupt,
                 "block size 536870912");
    EXPECT_ERROR(compute_bat_geometry(kMiB, 1024, 0, false), ErrorKind::kCorrupt,
                 "logical sector size 1024");
    EXPECT_ERROR(compute_bat_geometry(kMiB, 4096, 512, false), ErrorKind::kCorrupt,
                 "virtual disk size 512");
    EXPECT_ERROR(compute_bat_geometry(kMiB, 512, kMaxVirtualDiskSize + 512, false),
                 ErrorKind::kCorrupt, "virtual disk size 70368744178176");
}

TEST(VhdxBat, ReadWriteEntries) {
    Bytes table(16);
    ASSERT_OK(write_bat_entry(table, 1, make_bat_entry(kFull, 5 * kMiB)));
    EXPECT_EQ(get64(table, 8), 0x500006u);
    auto e = read_bat_entry(table, 1);
    ASSERT_OK(e);
    EXPECT_EQ(e->file_offset(), 5 * kMiB);
    EXPECT_ERROR(read_bat_entry(table, 2), ErrorKind::kInvalidArgument,
                 "bat entry 2 lies past the 16 bytes");
    EXPECT_ERROR(write_bat_entry(table, 2, {}), ErrorKind::kInvalidArgument, "bat entry 2");
}

TEST(VhdxBat, RegionLength) {
    auto g = compute_bat_geometry(kMiB, 512, 64 * kGiB, false);  // 65536 + 15 entries
    ASSERT_OK(g);
    EXPECT_TRUE(check_bat_region_length(*g, kMiB).ok());
    EXPECT_ERROR(check_bat_region_length(*g, 0x80000), ErrorKind::kCorrupt,
                 "bat region length 524288 is less than the 524408 bytes of 65551 entries");
}

// A small image: 10 MiB in 2 MiB blocks → 5 blocks, chunk ratio 2048.
class VhdxBatCheck : public ::testing::Test {
  protected:
    void SetUp() override {
        g_ = compute_bat_geometry(2 * kMiB, 512, 10 * kMiB, false).value();
        table_.assign(g_.table_bytes(), std::byte{0});
    }
    void set(uint64_t block, uint8_t state, uint64_t offset) {
        ASSERT_OK(
            write_bat_entry(table_, payload_bat_index(g_, block), make_bat_entry(state, offset)));
    }
    Status check(uint64_t file_size = 64 * kMiB) {
        return check_bat(g_, table_, file_size, extents_);
    }
    BatGeometry g_;
    Bytes table_;
    std::vector<Extent> extents_ = {{"header section", 0, kMiB},
                                    {"log", kMiB, kMiB},
                                    {"bat region", 2 * kMiB, kMiB},
                                    {"metadata region", 3 * kMiB, kMiB}};
};

TEST_F(VhdxBatCheck, AcceptsValidTable) {
    set(0, kFull, 4 * kMiB);
    set(1, 2, 0);
    set(2, 0, 0);
    set(3, 3, 0);
    set(4, kFull, 6 * kMiB);
    EXPECT_TRUE(check().ok()) << check().error().message;
    // States 1, 3, 5 with stale offsets are not allocations.
    set(1, 5, 4 * kMiB);
    set(3, 1, 6 * kMiB);
    EXPECT_TRUE(check().ok());
}

TEST_F(VhdxBatCheck, RejectsReservedAndDifferencingStates) {
    set(2, 4, 0);
    EXPECT_ERROR(check(), ErrorKind::kCorrupt,
                 "bat entry 2 (payload block 2) has invalid payload state 4");
    set(2, kPartial, 4 * kMiB);
    EXPECT_ERROR(check(), ErrorKind::kCorrupt, "has invalid payload state 7");
}

TEST_F(VhdxBatCheck, RejectsOffsetInHeaderSection) {
    set(1, kFull, 0);
    EXPECT_ERROR(check(), ErrorKind::kCorrupt,
                 "bat entry 1 (payload block 1) file offset 0x0 lies in the header section");
}

TEST_F(VhdxBatCheck, RejectsBlockPastEndOfFile) {
    set(0, kFull, 8 * kMiB);
    EXPECT_ERROR(check(9 * kMiB), ErrorKind::kCorrupt,
                 "bat entry 0 (payload block 0) file offset 0x800000 points past the end of the "
                 "file at 0x900000");
    EXPECT_TRUE(check(10 * kMiB).ok());
}

TEST_F(VhdxBatCheck, PartialLastBlockNeedOnlyCoverTheDisk) {
    // 9 MiB disk: the last 2 MiB block holds 1 MiB of disk (QEMU's fixed images).
    g_ = compute_bat_geometry(2 * kMiB, 512, 9 * kMiB, false).value();
    set(4, kFull, 8 * kMiB);
    EXPECT_TRUE(check(9 * kMiB).ok());
    EXPECT_ERROR(check(9 * kMiB - 4096), ErrorKind::kCorrupt, "points past the end of the file");
}

TEST_F(VhdxBatCheck, RejectsOverlaps) {
    set(0, kFull, 3 * kMiB);
    EXPECT_ERROR(
        check(), ErrorKind::kCorrupt,
        "bat entry 0 (payload block 0) block at 0x300000 overlaps metadata region at 0x300000");
    set(0, kFull, 4 * kMiB);
    set(3, kFull, 5 * kMiB);  // blocks are 2 MiB: 4-6 MiB and 5-7 MiB overlap
    EXPECT_ERROR(check(), ErrorKind::kCorrupt,
                 "bat entry 3 (payload block 3) block at 0x500000 overlaps bat entry 0 (payload "
                 "block 0) block at 0x400000");
    set(3, kFull, 4 * kMiB);  // the same offset twice
    EXPECT_ERROR(check(), ErrorKind::kCorrupt, "overlaps");
}

TEST_F(VhdxBatCheck, SuppliedTableTooShort) {
    table_.resize(8);
    EXPECT_ERROR(check(), ErrorKind::kInvalidArgument, "bat of 8 bytes supplied, 40 needed");
}

TEST(VhdxBatCheckBitmaps, NonDifferencingIgnoresBitmapStateButChecksPlacement) {
    // 1 MiB blocks, 512: chunk ratio 4096; 4097 blocks → entry 4096 is a bitmap.
    const BatGeometry g = compute_bat_geometry(kMiB, 512, 4097 * kMiB, false).value();
    ASSERT_EQ(g.entry_count, 4098u);
    Bytes table(g.table_bytes());
    const std::vector<Extent> none;
    ASSERT_OK(write_bat_entry(table, 4096, BatEntry{5, 7, 0}));  // garbage: ignored
    EXPECT_TRUE(check_bat(g, table, 16 * kMiB, none).ok());
    ASSERT_OK(write_bat_entry(table, 4096, make_bat_entry(kSectorBitmapPresent, 32 * kMiB)));
    EXPECT_ERROR(
        check_bat(g, table, 16 * kMiB, none), ErrorKind::kCorrupt,
        "bat entry 4096 (sector bitmap of chunk 0) file offset 0x2000000 points past the end");
}

TEST(VhdxBatCheckBitmaps, Differencing) {
    const BatGeometry g = compute_bat_geometry(kMiB, 512, 8 * kMiB, true).value();
    ASSERT_EQ(g.entry_count, 4097u);
    Bytes table(g.table_bytes());
    const std::vector<Extent> fixed = {{"header section", 0, kMiB}};
    ASSERT_OK(write_bat_entry(table, 0, make_bat_entry(kPartial, 2 * kMiB)));
    EXPECT_ERROR(check_bat(g, table, 16 * kMiB, fixed), ErrorKind::kCorrupt,
                 "bat entry 0 (payload block 0) is partially present but the sector bitmap of "
                 "chunk 0 is not present");
    ASSERT_OK(write_bat_entry(table, 4096, make_bat_entry(kSectorBitmapPresent, 4 * kMiB)));
    EXPECT_TRUE(check_bat(g, table, 16 * kMiB, fixed).ok());
    ASSERT_OK(write_bat_entry(table, 0, make_bat_entry(kFull, 2 * kMiB)));
    ASSERT_OK(write_bat_entry(table, 4096, make_bat_entry(3, 4 * kMiB)));
    EXPECT_ERROR(check_bat(g, table, 16 * kMiB, fixed), ErrorKind::kCorrupt,
                 "(sector bitmap of chunk 0) has reserved sector bitmap state 3");
    ASSERT_OK(write_bat_entry(table, 4096, make_bat_entry(kSectorBitmapPresent, 0)));
    EXPECT_ERROR(check_bat(g, table, 16 * kMiB, fixed), ErrorKind::kCorrupt,
                 "(sector bitmap of chunk 0) file offset 0x0 lies in the header section");
    ASSERT_OK(write_bat_entry(table, 4096, make_bat_entry(kSectorBitmapPresent, 2 * kMiB)));
    EXPECT_ERROR(check_bat(g, table, 16 * kMiB, fixed), ErrorKind::kCorrupt, "overlaps");
}

}  // namespace
}  // namespace coblock::vhdx
