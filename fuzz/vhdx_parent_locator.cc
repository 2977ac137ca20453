// VHDX parent locator item: parse -> encode -> parse, and the VHDX linkage
// decoded from it (decode -> make -> decode).
#include "formats/vhdx/parent_locator.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ByteSpan item = fuzz::input_bytes(data, size);
    auto locator = vhdx::parse_parent_locator(item);
    if (!locator.ok()) return 0;
    auto encoded = vhdx::encode_parent_locator(*locator);
    if (encoded.ok()) {
        auto again = vhdx::parse_parent_locator(*encoded);
        FUZZ_CHECK(again.ok() && *again == *locator);
    }
    auto linkage = vhdx::decode_vhdx_parent_locator(*locator);
    if (!linkage.ok()) return 0;
    auto rebuilt = vhdx::make_vhdx_parent_locator(*linkage);
    auto relinked = vhdx::decode_vhdx_parent_locator(rebuilt);
    FUZZ_CHECK(relinked.ok() && *relinked == *linkage);
    return 0;
}
