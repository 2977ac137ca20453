// qcow2 L1 and L2 entries, standard and extended: lossless decode/encode,
// validation, classification and subcluster types for every geometry, raw
// table access, and L1/refcount tables decoded as big-endian words.
#include <algorithm>
#include <vector>

#include "formats/qcow2/l2_entry.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint8_t shape = r.take<uint8_t>();
    uint32_t cluster_bits = 9 + r.take<uint8_t>() % 13;  // 9..21
    bool extended = shape & 1;
    if (extended && cluster_bits < 14) cluster_bits += 5;  // extended L2 needs >= 16 KiB
    qcow2::L2Context context;
    context.version = (shape & 2) ? qcow2::kVersion3 : 2;
    context.external_data_file = shape & 4;
    auto geometry = qcow2::make_geometry(cluster_bits, extended, 4);
    if (!geometry.ok()) return 0;
    ByteSpan table = r.rest();

    // The rest as an L2 table slice.
    const uint64_t entry_size = geometry->l2_entry_size();
    const uint64_t count = table.size() / entry_size;
    for (uint64_t i = 0; i < count; ++i) {
        auto raw = qcow2::read_l2_entry(table, i, extended);
        FUZZ_CHECK(raw.ok());
        auto entry = qcow2::decode_l2_entry(raw->word, raw->bitmap, *geometry);
        auto word = qcow2::encode_l2_entry(entry, *geometry);
        FUZZ_CHECK(word.ok() && *word == raw->word);
        FUZZ_CHECK(qcow2::decode_l2_entry(*word, raw->bitmap, *geometry) == entry);
        (void)qcow2::validate_l2_entry(entry, *geometry, context, i);
        auto type = qcow2::classify_l2_entry(entry, *geometry, context.external_data_file);
        for (uint32_t sc = 0; sc < (extended ? 32u : 1u); ++sc)
            (void)qcow2::subcluster_type(entry, *geometry, sc, context.external_data_file);
        if (type == qcow2::ClusterType::kCompressed) {
            auto extent = qcow2::compressed_read_extent(entry);
            auto range = qcow2::compressed_host_clusters(entry, *geometry);
            FUZZ_CHECK(range.first <= range.last);
            (void)extent;
        }
        std::vector<std::byte> copy(table.begin(), table.end());
        FUZZ_CHECK(qcow2::write_l2_entry(copy, i, extended, *raw).ok());
        FUZZ_CHECK(std::equal(copy.begin(), copy.end(), table.begin()));
    }
    FUZZ_CHECK(!qcow2::read_l2_entry(table, count, extended).ok());

    // The same bytes as an L1 table.
    auto l1 = qcow2::decode_be64_table(table, table.size() / 8, "l1 table");
    FUZZ_CHECK(l1.ok());
    for (uint64_t i = 0; i < l1->size(); ++i) {
        auto entry = qcow2::decode_l1_entry((*l1)[i]);
        FUZZ_CHECK(qcow2::encode_l1_entry(entry) == (*l1)[i]);
        (void)qcow2::validate_l1_entry(entry, *geometry, i);
    }
    auto enc = qcow2::encode_be64_table(*l1);
    FUZZ_CHECK(std::equal(enc.begin(), enc.end(), table.begin()));
    FUZZ_CHECK(!qcow2::decode_be64_table(table, table.size() / 8 + 1, "l1 table").ok());
    return 0;
}
