// Helpers of the VHDX harnesses. Random bytes almost never carry a valid
// CRC-32C, so a flag bit of the input asks the harness to store the right
// checksum first; the fuzzer then reaches the checks behind the CRC.
#pragma once

#include <algorithm>
#include <vector>

#include "formats/vhdx/common.h"
#include "fuzz/fuzz.h"

namespace coblock::fuzz {

// `bytes` cut or zero-padded to exactly `size` bytes.
inline std::vector<std::byte> sized(ByteSpan bytes, size_t size) {
    std::vector<std::byte> out(size);
    std::copy_n(bytes.begin(), std::min(bytes.size(), size), out.begin());
    return out;
}

// Stores the checksum of the first `structure_size` bytes when `fix` is set.
inline void maybe_fix_checksum(std::vector<std::byte>& bytes, size_t structure_size, bool fix) {
    if (fix && bytes.size() >= structure_size && structure_size >= 8)
        vhdx::store_structure_checksum(MutableByteSpan(bytes).first(structure_size));
}

}  // namespace coblock::fuzz
