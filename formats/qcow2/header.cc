// qcow2 fixed header: decode, validate, encode, read plan.
// Pure. Implements specs/qcow2.txt "Header" and specs/qcow2-notes.md §2.
#include "formats/qcow2/header.h"

#include <algorithm>
#include <string>

namespace coblock::qcow2 {

namespace {

// Fixed size of one snapshot table entry before its variable parts; the
// header checks only bound the table by this much, like QEMU.
constexpr uint64_t kSnapshotEntryFixedBytes = 40;

std::string u64s(uint64_t v) {
    return std::to_string(v);
}

Status check_magic_version_cluster_bits(uint32_t magic, uint32_t version, uint32_t cluster_bits) {
    if (magic != kMagic) return corrupt_error("qcow2: bad magic " + hex_string(magic), 0);
    if (version != kVersion2 && version != kVersion3) {
        return unsupported_error("qcow2: unsupported version " + u64s(version));
    }
    if (cluster_bits < kMinClusterBits || cluster_bits > kMaxClusterBits) {
        return corrupt_error("qcow2: cluster_bits " + u64s(cluster_bits) + " out of range " +
                             u64s(kMinClusterBits) + ".." + u64s(kMaxClusterBits));
    }
    return ok_status();
}

Status validate_compression_type(const Header& header) {
    const bool bit = (header.incompatible_features & kIncompatCompression) != 0;
    if (header.compression_type != kCompressionDeflate &&
        header.compression_type != kCompressionZstd) {
        return unsupported_error("qcow2: compression_type " + u64s(header.compression_type) +
                                 " is not supported");
    }
    if (bit && header.compression_type == kCompressionDeflate) {
        return corrupt_error(
            "qcow2: incompatible bit 3 (compression type) is set but compression_type is 0");
    }
    if (!bit && header.compression_type != kCompressionDeflate) {
        return corrupt_error("qcow2: compression_type " + u64s(header.compression_type) +
                             " requires incompatible bit 3 (compression type)");
    }
    return ok_status();
}

Status validate_crypt_method(uint32_t crypt_method) {
    switch (crypt_method) {
        case kCryptNone:
            return ok_status();
        case kCryptAes:
            return unsupported_error("qcow2: crypt_method 1 (aes) is not supported");
        case kCryptLuks:
            return unsupported_error("qcow2: crypt_method 2 (luks) is not supported");
        default:
            return unsupported_error("qcow2: crypt_method " + u64s(crypt_method) +
                                     " is not a known encryption method");
    }
}

Status validate_refcount_table(const Header& header, const Geometry& geometry,
                               const HeaderParseOptions& options) {
    if (header.refcount_table_clusters == 0) {
        if (options.check_mode) return ok_status();
        return corrupt_error(
            "qcow2: image does not contain a refcount table "
            "(refcount_table_clusters 0)");
    }
    // refcount_table_clusters is 32-bit and cluster_size at most 2^21: no overflow.
    const uint64_t bytes = uint64_t{header.refcount_table_clusters} << geometry.cluster_bits;
    if (bytes > kMaxRefcountTableBytes) {
        return corrupt_error("qcow2: refcount_table_clusters " +
                             u64s(header.refcount_table_clusters) + " (" + u64s(bytes) +
                             " bytes) exceeds limit " + u64s(kMaxRefcountTableBytes) + " bytes");
    }
    return validate_table_extent("refcount table", header.refcount_table_offset, bytes, geometry);
}

Status validate_snapshot_table(const Header& header, const Geometry& geometry) {
    if (header.nb_snapshots > kMaxSnapshots) {
        return corrupt_error("qcow2: nb_snapshots " + u64s(header.nb_snapshots) +
                             " exceeds limit " + u64s(kMaxSnapshots));
    }
    // Aligned even when there are no snapshots (QEMU checks it regardless).
    return validate_table_extent("snapshot table", header.snapshots_offset,
                                 kSnapshotEntryFixedBytes * header.nb_snapshots, geometry);
}

Status validate_l1_table(const Header& header, const Geometry& geometry) {
    if (header.l1_size > kMaxL1Entries) {
        return corrupt_error("qcow2: l1_size " + u64s(header.l1_size) + " exceeds limit " +
                             u64s(kMaxL1Entries) + " (32 MiB table)");
    }
    TRY(validate_table_extent("l1 table", header.l1_table_offset, uint64_t{header.l1_size} * 8,
                              geometry));
    const uint64_t needed = l1_entries_for_size(geometry, header.size);
    if (header.l1_size < needed) {
        return corrupt_error("qcow2: l1_size " + u64s(header.l1_size) +
                             " too small for virtual size " + u64s(header.size) + " (needs " +
                             u64s(needed) + ")");
    }
    return ok_status();
}

}  // namespace

Result<uint64_t> probe_cluster_size(ByteSpan prefix) {
    ByteReader reader(prefix);
    const uint32_t magic = reader.be32();
    const uint32_t version = reader.be32();
    reader.skip(12);  // backing_file_offset, backing_file_size
    const uint32_t cluster_bits = reader.be32();
    if (!reader.ok()) {
        return corrupt_error("qcow2: header truncated: " + u64s(prefix.size()) + " bytes, need " +
                             u64s(kHeaderProbeBytes));
    }
    TRY(check_magic_version_cluster_bits(magic, version, cluster_bits));
    return uint64_t{1} << cluster_bits;
}

Result<Header> decode_header(ByteSpan bytes) {
    ByteReader reader(bytes);
    Header h;
    const uint32_t magic = reader.be32();
    h.version = reader.be32();
    h.backing_file_offset = reader.be64();
    h.backing_file_size = reader.be32();
    h.cluster_bits = reader.be32();
    h.size = reader.be64();
    h.crypt_method = reader.be32();
    h.l1_size = reader.be32();
    h.l1_table_offset = reader.be64();
    h.refcount_table_offset = reader.be64();
    h.refcount_table_clusters = reader.be32();
    h.nb_snapshots = reader.be32();
    h.snapshots_offset = reader.be64();
    if (!reader.ok()) {
        return corrupt_error("qcow2: header truncated: " + u64s(bytes.size()) + " bytes, need " +
                             u64s(kHeaderV2Length));
    }
    TRY(check_magic_version_cluster_bits(magic, h.version, h.cluster_bits));
    const uint64_t cluster_size = uint64_t{1} << h.cluster_bits;

    if (h.version == kVersion2) {
        h.header_length = kHeaderV2Length;
    } else {
        h.incompatible_features = reader.be64();
        h.compatible_features = reader.be64();
        h.autoclear_features = reader.be64();
        h.refcount_order = reader.be32();
        h.header_length = reader.be32();
        if (!reader.ok()) {
            return corrupt_error("qcow2: header truncated: " + u64s(bytes.size()) +
                                 " bytes, need " + u64s(kHeaderV3MinLength));
        }
        if (h.header_length < kHeaderV3MinLength) {
            return corrupt_error("qcow2: header_length " + u64s(h.header_length) +
                                 " below minimum " + u64s(kHeaderV3MinLength));
        }
        // QEMU does not enforce the spec's "multiple of 8"; neither do we.
        if (h.header_length > cluster_size) {
            return corrupt_error("qcow2: header_length " + u64s(h.header_length) +
                                 " exceeds cluster_size " + u64s(cluster_size));
        }
        if (bytes.size() < h.header_length) {
            return corrupt_error("qcow2: header truncated: " + u64s(bytes.size()) +
                                 " bytes, need header_length " + u64s(h.header_length));
        }
        if (h.header_length > kCompressionTypeOffset) {
            h.compression_type = std::to_integer<uint8_t>(bytes[kCompressionTypeOffset]);
        }
        if (h.header_length > kHeaderV3QemuLength) {
            const ByteSpan unknown =
                bytes.subspan(kHeaderV3QemuLength, h.header_length - kHeaderV3QemuLength);
            h.unknown_fields.assign(unknown.begin(), unknown.end());
        }
    }

    if (h.backing_file_offset != 0 &&
        (h.backing_file_offset < h.header_length || h.backing_file_offset > cluster_size)) {
        return corrupt_error("qcow2: backing_file_offset " + hex_string(h.backing_file_offset) +
                             " outside of the header cluster [" + u64s(h.header_length) + ", " +
                             u64s(cluster_size) + "]");
    }
    return h;
}

Status validate_header(const Header& header, const HeaderParseOptions& options) {
    TRY(check_magic_version_cluster_bits(kMagic, header.version, header.cluster_bits));
    TRY(validate_compression_type(header));
    ASSIGN_OR_RETURN(const Geometry geometry,
                     make_geometry(header.cluster_bits,
                                   (header.incompatible_features & kIncompatExtendedL2) != 0,
                                   header.refcount_order));
    TRY(validate_crypt_method(header.crypt_method));
    if ((header.autoclear_features & kAutoclearDataFileRaw) &&
        !(header.incompatible_features & kIncompatDataFile)) {
        return corrupt_error(
            "qcow2: autoclear bit 1 (raw external data) requires incompatible bit 2 "
            "(external data file)");
    }
    if (header.backing_file_offset != 0) {
        if (header.backing_file_size > kMaxBackingFileNameLength) {
            return corrupt_error("qcow2: backing_file_size " + u64s(header.backing_file_size) +
                                 " exceeds limit " + u64s(kMaxBackingFileNameLength));
        }
        if (header.backing_file_offset > geometry.cluster_size() ||
            header.backing_file_size > geometry.cluster_size() - header.backing_file_offset) {
            return corrupt_error("qcow2: backing file name at " +
                                 hex_string(header.backing_file_offset) + " with length " +
                                 u64s(header.backing_file_size) + " exceeds the header cluster");
        }
    }
    TRY(validate_refcount_table(header, geometry, options));
    if (!options.check_mode) TRY(validate_snapshot_table(header, geometry));
    TRY(validate_l1_table(header, geometry));
    return ok_status();
}

Result<Header> parse_header(ByteSpan bytes, const HeaderParseOptions& options) {
    ASSIGN_OR_RETURN(Header header, decode_header(bytes));
    if (const uint64_t unknown = unknown_incompatible_features(header); unknown != 0) {
        return unsupported_error("qcow2: unsupported incompatible features " + hex_string(unknown));
    }
    TRY(validate_header(header, options));
    return header;
}

Status encode_header(const Header& h, MutableByteSpan out) {
    if (h.version != kVersion2 && h.version != kVersion3) {
        return invalid_argument("qcow2: cannot encode header version " + u64s(h.version));
    }
    if (h.version == kVersion2) {
        if (h.incompatible_features != 0 || h.compatible_features != 0 ||
            h.autoclear_features != 0 || h.refcount_order != kDefaultRefcountOrder ||
            h.header_length != kHeaderV2Length || h.compression_type != kCompressionDeflate ||
            !h.unknown_fields.empty()) {
            return invalid_argument("qcow2: version 2 header with version 3 fields set");
        }
    } else {
        if (h.header_length < kHeaderV3MinLength) {
            return invalid_argument("qcow2: header_length " + u64s(h.header_length) +
                                    " below minimum " + u64s(kHeaderV3MinLength));
        }
        if (h.header_length <= kCompressionTypeOffset && h.compression_type != 0) {
            return invalid_argument("qcow2: compression_type needs header_length > 104");
        }
        const uint64_t unknown_len =
            h.header_length > kHeaderV3QemuLength ? h.header_length - kHeaderV3QemuLength : 0;
        if (h.unknown_fields.size() != unknown_len) {
            return invalid_argument("qcow2: " + u64s(h.unknown_fields.size()) +
                                    " unknown header field bytes do not match header_length " +
                                    u64s(h.header_length));
        }
    }
    const uint32_t length = encoded_header_size(h);
    if (out.size() < length) {
        return invalid_argument("qcow2: header buffer of " + u64s(out.size()) + " bytes, need " +
                                u64s(length));
    }
    ByteWriter writer(out.first(length));
    writer.be32(kMagic);
    writer.be32(h.version);
    writer.be64(h.backing_file_offset);
    writer.be32(h.backing_file_size);
    writer.be32(h.cluster_bits);
    writer.be64(h.size);
    writer.be32(h.crypt_method);
    writer.be32(h.l1_size);
    writer.be64(h.l1_table_offset);
    writer.be64(h.refcount_table_offset);
    writer.be32(h.refcount_table_clusters);
    writer.be32(h.nb_snapshots);
    writer.be64(h.snapshots_offset);
    if (h.version == kVersion3) {
        writer.be64(h.incompatible_features);
        writer.be64(h.compatible_features);
        writer.be64(h.autoclear_features);
        writer.be32(h.refcount_order);
        writer.be32(h.header_length);
        if (h.header_length > kCompressionTypeOffset) {
            writer.u8(h.compression_type);
            // Padding up to 112 (or header_length if shorter) must be zero.
            const uint32_t pad_end = std::min(h.header_length, kHeaderV3QemuLength);
            writer.zeros(pad_end - kCompressionTypeOffset - 1);
            // An empty vector's data() may be null, which memcpy must not see.
            if (!h.unknown_fields.empty()) {
                writer.bytes(h.unknown_fields.data(), h.unknown_fields.size());
            }
        }
    }
    if (!writer.ok()) return make_error(ErrorKind::kInternal, "qcow2: header encoder overran");
    return ok_status();
}

Result<std::vector<std::byte>> encode_header(const Header& header) {
    std::vector<std::byte> out(encoded_header_size(header));
    TRY(encode_header(header, out));
    return out;
}

HeaderPlan header_plan(const Header& header) {
    HeaderPlan plan;
    plan.l1_table = Extent{header.l1_table_offset, uint64_t{header.l1_size} * 8};
    // Clamp the shift so a header that skipped validation cannot cause UB.
    const uint32_t bits = header.cluster_bits < 32 ? header.cluster_bits : 31;
    plan.refcount_table =
        Extent{header.refcount_table_offset, uint64_t{header.refcount_table_clusters} << bits};
    plan.snapshots_offset = header.snapshots_offset;
    plan.nb_snapshots = header.nb_snapshots;
    return plan;
}

}  // namespace coblock::qcow2
