// Helpers shared by the VHDX format tests: byte buffers built by hand, error
// matchers, and a whole-image parse that runs every pure step in open order.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/vhdx.h"

namespace coblock::vhdx::testing {

using Bytes = std::vector<std::byte>;

inline Bytes zeros(size_t n) {
    return Bytes(n);
}
inline Bytes text_bytes(std::string_view s) {
    Bytes b(s.size());
    for (size_t i = 0; i < s.size(); ++i)
        b[i] = static_cast<std::byte>(s[i]);
    return b;
}
inline void put8(Bytes& b, size_t off, uint8_t v) {
    b.at(off) = static_cast<std::byte>(v);
}
inline void put16(Bytes& b, size_t off, uint16_t v) {
    store_le<uint16_t>(&b.at(off + 1) - 1, v);
}
inline void put32(Bytes& b, size_t off, uint32_t v) {
    store_le<uint32_t>(&b.at(off + 3) - 3, v);
}
inline void put64(Bytes& b, size_t off, uint64_t v) {
    store_le<uint64_t>(&b.at(off + 7) - 7, v);
}
inline void put_text(Bytes& b, size_t off, std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i)
        b.at(off + i) = static_cast<std::byte>(s[i]);
}
inline void put_guid(Bytes& b, size_t off, const Guid& g) {
    for (size_t i = 0; i < 16; ++i)
        b.at(off + i) = static_cast<std::byte>(g.bytes[i]);
}
inline uint32_t get32(const Bytes& b, size_t off) {
    return load_le<uint32_t>(&b.at(off + 3) - 3);
}
inline uint64_t get64(const Bytes& b, size_t off) {
    return load_le<uint64_t>(&b.at(off + 7) - 7);
}

inline Guid test_guid(uint8_t seed) {
    Guid g;
    for (size_t i = 0; i < 16; ++i)
        g.bytes[i] = static_cast<uint8_t>(seed * 16 + i + 1);
    return g;
}

// EXPECT_ERROR(result, ErrorKind::kCorrupt, "substring of the message").
#define EXPECT_ERROR(expr, error_kind, substring)                                          \
    do {                                                                                   \
        const auto& expect_error_result = (expr);                                          \
        ASSERT_FALSE(expect_error_result.ok()) << "expected an error";                     \
        EXPECT_EQ(expect_error_result.error().kind, (error_kind))                          \
            << expect_error_result.error().message;                                        \
        EXPECT_THAT(expect_error_result.error().message, ::testing::HasSubstr(substring)); \
        EXPECT_THAT(expect_error_result.error().message, ::testing::StartsWith("vhdx: ")); \
    } while (0)

#define ASSERT_OK(expr)                                                             \
    do {                                                                            \
        const auto& assert_ok_result = (expr);                                      \
        ASSERT_TRUE(assert_ok_result.ok()) << assert_ok_result.error().to_string(); \
    } while (0)

// Applies a layout's writes to an in-memory file of layout.file_size bytes.
Bytes materialize(const ImageLayout& layout);

// Everything a driver learns at open, through the pure functions only.
struct ParsedImage {
    FileIdentifier identifier;
    HeaderSelection headers;
    KnownRegions regions;
    MetadataTable metadata_table;
    ImageMetadata metadata;
    BatGeometry geometry;
    Bytes bat;
};

// Runs the open sequence of formats/vhdx/vhdx.h over an in-memory file
// (without log replay: the log GUID must be zero).
Result<ParsedImage> parse_image(const Bytes& file);

// Reads a whole file; empty on failure.
Bytes read_file(const std::string& path);
bool write_file(const std::string& path, const Bytes& bytes);

}  // namespace coblock::vhdx::testing
