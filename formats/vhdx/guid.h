// VHDX GUIDs: the 16-byte mixed-endian on-disk form, text parsing and
// formatting, and the GUIDs the format defines. Pure. Implements spec
// vhdx.md §2.1 (and the known GUIDs of §6.2, §7.2, §10.2).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/bytes.h"
#include "formats/result.h"

namespace coblock::vhdx {

// A GUID held as its 16 on-disk bytes: Data1 (u32 LE), Data2 (u16 LE),
// Data3 (u16 LE), Data4 (8 raw bytes). Comparison is over the raw bytes, as
// the spec requires; the ordering exists only so GUIDs can key sorted maps.
struct Guid {
    std::array<uint8_t, 16> bytes{};

    bool operator==(const Guid&) const = default;
    auto operator<=>(const Guid&) const = default;

    bool is_zero() const;

    // Builds a GUID from its text fields, e.g. make(0x2DC27766, 0xF623, 0x4200,
    // 0x9D64115E9BFD4A08) for 2DC27766-F623-4200-9D64-115E9BFD4A08.
    static constexpr Guid make(uint32_t data1, uint16_t data2, uint16_t data3, uint64_t data4) {
        Guid g;
        for (int i = 0; i < 4; ++i)
            g.bytes[i] = static_cast<uint8_t>(data1 >> (8 * i));
        for (int i = 0; i < 2; ++i)
            g.bytes[4 + i] = static_cast<uint8_t>(data2 >> (8 * i));
        for (int i = 0; i < 2; ++i)
            g.bytes[6 + i] = static_cast<uint8_t>(data3 >> (8 * i));
        for (int i = 0; i < 8; ++i)
            g.bytes[8 + i] = static_cast<uint8_t>(data4 >> (8 * (7 - i)));
        return g;
    }

    // Copies 16 raw bytes (e.g. a random v4 UUID) into a GUID unchanged.
    // `raw` must hold at least 16 bytes; fewer yield the zero GUID.
    static Guid from_bytes(ByteSpan raw);

    // Lower-case text "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", with braces
    // ("{...}") when `braces` is set (the form parent_linkage uses).
    std::string to_string(bool braces = false) const;
};

// Parses the text form, case-insensitively, with or without surrounding
// braces. Fails with an invalid-argument error quoting the text otherwise.
Result<Guid> parse_guid_text(std::string_view text);

// Reads/writes 16 raw GUID bytes through a cursor (sticky failure applies).
Guid read_guid(ByteReader& reader);
void write_guid(ByteWriter& writer, const Guid& guid);

// Region GUIDs (spec §6.2).
inline constexpr Guid kBatRegionGuid = Guid::make(0x2DC27766, 0xF623, 0x4200, 0x9D64115E9BFD4A08);
inline constexpr Guid kMetadataRegionGuid =
    Guid::make(0x8B7CA206, 0x4790, 0x4B9A, 0xB8FE575F050F886E);

// Metadata item GUIDs (spec §7.2).
inline constexpr Guid kFileParametersGuid =
    Guid::make(0xCAA16737, 0xFA36, 0x4D43, 0xB3B633F0AA44E76B);
inline constexpr Guid kVirtualDiskSizeGuid =
    Guid::make(0x2FA54224, 0xCD1B, 0x4876, 0xB2115DBED83BF4B8);
inline constexpr Guid kVirtualDiskIdGuid =
    Guid::make(0xBECA12AB, 0xB2E6, 0x4523, 0x93EFC309E000C746);
inline constexpr Guid kLogicalSectorSizeGuid =
    Guid::make(0x8141BF1D, 0xA96F, 0x4709, 0xBA47F233A8FAAB5F);
inline constexpr Guid kPhysicalSectorSizeGuid =
    Guid::make(0xCDA348C7, 0x445D, 0x4471, 0x9CC9E9885251C556);
inline constexpr Guid kParentLocatorGuid =
    Guid::make(0xA8D35F2D, 0xB30B, 0x454D, 0xABF7D3D84834AB0C);

// The only defined parent locator type, "VHDX parent" (spec §10.2).
inline constexpr Guid kVhdxParentLocatorTypeGuid =
    Guid::make(0xB04AEFB7, 0xD19E, 0x4A81, 0xB78925B8E9445913);

}  // namespace coblock::vhdx
