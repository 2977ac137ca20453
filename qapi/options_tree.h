// OptionsTree: the flat, ordered key/value map that carries block options
// between parsers, the block layer and drivers (QEMU's flattened QDict).
// Pure (no I/O). Follows QEMU 7.2 qobject/qdict.c (qdict_extract_subqdict,
// qdict_join, qdict_crumple) and block.c's use of flat dotted keys.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace coblock::qapi {

// What a value was before it became text. Options parsed from key=value
// strings are always kString; `json:{...}` keeps the JSON type so that
// to_json() gives back what the user wrote. Typed parsing (schema.h) reads
// only `text` and accepts any scalar kind, as QEMU's qemu_opts_absorb_qdict
// does. kNull means "explicitly absent" (QEMU uses `"backing": null`);
// kEmptyObject / kEmptyArray are empty containers, which qdict_flatten keeps
// as they are. Typed parsing consumes a known key with one of these three
// kinds and treats it as absent, as qemu_opts_absorb_qdict does.
enum class ValueKind { kString, kNumber, kBool, kNull, kEmptyObject, kEmptyArray };

struct OptionValue {
    std::string text;  // kBool: "on"/"off"; kNumber: decimal; kNull/kEmpty*: ""
    ValueKind kind = ValueKind::kString;

    bool is_scalar() const {
        return kind == ValueKind::kString || kind == ValueKind::kNumber || kind == ValueKind::kBool;
    }
    friend bool operator==(const OptionValue&, const OptionValue&) = default;
};

// An ordered map from dotted key ("file.filename") to a scalar value.
// Keys keep their insertion order; set() on an existing key replaces the
// value in place (QEMU's qdict_put does the same). Lookups are linear: option
// lists are a handful of entries and are parsed once per open.
class OptionsTree {
  public:
    using Entry = std::pair<std::string, OptionValue>;

    OptionsTree() = default;
    // Convenience for tests and callers: all values kString.
    OptionsTree(std::initializer_list<std::pair<std::string, std::string>> entries);

    bool empty() const { return entries_.empty(); }
    std::size_t size() const { return entries_.size(); }
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // The value at `key`, or nullptr. The pointer is valid until the next
    // mutation of the tree.
    const OptionValue* find(std::string_view key) const;
    // The text at `key` when present (whatever its kind).
    std::optional<std::string> get(std::string_view key) const;

    // Inserts or replaces (keeping the key's position).
    void set(std::string key, std::string text, ValueKind kind = ValueKind::kString);
    void set(std::string key, OptionValue value);
    // Removes `key`; returns whether it was present.
    bool erase(std::string_view key);
    // get() followed by erase().
    std::optional<std::string> take(std::string_view key);

    std::vector<std::string> keys() const;
    const std::vector<Entry>& entries() const { return entries_; }
    auto begin() const { return entries_.begin(); }
    auto end() const { return entries_.end(); }

    // True if some key starts with "prefix.".
    bool has_subtree(std::string_view prefix) const;
    // Moves every "prefix.rest" entry into a new tree as "rest" (order kept)
    // and removes them from this tree, as qdict_extract_subqdict. The key
    // "prefix" itself (a reference to another node, in QEMU) stays here.
    OptionsTree extract_subtree(std::string_view prefix);

    // Adds the entries of `other`. With overwrite=false an existing key keeps
    // its value (qdict_join(dest, src, false): explicit options beat those of
    // a json: filename); with overwrite=true `other` wins.
    void merge(const OptionsTree& other, bool overwrite);

    // Nested JSON, as qdict_crumple would build it: "file.filename" becomes
    // {"file": {"filename": ...}}; an object whose keys are exactly "0".."n-1"
    // becomes an array. Values keep their kind: kString values stay JSON
    // strings (so "size=1024" from a key=value string gives "size": "1024",
    // as QEMU keeps a QString), kNumber/kBool/kNull come back typed. If a key
    // is both a scalar and a prefix ("a" and "a.b"), the dotted key is kept
    // flat in the parent ({"a": ..., "a.b": ...}) instead of failing.
    nlohmann::ordered_json to_json() const;

    // "key=value,key2=value2" with ',' in values doubled, as QEMU's QemuOpts
    // syntax expects; parse_qemu_opts() of the result gives the tree back
    // (with every kind turned into kString, and kNull/kEmpty* as "").
    std::string to_option_string() const;

    friend bool operator==(const OptionsTree&, const OptionsTree&) = default;

  private:
    std::vector<Entry>::iterator find_entry(std::string_view key);

    std::vector<Entry> entries_;
};

}  // namespace coblock::qapi
