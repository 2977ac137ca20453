// The placement checker: every object of a VHDX file (header section, log,
// regions, blocks) must lie inside the file and overlap no other. Pure.
// Implements spec vhdx.md §3, §6.3 and §12 #5, #6, #12, #13.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/result.h"
#include "formats/vhdx/header.h"
#include "formats/vhdx/region_table.h"

namespace coblock::vhdx {

// A named byte range of the file.
struct Extent {
    std::string name;  // e.g. "log", "bat region", "region <guid>"
    uint64_t offset = 0;
    uint64_t length = 0;

    bool operator==(const Extent&) const = default;
};

// Checks that each extent's end does not overflow, that it ends at or
// before `file_size`, and that no two extents overlap. Zero-length extents
// are ignored. Errors are corrupt and name both extents with their ranges:
// "vhdx: log 0x100000+0x100000 overlaps bat region 0x180000+0x100000".
// Costs O(n log n).
Status check_extents(std::span<const Extent> extents, uint64_t file_size);

// The fixed objects of an image: the header section [0, 1 MiB), the log of
// the current header (if its length is non-zero), the BAT and metadata
// regions and every other region.
std::vector<Extent> image_extents(const Header& header, const KnownRegions& regions);

}  // namespace coblock::vhdx
