// VHDX parent locator item: the generic key/value layout with UTF-16 strings,
// and the "VHDX parent" locator type with its keys. Pure.
// Implements spec vhdx.md §10.1 and §10.2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/guid.h"

namespace coblock::vhdx {

inline constexpr size_t kParentLocatorHeaderSize = 20;
inline constexpr size_t kParentLocatorEntrySize = 12;

// One key/value pair, kept as UTF-16 so unpaired surrogates round-trip.
struct ParentLocatorEntry {
    std::u16string key;
    std::u16string value;

    bool operator==(const ParentLocatorEntry&) const = default;
};

struct ParentLocator {
    Guid locator_type;
    std::vector<ParentLocatorEntry> entries;  // in on-disk order

    bool operator==(const ParentLocator&) const = default;

    // The value stored under `key`, or nullptr.
    const std::u16string* find(std::u16string_view key) const;
};

// Decodes a parent locator item (the item's bytes, offsets relative to its
// start). Checks: the header and the entry array fit; every key and value
// has a non-zero offset, a non-zero even length, lies inside the item and
// contains no NUL unit; keys are unique. The locator type is not judged here.
Result<ParentLocator> parse_parent_locator(ByteSpan item);
// Encodes: header, entries, then the strings packed in entry order. Fails on
// an empty key or value, a NUL unit, duplicate keys, or more than 65535
// entries or strings longer than 65534 bytes.
Result<std::vector<std::byte>> encode_parent_locator(const ParentLocator& locator);

// UTF-16LE units to UTF-8; unpaired surrogates become U+FFFD (spec §10.1
// asks for lenient conversion).
std::string utf16_to_utf8(std::u16string_view text);
// UTF-8 to UTF-16; malformed input bytes become U+FFFD.
std::u16string utf8_to_utf16(std::string_view text);

// The keys of the "VHDX parent" locator type (spec §10.2), decoded.
struct VhdxParentLinkage {
    Guid parent_linkage;                       // the parent's DataWriteGuid
    std::optional<Guid> parent_linkage2;       // a second acceptable GUID
    std::optional<std::string> relative_path;  // UTF-8, backslashes as stored
    std::optional<std::string> volume_path;
    std::optional<std::string> absolute_win32_path;

    bool operator==(const VhdxParentLinkage&) const = default;

    // True if `data_write_guid` is parent_linkage or parent_linkage2.
    bool matches(const Guid& data_write_guid) const;
};

// Interprets a locator of type kVhdxParentLocatorTypeGuid: another type is
// unsupported (naming the GUID); parent_linkage must be present and a GUID
// (braces optional, any case); at least one path key must be present.
// Unknown keys are ignored.
Result<VhdxParentLinkage> decode_vhdx_parent_locator(const ParentLocator& locator);
// Builds the locator a writer stores: GUIDs as lower-case text with braces,
// keys in the order parent_linkage, parent_linkage2, relative_path,
// volume_path, absolute_win32_path (absent optionals are omitted).
ParentLocator make_vhdx_parent_locator(const VhdxParentLinkage& linkage);

}  // namespace coblock::vhdx
