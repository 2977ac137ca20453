// Test helpers for the qcow2 format tests: a byte buffer with big-endian
// stores for building images by hand (independent of our encoders), and a
// hand-built valid version 3 header cluster.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "formats/result.h"

namespace coblock::qcow2::test {

class Bytes {
  public:
    explicit Bytes(size_t size) : data_(size) {}

    Bytes& u8(size_t at, uint8_t v) { return put(at, v, 1); }
    Bytes& be16(size_t at, uint16_t v) { return put(at, v, 2); }
    Bytes& be32(size_t at, uint32_t v) { return put(at, v, 4); }
    Bytes& be64(size_t at, uint64_t v) { return put(at, v, 8); }
    Bytes& str(size_t at, const std::string& s) {
        for (size_t i = 0; i < s.size(); ++i)
            data_.at(at + i) = static_cast<std::byte>(s[i]);
        return *this;
    }

    std::vector<std::byte>& data() { return data_; }
    const std::vector<std::byte>& data() const { return data_; }
    operator std::span<const std::byte>() const { return data_; }
    operator std::span<std::byte>() { return data_; }
    size_t size() const { return data_.size(); }

  private:
    Bytes& put(size_t at, uint64_t v, size_t n) {
        for (size_t i = 0; i < n; ++i) {
            data_.at(at + i) = static_cast<std::byte>((v >> (8 * (n - 1 - i))) & 0xff);
        }
        return *this;
    }
    std::vector<std::byte> data_;
};

// Field offsets of the fixed header (spec "Header").
enum HeaderField : size_t {
    kMagicAt = 0,
    kVersionAt = 4,
    kBackingOffsetAt = 8,
    kBackingSizeAt = 16,
    kClusterBitsAt = 20,
    kSizeAt = 24,
    kCryptAt = 32,
    kL1SizeAt = 36,
    kL1OffsetAt = 40,
    kRefcountTableOffsetAt = 48,
    kRefcountTableClustersAt = 56,
    kNbSnapshotsAt = 60,
    kSnapshotsOffsetAt = 64,
    kIncompatAt = 72,
    kCompatAt = 80,
    kAutoclearAt = 88,
    kRefcountOrderAt = 96,
    kHeaderLengthAt = 100,
    kCompressionTypeAt = 104,
};

// A valid v3 header cluster like qemu-img's: 1 GiB, refcount table at
// cluster 1 (one cluster), L1 at cluster 3 with just enough entries,
// header_length 112, end marker (zeros) right after the header.
inline Bytes v3_cluster(uint32_t cluster_bits = 16, uint64_t size = uint64_t{1} << 30) {
    const uint64_t cluster_size = uint64_t{1} << cluster_bits;
    const uint64_t coverage = cluster_size * (cluster_size / 8);
    const uint32_t l1_size = static_cast<uint32_t>((size + coverage - 1) / coverage);
    Bytes b(cluster_size);
    b.be32(kMagicAt, 0x514649fb)
        .be32(kVersionAt, 3)
        .be32(kClusterBitsAt, cluster_bits)
        .be64(kSizeAt, size)
        .be32(kL1SizeAt, l1_size)
        .be64(kL1OffsetAt, 3 * cluster_size)
        .be64(kRefcountTableOffsetAt, cluster_size)
        .be32(kRefcountTableClustersAt, 1)
        .be32(kRefcountOrderAt, 4)
        .be32(kHeaderLengthAt, 112);
    return b;
}

// The same for version 2: 72-byte header, no v3 fields.
inline Bytes v2_cluster(uint32_t cluster_bits = 16, uint64_t size = uint64_t{1} << 30) {
    Bytes b = v3_cluster(cluster_bits, size);
    b.be32(kVersionAt, 2).be32(kRefcountOrderAt, 0).be32(kHeaderLengthAt, 0);
    return b;
}

// Error matchers: kind plus a substring of the message.
MATCHER_P2(IsError, kind, substring, "") {
    if (arg.ok()) {
        *result_listener << "is ok";
        return false;
    }
    *result_listener << "error: " << arg.error().message;
    return arg.error().kind == kind && arg.error().message.find(substring) != std::string::npos;
}

inline auto IsCorrupt(const std::string& substring) {
    return IsError(ErrorKind::kCorrupt, substring);
}
inline auto IsUnsupported(const std::string& substring) {
    return IsError(ErrorKind::kUnsupported, substring);
}
inline auto IsInvalid(const std::string& substring) {
    return IsError(ErrorKind::kInvalidArgument, substring);
}

MATCHER(IsOk, "") {
    if (!arg.ok()) *result_listener << "error: " << arg.error().message;
    return arg.ok();
}

}  // namespace coblock::qcow2::test
