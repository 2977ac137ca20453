// VHDX file type identifier and the two headers: decode, encode, choose the
// current header, and plan the double header update. Pure.
// Implements spec vhdx.md §4 (file identifier) and §5 (headers).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/common.h"
#include "formats/vhdx/guid.h"

namespace coblock::vhdx {

inline constexpr uint64_t kFileIdentifierSize = 64 * kKiB;  // the whole slot
inline constexpr size_t kFileIdentifierSignatureSize = 8;
inline constexpr size_t kCreatorOffset = 8;
inline constexpr size_t kCreatorMaxUnits = 256;  // 512 bytes of UTF-16LE
inline constexpr size_t kFileIdentifierMinSize = kCreatorOffset + 2 * kCreatorMaxUnits;
inline constexpr size_t kHeaderSize = 4096;       // the checksummed structure
inline constexpr size_t kHeaderCompareSize = 80;  // fields before Reserved (QEMU's compare)
inline constexpr uint16_t kHeaderVersion = 1;     // the only defined version
inline constexpr uint16_t kLogVersion = 0;        // the only defined log version

// True if `first_bytes` starts with "vhdxfile" (QEMU's probe: score 100).
bool probe_vhdx(ByteSpan first_bytes);

// The file type identifier at offset 0. The creator is diagnostic only.
struct FileIdentifier {
    std::u16string creator;  // up to 256 UTF-16 units, without the NUL padding

    bool operator==(const FileIdentifier&) const = default;
};

// Decodes the identifier from at least kFileIdentifierMinSize bytes. Checks
// the signature only; the creator is cut at the first NUL.
Result<FileIdentifier> parse_file_identifier(ByteSpan bytes);
// Writes signature and creator into `out` (at least kFileIdentifierMinSize
// bytes, usually the 64 KiB slot) and zeroes the rest of `out`. Fails if the
// creator exceeds 256 units or `out` is too small.
Status encode_file_identifier(const FileIdentifier& identifier, MutableByteSpan out);

// One header (spec §5.1). Reserved bytes are not kept: they are zero on encode.
struct Header {
    uint64_t sequence_number = 0;
    Guid file_write_guid;
    Guid data_write_guid;
    Guid log_guid;  // zero: no log to replay
    uint16_t log_version = kLogVersion;
    uint16_t version = kHeaderVersion;
    uint32_t log_length = 0;
    uint64_t log_offset = 0;

    bool operator==(const Header&) const = default;
};

// Decodes a 4096-byte header slot: checks the signature "head" and the
// CRC-32C. Does not judge the field values (see validate_header).
Result<Header> parse_header(ByteSpan bytes);
// Encodes into `out` (at least kHeaderSize bytes): fields, zero reserved
// bytes, checksum. Bytes of `out` past kHeaderSize are left untouched.
Status encode_header(const Header& header, MutableByteSpan out);

// Checks the current header's fields (spec §5.2 rule 4 and §12 #3-#6):
// version 1 (else unsupported), log version 0, log offset at least 1 MiB and
// MiB-aligned, log length MiB-aligned. Placement against the file size and
// other objects is the extent checker's job.
Status validate_header(const Header& header);

// The outcome of choosing between the two header slots.
struct HeaderSelection {
    Header current;
    int current_slot = 0;  // 0: header 1 at 64 KiB, 1: header 2 at 128 KiB
    bool other_valid = false;
    Header other;  // meaningful only when other_valid

    bool operator==(const HeaderSelection&) const = default;
};

// File offset of slot 0 or 1.
uint64_t header_slot_offset(int slot);

// Chooses the current header from the two 4096-byte slots (spec §5.2): a
// header is valid if signature, checksum and version 1 hold; the current one
// is the only valid one or the one with the greater sequence number. Equal
// sequence numbers are accepted only if the first 80 bytes of both slots are
// identical (Disk2VHD writes such files), and then header 1 is current.
// Errors: no valid header (corrupt), or the only well-formed headers carry
// an unknown version (unsupported, naming the version). Also applies
// validate_header to the chosen header.
Result<HeaderSelection> select_header(ByteSpan slot1, ByteSpan slot2);

// One header write of an update: where and what.
struct HeaderWrite {
    uint64_t file_offset = 0;
    Header header;
    std::vector<std::byte> bytes;  // kHeaderSize bytes, checksummed

    bool operator==(const HeaderWrite&) const = default;
};

// Plans the double update of spec §5.4 with new field values `fields` (its
// sequence_number is ignored): the first write goes to the non-current slot
// with sequence current+1, the second to the other slot with current+2. The
// caller writes and flushes them in order. Fails only if the sequence number
// would overflow.
Result<std::array<HeaderWrite, 2>> plan_header_update(const HeaderSelection& selection,
                                                      const Header& fields);

}  // namespace coblock::vhdx
