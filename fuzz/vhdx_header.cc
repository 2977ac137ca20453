// VHDX header section: probe, file identifier (round trip), one header
// (parse -> encode -> parse, validation), the choice between the two header
// slots, and the update plan for the chosen header.
#include "formats/vhdx/header.h"
#include "fuzz/fuzz.h"
#include "fuzz/vhdx_util.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint8_t flags = r.take<uint8_t>();
    ByteSpan rest = r.rest();
    (void)vhdx::probe_vhdx(rest);

    if (auto id = vhdx::parse_file_identifier(rest); id.ok()) {
        std::vector<std::byte> out(vhdx::kFileIdentifierMinSize);
        FUZZ_CHECK(vhdx::encode_file_identifier(*id, out).ok());
        auto again = vhdx::parse_file_identifier(out);
        FUZZ_CHECK(again.ok() && *again == *id);
    }

    // Two slots from the input, each checksummed on request.
    auto slot1 = fuzz::sized(rest, vhdx::kHeaderSize);
    auto slot2 =
        fuzz::sized(rest.size() > vhdx::kHeaderSize ? rest.subspan(vhdx::kHeaderSize) : ByteSpan{},
                    vhdx::kHeaderSize);
    fuzz::maybe_fix_checksum(slot1, vhdx::kHeaderSize, flags & 1);
    fuzz::maybe_fix_checksum(slot2, vhdx::kHeaderSize, flags & 2);
    if (flags & 4) slot2 = slot1;  // equal sequence numbers need identical slots

    if (auto header = vhdx::parse_header(slot1); header.ok()) {
        (void)vhdx::validate_header(*header);
        std::vector<std::byte> out(vhdx::kHeaderSize);
        FUZZ_CHECK(vhdx::encode_header(*header, out).ok());
        auto again = vhdx::parse_header(out);
        FUZZ_CHECK(again.ok() && *again == *header);
    }

    auto selection = vhdx::select_header(slot1, slot2);
    if (!selection.ok()) return 0;
    FUZZ_CHECK(vhdx::validate_header(selection->current).ok());
    auto plan = vhdx::plan_header_update(*selection, selection->current);
    if (!plan.ok()) return 0;
    // Both planned writes must parse back, and the second must be chosen.
    std::vector<std::byte> s1(vhdx::kHeaderSize), s2(vhdx::kHeaderSize);
    for (const auto& w : *plan) {
        FUZZ_CHECK(w.bytes.size() == vhdx::kHeaderSize);
        auto parsed = vhdx::parse_header(w.bytes);
        FUZZ_CHECK(parsed.ok() && *parsed == w.header);
        (w.file_offset == vhdx::header_slot_offset(0) ? s1 : s2) = w.bytes;
    }
    auto reselected = vhdx::select_header(s1, s2);
    FUZZ_CHECK(reselected.ok());
    FUZZ_CHECK(reselected->current == (*plan)[1].header);
    return 0;
}
