// Initial metadata layout of a new qcow2 image: header cluster, refcount
// table, refcount blocks and an empty L1 table, as a list of writes.
// Pure. Implements what `qemu-img create -f qcow2` produces without
// preallocation (specs/qcow2-notes.md §3.1, §3.2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/qcow2/constants.h"
#include "formats/qcow2/geometry.h"
#include "formats/qcow2/image_header.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// The `qemu-img create -f qcow2 -o ...` options that shape the metadata.
struct CreateOptions {
    uint64_t size = 0;                                // virtual size; a multiple of 512
    uint32_t version = kVersion3;                     // compat=0.10 -> 2, compat=1.1 -> 3
    uint32_t cluster_bits = 16;                       // cluster_size = 1 << cluster_bits
    uint32_t refcount_order = kDefaultRefcountOrder;  // refcount_bits = 1 << order
    bool extended_l2 = false;
    bool lazy_refcounts = false;
    uint8_t compression_type = kCompressionDeflate;
    std::optional<std::string> backing_file;
    std::optional<std::string> backing_format;
    // External data file name; sets incompatible bit 2. The driver creates
    // the data file itself.
    std::optional<std::string> data_file;
    bool data_file_raw = false;  // autoclear bit 1
    bool operator==(const CreateOptions&) const = default;
};

// QEMU's creation rules (kInvalidArgument, naming the option and value):
// version 2 or 3; size a multiple of 512 and within max_virtual_size;
// cluster_bits 9..21; refcount_order <= 6; version 2 only with 16-bit
// refcounts and without lazy refcounts, data file, zstd or extended L2;
// extended L2 only with clusters >= 16 KiB; compression type 0 or 1;
// backing format only with a backing file, names within 1023 / 15 bytes;
// data_file_raw only with a data file and without a backing file.
Status validate_create_options(const CreateOptions& options);

struct LayoutWrite {
    uint64_t offset = 0;
    std::vector<std::byte> bytes;
    bool operator==(const LayoutWrite&) const = default;
};

struct InitialLayout {
    ImageHeader header;               // what cluster 0 encodes
    std::vector<LayoutWrite> writes;  // ascending, non-overlapping
    uint64_t file_size = 0;           // end of the last write
    Extent refcount_table;            // cluster 1 onwards
    Extent refcount_blocks;           // right after the table
    Extent l1_table;                  // right after the blocks; length l1_size * 8
    bool operator==(const InitialLayout&) const = default;
};

// Builds the layout: cluster 0 = header (QEMU's rewrite form: 112-byte v3
// header, extensions in QEMU's order, feature table for v3 with clusters >
// 4 KiB, backing file name after the end marker); then the refcount table,
// the refcount blocks (refcount 1 for every metadata cluster) and the L1
// table (all zero; written only as far as l1_size * 8 bytes, so the file may
// end mid-cluster, as QEMU's does). Table sizes grow together until the
// refcount blocks describe every metadata cluster. Writing all `writes` to an
// empty file gives an image `qemu-img check` reports as clean.
Result<InitialLayout> build_initial_layout(const CreateOptions& options);

}  // namespace coblock::qcow2
