// The two key=value option syntaxes of QEMU: QemuOpts and keyval.
// Pure. Follows QEMU 7.2 util/qemu-option.c (get_opt_name_value,
// get_opt_value, has_help_option) and util/keyval.c (keyval_parse_one).
#include "qapi/keyval.h"

#include <cstring>

namespace coblock::qapi {

namespace {

// keyval's limit on one key fragment: QEMU copies fragments into a
// 128-byte buffer.
constexpr std::size_t kMaxKeyFragment = 127;

// get_opt_value: reads up to the next single ',' and turns ",," into ','.
// Returns the position of the terminating ',' (or text.size()).
std::size_t read_escaped_value(std::string_view text, std::size_t pos, std::string& value) {
    for (;;) {
        std::size_t comma = text.find(',', pos);
        if (comma == std::string_view::npos) {
            value.append(text.substr(pos));
            return text.size();
        }
        value.append(text.substr(pos, comma - pos));
        if (comma + 1 < text.size() && text[comma + 1] == ',') {
            value += ',';
            pos = comma + 2;
            continue;
        }
        return comma;
    }
}

bool is_ascii_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ascii_digit(char c) {
    return c >= '0' && c <= '9';
}

// parse_qapi_name(s, false): the length of the QAPI name at the start of
// `s` (a letter, then letters, digits, '-' and '_'; or a downstream
// "__RFQDN_" prefix first), or 0 if there is none.
std::size_t qapi_name_length(std::string_view s) {
    std::size_t p = 0;
    if (p < s.size() && s[p] == '_') {
        ++p;
        if (p >= s.size() || s[p] != '_') return 0;
        ++p;
        while (p < s.size() &&
               (is_ascii_alpha(s[p]) || is_ascii_digit(s[p]) || s[p] == '-' || s[p] == '.'))
            ++p;
        if (p >= s.size() || s[p] != '_') return 0;
        ++p;
    }
    if (p >= s.size() || !is_ascii_alpha(s[p])) return 0;
    ++p;
    while (p < s.size() &&
           (is_ascii_alpha(s[p]) || is_ascii_digit(s[p]) || s[p] == '-' || s[p] == '_'))
        ++p;
    return p;
}

std::string in_quotes(std::string_view text) {
    return "'" + std::string(text) + "'";
}

// keyval_parse_put: a key may be a value or a prefix of other keys, never
// both. `path` is the full dotted key about to be stored.
Status check_consistent(const OptionsTree& tree, std::string_view path) {
    // A shorter key that is already a value blocks this path.
    for (std::size_t dot = path.find('.'); dot != std::string_view::npos;
         dot = path.find('.', dot + 1)) {
        if (tree.has(path.substr(0, dot)))
            return invalid_argument("Parameters " +
                                    in_quotes(std::string(path.substr(0, dot)) + ".*") +
                                    " used inconsistently");
    }
    // This key already being a prefix blocks storing a value at it.
    if (tree.has_subtree(path))
        return invalid_argument("Parameters " + in_quotes(std::string(path) + ".*") +
                                " used inconsistently");
    return ok_status();
}

// Validates the key text of one keyval element fragment by fragment.
Status check_keyval_key(std::string_view key) {
    std::size_t pos = 0;
    for (;;) {
        std::string_view rest = key.substr(pos);
        std::size_t len = 0;
        if (pos != 0 && !rest.empty() && is_ascii_digit(rest[0])) {
            while (len < rest.size() && is_ascii_digit(rest[len]))
                ++len;
        } else {
            len = qapi_name_length(rest);
        }
        if (len == 0 || (len < rest.size() && rest[len] != '.'))
            return invalid_argument("Invalid parameter " + in_quotes(key));
        if (len > kMaxKeyFragment) {
            bool whole = pos == 0 && len == key.size();
            return invalid_argument(std::string("Parameter") + (whole ? "" : " fragment") + " " +
                                    in_quotes(rest.substr(0, len)) + " is too long");
        }
        pos += len;
        if (pos == key.size()) return ok_status();
        ++pos;  // the '.'
    }
}

}  // namespace

bool is_help_option(std::string_view value) {
    return value == "help" || value == "?";
}

bool has_help_option(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::string value;
        pos = read_escaped_value(text, pos, value);
        if (pos < text.size()) ++pos;
        if (is_help_option(value)) return true;
    }
    return false;
}

Result<OptionsTree> parse_qemu_opts(std::string_view text, std::string_view implied_key,
                                    std::vector<std::string>* warnings) {
    OptionsTree tree;
    bool first = true;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t len = text.substr(pos).find_first_of("=,");
        if (len == std::string_view::npos) len = text.size() - pos;
        std::string key;
        std::string value;
        if (pos + len == text.size() || text[pos + len] != '=') {
            if (first && !implied_key.empty()) {
                key = implied_key;
                pos = read_escaped_value(text, pos, value);
            } else {
                // A flag: "foo" is foo=on, "nofoo" is foo=off.
                key = text.substr(pos, len);
                pos += len;
                std::string prefix;
                if (key.compare(0, 2, "no") == 0) {
                    prefix = "no";
                    key.erase(0, 2);
                    value = "off";
                } else {
                    value = "on";
                }
                if (warnings != nullptr && !is_help_option(key)) {
                    std::string hint = key == "delay"
                                           ? "nodelay=" + std::string(prefix.empty() ? "off" : "on")
                                           : key + "=" + value;
                    warnings->push_back("short-form boolean option '" + prefix + key +
                                        "' deprecated\nPlease use " + hint + " instead");
                }
            }
        } else {
            key = text.substr(pos, len);
            pos = read_escaped_value(text, pos + len + 1, value);
        }
        if (pos < text.size()) ++pos;  // the ',' ending this element
        first = false;
        tree.set(std::move(key), std::move(value));
    }
    return tree;
}

Result<OptionsTree> parse_keyval(std::string_view text, std::string_view implied_key,
                                 bool* help_requested) {
    OptionsTree tree;
    std::size_t pos = 0;
    bool first = true;
    while (pos < text.size()) {
        std::string_view element = text.substr(pos);
        std::size_t len = element.find_first_of("=,");
        if (len == std::string_view::npos) len = element.size();
        bool bare = len != 0 && (len == element.size() || element[len] != '=');
        if (bare && help_requested != nullptr && is_help_option(element.substr(0, len))) {
            *help_requested = true;
            pos += len;
            if (pos < text.size()) ++pos;
            first = false;
            continue;
        }
        if (bare && first && !implied_key.empty()) {
            // The implied value ends at the first ',': no ",," escape here.
            std::string path(implied_key);
            TRY(check_consistent(tree, path));
            tree.set(std::move(path), std::string(element.substr(0, len)));
            pos += len;
            if (pos < text.size()) ++pos;
            first = false;
            continue;
        }
        std::string_view key = element.substr(0, len);
        TRY(check_keyval_key(key));
        if (len == element.size() || element[len] != '=')
            return invalid_argument("Expected '=' after parameter " + in_quotes(key));
        std::string value;
        pos = read_escaped_value(text, pos + len + 1, value);
        if (pos < text.size()) ++pos;
        TRY(check_consistent(tree, key));
        tree.set(std::string(key), std::move(value));
        first = false;
    }
    return tree;
}

}  // namespace coblock::qapi
