// qcow2 bitmap directory (persistent dirty bitmaps, read by `info`): the
// first two input bytes are nb_bitmaps, the rest is the directory. A parse
// that succeeds must have produced exactly nb_bitmaps entries with names
// within QEMU's limits. There is no encoder, so no round trip.
#include "formats/qcow2/bitmap_directory.h"
#include "fuzz/fuzz.h"

using namespace coblock;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::InputReader r(data, size);
    const uint32_t nb_bitmaps = r.take<uint16_t>();
    auto entries = qcow2::parse_bitmap_directory(r.rest(), nb_bitmaps);
    if (!entries.ok()) return 0;
    FUZZ_CHECK(entries->size() == nb_bitmaps);
    for (const qcow2::BitmapDirectoryEntry& e : *entries) {
        FUZZ_CHECK(!e.name.empty());
        FUZZ_CHECK(e.name.size() <= qcow2::kMaxBitmapNameBytes);
    }
    return 0;
}
