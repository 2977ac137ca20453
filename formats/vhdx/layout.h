// VHDX creation: the layout of a new dynamic, fixed or differencing image
// and every byte a creator writes. Pure: returns (offset, bytes) writes.
// Implements spec vhdx.md §3, §10.4, §13.1 and §14 (creation).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/result.h"
#include "formats/vhdx/bat.h"
#include "formats/vhdx/guid.h"
#include "formats/vhdx/header.h"
#include "formats/vhdx/metadata.h"
#include "formats/vhdx/parent_locator.h"
#include "formats/vhdx/region_table.h"

namespace coblock::vhdx {

inline constexpr uint32_t kDefaultLogSize = 1 * kMiB;  // QEMU's and Windows' default
// LogLength is a u32 holding a MiB multiple.
inline constexpr uint64_t kMaxLogSize = 4 * kGiB - kMiB;
// Hyper-V creates differencing children with 2 MiB blocks (spec §10.2).
inline constexpr uint32_t kDefaultDifferencingBlockSize = 2 * kMiB;

enum class ImageType { kDynamic, kFixed, kDifferencing };

struct CreateOptions {
    ImageType type = ImageType::kDynamic;
    uint64_t virtual_disk_size = 0;        // a multiple of logical_sector_size, <= 64 TiB
    uint32_t block_size = 0;               // 0: automatic (QEMU's rule, 2 MiB for differencing)
    uint64_t log_size = kDefaultLogSize;   // a non-zero multiple of 1 MiB below 4 GiB
    uint32_t logical_sector_size = 512;    // 512 or 4096 (QEMU opens only 512)
    uint32_t physical_sector_size = 4096;  // 512 or 4096
    // Dynamic images: mark every block ZERO (QEMU's default) instead of
    // NOT_PRESENT. Both read as zeros; NOT_PRESENT needs no BAT write.
    bool block_state_zero = false;
    // Random values the caller generates (the builder is pure). The write
    // GUIDs must be non-zero.
    Guid file_write_guid;
    Guid data_write_guid;
    Guid virtual_disk_id;          // for a differencing child: the parent's
    uint64_t sequence_number = 0;  // header 1's; header 2 (current) gets +1
    std::u16string creator = u"coblock";
    // Differencing only: the parent linkage and paths to store.
    std::optional<VhdxParentLinkage> parent;
};

// QEMU's automatic block size for a virtual size (spec §14.1).
uint32_t automatic_block_size(uint64_t virtual_disk_size);

struct FileWrite {
    uint64_t offset = 0;
    std::vector<std::byte> bytes;

    bool operator==(const FileWrite&) const = default;
};

struct ImageLayout {
    // Writes into a new, empty file; bytes not written must read as zero,
    // so the caller first sets the file size to `file_size` (or writes
    // past it) on a fresh file.
    std::vector<FileWrite> writes;
    uint64_t file_size = 0;
    Header header;  // the current header (slot 2)
    KnownRegions regions;
    ImageMetadata metadata;
    BatGeometry geometry;
    uint64_t data_offset = 0;  // where payload blocks start (fixed) or are appended (dynamic)
};

// Validates the options and builds the image: file identifier; header 1
// (sequence_number) and header 2 (sequence_number + 1) with zero log GUID;
// identical region tables at 192 KiB and 256 KiB (BAT and metadata,
// Required set); the log at 1 MiB; the metadata region (1 MiB, more if a
// large parent locator needs it) after it; the BAT (MiB-rounded, at least
// 1 MiB) after that; payload from the end of the BAT. Every object is
// MiB-aligned (Hyper-V's expectation). Fixed images get FULLY_PRESENT
// entries for consecutive blocks and a file covering whole blocks; the BAT
// is only written when it has a non-zero entry. Memory: the BAT of a fixed
// image is built in full (8 bytes per block).
Result<ImageLayout> build_image_layout(const CreateOptions& options);

}  // namespace coblock::vhdx
