// OptionsTree: ordered flat map of dotted keys and its nested JSON view.
// Pure. Follows QEMU 7.2 qobject/block-qdict.c (extract_subqdict, join,
// crumple).
#include "qapi/options_tree.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>

namespace coblock::qapi {

namespace {

using Json = nlohmann::ordered_json;

// One level of the nested view that to_json() builds before emitting.
struct Node {
    std::optional<OptionValue> value;
    std::vector<std::pair<std::string, std::unique_ptr<Node>>> children;

    Node* child(const std::string& name) {
        for (auto& [key, node] : children) {
            if (key == name) return node.get();
        }
        children.emplace_back(name, std::make_unique<Node>());
        return children.back().second.get();
    }
};

Json scalar_to_json(const OptionValue& value) {
    switch (value.kind) {
        case ValueKind::kString:
            return value.text;
        case ValueKind::kBool:
            return value.text == "on" || value.text == "true";
        case ValueKind::kNull:
            return nullptr;
        case ValueKind::kEmptyObject:
            return Json::object();
        case ValueKind::kEmptyArray:
            return Json::array();
        case ValueKind::kNumber:
            break;
    }
    // Numbers keep the representation their text has: a JSON integer when
    // it is one, a double otherwise; text that is no number stays a string.
    const char* begin = value.text.c_str();
    char* end = nullptr;
    errno = 0;
    if (!value.text.empty() && value.text[0] == '-') {
        long long signed_value = std::strtoll(begin, &end, 10);
        if (errno == 0 && *end == '\0') return static_cast<int64_t>(signed_value);
    } else if (!value.text.empty()) {
        unsigned long long unsigned_value = std::strtoull(begin, &end, 10);
        if (errno == 0 && *end == '\0') return static_cast<uint64_t>(unsigned_value);
    }
    errno = 0;
    double real = std::strtod(begin, &end);
    if (errno == 0 && end != begin && *end == '\0') return real;
    return value.text;
}

// True when the children are named exactly "0" .. "n-1" (qdict_crumple
// turns such a dict into a list).
bool is_list(const Node& node) {
    if (node.children.empty()) return false;
    std::vector<bool> seen(node.children.size(), false);
    for (const auto& [key, child] : node.children) {
        if (key.empty() || key.size() > 9) return false;
        if (key.size() > 1 && key[0] == '0') return false;
        if (!std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        std::size_t index = std::stoul(key);
        if (index >= seen.size() || seen[index]) return false;
        seen[index] = true;
    }
    return true;
}

void emit_flat(const Node& node, const std::string& path, Json& out);
Json emit(const Node& node);
Json emit_children(const Node& node, bool allow_list);

// Writes every leaf below `node` into `out` under "path.rest" keys.
void emit_flat(const Node& node, const std::string& path, Json& out) {
    if (node.value) out[path] = scalar_to_json(*node.value);
    for (const auto& [key, child] : node.children)
        emit_flat(*child, path + "." + key, out);
}

Json emit_children(const Node& node, bool allow_list) {
    if (allow_list && is_list(node)) {
        Json list = Json::array();
        std::vector<const Node*> ordered(node.children.size());
        for (const auto& [key, child] : node.children)
            ordered[std::stoul(key)] = child.get();
        for (const Node* child : ordered)
            list.push_back(emit(*child));
        return list;
    }
    Json object = Json::object();
    for (const auto& [key, child] : node.children) {
        if (child->value && !child->children.empty()) {
            // "a" is both a value and a prefix: keep the value under "a"
            // and the deeper keys flat, so nothing is lost.
            object[key] = scalar_to_json(*child->value);
            for (const auto& [sub_key, sub_child] : child->children)
                emit_flat(*sub_child, key + "." + sub_key, object);
        } else {
            object[key] = emit(*child);
        }
    }
    return object;
}

Json emit(const Node& node) {
    if (node.value) return scalar_to_json(*node.value);
    return emit_children(node, true);
}

}  // namespace

OptionsTree::OptionsTree(std::initializer_list<std::pair<std::string, std::string>> entries) {
    for (const auto& [key, text] : entries)
        set(key, text);
}

std::vector<OptionsTree::Entry>::iterator OptionsTree::find_entry(std::string_view key) {
    return std::find_if(entries_.begin(), entries_.end(),
                        [&](const Entry& entry) { return entry.first == key; });
}

const OptionValue* OptionsTree::find(std::string_view key) const {
    for (const auto& entry : entries_) {
        if (entry.first == key) return &entry.second;
    }
    return nullptr;
}

std::optional<std::string> OptionsTree::get(std::string_view key) const {
    const OptionValue* value = find(key);
    if (value == nullptr) return std::nullopt;
    return value->text;
}

void OptionsTree::set(std::string key, std::string text, ValueKind kind) {
    set(std::move(key), OptionValue{std::move(text), kind});
}

void OptionsTree::set(std::string key, OptionValue value) {
    auto it = find_entry(key);
    if (it != entries_.end()) {
        it->second = std::move(value);
    } else {
        entries_.emplace_back(std::move(key), std::move(value));
    }
}

bool OptionsTree::erase(std::string_view key) {
    auto it = find_entry(key);
    if (it == entries_.end()) return false;
    entries_.erase(it);
    return true;
}

std::optional<std::string> OptionsTree::take(std::string_view key) {
    auto it = find_entry(key);
    if (it == entries_.end()) return std::nullopt;
    std::string text = std::move(it->second.text);
    entries_.erase(it);
    return text;
}

std::vector<std::string> OptionsTree::keys() const {
    std::vector<std::string> result;
    result.reserve(entries_.size());
    for (const auto& entry : entries_)
        result.push_back(entry.first);
    return result;
}

bool OptionsTree::has_subtree(std::string_view prefix) const {
    for (const auto& entry : entries_) {
        const std::string& key = entry.first;
        if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0 &&
            key[prefix.size()] == '.')
            return true;
    }
    return false;
}

OptionsTree OptionsTree::extract_subtree(std::string_view prefix) {
    OptionsTree sub;
    std::vector<Entry> kept;
    kept.reserve(entries_.size());
    for (auto& entry : entries_) {
        const std::string& key = entry.first;
        if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0 &&
            key[prefix.size()] == '.') {
            sub.entries_.emplace_back(key.substr(prefix.size() + 1), std::move(entry.second));
        } else {
            kept.push_back(std::move(entry));
        }
    }
    entries_ = std::move(kept);
    return sub;
}

void OptionsTree::merge(const OptionsTree& other, bool overwrite) {
    for (const auto& [key, value] : other.entries_) {
        if (overwrite || !has(key)) set(key, value);
    }
}

nlohmann::ordered_json OptionsTree::to_json() const {
    Node root;
    for (const auto& [key, value] : entries_) {
        Node* node = &root;
        std::size_t start = 0;
        for (;;) {
            std::size_t dot = key.find('.', start);
            node = node->child(key.substr(start, dot == std::string::npos ? dot : dot - start));
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        node->value = value;
    }
    // The root is always an object: options are a dict even when all keys
    // happen to be numbers.
    return emit_children(root, false);
}

std::string OptionsTree::to_option_string() const {
    std::string out;
    for (const auto& [key, value] : entries_) {
        if (!out.empty()) out += ',';
        out += key;
        out += '=';
        for (char c : value.text) {
            if (c == ',') out += ',';
            out += c;
        }
    }
    return out;
}

}  // namespace coblock::qapi
