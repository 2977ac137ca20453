// VHDX log entries: header decode, full entry decode (with the checksum
// stored on request and the GUID taken from the entry on request), the round
// trip parse -> encode -> parse, and placement of the entry in the ring.
#include <vector>

#include "formats/vhdx/log.h"
#include "fuzz/fuzz.h"
#include "fuzz/vhdx_util.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    uint8_t flags = r.take<uint8_t>();
    const uint64_t log_length = (1 + r.take<uint8_t>() % 4) * vhdx::kMiB;
    const uint64_t write_position = uint64_t{r.take<uint16_t>()} * vhdx::kLogSectorSize;
    vhdx::Guid guid;
    ByteSpan guid_bytes = r.take_bytes(16);
    std::copy(guid_bytes.begin(), guid_bytes.end(),
              reinterpret_cast<std::byte*>(guid.bytes.data()));
    ByteSpan rest = r.rest();

    auto header = vhdx::parse_log_entry_header(rest, log_length);
    if (!header.ok()) return 0;
    if (header->entry_length > rest.size()) return 0;
    std::vector<std::byte> entry_bytes(rest.begin(), rest.begin() + header->entry_length);
    fuzz::maybe_fix_checksum(entry_bytes, entry_bytes.size(), flags & 1);
    if (flags & 2) guid = header->log_guid;

    auto entry = vhdx::parse_log_entry(entry_bytes, guid, log_length);
    if (!entry.ok()) return 0;
    FUZZ_CHECK(entry->header == *header);
    auto encoded = vhdx::encode_log_entry(*entry);
    FUZZ_CHECK(encoded.ok());
    FUZZ_CHECK(encoded->size() == header->entry_length);
    auto again = vhdx::parse_log_entry(*encoded, guid, log_length);
    FUZZ_CHECK(again.ok() && *again == *entry);

    auto writes = vhdx::place_log_entry(vhdx::kMiB, log_length, write_position, *encoded);
    if (writes.ok()) {
        uint64_t total = 0;
        for (const auto& w : *writes) {
            FUZZ_CHECK(w.file_offset >= vhdx::kMiB && w.file_offset < vhdx::kMiB + log_length);
            total += w.bytes.size();
        }
        FUZZ_CHECK(total == encoded->size());
    }
    return 0;
}
