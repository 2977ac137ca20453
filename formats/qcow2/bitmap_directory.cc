// Bitmap directory decoding (specs/qcow2.txt "Bitmap directory"): entries
// back to back, each padded to 8 bytes; sizes checked before every read.
#include "formats/qcow2/bitmap_directory.h"

namespace coblock::qcow2 {

namespace {

uint64_t align8(uint64_t value) {
    return (value + 7) & ~uint64_t{7};
}

}  // namespace

Result<std::vector<BitmapDirectoryEntry>> parse_bitmap_directory(ByteSpan directory,
                                                                 uint32_t nb_bitmaps) {
    std::vector<BitmapDirectoryEntry> entries;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < nb_bitmaps; ++i) {
        const std::string which = "qcow2: bitmap directory entry " + std::to_string(i);
        if (directory.size() < pos + kBitmapEntryFixedBytes)
            return corrupt_error(which + " runs past the directory (" +
                                 std::to_string(directory.size()) + " bytes)");
        const std::byte* p = directory.data() + pos;
        BitmapDirectoryEntry e;
        e.bitmap_table_offset = load_be<uint64_t>(p);
        e.bitmap_table_size = load_be<uint32_t>(p + 8);
        e.flags = load_be<uint32_t>(p + 12);
        e.type = static_cast<uint8_t>(p[16]);
        e.granularity_bits = static_cast<uint8_t>(p[17]);
        const uint32_t name_size = load_be<uint16_t>(p + 18);
        const uint32_t extra_size = load_be<uint32_t>(p + 20);
        if (name_size == 0 || name_size > kMaxBitmapNameBytes)
            return corrupt_error(which + " has a name of " + std::to_string(name_size) +
                                 " bytes (1 to 1023 allowed)");
        // Fixed part + extra (< 4 GiB) + name: no overflow in 64 bits.
        const uint64_t end = pos + kBitmapEntryFixedBytes + extra_size + name_size;
        if (end > directory.size())
            return corrupt_error(which + " (" + std::to_string(end - pos) +
                                 " bytes) runs past the directory (" +
                                 std::to_string(directory.size()) + " bytes)");
        const std::byte* extra = p + kBitmapEntryFixedBytes;
        e.extra_data.assign(extra, extra + extra_size);
        const char* name = reinterpret_cast<const char*>(extra + extra_size);
        e.name.assign(name, name_size);
        entries.push_back(std::move(e));
        pos = align8(end);
    }
    // QEMU's bitmap_list_load: the padded entries fill the directory exactly.
    if (pos != directory.size())
        return corrupt_error("qcow2: bitmap directory of " + std::to_string(directory.size()) +
                             " bytes does not end with entry " + std::to_string(nb_bitmaps) +
                             " (at byte " + std::to_string(pos) + ")");
    return entries;
}

}  // namespace coblock::qcow2
