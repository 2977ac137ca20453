// qcow2 refcount table entries and refcount blocks of every width: lossless
// table entry decode/encode, validation, and get/set of block entries (set
// of the value read leaves the block unchanged; a set value reads back and
// leaves the neighbours alone).
#include <algorithm>
#include <vector>

#include "formats/qcow2/refcount.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint32_t order = r.take<uint8_t>() % 8;  // 7 is out of range on purpose
    uint32_t cluster_bits = 9 + r.take<uint8_t>() % 13;
    uint64_t index = r.take<uint16_t>();
    uint64_t value = r.take<uint64_t>();
    ByteSpan block = r.rest();

    auto geometry = qcow2::make_geometry(cluster_bits, false, std::min(order, 6u));
    FUZZ_CHECK(geometry.ok());
    for (size_t i = 0; i + 8 <= block.size(); i += 8) {
        uint64_t word = load_be<uint64_t>(block.data() + i);
        auto entry = qcow2::decode_refcount_table_entry(word);
        FUZZ_CHECK(qcow2::encode_refcount_table_entry(entry) == word);
        (void)qcow2::validate_refcount_table_entry(entry, *geometry, i / 8);
    }

    const uint64_t entries = order <= 6 ? qcow2::refcount_entries_in(block.size(), order) : 0;
    auto got = qcow2::get_refcount(block, index, order);
    if (order > 6 || index >= entries) {
        FUZZ_CHECK(!got.ok());
        return 0;
    }
    FUZZ_CHECK(got.ok());
    FUZZ_CHECK(*got <= qcow2::refcount_max_for_order(order));
    std::vector<std::byte> copy(block.begin(), block.end());
    FUZZ_CHECK(qcow2::set_refcount(copy, index, order, *got).ok());
    FUZZ_CHECK(std::equal(copy.begin(), copy.end(), block.begin()));

    auto set = qcow2::set_refcount(copy, index, order, value);
    if (value > qcow2::refcount_max_for_order(order)) {
        FUZZ_CHECK(!set.ok());
        return 0;
    }
    FUZZ_CHECK(set.ok());
    auto back = qcow2::get_refcount(copy, index, order);
    FUZZ_CHECK(back.ok() && *back == value);
    for (uint64_t other : {index - 1, index + 1}) {
        if (other >= entries) continue;
        auto before = qcow2::get_refcount(block, other, order);
        auto after = qcow2::get_refcount(copy, other, order);
        FUZZ_CHECK(before.ok() && after.ok() && *before == *after);
    }
    return 0;
}
