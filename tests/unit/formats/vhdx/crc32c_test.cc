// Tests of formats/crc32c: known vectors, the extend rule, and agreement of
// the software and SSE4.2 paths on random data of every alignment.
#include "formats/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace coblock {
namespace {

std::vector<std::byte> filled(size_t n, uint8_t v) {
    return std::vector<std::byte>(n, static_cast<std::byte>(v));
}

TEST(Crc32c, KnownVectors) {
    const char* check = "123456789";
    EXPECT_EQ(crc32c(as_bytes(check, 9)), 0xE3069283u);
    EXPECT_EQ(crc32c_extend_software(0, as_bytes(check, 9)), 0xE3069283u);
    EXPECT_EQ(crc32c(filled(32, 0)), 0x8A9136AAu);
    EXPECT_EQ(crc32c(filled(32, 0xFF)), 0x62A8AB43u);
    EXPECT_EQ(crc32c(filled(4096, 0)), 0x98F94189u);
    EXPECT_EQ(crc32c(filled(65536, 0)), 0x72C0C4A4u);
    EXPECT_EQ(crc32c(ByteSpan()), 0u);
}

TEST(Crc32c, ExtendEqualsWhole) {
    std::mt19937 rng(7);
    std::vector<std::byte> data(1000);
    for (auto& b : data)
        b = static_cast<std::byte>(rng());
    const uint32_t whole = crc32c(data);
    for (size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
        const ByteSpan all(data);
        EXPECT_EQ(crc32c_extend(crc32c(all.first(split)), all.subspan(split)), whole) << split;
    }
}

TEST(Crc32c, SoftwareAndHardwareAgree) {
    if (!crc32c_hardware_available()) GTEST_SKIP() << "no sse4.2 on this cpu; software path only";
    std::mt19937 rng(42);
    std::vector<std::byte> data(70000);
    for (auto& b : data)
        b = static_cast<std::byte>(rng());
    for (int round = 0; round < 300; ++round) {
        const size_t offset = rng() % 64;  // every misalignment
        const size_t length = rng() % (data.size() - offset);
        const ByteSpan piece = ByteSpan(data).subspan(offset, length);
        const uint32_t seed = round % 3 == 0 ? 0 : static_cast<uint32_t>(rng());
        ASSERT_EQ(crc32c_extend_software(seed, piece), crc32c_extend_hardware(seed, piece))
            << "offset " << offset << " length " << length;
    }
}

}  // namespace
}  // namespace coblock
