// QEMU's JSON writer and QDict key order, byte for byte.
// Pure. Follows QEMU 7.2 qobject/json-writer.c (pretty_newline,
// maybe_comma_before_value, quoted_str), qobject/qdict.c (tdb_hash) and
// util/unicode.c (mod_utf8_codepoint).
#include "qapi/json_output.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace coblock::qapi {

namespace {

using Json = nlohmann::ordered_json;

// QDict's hash table size (qobject/qdict.h QDICT_BUCKET_MAX).
constexpr uint32_t kQdictBuckets = 512;

// mod_utf8_codepoint(s, 6, &end): the code point at `pos`, or -1 for an
// invalid sequence. `next` receives where the next character starts; on a
// missing continuation byte that is the offending byte, as in QEMU.
int decode_mod_utf8(std::string_view s, std::size_t pos, std::size_t& next) {
    static const int kMinCodePoint[5] = {0x80, 0x800, 0x10000, 0x200000, 0x4000000};
    // QEMU reads C strings: a NUL (and the end of the text) ends a sequence.
    auto byte_at = [&](std::size_t i) -> unsigned {
        return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u;
    };
    std::size_t p = pos;
    unsigned byte = byte_at(p++);
    int cp;
    if (byte < 0x80) {
        cp = static_cast<int>(byte);
    } else if (byte >= 0xFE) {
        cp = -1;  // impossible bytes
    } else if ((byte & 0x40) == 0) {
        cp = -1;  // unexpected continuation byte
    } else {
        unsigned len = 0;
        unsigned mask = 0x80;
        for (; byte & mask; mask >>= 1)
            ++len;
        cp = static_cast<int>(byte & (mask - 1));
        for (unsigned i = 1; i < len; ++i) {
            unsigned next_byte = byte_at(p);
            if ((next_byte & 0xC0) != 0x80) {
                next = p;
                return -1;  // continuation byte missing
            }
            ++p;
            cp = (cp << 6) | static_cast<int>(next_byte & 0x3F);
        }
        if (cp > 0x10FFFF) {
            cp = -1;  // beyond Unicode
        } else if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE) {
            cp = -1;  // noncharacter
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = -1;  // surrogate
        } else if (cp < kMinCodePoint[len - 2] && !(cp == 0 && len == 2)) {
            cp = -1;  // overlong, except modified UTF-8's \xC0\x80 for NUL
        }
    }
    next = p;
    return cp;
}

void append_u_escape(std::string& out, unsigned code) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04X", code);
    out += buf;
}

void append_quoted(std::string& out, std::string_view text) {
    out += '"';
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t next = pos;
        int cp = decode_mod_utf8(text, pos, next);
        pos = next;
        switch (cp) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (cp < 0) cp = 0xFFFD;
                if (cp > 0xFFFF) {
                    append_u_escape(out, 0xD800 + ((cp - 0x10000) >> 10));
                    append_u_escape(out, 0xDC00 + ((cp - 0x10000) & 0x3FF));
                } else if (cp < 0x20 || cp >= 0x7F) {
                    append_u_escape(out, static_cast<unsigned>(cp));
                } else {
                    out += static_cast<char>(cp);
                }
        }
    }
    out += '"';
}

// The state json-writer.c keeps: output, nesting depth, and whether the
// next value needs a comma.
class Writer {
  public:
    explicit Writer(bool pretty) : pretty_(pretty) {}

    void write(const Json& value, const std::string* key) {
        before_value();
        if (key != nullptr) {
            append_quoted(out_, *key);
            out_ += ": ";
        }
        switch (value.type()) {
            case Json::value_t::object:
                out_ += '{';
                ++depth_;
                need_comma_ = false;
                for (const auto& [member_key, member] : value.items())
                    write(member, &member_key);
                --depth_;
                newline();
                out_ += '}';
                need_comma_ = true;
                break;
            case Json::value_t::array:
                out_ += '[';
                ++depth_;
                need_comma_ = false;
                for (const auto& element : value)
                    write(element, nullptr);
                --depth_;
                newline();
                out_ += ']';
                need_comma_ = true;
                break;
            case Json::value_t::string:
                append_quoted(out_, value.get_ref<const std::string&>());
                break;
            case Json::value_t::boolean:
                out_ += value.get<bool>() ? "true" : "false";
                break;
            case Json::value_t::number_integer:
                out_ += std::to_string(value.get<int64_t>());
                break;
            case Json::value_t::number_unsigned:
                out_ += std::to_string(value.get<uint64_t>());
                break;
            case Json::value_t::number_float: {
                char buf[64];
                std::snprintf(buf, sizeof buf, "%.17g", value.get<double>());
                out_ += buf;
                break;
            }
            default:
                out_ += "null";
                break;
        }
    }

    std::string take() { return std::move(out_); }

  private:
    void newline() {
        if (pretty_) {
            out_ += '\n';
            out_.append(4 * depth_, ' ');
        }
    }

    // maybe_comma_before_value: the first value of the document starts the
    // text; the first member of a container goes on a new line (pretty).
    void before_value() {
        if (need_comma_) {
            out_ += ',';
            if (pretty_) {
                newline();
            } else {
                out_ += ' ';
            }
        } else {
            if (!out_.empty()) newline();
            need_comma_ = true;
        }
    }

    bool pretty_;
    std::string out_;
    std::size_t depth_ = 0;
    bool need_comma_ = false;
};

}  // namespace

uint32_t qdict_bucket(std::string_view key) {
    // tdb_hash, on unsigned 32 bits.
    uint32_t value = 0x238F13AFu * static_cast<uint32_t>(key.size());
    for (std::size_t i = 0; i < key.size(); ++i) {
        value += static_cast<uint32_t>(static_cast<unsigned char>(key[i])) << (i * 5 % 24);
    }
    return (1103515243u * value + 12345u) % kQdictBuckets;
}

std::vector<std::string> qdict_key_order(const std::vector<std::string>& keys) {
    // Newest first inside a bucket: reverse, then a stable sort by bucket.
    std::vector<std::string> order(keys.rbegin(), keys.rend());
    std::stable_sort(order.begin(), order.end(), [](const std::string& a, const std::string& b) {
        return qdict_bucket(a) < qdict_bucket(b);
    });
    return order;
}

nlohmann::ordered_json qdict_ordered(const nlohmann::ordered_json& value) {
    if (value.is_array()) {
        Json out = Json::array();
        for (const auto& element : value)
            out.push_back(qdict_ordered(element));
        return out;
    }
    if (!value.is_object()) return value;
    std::vector<std::string> keys;
    for (const auto& [key, member] : value.items())
        keys.push_back(key);
    Json out = Json::object();
    for (const auto& key : qdict_key_order(keys))
        out[key] = qdict_ordered(value.at(key));
    return out;
}

std::string to_qemu_json(const nlohmann::ordered_json& value, bool pretty) {
    Writer writer(pretty);
    writer.write(value, nullptr);
    return writer.take();
}

}  // namespace coblock::qapi
