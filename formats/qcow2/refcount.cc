// qcow2 refcount table entries and refcount block entries of every order.
// Pure. Implements specs/qcow2.txt "Host cluster management" and
// specs/qcow2-notes.md §13.
#include "formats/qcow2/refcount.h"

#include <string>

#include "formats/qcow2/constants.h"

namespace coblock::qcow2 {

namespace {

std::string u64s(uint64_t v) {
    return std::to_string(v);
}

Status check_index(uint64_t size, uint64_t index, uint32_t refcount_order) {
    if (refcount_order > kMaxRefcountOrder) {
        return invalid_argument("qcow2: refcount_order " + u64s(refcount_order) +
                                " exceeds limit " + u64s(kMaxRefcountOrder));
    }
    if (index >= refcount_entries_in(size, refcount_order)) {
        return make_error(ErrorKind::kOutOfRange,
                          "qcow2: refcount index " + u64s(index) + " outside a block of " +
                              u64s(size) + " bytes at " + u64s(1u << refcount_order) + " bits");
    }
    return ok_status();
}

}  // namespace

RefcountTableEntry decode_refcount_table_entry(uint64_t word) {
    return RefcountTableEntry{word & kRefcountTableOffsetMask, word & kRefcountTableReservedMask};
}

uint64_t encode_refcount_table_entry(const RefcountTableEntry& entry) {
    return (entry.block_offset & kRefcountTableOffsetMask) |
           (entry.reserved_bits & kRefcountTableReservedMask);
}

Status validate_refcount_table_entry(const RefcountTableEntry& entry, const Geometry& geometry,
                                     uint64_t index) {
    const std::string label = "qcow2: refcount table entry " + u64s(index) + " (" +
                              hex_string(encode_refcount_table_entry(entry)) + ")";
    if (entry.reserved_bits != 0) {
        return corrupt_error(label + " has reserved bits " + hex_string(entry.reserved_bits) +
                             " set");
    }
    if (!geometry.is_cluster_aligned(entry.block_offset)) {
        return corrupt_error(label + " refcount block offset " + hex_string(entry.block_offset) +
                             " is not cluster aligned");
    }
    return ok_status();
}

Result<uint64_t> get_refcount(ByteSpan block, uint64_t index, uint32_t refcount_order) {
    TRY(check_index(block.size(), index, refcount_order));
    const uint32_t bits = 1u << refcount_order;
    if (bits < 8) {
        const uint32_t per_byte = 8 / bits;
        const uint8_t byte = std::to_integer<uint8_t>(block[index / per_byte]);
        const uint32_t shift = static_cast<uint32_t>(index % per_byte) * bits;
        return (byte >> shift) & ((1u << bits) - 1);
    }
    const std::byte* p = block.data() + index * (bits / 8);
    switch (bits) {
        case 8:
            return std::to_integer<uint8_t>(*p);
        case 16:
            return load_be<uint16_t>(p);
        case 32:
            return load_be<uint32_t>(p);
        default:
            return load_be<uint64_t>(p);
    }
}

Status set_refcount(MutableByteSpan block, uint64_t index, uint32_t refcount_order,
                    uint64_t value) {
    TRY(check_index(block.size(), index, refcount_order));
    if (value > refcount_max_for_order(refcount_order)) {
        return invalid_argument("qcow2: refcount " + u64s(value) + " exceeds maximum " +
                                u64s(refcount_max_for_order(refcount_order)) + " for " +
                                u64s(1u << refcount_order) + "-bit refcounts");
    }
    const uint32_t bits = 1u << refcount_order;
    if (bits < 8) {
        const uint32_t per_byte = 8 / bits;
        std::byte& byte = block[index / per_byte];
        const uint32_t shift = static_cast<uint32_t>(index % per_byte) * bits;
        const uint32_t mask = ((1u << bits) - 1) << shift;
        const uint32_t old = std::to_integer<uint32_t>(byte);
        byte = static_cast<std::byte>((old & ~mask) | (static_cast<uint32_t>(value) << shift));
        return ok_status();
    }
    std::byte* p = block.data() + index * (bits / 8);
    switch (bits) {
        case 8:
            *p = static_cast<std::byte>(value);
            break;
        case 16:
            store_be<uint16_t>(p, static_cast<uint16_t>(value));
            break;
        case 32:
            store_be<uint32_t>(p, static_cast<uint32_t>(value));
            break;
        default:
            store_be<uint64_t>(p, value);
            break;
    }
    return ok_status();
}

}  // namespace coblock::qcow2
