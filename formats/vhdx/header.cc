// VHDX file identifier and headers. Pure. Implements spec vhdx.md §4 and §5.
#include "formats/vhdx/header.h"

#include <algorithm>
#include <cstring>

namespace coblock::vhdx {
namespace {

constexpr uint8_t kFileSignature[8] = {'v', 'h', 'd', 'x', 'f', 'i', 'l', 'e'};
constexpr uint32_t kHeaderSignature = 0x64616568;  // "head"

}  // namespace

bool probe_vhdx(ByteSpan first_bytes) {
    return first_bytes.size() >= sizeof kFileSignature &&
           std::memcmp(first_bytes.data(), kFileSignature, sizeof kFileSignature) == 0;
}

Result<FileIdentifier> parse_file_identifier(ByteSpan bytes) {
    if (bytes.size() < kFileIdentifierMinSize)
        return invalid_argument("vhdx: file identifier needs " +
                                std::to_string(kFileIdentifierMinSize) + " bytes, got " +
                                std::to_string(bytes.size()));
    if (!probe_vhdx(bytes)) {
        std::string shown;
        for (size_t i = 0; i < kFileIdentifierSignatureSize; ++i) {
            const auto c = std::to_integer<unsigned char>(bytes[i]);
            shown += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
        }
        return corrupt_error("vhdx: file identifier signature '" + shown + "' is not 'vhdxfile'",
                             kFileIdentifierOffset);
    }
    FileIdentifier id;
    ByteReader reader(bytes);
    reader.seek(kCreatorOffset);
    for (size_t i = 0; i < kCreatorMaxUnits; ++i) {
        const uint16_t unit = reader.le16();
        if (unit == 0) break;
        id.creator.push_back(static_cast<char16_t>(unit));
    }
    return id;
}

Status encode_file_identifier(const FileIdentifier& identifier, MutableByteSpan out) {
    if (out.size() < kFileIdentifierMinSize)
        return invalid_argument("vhdx: file identifier buffer of " + std::to_string(out.size()) +
                                " bytes is too small");
    if (identifier.creator.size() > kCreatorMaxUnits)
        return invalid_argument("vhdx: creator of " + std::to_string(identifier.creator.size()) +
                                " utf-16 units exceeds limit " + std::to_string(kCreatorMaxUnits));
    std::memset(out.data(), 0, out.size());
    ByteWriter writer(out);
    writer.bytes(kFileSignature, sizeof kFileSignature);
    for (char16_t unit : identifier.creator)
        writer.le16(static_cast<uint16_t>(unit));
    return ok_status();
}

Result<Header> parse_header(ByteSpan bytes) {
    if (bytes.size() < kHeaderSize)
        return invalid_argument("vhdx: header needs " + std::to_string(kHeaderSize) +
                                " bytes, got " + std::to_string(bytes.size()));
    bytes = bytes.first(kHeaderSize);
    ByteReader reader(bytes);
    const uint32_t signature = reader.le32();
    if (signature != kHeaderSignature)
        return corrupt_error("vhdx: header signature " + hex(signature) + " is not 'head'");
    const uint32_t checksum = reader.le32();
    const uint32_t computed = structure_checksum(bytes);
    if (checksum != computed)
        return corrupt_error("vhdx: header checksum " + hex(checksum) + " does not match " +
                             hex(computed));
    Header h;
    h.sequence_number = reader.le64();
    h.file_write_guid = read_guid(reader);
    h.data_write_guid = read_guid(reader);
    h.log_guid = read_guid(reader);
    h.log_version = reader.le16();
    h.version = reader.le16();
    h.log_length = reader.le32();
    h.log_offset = reader.le64();
    return h;
}

Status encode_header(const Header& header, MutableByteSpan out) {
    if (out.size() < kHeaderSize)
        return invalid_argument("vhdx: header buffer of " + std::to_string(out.size()) +
                                " bytes is too small");
    MutableByteSpan slot = out.first(kHeaderSize);
    std::memset(slot.data(), 0, slot.size());
    ByteWriter writer(slot);
    writer.le32(kHeaderSignature);
    writer.le32(0);  // checksum, filled below
    writer.le64(header.sequence_number);
    write_guid(writer, header.file_write_guid);
    write_guid(writer, header.data_write_guid);
    write_guid(writer, header.log_guid);
    writer.le16(header.log_version);
    writer.le16(header.version);
    writer.le32(header.log_length);
    writer.le64(header.log_offset);
    store_structure_checksum(slot);
    return ok_status();
}

Status validate_header(const Header& h) {
    if (h.version != kHeaderVersion)
        return unsupported_error("vhdx: unsupported header version " + std::to_string(h.version));
    // QEMU refuses any log version but 0 even with a zero log GUID; so do we.
    if (h.log_version != kLogVersion)
        return corrupt_error("vhdx: unsupported log version " + std::to_string(h.log_version));
    if (h.log_offset < kHeaderSectionSize || h.log_offset % kObjectAlignment != 0)
        return corrupt_error("vhdx: header log offset " + hex(h.log_offset) +
                             " is not a mib-aligned offset past the header section");
    if (h.log_length % kObjectAlignment != 0)
        return corrupt_error("vhdx: header log length " + hex(h.log_length) +
                             " is not a multiple of 1 mib");
    if (!h.log_guid.is_zero() && h.log_length == 0)
        return corrupt_error("vhdx: header log guid " + h.log_guid.to_string() +
                             " is set but the log length is 0");
    return ok_status();
}

uint64_t header_slot_offset(int slot) {
    return slot == 0 ? kHeader1Offset : kHeader2Offset;
}

Result<HeaderSelection> select_header(ByteSpan slot1, ByteSpan slot2) {
    Result<Header> parsed[2] = {parse_header(slot1), parse_header(slot2)};
    bool valid[2];
    for (int i = 0; i < 2; ++i)
        valid[i] = parsed[i].ok() && parsed[i]->version == kHeaderVersion;

    if (!valid[0] && !valid[1]) {
        // Well-formed headers of another version: say so rather than "corrupt".
        for (int i = 0; i < 2; ++i)
            if (parsed[i].ok())
                return unsupported_error("vhdx: unsupported header version " +
                                         std::to_string(parsed[i]->version));
        return corrupt_error("vhdx: no valid header: header 1: " + parsed[0].error().message +
                             "; header 2: " + parsed[1].error().message);
    }

    HeaderSelection sel;
    if (valid[0] && valid[1]) {
        const uint64_t seq1 = parsed[0]->sequence_number;
        const uint64_t seq2 = parsed[1]->sequence_number;
        if (seq1 == seq2 &&
            !std::equal(slot1.begin(), slot1.begin() + kHeaderCompareSize, slot2.begin()))
            return corrupt_error("vhdx: no valid header: both headers have sequence number " +
                                 std::to_string(seq1) + " but differ");
        sel.current_slot = seq2 > seq1 ? 1 : 0;
        sel.other_valid = true;
        sel.other = *parsed[1 - sel.current_slot];
    } else {
        sel.current_slot = valid[0] ? 0 : 1;
    }
    sel.current = *parsed[sel.current_slot];
    TRY(validate_header(sel.current));
    return sel;
}

Result<std::array<HeaderWrite, 2>> plan_header_update(const HeaderSelection& selection,
                                                      const Header& fields) {
    const uint64_t seq = selection.current.sequence_number;
    if (seq > UINT64_MAX - 2)
        return corrupt_error("vhdx: header sequence number " + std::to_string(seq) +
                             " cannot be advanced");
    std::array<HeaderWrite, 2> writes;
    for (int i = 0; i < 2; ++i) {
        HeaderWrite& w = writes[i];
        // The first write must land on the non-current slot, so that a crash
        // mid-write leaves the current header intact.
        const int slot = i == 0 ? 1 - selection.current_slot : selection.current_slot;
        w.file_offset = header_slot_offset(slot);
        w.header = fields;
        w.header.sequence_number = seq + 1 + i;
        w.bytes.resize(kHeaderSize);
        TRY(encode_header(w.header, w.bytes));
    }
    return writes;
}

}  // namespace coblock::vhdx
