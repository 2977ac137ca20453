// qcow version 1 geometry: the values derived from cluster_bits, l2_bits and
// size (cluster size, L2 table size, L1 size) and the address-translation math.
// Pure. Implements specs/qcow-v1.md §2 (derived values), §3 step 7, §5.
#pragma once

#include <cstdint>
#include <string>

#include "formats/result.h"

namespace coblock::qcow {

// cluster_bits below 9 gives clusters smaller than a 512-byte sector, the
// unit QEMU does qcow I/O in.
inline constexpr uint32_t kMinClusterBits = 9;
// cluster_bits above 16 (64 KiB clusters) is refused by QEMU's qcow driver.
inline constexpr uint32_t kMaxClusterBits = 16;
// l2_bits below 6 makes an L2 table smaller than 512 bytes; QEMU refuses it.
inline constexpr uint32_t kMinL2Bits = 6;
// l2_bits above 13 makes an L2 table larger than 64 KiB; QEMU refuses it.
inline constexpr uint32_t kMaxL2Bits = 13;
// QEMU keeps the L1 table in one allocation of at most INT_MAX bytes.
inline constexpr uint64_t kMaxL1Size = 0x7fffffffu / 8;
// Every L1 and L2 entry is a big-endian 64-bit value.
inline constexpr uint64_t kTableEntrySize = 8;
// QEMU does qcow I/O in 512-byte sectors; normal clusters must be aligned to it.
inline constexpr uint64_t kSectorSize = 512;
// File offsets become signed off_t at the syscall; nothing may end beyond this.
inline constexpr uint64_t kMaxFileOffset = 0x7fffffffffffffffu;

// A byte range of the image file for the driver to read or write.
struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
    bool operator==(const Extent&) const = default;
};

// The validated shape of an image. Build it with make_geometry(); every value
// here is then in range, so the member functions cannot overflow.
struct Geometry {
    uint32_t cluster_bits = 0;
    uint32_t l2_bits = 0;
    uint64_t size = 0;     // the header's size field, in bytes
    uint64_t l1_size = 0;  // number of L1 entries: ceil(size / (1 << l1_shift()))

    uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
    uint64_t l2_entries() const { return uint64_t{1} << l2_bits; }
    uint64_t l2_table_bytes() const { return l2_entries() * kTableEntrySize; }
    uint32_t l1_shift() const { return cluster_bits + l2_bits; }
    uint64_t l1_table_bytes() const { return l1_size * kTableEntrySize; }

    // Address translation of a guest (virtual) offset, §5. Defined for any
    // guest_offset; the caller keeps guest_offset < size for a meaningful
    // result (l1_index() < l1_size then holds).
    uint64_t l1_index(uint64_t guest_offset) const { return guest_offset >> l1_shift(); }
    uint64_t l2_index(uint64_t guest_offset) const {
        return (guest_offset >> cluster_bits) & (l2_entries() - 1);
    }
    uint64_t offset_in_cluster(uint64_t guest_offset) const {
        return guest_offset & (cluster_size() - 1);
    }
    // Guest offset of the start of the cluster that holds guest_offset.
    uint64_t cluster_start(uint64_t guest_offset) const {
        return guest_offset & ~(cluster_size() - 1);
    }
    // Bytes from guest_offset to the end of its cluster (1 .. cluster_size()).
    uint64_t bytes_to_cluster_end(uint64_t guest_offset) const {
        return cluster_size() - offset_in_cluster(guest_offset);
    }

    bool operator==(const Geometry&) const = default;
};

// Checks cluster_bits, then l2_bits, against their limits (corrupt error
// naming the field and value when out of range).
Status check_cluster_and_l2_bits(uint32_t cluster_bits, uint32_t l2_bits);

// Number of L1 entries needed for `size` bytes with the given geometry, as
// QEMU computes it. Fails (corrupt) if cluster_bits or l2_bits are out of
// range, if `size + (1 << l1_shift)` overflows 64 bits, or if the result
// exceeds kMaxL1Size. Messages name the field and value.
Result<uint64_t> l1_size_for(uint64_t size, uint32_t cluster_bits, uint32_t l2_bits);

// Validates cluster_bits and l2_bits against their limits, in QEMU's order,
// and computes l1_size (see l1_size_for).
Result<Geometry> make_geometry(uint64_t size, uint32_t cluster_bits, uint32_t l2_bits);

namespace detail {
// "0x1f" — how qcow messages print offsets and raw entries.
std::string hex(uint64_t value);
}  // namespace detail

}  // namespace coblock::qcow
