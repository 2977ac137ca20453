// qcow version 1 header decode/encode/validation and the backing file name.
// Pure. Implements specs/qcow-v1.md §2, §3, §8.
#include "formats/qcow/qcow_header.h"

namespace coblock::qcow {

using detail::hex;

namespace {

// Field offsets inside the 48-byte header (§2).
constexpr size_t kOffMagic = 0;
constexpr size_t kOffVersion = 4;
constexpr size_t kOffBackingFileOffset = 8;
constexpr size_t kOffBackingFileSize = 16;
constexpr size_t kOffMtime = 20;
constexpr size_t kOffSize = 24;
constexpr size_t kOffClusterBits = 32;
constexpr size_t kOffL2Bits = 33;
constexpr size_t kOffPadding = 34;
constexpr size_t kOffCryptMethod = 36;
constexpr size_t kOffL1TableOffset = 40;

// Checks that [offset, offset + length) ends at or before kMaxFileOffset.
Status check_extent_in_range(const char* what, uint64_t offset, uint64_t length) {
    uint64_t end = 0;
    if (!checked_add(offset, length, &end) || end > kMaxFileOffset)
        return corrupt_error(std::string("qcow: ") + what + " at " + hex(offset) + " length " +
                             std::to_string(length) + " ends beyond limit " + hex(kMaxFileOffset));
    return ok_status();
}

}  // namespace

int probe_score(ByteSpan first_bytes) {
    if (first_bytes.size() < kHeaderSize) return 0;
    ByteReader reader(first_bytes);
    const uint32_t magic = reader.be32();
    const uint32_t version = reader.be32();
    return magic == kMagic && version == kVersion ? kProbeScore : 0;
}

Result<Header> decode_header(ByteSpan bytes) {
    if (bytes.size() < kHeaderSize)
        return corrupt_error("qcow: header needs " + std::to_string(kHeaderSize) + " bytes, got " +
                             std::to_string(bytes.size()));
    ByteReader reader(bytes);
    Header h;
    reader.seek(kOffMagic);
    h.magic = reader.be32();
    reader.seek(kOffVersion);
    h.version = reader.be32();
    reader.seek(kOffBackingFileOffset);
    h.backing_file_offset = reader.be64();
    reader.seek(kOffBackingFileSize);
    h.backing_file_size = reader.be32();
    reader.seek(kOffMtime);
    h.mtime = reader.be32();
    reader.seek(kOffSize);
    h.size = reader.be64();
    reader.seek(kOffClusterBits);
    h.cluster_bits = reader.u8();
    reader.seek(kOffL2Bits);
    h.l2_bits = reader.u8();
    reader.seek(kOffCryptMethod);
    h.crypt_method = reader.be32();
    reader.seek(kOffL1TableOffset);
    h.l1_table_offset = reader.be64();
    if (!reader.ok()) return corrupt_error("qcow: header truncated");  // unreachable: size checked
    return h;
}

Status encode_header(const Header& header, MutableByteSpan out) {
    if (out.size() < kHeaderSize)
        return invalid_argument("qcow: header buffer of " + std::to_string(out.size()) +
                                " bytes is smaller than " + std::to_string(kHeaderSize));
    ByteWriter writer(out);
    writer.seek(kOffMagic);
    writer.be32(header.magic);
    writer.seek(kOffVersion);
    writer.be32(header.version);
    writer.seek(kOffBackingFileOffset);
    writer.be64(header.backing_file_offset);
    writer.seek(kOffBackingFileSize);
    writer.be32(header.backing_file_size);
    writer.seek(kOffMtime);
    writer.be32(header.mtime);
    writer.seek(kOffSize);
    writer.be64(header.size);
    writer.seek(kOffClusterBits);
    writer.u8(header.cluster_bits);
    writer.seek(kOffL2Bits);
    writer.u8(header.l2_bits);
    writer.seek(kOffPadding);
    writer.be16(0);
    writer.seek(kOffCryptMethod);
    writer.be32(header.crypt_method);
    writer.seek(kOffL1TableOffset);
    writer.be64(header.l1_table_offset);
    if (!writer.ok()) return invalid_argument("qcow: header encode overran its buffer");
    return ok_status();
}

Status validate_header(const Header& h) {
    if (h.magic != kMagic)
        return invalid_argument("qcow: magic " + hex(h.magic) + " is not " + hex(kMagic) +
                                " (not a qcow image)");
    if (h.version != kVersion) {
        std::string message = "qcow: version " + std::to_string(h.version) + " is not supported";
        if (h.version == 2 || h.version == 3) message += " (this is a qcow2 image)";
        return unsupported_error(std::move(message));
    }
    if (h.size < kMinSize)
        return corrupt_error("qcow: size " + std::to_string(h.size) + " is below minimum " +
                             std::to_string(kMinSize));
    // QEMU's order: the bits, then crypt_method, then the size limits that
    // header_geometry() checks.
    TRY(check_cluster_and_l2_bits(h.cluster_bits, h.l2_bits));
    if (h.crypt_method != kCryptNone && h.crypt_method != kCryptAes)
        return corrupt_error("qcow: crypt_method " + std::to_string(h.crypt_method) +
                             " is invalid (0 = none, 1 = aes)");
    ASSIGN_OR_RETURN(const Geometry geometry, header_geometry(h));
    TRY(check_extent_in_range("l1 table", h.l1_table_offset, geometry.l1_table_bytes()));
    if (h.backing_file_offset != 0) {
        if (h.backing_file_size > kMaxBackingFileSize)
            return corrupt_error("qcow: backing_file_size " + std::to_string(h.backing_file_size) +
                                 " exceeds limit " + std::to_string(kMaxBackingFileSize));
        TRY(check_extent_in_range("backing file name", h.backing_file_offset, h.backing_file_size));
    }
    return ok_status();
}

Result<Header> parse_header(ByteSpan bytes) {
    ASSIGN_OR_RETURN(Header header, decode_header(bytes));
    TRY(validate_header(header));
    return header;
}

Status check_supported(const Header& header) {
    if (header.crypt_method == kCryptAes)
        return unsupported_error("qcow: aes encryption (crypt_method 1) is not supported");
    if (header.crypt_method != kCryptNone)
        return corrupt_error("qcow: crypt_method " + std::to_string(header.crypt_method) +
                             " is invalid (0 = none, 1 = aes)");
    return ok_status();
}

Result<Geometry> header_geometry(const Header& header) {
    return make_geometry(header.size, header.cluster_bits, header.l2_bits);
}

Result<Extent> l1_table_extent(const Header& header) {
    ASSIGN_OR_RETURN(const Geometry geometry, header_geometry(header));
    TRY(check_extent_in_range("l1 table", header.l1_table_offset, geometry.l1_table_bytes()));
    return Extent{header.l1_table_offset, geometry.l1_table_bytes()};
}

Result<std::optional<Extent>> backing_file_name_extent(const Header& header) {
    if (!has_backing_file(header)) return std::optional<Extent>();
    if (header.backing_file_size > kMaxBackingFileSize)
        return corrupt_error("qcow: backing_file_size " + std::to_string(header.backing_file_size) +
                             " exceeds limit " + std::to_string(kMaxBackingFileSize));
    TRY(check_extent_in_range("backing file name", header.backing_file_offset,
                              header.backing_file_size));
    return std::optional<Extent>(Extent{header.backing_file_offset, header.backing_file_size});
}

Result<std::string> parse_backing_file_name(const Header& header, ByteSpan bytes) {
    if (bytes.size() != header.backing_file_size)
        return invalid_argument("qcow: backing file name needs " +
                                std::to_string(header.backing_file_size) + " bytes, got " +
                                std::to_string(bytes.size()));
    std::string name;
    name.reserve(bytes.size());
    for (std::byte b : bytes) {
        if (b == std::byte{0}) break;
        name.push_back(static_cast<char>(b));
    }
    return name;
}

}  // namespace coblock::qcow
