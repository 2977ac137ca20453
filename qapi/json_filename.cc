// json:{...} filenames flattened into an OptionsTree, and the split of a
// "protocol:" prefix. Pure. Follows QEMU 7.2 block.c (parse_json_filename,
// path_has_protocol), qobject/block-qdict.c (qdict_flatten) and
// qobject/json-parser.c for error texts. nlohmann throws on bad input; this
// file is the boundary that turns that into a Result.
#include <cstdio>
#include <unordered_set>

#include "qapi/keyval.h"

namespace coblock::qapi {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kJsonPrefix = "json:";
constexpr std::string_view kParseErrorPrefix = "Could not parse the JSON options: ";

// QEMU's JSON lexer also takes 'single-quoted' strings; nlohmann does not,
// so rewrite them as double-quoted ones first. Escapes are kept, except
// that \' becomes a plain quote and a bare " inside gets escaped.
std::string normalize_quotes(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c != '"' && c != '\'') {
            out += c;
            ++i;
            continue;
        }
        const char quote = c;
        out += '"';
        ++i;
        while (i < text.size() && text[i] != quote) {
            if (text[i] == '\\' && i + 1 < text.size()) {
                if (text[i + 1] == '\'') {
                    out += '\'';
                } else {
                    out += text[i];
                    out += text[i + 1];
                }
                i += 2;
                continue;
            }
            if (text[i] == '"') out += '\\';
            out += text[i++];
        }
        if (i < text.size()) {
            out += '"';
            ++i;
        }
    }
    return out;
}

bool is_blank(std::string_view text) {
    return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at
// line 1, column 5: syntax error while parsing ..."; keep what follows the
// tag, which names the position and the problem.
std::string describe_parse_error(const std::string& what) {
    std::size_t tag_end = what.find("] ");
    return tag_end == std::string::npos ? what : what.substr(tag_end + 2);
}

OptionValue scalar_value(const Json& value) {
    switch (value.type()) {
        case Json::value_t::string:
            return {value.get<std::string>(), ValueKind::kString};
        case Json::value_t::boolean:
            return {value.get<bool>() ? "on" : "off", ValueKind::kBool};
        case Json::value_t::number_integer:
            return {std::to_string(value.get<int64_t>()), ValueKind::kNumber};
        case Json::value_t::number_unsigned:
            return {std::to_string(value.get<uint64_t>()), ValueKind::kNumber};
        case Json::value_t::number_float: {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.17g", value.get<double>());
            return {buf, ValueKind::kNumber};
        }
        case Json::value_t::object:
            return {"", ValueKind::kEmptyObject};
        case Json::value_t::array:
            return {"", ValueKind::kEmptyArray};
        default:
            return {"", ValueKind::kNull};
    }
}

// qdict_flatten: objects and non-empty arrays are spread into dotted keys.
void flatten(const Json& value, const std::string& prefix, OptionsTree& out) {
    if (value.is_object() && !value.empty()) {
        for (const auto& [key, member] : value.items()) {
            flatten(member, prefix + "." + key, out);
        }
    } else if (value.is_array() && !value.empty()) {
        for (std::size_t i = 0; i < value.size(); ++i) {
            flatten(value[i], prefix + "." + std::to_string(i), out);
        }
    } else {
        // set() replaces in place; a later duplicate should also move to
        // the end so "later in the text wins" reads naturally in output.
        out.erase(prefix);
        out.set(prefix, scalar_value(value));
    }
}

}  // namespace

Result<OptionsTree> parse_json_options(std::string_view json_text) {
    if (is_blank(json_text))
        return invalid_argument(std::string(kParseErrorPrefix) + "Expecting a JSON value");

    std::string text = normalize_quotes(json_text);
    // Duplicate keys are an error in QEMU; nlohmann silently keeps one, so
    // track the keys of every open object while parsing.
    std::vector<std::unordered_set<std::string>> open_objects;
    bool duplicate = false;
    auto on_event = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
        switch (event) {
            case Json::parse_event_t::object_start:
                open_objects.emplace_back();
                break;
            case Json::parse_event_t::object_end:
                if (!open_objects.empty()) open_objects.pop_back();
                break;
            case Json::parse_event_t::key:
                if (!open_objects.empty() &&
                    !open_objects.back().insert(parsed.get<std::string>()).second)
                    duplicate = true;
                break;
            default:
                break;
        }
        return true;
    };

    Json document;
    try {
        document = Json::parse(text, on_event);
    } catch (const nlohmann::json::parse_error& error) {
        std::string what = error.what();
        if (what.find("expected end of input") != std::string::npos)
            return invalid_argument(std::string(kParseErrorPrefix) +
                                    "Expecting at most one JSON value");
        return invalid_argument(std::string(kParseErrorPrefix) + "JSON parse error, " +
                                describe_parse_error(what));
    } catch (const std::exception& error) {
        return invalid_argument(std::string(kParseErrorPrefix) + "JSON parse error, " +
                                error.what());
    }
    if (duplicate)
        return invalid_argument(std::string(kParseErrorPrefix) + "JSON parse error, duplicate key");
    if (!document.is_object()) return invalid_argument("Invalid JSON object given");

    OptionsTree tree;
    for (const auto& [key, member] : document.items())
        flatten(member, key, tree);
    return tree;
}

Result<OptionsTree> parse_filename_or_options(std::string_view filename) {
    if (filename.substr(0, kJsonPrefix.size()) == kJsonPrefix)
        return parse_json_options(filename.substr(kJsonPrefix.size()));
    OptionsTree tree;
    tree.set("filename", std::string(filename));
    return tree;
}

std::optional<ProtocolPrefix> split_protocol_prefix(std::string_view filename) {
    std::size_t stop = filename.find_first_of(":/");
    if (stop == std::string_view::npos || filename[stop] != ':') return std::nullopt;
    return ProtocolPrefix{std::string(filename.substr(0, stop)),
                          std::string(filename.substr(stop + 1))};
}

}  // namespace coblock::qapi
