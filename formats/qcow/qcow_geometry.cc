// qcow version 1 geometry: range checks on cluster_bits/l2_bits and the L1
// size computation. Pure. Implements specs/qcow-v1.md §2 and §3 steps 4, 5, 7.
#include "formats/qcow/qcow_geometry.h"

#include <cstdio>

#include "formats/bytes.h"

namespace coblock::qcow {

namespace detail {
std::string hex(uint64_t value) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
    return buf;
}
}  // namespace detail

Status check_cluster_and_l2_bits(uint32_t cluster_bits, uint32_t l2_bits) {
    if (cluster_bits < kMinClusterBits)
        return corrupt_error("qcow: cluster_bits " + std::to_string(cluster_bits) +
                             " is below minimum " + std::to_string(kMinClusterBits));
    if (cluster_bits > kMaxClusterBits)
        return corrupt_error("qcow: cluster_bits " + std::to_string(cluster_bits) +
                             " exceeds limit " + std::to_string(kMaxClusterBits));
    if (l2_bits < kMinL2Bits)
        return corrupt_error("qcow: l2_bits " + std::to_string(l2_bits) + " is below minimum " +
                             std::to_string(kMinL2Bits));
    if (l2_bits > kMaxL2Bits)
        return corrupt_error("qcow: l2_bits " + std::to_string(l2_bits) + " exceeds limit " +
                             std::to_string(kMaxL2Bits));
    return ok_status();
}

Result<uint64_t> l1_size_for(uint64_t size, uint32_t cluster_bits, uint32_t l2_bits) {
    TRY(check_cluster_and_l2_bits(cluster_bits, l2_bits));
    const uint32_t shift = cluster_bits + l2_bits;
    const uint64_t per_entry = uint64_t{1} << shift;
    // QEMU's own guard: it rounds up with `size + (1 << shift) - 1`, and
    // refuses any size for which `size + (1 << shift)` would overflow.
    uint64_t padded = 0;
    if (!checked_add(size, per_entry, &padded))
        return corrupt_error("qcow: size " + std::to_string(size) +
                             " is too large (l1 size computation overflows with l1_shift " +
                             std::to_string(shift) + ")");
    const uint64_t l1_size = (padded - 1) >> shift;
    if (l1_size > kMaxL1Size)
        return corrupt_error("qcow: l1_size " + std::to_string(l1_size) + " exceeds limit " +
                             std::to_string(kMaxL1Size) + " (size " + std::to_string(size) + ")");
    return l1_size;
}

Result<Geometry> make_geometry(uint64_t size, uint32_t cluster_bits, uint32_t l2_bits) {
    ASSIGN_OR_RETURN(const uint64_t l1_size, l1_size_for(size, cluster_bits, l2_bits));
    return Geometry{cluster_bits, l2_bits, size, l1_size};
}

}  // namespace coblock::qcow
