// qcow version 1 image creation layout, matching `qemu-img create -f qcow`.
// Pure. Implements specs/qcow-v1.md §9.
#include "formats/qcow/qcow_create.h"

namespace coblock::qcow {

Result<CreateLayout> build_create_layout(const CreateOptions& options) {
    if (options.size == 0) return invalid_argument("qcow: image size 0 is too small");
    if (options.size > kMaxFileOffset)
        return invalid_argument("qcow: image size " + std::to_string(options.size) +
                                " exceeds limit " + std::to_string(kMaxFileOffset));
    const uint64_t size = align_up(options.size, kSectorSize);  // cannot overflow: size < 2^63

    const bool backing = !options.backing_file.empty();
    // vvfat's "fat:" keeps the backing geometry but is not stored (§9 step 2).
    const std::string stored_name =
        options.backing_file == kVvfatBackingName ? std::string() : options.backing_file;
    if (stored_name.size() > kMaxBackingFileSize)
        return invalid_argument("qcow: backing file name length " +
                                std::to_string(stored_name.size()) + " exceeds limit " +
                                std::to_string(kMaxBackingFileSize));
    if (stored_name.find('\0') != std::string::npos)
        return invalid_argument("qcow: backing file name contains a nul byte");

    const uint32_t cluster_bits = backing ? kBackingClusterBits : kDefaultClusterBits;
    const uint32_t l2_bits = backing ? kBackingL2Bits : kDefaultL2Bits;
    auto geometry = make_geometry(size, cluster_bits, l2_bits);
    if (!geometry.ok()) return invalid_argument(geometry.error().message);

    // All values below are bounded: header_size <= 48 + 1023 + 7 and the L1
    // table is at most 8 * kMaxL1Size bytes, so no sum can overflow.
    const uint64_t header_size = align_up(kHeaderSize + stored_name.size(), kL1TableAlignment);
    Header header;
    header.size = size;
    header.cluster_bits = static_cast<uint8_t>(cluster_bits);
    header.l2_bits = static_cast<uint8_t>(l2_bits);
    header.l1_table_offset = header_size;
    if (!stored_name.empty()) {
        header.backing_file_offset = kHeaderSize;
        header.backing_file_size = static_cast<uint32_t>(stored_name.size());
    }

    CreateLayout layout;
    layout.header = header;
    layout.geometry = *geometry;
    LayoutWrite head{0, std::vector<std::byte>(header_size)};
    TRY(encode_header(header, head.bytes));
    for (size_t i = 0; i < stored_name.size(); ++i)
        head.bytes[kHeaderSize + i] = static_cast<std::byte>(stored_name[i]);
    layout.writes.push_back(std::move(head));
    layout.zero_fill = Extent{header_size, align_up(geometry->l1_table_bytes(), kL1FillUnit)};
    layout.file_size = layout.zero_fill.offset + layout.zero_fill.length;
    return layout;
}

}  // namespace coblock::qcow
