// qcow v1 header: probe, decode -> encode -> decode identity, validation,
// and what a valid header allows (geometry, L1 extent, backing file name).
#include <vector>

#include "formats/qcow/qcow_header.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ByteSpan in = fuzz::input_bytes(data, size);
    (void)qcow::probe_score(in);
    auto decoded = qcow::decode_header(in);
    if (!decoded.ok()) return 0;
    std::vector<std::byte> out(qcow::kHeaderSize);
    FUZZ_CHECK(qcow::encode_header(*decoded, out).ok());
    auto again = qcow::decode_header(out);
    FUZZ_CHECK(again.ok() && *again == *decoded);

    auto parsed = qcow::parse_header(in);
    if (!parsed.ok()) return 0;
    FUZZ_CHECK(*parsed == *decoded);
    (void)qcow::check_supported(*parsed);
    // validate_header promises these cannot fail afterwards.
    auto geometry = qcow::header_geometry(*parsed);
    FUZZ_CHECK(geometry.ok());
    auto l1 = qcow::l1_table_extent(*parsed);
    FUZZ_CHECK(l1.ok());
    FUZZ_CHECK(l1->length == geometry->l1_table_bytes());
    auto name_extent = qcow::backing_file_name_extent(*parsed);
    FUZZ_CHECK(name_extent.ok());
    if (*name_extent) {
        // The name bytes, taken from the input when it covers them.
        const auto& e = **name_extent;
        std::vector<std::byte> name(e.length);
        for (uint64_t i = 0; i < e.length && e.offset + i < in.size(); ++i)
            name[i] = in[e.offset + i];
        auto decoded_name = qcow::parse_backing_file_name(*parsed, name);
        FUZZ_CHECK(decoded_name.ok());
        FUZZ_CHECK(decoded_name->size() <= e.length);
    }
    return 0;
}
