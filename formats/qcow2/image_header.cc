// qcow2 header cluster: parse, encode, rewrite normalisation.
// Pure. Implements specs/qcow2-notes.md §2 and §3.2.
#include "formats/qcow2/image_header.h"

#include <algorithm>

namespace coblock::qcow2 {

namespace {

std::string u64s(uint64_t v) {
    return std::to_string(v);
}

// End of the extension area: the backing file name, if any, bounds it.
uint64_t extension_area_end(const Header& header) {
    return header.backing_file_offset != 0 ? header.backing_file_offset
                                           : uint64_t{1} << header.cluster_bits;
}

}  // namespace

Result<ImageHeader> parse_image_header(ByteSpan cluster0, const HeaderParseOptions& options) {
    ImageHeader image;
    ASSIGN_OR_RETURN(image.header, decode_header(cluster0));
    const Header& h = image.header;
    const uint64_t cluster_size = uint64_t{1} << h.cluster_bits;
    if (cluster0.size() < cluster_size) {
        return corrupt_error("qcow2: header cluster truncated: " + u64s(cluster0.size()) +
                             " bytes, need cluster_size " + u64s(cluster_size));
    }
    // decode_header guarantees header_length <= area end <= cluster_size.
    const uint64_t area_start = h.header_length;
    const uint64_t area_end = extension_area_end(h);
    ASSIGN_OR_RETURN(image.extensions,
                     parse_header_extensions(cluster0.subspan(area_start, area_end - area_start),
                                             area_start, h));

    if (const uint64_t unknown = unknown_incompatible_features(h); unknown != 0) {
        const auto* table =
            image.extensions.feature_table ? &*image.extensions.feature_table : nullptr;
        return unsupported_error(
            unsupported_features_message(unknown, FeatureType::kIncompatible, table));
    }
    TRY(validate_header(h, options));

    if (h.backing_file_offset != 0) {
        // validate_header bounded offset + size by cluster_size.
        const ByteSpan name = cluster0.subspan(h.backing_file_offset, h.backing_file_size);
        image.backing_file = std::string(reinterpret_cast<const char*>(name.data()), name.size());
    }
    return image;
}

Result<std::vector<std::byte>> encode_image_header(const ImageHeader& image) {
    const Header& h = image.header;
    if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
        return invalid_argument("qcow2: cannot encode cluster_bits " + u64s(h.cluster_bits));
    }
    const uint64_t cluster_size = uint64_t{1} << h.cluster_bits;
    const uint64_t header_size = encoded_header_size(h);
    if (header_size > cluster_size) {
        return invalid_argument("qcow2: header_length " + u64s(header_size) +
                                " exceeds cluster_size " + u64s(cluster_size));
    }
    if (image.backing_file.has_value() != (h.backing_file_offset != 0)) {
        return invalid_argument("qcow2: backing_file and backing_file_offset " +
                                hex_string(h.backing_file_offset) + " disagree");
    }
    if (image.backing_file) {
        if (image.backing_file->size() != h.backing_file_size) {
            return invalid_argument("qcow2: backing_file_size " + u64s(h.backing_file_size) +
                                    " does not match the name length " +
                                    u64s(image.backing_file->size()));
        }
        if (h.backing_file_offset < header_size || h.backing_file_offset > cluster_size ||
            h.backing_file_size > cluster_size - h.backing_file_offset) {
            return invalid_argument("qcow2: backing file name at " +
                                    hex_string(h.backing_file_offset) + " with length " +
                                    u64s(h.backing_file_size) +
                                    " does not fit between the header and the cluster end");
        }
    }

    std::vector<std::byte> out(cluster_size);
    TRY(encode_header(h, out));
    const uint64_t area_end = extension_area_end(h);
    TRY(encode_header_extensions(
        image.extensions, MutableByteSpan(out).subspan(header_size, area_end - header_size)));
    if (image.backing_file) {
        std::copy_n(reinterpret_cast<const std::byte*>(image.backing_file->data()),
                    image.backing_file->size(), out.begin() + h.backing_file_offset);
    }
    return out;
}

Result<ImageHeader> normalize_for_rewrite(ImageHeader image) {
    Header& h = image.header;
    if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
        return invalid_argument("qcow2: cannot encode cluster_bits " + u64s(h.cluster_bits));
    }
    const uint64_t cluster_size = uint64_t{1} << h.cluster_bits;
    h.size = virtual_disk_size(h);
    if (h.version == kVersion3) {
        h.header_length = static_cast<uint32_t>(
            std::min<uint64_t>(kHeaderV3QemuLength + h.unknown_fields.size(), cluster_size + 1));
        if (cluster_size > 4096) {
            image.extensions.feature_table = qemu_feature_table();
        } else {
            image.extensions.feature_table.reset();
        }
    } else {
        image.extensions.feature_table.reset();
    }
    ASSIGN_OR_RETURN(const uint64_t ext_size, header_extensions_size(image.extensions));
    const uint64_t name_offset = uint64_t{encoded_header_size(h)} + ext_size + 8;
    const uint64_t name_size = image.backing_file ? image.backing_file->size() : 0;
    if (name_offset > cluster_size || name_size > cluster_size - name_offset) {
        return invalid_argument("qcow2: header, extensions and backing file name need " +
                                u64s(name_offset + name_size) + " bytes, more than cluster_size " +
                                u64s(cluster_size));
    }
    if (image.backing_file) {
        h.backing_file_offset = name_offset;
        h.backing_file_size = static_cast<uint32_t>(name_size);
    } else {
        h.backing_file_offset = 0;
        h.backing_file_size = 0;
    }
    return image;
}

}  // namespace coblock::qcow2
