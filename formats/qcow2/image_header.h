// qcow2 header cluster (cluster 0) as a whole: fixed header, extensions and
// backing file name; parser, encoder and QEMU's header-rewrite normalisation.
// Pure. Implements specs/qcow2.txt "Header" .. "Header extensions" and
// specs/qcow2-notes.md §2 (open checks) and §3.2 (full header rewrite).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow2/header.h"
#include "formats/qcow2/header_extensions.h"
#include "formats/result.h"

namespace coblock::qcow2 {

struct ImageHeader {
    Header header;
    HeaderExtensions extensions;
    // Present iff backing_file_offset != 0; raw bytes (may be empty).
    std::optional<std::string> backing_file;
    bool operator==(const ImageHeader&) const = default;
};

// Parses cluster 0. `cluster0` must hold the whole first cluster (the size
// probe_cluster_size returned); the driver zero-pads it when the file is
// shorter, since reads past EOF return zeros. Order of checks: the
// structural checks of decode_header, the extensions (parse_header_
// extensions), unknown incompatible bits (kUnsupported, named from the
// image's feature table, see unsupported_features_message), validate_header,
// and finally the backing file name is taken from cluster 0.
Result<ImageHeader> parse_image_header(ByteSpan cluster0, const HeaderParseOptions& options = {});

// Encodes cluster 0 exactly as described by `image`: the fixed header, the
// extensions in QEMU's order from header_length (72 for v2) up to
// backing_file_offset (or the end of the cluster), the end marker when there
// is room, the backing file name at backing_file_offset, zeros elsewhere.
// Returns cluster_size bytes. kInvalidArgument if cluster_bits is out of
// range, the fixed header is not encodable, backing_file and
// backing_file_offset/size disagree, or the extensions do not fit.
// Round trip: parse_image_header(encode_image_header(x)) == x for every x
// that parse_image_header returned, unless encoding fails (only possible for
// an area filled to within 8 bytes, or a feature table with a partial entry).
Result<std::vector<std::byte>> encode_image_header(const ImageHeader& image);

// What QEMU's full header rewrite (update_header) stores, applied to a
// struct: v3 header_length = 112 + unknown field bytes, size rounded down to
// 512, feature name table = QEMU's (v3 with clusters > 4 KiB only, dropped
// otherwise), backing file name placed right after the end marker. Fails with
// kInvalidArgument if it all does not fit in one cluster (QEMU: ENOSPC).
Result<ImageHeader> normalize_for_rewrite(ImageHeader image);

// Autoclear bits a writer must clear before its first write: every unknown
// bit, and bit 0 (bitmaps) unless the writer maintains bitmaps.
inline uint64_t autoclear_bits_to_clear(const Header& header, bool maintains_bitmaps) {
    uint64_t clear = header.autoclear_features & ~kAutoclearKnownMask;
    if (!maintains_bitmaps) clear |= header.autoclear_features & kAutoclearBitmaps;
    return clear;
}

}  // namespace coblock::qcow2
