// VHDX log replay planner over a 1 MiB log region. The input is compressed:
// a header (log GUID, file size, flags) and chunks, each copied into the
// ring at a 4 KiB position from the input (wrapping at the end). On
// request the harness stores the checksum of every entry it finds in the
// ring, so the fuzzer reaches the sequence search.
#include <vector>

#include "formats/vhdx/log.h"
#include "formats/vhdx/log_replay.h"
#include "fuzz/fuzz.h"
#include "fuzz/vhdx_util.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    constexpr uint64_t kLogLength = vhdx::kMiB;
    fuzz::InputReader r(data, size);
    uint8_t flags = r.take<uint8_t>();
    vhdx::Header header;
    header.log_offset = vhdx::kMiB;
    header.log_length = static_cast<uint32_t>(kLogLength);
    ByteSpan guid_bytes = r.take_bytes(16);
    std::copy(guid_bytes.begin(), guid_bytes.end(),
              reinterpret_cast<std::byte*>(header.log_guid.bytes.data()));
    const uint64_t file_size = uint64_t{r.take<uint16_t>()} * vhdx::kMiB + r.take<uint16_t>();

    std::vector<std::byte> ring(kLogLength);
    while (r.remaining() > 0) {
        uint64_t position = (r.take<uint8_t>() * vhdx::kLogSectorSize) % kLogLength;
        size_t length = r.take<uint16_t>();
        ByteSpan chunk = r.take_bytes(length);
        for (size_t i = 0; i < chunk.size(); ++i)
            ring[(position + i) % kLogLength] = chunk[i];
    }
    if (flags & 1) {
        // Checksum every entry header found on a sector boundary.
        for (uint64_t pos = 0; pos < kLogLength; pos += vhdx::kLogSectorSize) {
            auto h = vhdx::parse_log_entry_header(ByteSpan(ring).subspan(pos), kLogLength);
            if (!h.ok() || pos + h->entry_length > kLogLength) continue;
            vhdx::store_structure_checksum(MutableByteSpan(ring).subspan(pos, h->entry_length));
        }
    }

    vhdx::LogReplayOptions options;
    options.tolerate_missing_sequence = flags & 2;
    auto plan = vhdx::plan_log_replay(header, ring, file_size, options);
    if (!plan.ok() || !plan->active) return 0;
    FUZZ_CHECK(plan->entry_count >= 1);
    FUZZ_CHECK(plan->next_sequence_number == plan->head_sequence_number + 1);
    FUZZ_CHECK(plan->next_write_position < kLogLength);
    for (const auto& w : plan->writes) {
        FUZZ_CHECK(w.file_offset >= vhdx::kMinReplayTarget);
        const uint64_t length = w.is_zero() ? w.zero_length : w.data.size();
        FUZZ_CHECK(w.file_offset + length <= vhdx::kMaxReplayTargetEnd);
        FUZZ_CHECK(w.file_offset + length <= header.log_offset ||
                   w.file_offset >= header.log_offset + kLogLength);
    }
    return 0;
}
