// CheckResult: what a consistency check found and fixed (QEMU's
// BdrvCheckResult), reported by `coblock-img check` as qemu-img does.
#pragma once

#include <cstdint>

namespace coblock {

struct CheckResult {
    int64_t corruptions = 0;
    int64_t leaks = 0;
    int64_t check_errors = 0;  // the check itself could not complete
    int64_t corruptions_fixed = 0;
    int64_t leaks_fixed = 0;
    int64_t image_end_offset = 0;
    // Allocation statistics ("x/y = z% allocated, w% fragmented, v% compressed").
    int64_t total_clusters = 0;
    int64_t allocated_clusters = 0;
    int64_t fragmented_clusters = 0;
    int64_t compressed_clusters = 0;
};

}  // namespace coblock
