// qcow2 cluster 0: probe, fixed header, header extensions, backing file name
// (parse_image_header in both open and check mode), the encoder round trip
// parse -> encode -> parse, QEMU's rewrite normalisation, and the table
// placement check open runs (against the input's length as the file size).
#include <algorithm>
#include <vector>

#include "formats/qcow2/image_header.h"
#include "formats/qcow2/table_placement.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ByteSpan in = fuzz::input_bytes(data, size);
    auto cluster_size = qcow2::probe_cluster_size(in);
    if (!cluster_size.ok()) return 0;
    // The driver zero-pads cluster 0 when the file is shorter.
    std::vector<std::byte> cluster0(*cluster_size);
    std::copy_n(in.begin(), std::min<size_t>(in.size(), cluster0.size()), cluster0.begin());

    (void)qcow2::decode_header(in);  // the unpadded bytes, as a short read gives them
    qcow2::HeaderParseOptions check_mode;
    check_mode.check_mode = true;
    (void)qcow2::parse_image_header(cluster0, check_mode);
    auto image = qcow2::parse_image_header(cluster0);
    if (!image.ok()) return 0;
    (void)qcow2::header_plan(image->header);
    (void)qcow2::unknown_incompatible_features(image->header);
    if (qcow2::validate_header(image->header).ok())
        (void)qcow2::check_table_placement(image->header, size);

    auto encoded = qcow2::encode_image_header(*image);
    if (encoded.ok()) {
        auto again = qcow2::parse_image_header(*encoded);
        FUZZ_CHECK(again.ok());
        FUZZ_CHECK(*again == *image);
    } else {
        // Documented: some crafted headers cannot be re-encoded.
        FUZZ_CHECK(encoded.error().kind == ErrorKind::kInvalidArgument);
    }

    auto normalized = qcow2::normalize_for_rewrite(*image);
    if (normalized.ok()) {
        auto bytes = qcow2::encode_image_header(*normalized);
        if (bytes.ok()) {
            auto again = qcow2::parse_image_header(*bytes);
            FUZZ_CHECK(again.ok());
            FUZZ_CHECK(*again == *normalized);
        }
    }
    return 0;
}
