#include "drivers/blkdebug/blkdebug_config.h"

#include <cctype>
#include <cstdio>
#include <set>

#include "qapi/schema.h"

namespace coblock::blkdebug {
namespace {

constexpr std::string_view kInjectError = "inject-error";
constexpr std::string_view kSetState = "set-state";

bool is_known_key(std::string_view group, std::string_view key) {
    static constexpr std::string_view kInjectKeys[] = {"event",  "state", "iotype",     "errno",
                                                       "sector", "once",  "immediately"};
    static constexpr std::string_view kSetStateKeys[] = {"event", "state", "new_state"};
    if (group == kInjectError) {
        for (std::string_view k : kInjectKeys)
            if (k == key) return true;
    } else {
        for (std::string_view k : kSetStateKeys)
            if (k == key) return true;
    }
    return false;
}

// QemuOpts number: strtoull base 0 (a leading '-' wraps).
Result<int64_t> parse_number(std::string_view key, std::string_view text) {
    ASSIGN_OR_RETURN(uint64_t value, qapi::parse_uint_option(key, text));
    return static_cast<int64_t>(value);
}

// One known key into `out` (qemu_opt_set's type check).
Status absorb_value(std::string_view key, const std::string& text, SectionOptions& out) {
    if (key == "event") {
        out.event = text;
    } else if (key == "iotype") {
        out.iotype = text;
    } else if (key == "state") {
        ASSIGN_OR_RETURN(out.state, parse_number(key, text));
    } else if (key == "errno") {
        ASSIGN_OR_RETURN(out.error, parse_number(key, text));
    } else if (key == "sector") {
        ASSIGN_OR_RETURN(out.sector, parse_number(key, text));
    } else if (key == "new_state") {
        ASSIGN_OR_RETURN(out.new_state, parse_number(key, text));
    } else if (key == "once") {
        ASSIGN_OR_RETURN(out.once, qapi::parse_bool_option(key, text));
    } else if (key == "immediately") {
        ASSIGN_OR_RETURN(out.immediately, qapi::parse_bool_option(key, text));
    }
    return {};
}

// qemu_opts_absorb_qdict: takes the keys the group knows out of `values`.
Status absorb_known(std::string_view group, qapi::OptionsTree& values, SectionOptions& out) {
    for (const std::string& key : values.keys()) {
        if (!is_known_key(group, key)) continue;
        std::string text = *values.take(key);
        TRY(absorb_value(key, text, out));
    }
    return {};
}

bool is_identifier(std::string_view id) {
    if (id.empty() || !std::isalpha(static_cast<unsigned char>(id[0]))) return false;
    for (char c : id) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

std::vector<SectionOptions>& list_for(RuleSections& out, std::string_view group) {
    return group == kInjectError ? out.inject_error : out.set_state;
}

// A config-file section at the next header or EOF
// (config_parse_qdict_section for a file section).
Status finish_section(Section& section, RuleSections& out, std::set<std::string>& ids) {
    if (section.group != kInjectError && section.group != kSetState)
        return invalid_argument("There is no option group '" + section.group + "'");
    if (section.id) {
        if (!is_identifier(*section.id))
            return invalid_argument(
                "Parameter 'id' expects an identifier\n"
                "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
        if (!ids.insert(section.group + "\n" + *section.id).second)
            return invalid_argument("Duplicate ID '" + *section.id + "' for " + section.group);
    }
    SectionOptions options;
    options.group = section.group;
    for (const auto& [key, value] : section.values) {
        if (!is_known_key(section.group, key))
            return invalid_argument("Invalid parameter '" + key + "'");
        TRY(absorb_value(key, value.text, options));
    }
    list_for(out, section.group).push_back(std::move(options));
    return {};
}

Status take_group(qapi::OptionsTree& options, std::string_view group, RuleSections& out) {
    qapi::OptionsTree sub = options.extract_subtree(group);
    const size_t orig_size = sub.size();
    if (orig_size == 0) return {};
    const std::string name(group);
    SectionOptions unindexed;
    unindexed.group = name;
    TRY(absorb_known(group, sub, unindexed));
    const size_t enum_size = sub.size();
    if (enum_size < orig_size && enum_size)
        return invalid_argument("Unknown option '" + sub.keys().front() + "' for [" + name + "]");
    if (enum_size == 0) {
        list_for(out, group).push_back(std::move(unindexed));
        return {};
    }
    // qdict_array_split: "0", "0.*", "1", "1.*", ... until an index is missing.
    struct Entry {
        bool scalar = false;
        qapi::OptionsTree keys;
    };
    std::vector<Entry> entries;
    for (unsigned i = 0;; ++i) {
        const std::string index = std::to_string(i);
        Entry entry;
        if (sub.has(index)) {
            sub.erase(index);
            entry.scalar = true;
        } else {
            entry.keys = sub.extract_subtree(index);
            if (entry.keys.empty()) break;
        }
        entries.push_back(std::move(entry));
    }
    if (!sub.empty())
        return invalid_argument("Unused option '" + sub.keys().front() + "' for [" + name + "]");
    for (size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].scalar)
            return invalid_argument("[" + name + "] section (index " + std::to_string(i) +
                                    ") does not consist of keys");
        SectionOptions section;
        section.group = name;
        TRY(absorb_known(group, entries[i].keys, section));
        if (!entries[i].keys.empty())
            return invalid_argument("[" + name + "] section doesn't support the option '" +
                                    entries[i].keys.keys().front() + "'");
        list_for(out, group).push_back(std::move(section));
    }
    return {};
}

// QEMU stores state/errno/new_state in an int: the value is truncated.
int to_int(int64_t value) {
    return static_cast<int>(static_cast<uint32_t>(static_cast<uint64_t>(value)));
}

Result<BlkdebugEvent> rule_event(const SectionOptions& section) {
    if (!section.event) return invalid_argument("Missing event name for rule");
    std::optional<BlkdebugEvent> event = parse_blkdebug_event(*section.event);
    if (!event) return invalid_argument("invalid parameter value: " + *section.event);
    return *event;
}

}  // namespace

std::optional<IoType> parse_io_type(std::string_view name) {
    static constexpr std::string_view kNames[] = {"read",    "write", "write-zeroes",
                                                  "discard", "flush", "block-status"};
    for (size_t i = 0; i < std::size(kNames); ++i) {
        if (kNames[i] == name) return static_cast<IoType>(i);
    }
    return std::nullopt;
}

Status parse_config_text(std::string_view text, RuleSections& out) {
    std::optional<Section> current;
    std::set<std::string> ids;
    size_t pos = 0;
    while (pos < text.size()) {
        // fgets with a 1024-byte buffer: up to and including '\n', at most
        // 1023 characters.
        size_t len = std::min<size_t>(text.size() - pos, 1023);
        size_t nl = text.substr(pos, len).find('\n');
        if (nl != std::string_view::npos) len = nl + 1;
        std::string line(text.substr(pos, len));
        pos += len;
        if (line[0] == '\n' || line[0] == '#') continue;
        char group[64], value[1024], arg[64];
        if (line[0] == '[') {
            std::optional<std::string> id;
            bool header = false;
            if (std::sscanf(line.c_str(), "[%63s \"%63[^\"]\"]", group, value) == 2) {
                id = value;
                header = true;
            } else if (std::sscanf(line.c_str(), "[%63[^]]]", group) == 1) {
                header = true;
            }
            if (header) {
                if (current) TRY(finish_section(*current, out, ids));
                current.emplace();
                current->group = group;
                current->id = std::move(id);
                continue;
            }
        }
        value[0] = '\0';
        if (std::sscanf(line.c_str(), " %63s = \"%1023[^\"]\"", arg, value) == 2 ||
            std::sscanf(line.c_str(), " %63s = \"\"", arg) == 1) {
            if (!current) return invalid_argument("no group defined");
            current->values.set(arg, value);
            continue;
        }
        return invalid_argument("parse error");
    }
    if (current) TRY(finish_section(*current, out, ids));
    return {};
}

Status take_option_sections(qapi::OptionsTree& options, RuleSections& out) {
    TRY(take_group(options, kInjectError, out));
    TRY(take_group(options, kSetState, out));
    return {};
}

Result<RuleSpecs> make_rules(const RuleSections& sections) {
    RuleSpecs specs;
    for (const SectionOptions& section : sections.inject_error) {
        InjectErrorSpec spec;
        ASSIGN_OR_RETURN(spec.event, rule_event(section));
        spec.state = to_int(section.state);
        spec.error = to_int(section.error);
        spec.once = section.once;
        spec.immediately = section.immediately;
        spec.offset = section.sector == -1 ? -1 : section.sector * 512;
        if (section.sector < -1) spec.offset = -2;  // never matches
        if (section.iotype) {
            std::optional<IoType> type = parse_io_type(*section.iotype);
            if (!type) return invalid_argument("invalid parameter value: " + *section.iotype);
            spec.iotype_mask = io_type_bit(*type);
        }
        specs.inject_error.push_back(spec);
    }
    for (const SectionOptions& section : sections.set_state) {
        SetStateSpec spec;
        ASSIGN_OR_RETURN(spec.event, rule_event(section));
        spec.state = to_int(section.state);
        spec.new_state = to_int(section.new_state);
        specs.set_state.push_back(spec);
    }
    return specs;
}

}  // namespace coblock::blkdebug
