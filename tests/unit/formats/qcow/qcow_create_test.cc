// Tests for the qcow version 1 creation layout: geometry choice, header
// fields, backing file name placement, L1 table placement and file size, and
// that the result parses back. Covers specs/qcow-v1.md §9.
#include "formats/qcow/qcow_create.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "formats/qcow/qcow_tables.h"

namespace coblock::qcow {
namespace {

using ::testing::HasSubstr;

CreateOptions create_options(uint64_t size, std::string backing_file = {}) {
    CreateOptions options;
    options.size = size;
    options.backing_file = std::move(backing_file);
    return options;
}

// The image file the layout describes, materialised.
std::vector<std::byte> materialise(const CreateLayout& layout) {
    std::vector<std::byte> file(layout.file_size);
    for (const LayoutWrite& w : layout.writes) {
        EXPECT_LE(w.offset + w.bytes.size(), file.size());
        std::copy(w.bytes.begin(), w.bytes.end(), file.begin() + w.offset);
    }
    return file;
}

TEST(QcowCreate, DefaultGeometryWithoutBackingFile) {
    auto layout = build_create_layout(create_options(100 * 1024 * 1024));
    ASSERT_TRUE(layout.ok()) << layout.error().message;
    Header expected;
    expected.size = 100 * 1024 * 1024;
    expected.cluster_bits = 12;
    expected.l2_bits = 9;
    expected.l1_table_offset = 48;
    EXPECT_EQ(layout->header, expected);
    EXPECT_EQ(layout->geometry, (Geometry{12, 9, 100 * 1024 * 1024, 50}));
    ASSERT_EQ(layout->writes.size(), 1u);
    EXPECT_EQ(layout->writes[0].offset, 0u);
    EXPECT_EQ(layout->writes[0].bytes.size(), 48u);
    // 50 entries = 400 bytes, zero-filled in 512-byte writes (spec table: 560).
    EXPECT_EQ(layout->zero_fill, (Extent{48, 512}));
    EXPECT_EQ(layout->file_size, 560u);
}

TEST(QcowCreate, BackingFileGeometryAndName) {
    auto layout = build_create_layout(create_options(uint64_t{1} << 30, "a.qcow2"));
    ASSERT_TRUE(layout.ok()) << layout.error().message;
    const Header& h = layout->header;
    EXPECT_EQ(h.cluster_bits, 9);
    EXPECT_EQ(h.l2_bits, 12);
    EXPECT_EQ(h.backing_file_offset, 48u);
    EXPECT_EQ(h.backing_file_size, 7u);
    EXPECT_EQ(h.l1_table_offset, 56u);  // 48 + 7 rounded up to 8
    EXPECT_EQ(layout->geometry.l1_size, 512u);
    EXPECT_EQ(layout->zero_fill, (Extent{56, 4096}));
    EXPECT_EQ(layout->file_size, 4152u);  // spec table

    std::vector<std::byte> file = materialise(*layout);
    auto parsed = parse_header(file);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(*parsed, h);
    auto extent = backing_file_name_extent(*parsed);
    ASSERT_TRUE(extent.ok() && extent->has_value());
    auto name = parse_backing_file_name(
        *parsed, ByteSpan(file).subspan((*extent)->offset, (*extent)->length));
    ASSERT_TRUE(name.ok());
    EXPECT_EQ(*name, "a.qcow2");
    EXPECT_EQ(file[55], std::byte{0});  // padding after the name
}

TEST(QcowCreate, HeaderSizeRoundsToEight) {
    for (size_t length = 1; length <= 17; ++length) {
        SCOPED_TRACE(length);
        auto layout = build_create_layout(create_options(1 << 20, std::string(length, 'x')));
        ASSERT_TRUE(layout.ok());
        const uint64_t header_size = (48 + length + 7) / 8 * 8;
        EXPECT_EQ(layout->header.l1_table_offset, header_size);
        EXPECT_EQ(layout->writes[0].bytes.size(), header_size);
        EXPECT_EQ(layout->zero_fill.offset, header_size);
        EXPECT_EQ(layout->file_size, header_size + 512);  // 1 entry, one 512-byte fill
    }
}

TEST(QcowCreate, SizeRoundsUpTo512) {
    auto layout = build_create_layout(create_options(1000001));
    ASSERT_TRUE(layout.ok());
    EXPECT_EQ(layout->header.size, 1000448u);
    EXPECT_EQ(virtual_size(layout->header), 1000448u);
    EXPECT_EQ(build_create_layout(create_options(1))->header.size, 512u);
}

TEST(QcowCreate, L1FillIsMultipleOf512) {
    // 65 entries = 520 bytes -> two 512-byte writes.
    auto layout = build_create_layout(create_options(65ull * 2 * 1024 * 1024));
    ASSERT_TRUE(layout.ok());
    EXPECT_EQ(layout->geometry.l1_size, 65u);
    EXPECT_EQ(layout->zero_fill, (Extent{48, 1024}));
    EXPECT_EQ(layout->file_size, 1072u);
    // Exactly 64 entries needs exactly one 512-byte write.
    EXPECT_EQ(build_create_layout(create_options(64ull * 2 * 1024 * 1024))->zero_fill.length, 512u);
}

TEST(QcowCreate, VvfatBackingNameIsDroppedButKeepsGeometry) {
    auto layout = build_create_layout(create_options(1 << 20, "fat:"));
    ASSERT_TRUE(layout.ok());
    EXPECT_EQ(layout->header.backing_file_offset, 0u);
    EXPECT_EQ(layout->header.backing_file_size, 0u);
    EXPECT_EQ(layout->header.cluster_bits, 9);
    EXPECT_EQ(layout->header.l2_bits, 12);
    EXPECT_EQ(layout->header.l1_table_offset, 48u);
}

TEST(QcowCreate, Errors) {
    auto zero = build_create_layout(create_options(0));
    ASSERT_FALSE(zero.ok());
    EXPECT_EQ(zero.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_EQ(zero.error().message, "qcow: image size 0 is too small");

    auto huge = build_create_layout(create_options(~uint64_t{0}));
    ASSERT_FALSE(huge.ok());
    EXPECT_EQ(huge.error().message,
              "qcow: image size 18446744073709551615 exceeds limit 9223372036854775807");

    // Default geometry: one L1 entry per 2 MiB, at most kMaxL1Size entries.
    EXPECT_TRUE(build_create_layout(create_options(kMaxL1Size << 21)).ok());
    auto too_big = build_create_layout(create_options((kMaxL1Size << 21) + 512));
    ASSERT_FALSE(too_big.ok());
    EXPECT_EQ(too_big.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_THAT(too_big.error().message, HasSubstr("l1_size 268435456 exceeds limit 268435455"));

    EXPECT_TRUE(build_create_layout(create_options(512, std::string(1023, 'b'))).ok());
    auto long_name = build_create_layout(create_options(512, std::string(1024, 'b')));
    ASSERT_FALSE(long_name.ok());
    EXPECT_EQ(long_name.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_EQ(long_name.error().message, "qcow: backing file name length 1024 exceeds limit 1023");

    auto nul = build_create_layout(create_options(512, std::string("a\0b", 3)));
    ASSERT_FALSE(nul.ok());
    EXPECT_THAT(nul.error().message, HasSubstr("nul byte"));
}

TEST(QcowCreate, LayoutParsesBack) {
    for (const CreateOptions& options : {create_options(512), create_options(5 << 20),
                                         create_options(3 << 20, "/images/base image.qcow2")}) {
        SCOPED_TRACE(options.size);
        auto layout = build_create_layout(options);
        ASSERT_TRUE(layout.ok());
        std::vector<std::byte> file = materialise(*layout);
        auto header = parse_header(file);
        ASSERT_TRUE(header.ok()) << header.error().message;
        EXPECT_TRUE(check_supported(*header).ok());
        EXPECT_EQ(*header_geometry(*header), layout->geometry);
        auto l1_extent = l1_table_extent(*header);
        ASSERT_TRUE(l1_extent.ok());
        EXPECT_LE(l1_extent->offset + l1_extent->length, file.size());
        auto l1 = parse_l1_table(layout->geometry,
                                 ByteSpan(file).subspan(l1_extent->offset, l1_extent->length));
        ASSERT_TRUE(l1.ok());
        for (uint64_t entry : *l1)
            EXPECT_EQ(entry, 0u);
    }
}

}  // namespace
}  // namespace coblock::qcow
