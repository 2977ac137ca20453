// qcow version 1 image creation: the bytes a new image consists of, laid out
// exactly as `qemu-img create -f qcow` lays them out. Pure: it returns the
// writes, the driver performs them. Implements specs/qcow-v1.md §9.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/qcow/qcow_geometry.h"
#include "formats/qcow/qcow_header.h"
#include "formats/result.h"

namespace coblock::qcow {

// QEMU's geometry for an image without a backing file: 4 KiB clusters,
// 512-entry (4 KiB) L2 tables.
inline constexpr uint32_t kDefaultClusterBits = 12;
inline constexpr uint32_t kDefaultL2Bits = 9;
// QEMU's geometry with a backing file: 512-byte clusters so every guest write
// covers whole clusters (QEMU does no copy-on-write), 4096-entry L2 tables.
inline constexpr uint32_t kBackingClusterBits = 9;
inline constexpr uint32_t kBackingL2Bits = 12;
// The L1 table starts after the header and name, rounded up to 8 bytes.
inline constexpr uint64_t kL1TableAlignment = 8;
// QEMU zero-fills the L1 table in 512-byte writes, so the file ends there.
inline constexpr uint64_t kL1FillUnit = 512;
// QEMU's vvfat special case: this backing name is dropped, but the image
// still gets the backing-file geometry.
inline constexpr const char* kVvfatBackingName = "fat:";

struct CreateOptions {
    uint64_t size = 0;         // virtual size in bytes; rounded up to 512 like QEMU
    std::string backing_file;  // empty = none; stored verbatim, the format is not stored

    bool operator==(const CreateOptions&) const = default;
};

// Bytes to write at an offset of the new image file.
struct LayoutWrite {
    uint64_t offset = 0;
    std::vector<std::byte> bytes;

    bool operator==(const LayoutWrite&) const = default;
};

// A new image. The driver starts from an empty file (truncate to 0, as QEMU
// does), performs `writes` in order, then makes `zero_fill` read as zeros
// (write zeros, or just extend the file, which reads as zeros) so that the file
// is `file_size` bytes long. The zero range is not materialised because the
// L1 table of a large image is large (up to 2 GiB at kMaxL1Size).
struct CreateLayout {
    Header header;      // as written; passes validate_header()
    Geometry geometry;  // header_geometry(header)
    std::vector<LayoutWrite>
        writes;              // the header, the backing file name and padding up to the L1 table
    Extent zero_fill;        // the zeroed L1 table, padded to kL1FillUnit
    uint64_t file_size = 0;  // zero_fill.offset + zero_fill.length

    bool operator==(const CreateLayout&) const = default;
};

// Lays out a new image for `options` (§9). Fails (invalid argument, message
// naming the value) for size 0, a size whose L1 table exceeds kMaxL1Size, a
// backing file name longer than kMaxBackingFileSize or containing a NUL byte.
// The result is byte-identical to what qemu-img 7.2 writes.
Result<CreateLayout> build_create_layout(const CreateOptions& options);

}  // namespace coblock::qcow
