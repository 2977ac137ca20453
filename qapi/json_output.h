// JSON output as QEMU prints it: the QObject writer (qemu-img's
// --output=json uses the pretty form, json: filenames the compact one) and
// the key order of QEMU's QDict hash table.
// Pure. Follows QEMU 7.2 qobject/json-writer.c, qobject/qjson.c,
// qobject/qdict.c (tdb_hash, 512 buckets) and util/unicode.c
// (mod_utf8_codepoint); specs/qemu-img-output.md §0.3.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace coblock::qapi {

// QEMU's QDict bucket of `key`: tdb_hash(key) % 512.
uint32_t qdict_bucket(std::string_view key);

// The order in which QEMU iterates a QDict into which `keys` were inserted
// in the given order (no key twice): bucket 0 to 511, and inside a bucket
// the most recently inserted key first.
std::vector<std::string> qdict_key_order(const std::vector<std::string>& keys);

// A copy of `value` whose objects (at every depth) list their members in
// QDict iteration order, taking the current member order as the insertion
// order. Build a QAPI object in the order QEMU's visitor adds its members
// (schema order, absent optional members left out), pass it through this,
// then print: the output matches qemu-img's key order. Arrays keep theirs.
nlohmann::ordered_json qdict_ordered(const nlohmann::ordered_json& value);

// QEMU's JSON text for `value`, members in the order given (apply
// qdict_ordered() first to get QEMU's order). No trailing newline: qemu-img
// prints the text followed by "\n".
//   pretty: 4 spaces per level, each member on its own line, `"key": value`,
//           ',' at the end of every member but the last; an empty object or
//           array prints as "{" / "[", newline, indentation, "}" / "]";
//   compact: `{"a": 1, "b": [1, 2]}` (", " and ": " separators), empty
//           containers as "{}" / "[]".
// Integers print in decimal, doubles as printf("%.17g"), strings with
// \" \\ \b \f \n \r \t escapes and every other code point below 0x20 or
// from 0x7F up as \uXXXX (upper-case hex, surrogate pairs above U+FFFF);
// bytes that are not valid (modified) UTF-8 print as \uFFFD. null, true and
// false as such; any other nlohmann type (binary, discarded) as null.
std::string to_qemu_json(const nlohmann::ordered_json& value, bool pretty);

inline std::string to_qemu_json_pretty(const nlohmann::ordered_json& value) {
    return to_qemu_json(value, true);
}

}  // namespace coblock::qapi
