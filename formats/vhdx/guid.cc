// VHDX GUID text conversion. Pure. Implements spec vhdx.md §2.1.
#include "formats/vhdx/guid.h"

#include <cstdio>

namespace coblock::vhdx {
namespace {

constexpr size_t kGuidTextLength = 36;  // 32 hex digits and 4 dashes

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

bool Guid::is_zero() const {
    for (uint8_t b : bytes)
        if (b != 0) return false;
    return true;
}

Guid Guid::from_bytes(ByteSpan raw) {
    Guid g;
    if (raw.size() < g.bytes.size()) return g;
    for (size_t i = 0; i < g.bytes.size(); ++i)
        g.bytes[i] = std::to_integer<uint8_t>(raw[i]);
    return g;
}

std::string Guid::to_string(bool braces) const {
    char buf[kGuidTextLength + 3];
    std::snprintf(buf, sizeof buf,
                  "%s%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x%s",
                  braces ? "{" : "", bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4],
                  bytes[7], bytes[6], bytes[8], bytes[9], bytes[10], bytes[11], bytes[12],
                  bytes[13], bytes[14], bytes[15], braces ? "}" : "");
    return buf;
}

Result<Guid> parse_guid_text(std::string_view text) {
    std::string_view body = text;
    if (body.size() == kGuidTextLength + 2 && body.front() == '{' && body.back() == '}')
        body = body.substr(1, kGuidTextLength);
    auto bad = [&] {
        return invalid_argument("vhdx: malformed guid text '" + std::string(text) + "'");
    };
    if (body.size() != kGuidTextLength) return bad();
    // Text digits in order; positions 8, 13, 18, 23 hold dashes.
    uint8_t text_bytes[16];
    size_t n = 0;
    for (size_t i = 0; i < body.size();) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (body[i] != '-') return bad();
            ++i;
            continue;
        }
        const int hi = hex_value(body[i]);
        const int lo = hex_value(body[i + 1]);
        if (hi < 0 || lo < 0) return bad();
        text_bytes[n++] = static_cast<uint8_t>(hi * 16 + lo);
        i += 2;
    }
    if (n != 16) return bad();
    // Data1..Data3 are printed big-endian but stored little-endian.
    static constexpr uint8_t kTextToDisk[16] = {3, 2, 1,  0,  5,  4,  7,  6,
                                                8, 9, 10, 11, 12, 13, 14, 15};
    Guid g;
    for (size_t i = 0; i < 16; ++i)
        g.bytes[i] = text_bytes[kTextToDisk[i]];
    return g;
}

Guid read_guid(ByteReader& reader) {
    Guid g;
    reader.bytes(g.bytes.data(), g.bytes.size());
    return g;
}

void write_guid(ByteWriter& writer, const Guid& guid) {
    writer.bytes(guid.bytes.data(), guid.bytes.size());
}

}  // namespace coblock::vhdx
