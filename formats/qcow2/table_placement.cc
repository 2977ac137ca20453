// Placement of the header cluster, L1 table and refcount table (pure).
#include "formats/qcow2/table_placement.h"

#include <string>

#include "formats/qcow2/geometry.h"

namespace coblock::qcow2 {
namespace {

struct NamedExtent {
    const char* name;
    Extent extent;
};

std::string describe(const NamedExtent& t) {
    return std::string(t.name) + " [" + hex_string(t.extent.offset) + ", +" +
           hex_string(t.extent.length) + ")";
}

bool overlaps(const Extent& a, const Extent& b) {
    // Lengths are bounded by validate_header (32 MiB / 8 MiB / one cluster)
    // and offsets by the maximum image offset: no overflow.
    return a.length && b.length && a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

}  // namespace

Status check_table_placement(const Header& header, uint64_t file_size) {
    const HeaderPlan plan = header_plan(header);
    const NamedExtent tables[] = {
        {"header cluster", Extent{0, uint64_t{1} << header.cluster_bits}},
        {"L1 table", plan.l1_table},
        {"refcount table", plan.refcount_table},
    };
    for (const NamedExtent& t : tables) {
        if (t.extent.length && t.extent.offset >= file_size)
            return corrupt_error("qcow2: " + std::string(t.name) + " at " +
                                     hex_string(t.extent.offset) + " (" +
                                     std::to_string(t.extent.length) +
                                     " bytes) starts beyond the end of the file (" +
                                     std::to_string(file_size) + " bytes)",
                                 t.extent.offset);
    }
    for (size_t i = 0; i < std::size(tables); ++i)
        for (size_t j = i + 1; j < std::size(tables); ++j)
            if (overlaps(tables[i].extent, tables[j].extent))
                return corrupt_error(
                    "qcow2: " + describe(tables[j]) + " overlaps " + describe(tables[i]),
                    tables[j].extent.offset);
    return {};
}

}  // namespace coblock::qcow2
