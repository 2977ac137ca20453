// qcow2 compressed cluster descriptors: make_compressed_entry for arbitrary
// offsets and lengths, and decode of the descriptor it encodes (round trip
// of offset and sector count, read extent covering the data).
#include "formats/qcow2/l2_entry.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint32_t cluster_bits = 9 + r.take<uint8_t>() % 13;
    auto geometry = qcow2::make_geometry(cluster_bits, false, 4);
    if (!geometry.ok()) return 0;
    while (r.remaining() > 0) {
        uint64_t host_offset = r.take<uint64_t>();
        uint64_t length = r.take<uint32_t>();
        auto entry = qcow2::make_compressed_entry(host_offset, length, *geometry);
        if (!entry.ok()) continue;
        auto word = qcow2::encode_l2_entry(*entry, *geometry);
        FUZZ_CHECK(word.ok());
        auto decoded = qcow2::decode_l2_entry(*word, 0, *geometry);
        FUZZ_CHECK(decoded == *entry);
        FUZZ_CHECK(qcow2::classify_l2_entry(decoded, *geometry) == qcow2::ClusterType::kCompressed);
        FUZZ_CHECK(qcow2::validate_l2_entry(decoded, *geometry, {}, 0).ok());
        auto extent = qcow2::compressed_read_extent(decoded);
        FUZZ_CHECK(extent.offset == host_offset);
        FUZZ_CHECK(extent.length >= length);
        auto range = qcow2::compressed_host_clusters(decoded, *geometry);
        FUZZ_CHECK(range.first == host_offset >> cluster_bits);
        FUZZ_CHECK(range.first <= range.last);
    }
    return 0;
}
