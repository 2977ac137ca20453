// qcow2 snapshot table: scan (how much to read), parse, per-entry
// validation, and the round trip parse -> encode -> parse.
#include <vector>

#include "formats/qcow2/snapshot.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint32_t nb_snapshots = r.take<uint8_t>();
    uint32_t cluster_bits = 9 + r.take<uint8_t>() % 13;
    ByteSpan table = r.rest();

    auto scan = qcow2::scan_snapshot_table(table, nb_snapshots);
    if (!scan.ok()) return 0;
    if (!scan->complete) {
        FUZZ_CHECK(scan->bytes > table.size());
        FUZZ_CHECK(!qcow2::parse_snapshot_table(table, nb_snapshots).ok());
        return 0;
    }
    FUZZ_CHECK(scan->bytes <= table.size());
    auto entries = qcow2::parse_snapshot_table(table.first(scan->bytes), nb_snapshots);
    FUZZ_CHECK(entries.ok());
    FUZZ_CHECK(entries->size() == nb_snapshots);
    auto geometry = qcow2::make_geometry(cluster_bits, false, 4);
    FUZZ_CHECK(geometry.ok());
    for (size_t i = 0; i < entries->size(); ++i) {
        (void)qcow2::validate_snapshot_entry((*entries)[i], *geometry, 3, i);
        (void)qcow2::validate_snapshot_entry((*entries)[i], *geometry, 2, i);
    }

    auto encoded = qcow2::encode_snapshot_table(*entries);
    FUZZ_CHECK(encoded.ok());
    auto rescan = qcow2::scan_snapshot_table(*encoded, nb_snapshots);
    FUZZ_CHECK(rescan.ok() && rescan->complete && rescan->bytes == encoded->size());
    auto again = qcow2::parse_snapshot_table(*encoded, nb_snapshots);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(*again == *entries);
    return 0;
}
