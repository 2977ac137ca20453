// qcow v1 L1/L2 tables: geometry from the input, table parse/encode round
// trip, entry decode -> encode -> decode identity, lookup planning.
#include <algorithm>
#include <vector>

#include "formats/qcow/qcow_tables.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint32_t cluster_bits = r.take<uint8_t>();
    uint32_t l2_bits = r.take<uint8_t>();
    uint64_t disk_size = r.take<uint64_t>();
    uint64_t guest_offset = r.take<uint64_t>();
    auto geometry = qcow::make_geometry(disk_size, cluster_bits, l2_bits);
    if (!geometry.ok()) return 0;
    ByteSpan rest = r.rest();

    // Each 8-byte word as an L1 and an L2 entry.
    for (size_t i = 0; i + 8 <= rest.size(); i += 8) {
        uint64_t raw = load_be<uint64_t>(rest.data() + i);
        if (auto l1 = qcow::decode_l1_entry(*geometry, raw); l1.ok()) {
            auto enc = qcow::encode_l1_entry(*geometry, *l1);
            FUZZ_CHECK(enc.ok() && *enc == raw);
        }
        if (auto l2 = qcow::decode_l2_entry(*geometry, raw); l2.ok()) {
            auto enc = qcow::encode_l2_entry(*geometry, *l2);
            FUZZ_CHECK(enc.ok());
            auto again = qcow::decode_l2_entry(*geometry, *enc);
            FUZZ_CHECK(again.ok() && *again == *l2);
            if (l2->type == qcow::ClusterType::kNormal)
                FUZZ_CHECK(qcow::host_offset(*geometry, *l2, guest_offset).ok());
            if (l2->type == qcow::ClusterType::kCompressed)
                FUZZ_CHECK(qcow::compressed_extent(*l2).ok());
        }
    }

    // The input as an L1 table (when big enough) and an L2 table.
    const uint64_t l1_bytes = geometry->l1_table_bytes();
    if (l1_bytes <= rest.size()) {
        auto l1 = qcow::parse_l1_table(*geometry, rest.first(l1_bytes));
        FUZZ_CHECK(l1.ok() && l1->size() == geometry->l1_size);
        auto enc = qcow::encode_table(*l1);
        FUZZ_CHECK(enc.size() == l1_bytes && std::equal(enc.begin(), enc.end(), rest.begin()));
        if (auto loc = qcow::locate_l2_entry(*geometry, *l1, guest_offset); loc.ok() && *loc) {
            FUZZ_CHECK((*loc)->l1_index < l1->size());
            FUZZ_CHECK((*loc)->l2_index < geometry->l2_entries());
            (void)qcow::table_entry_offset((*loc)->l2_table_offset, geometry->l2_entries(),
                                           (*loc)->l2_index);
        }
    }
    const uint64_t l2_bytes = geometry->l2_table_bytes();
    if (l2_bytes <= rest.size()) {
        auto l2 = qcow::parse_l2_table(*geometry, rest.first(l2_bytes));
        FUZZ_CHECK(l2.ok() && l2->size() == geometry->l2_entries());
        auto enc = qcow::encode_table(*l2);
        FUZZ_CHECK(std::equal(enc.begin(), enc.end(), rest.begin()));
    }
    return 0;
}
