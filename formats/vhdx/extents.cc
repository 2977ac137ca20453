// The VHDX placement checker. Pure. Implements spec vhdx.md §3 and §6.3.
#include "formats/vhdx/extents.h"

#include <algorithm>
#include <numeric>

namespace coblock::vhdx {
namespace {

std::string describe(const Extent& e) {
    return e.name + " " + hex(e.offset) + "+" + hex(e.length);
}

}  // namespace

Status check_extents(std::span<const Extent> extents, uint64_t file_size) {
    std::vector<size_t> order;
    order.reserve(extents.size());
    for (size_t i = 0; i < extents.size(); ++i) {
        const Extent& e = extents[i];
        if (e.length == 0) continue;
        uint64_t end;
        if (!checked_add(e.offset, e.length, &end))
            return corrupt_error("vhdx: " + describe(e) + " overflows");
        if (end > file_size)
            return corrupt_error("vhdx: " + describe(e) + " ends past the end of the file at " +
                                 hex(file_size));
        order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return extents[a].offset < extents[b].offset ||
               (extents[a].offset == extents[b].offset && a < b);
    });
    // Sorted by start, an overlap exists iff some extent starts before the
    // furthest end seen so far; remembering who owns that end names the pair.
    size_t furthest = 0;
    uint64_t furthest_end = 0;
    bool any = false;
    for (size_t i : order) {
        const Extent& e = extents[i];
        if (any && e.offset < furthest_end)
            return corrupt_error("vhdx: " + describe(extents[furthest]) + " overlaps " +
                                 describe(e));
        const uint64_t end = e.offset + e.length;
        if (!any || end > furthest_end) {
            furthest = i;
            furthest_end = end;
        }
        any = true;
    }
    return ok_status();
}

std::vector<Extent> image_extents(const Header& header, const KnownRegions& regions) {
    std::vector<Extent> out;
    out.push_back({"header section", 0, kHeaderSectionSize});
    if (header.log_length != 0) out.push_back({"log", header.log_offset, header.log_length});
    out.push_back({"bat region", regions.bat.file_offset, regions.bat.length});
    out.push_back({"metadata region", regions.metadata.file_offset, regions.metadata.length});
    for (const RegionTableEntry& e : regions.others)
        out.push_back({"region " + e.guid.to_string(), e.file_offset, e.length});
    return out;
}

}  // namespace coblock::vhdx
