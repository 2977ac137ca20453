// Declarative option schemas: a field table (name, type, default, help) and
// typed option structs bound to it through member pointers. From one table
// come parsing of an OptionsTree into the struct, the `-o help` listing
// (help.h) and serialisation back to an OptionsTree / JSON.
// Pure. Value rules and error texts follow QEMU 7.2 util/qemu-option.c
// (parse_option_bool/number/size), util/cutils.c (qemu_strtosz,
// qemu_strtou64), qapi/qapi-util.c (qapi_bool_parse) and block.c (the
// "does not support the option" errors), checked against the 7.2 binaries.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "formats/result.h"
#include "qapi/options_tree.h"

namespace coblock::qapi {

// ---------------------------------------------------------------------------
// Value parsers. Each takes the option name only to put it in the error.
// All errors are kInvalidArgument unless stated.

// qemu_strtosz: decimal with an optional suffix B, K, M, G, T, P, E (any
// case; powers of 1024; B = bytes). A fraction needs a suffix other than B
// ("1.5G"; "1.k" is 1024); "0x" hex is accepted, with a suffix too (QEMU 7.2
// warns about that: `hex_with_suffix` is set when non-null). Leading
// whitespace and '+' are accepted; '-', exponents and trailing text are not.
// Errors: kInvalidArgument "invalid size '<text>'", or kOutOfRange
// "size '<text>' is too large" when the value does not fit 64 bits.
// Tools map these kinds to their own wording.
Result<uint64_t> strtosz(std::string_view text, bool* hex_with_suffix = nullptr);

// A QemuOpts size option: strtosz(); errors as QEMU prints them:
//   "Value '16E' is out of range for parameter 'size'" or
//   "Parameter 'size' expects a non-negative number below 2^64\n"
//   "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
//   "and exabytes, respectively."
// (the last two lines are QEMU's hint; a tool prints the message as is).
Result<uint64_t> parse_size_option(std::string_view name, std::string_view text);
// A QemuOpts number (qemu_strtou64, base 0: decimal, 0x hex, 0 octal).
// As in QEMU a leading '-' wraps ("-1" is 2^64-1); drivers check ranges.
// Errors: "Parameter 'x' expects a number",
//         "Value '<text>' is too large for parameter 'x'".
Result<uint64_t> parse_uint_option(std::string_view name, std::string_view text);
// Signed variant (qemu_strtoi64, base 0); same error texts.
Result<int64_t> parse_int_option(std::string_view name, std::string_view text);
// qapi_bool_parse: on/yes/true/y and off/no/false/n, case-sensitive.
// Error: "Parameter 'x' expects 'on' or 'off'".
Result<bool> parse_bool_option(std::string_view name, std::string_view text);

// How an enum field words a value that is not one of its choices. QEMU's
// QAPI visitors say "Parameter 'x' does not accept value 'v'"; drivers that
// call qapi_enum_parse themselves (file's aio=, locking=) say
// "invalid parameter value: v".
enum class EnumErrorStyle { kVisitor, kEnumParse };

// The index of `text` in `choices` (exact match).
Result<std::size_t> parse_enum_option(std::string_view name, std::string_view text,
                                      const std::vector<std::string>& choices,
                                      EnumErrorStyle style = EnumErrorStyle::kVisitor);

// ---------------------------------------------------------------------------
// The field table.

enum class FieldType { kString, kBool, kInt, kUint, kSize, kEnum };

inline constexpr std::nullopt_t kNoDefault = std::nullopt;

struct OptionField {
    std::string name;  // the key, dotted for nested options ("encrypt.format")
    FieldType type = FieldType::kString;
    std::optional<std::string> default_text;  // parsed like user text; kNoDefault: none
    std::string help;
    std::vector<std::string> choices;  // kEnum only
    EnumErrorStyle enum_error = EnumErrorStyle::kVisitor;
    bool required = false;  // absent -> "Parameter 'x' is missing"
};

struct OptionSchema {
    std::string name;  // driver or option group name ("null-co", "qcow2")
    std::vector<OptionField> fields;

    const OptionField* find(std::string_view field_name) const;
};

// Parses `text` by the field's type and returns it in canonical form:
// sizes and numbers as decimal, bools "on"/"off", strings and enum choices
// as given. Errors as the parse_*_option functions.
Result<OptionValue> normalize_value(const OptionField& field, std::string_view text);

// Checks a field table for our own mistakes: names unique and non-empty,
// every default text valid for its field's type (so Schema::parse never
// fails on a default), enum fields with at least one choice. Call it from
// each driver's unit test. Errors are kInternal and name the schema and
// field.
Status check_schema(const OptionSchema& schema);

// qemu-img -o style validation: every key of `tree` must be a field of one
// of `schemas`. Error: "Invalid parameter 'x'" for the first unknown key in
// the tree's order (QEMU validates in the order of the option string).
Status check_known_keys(const OptionsTree& tree, const std::vector<const OptionSchema*>& schemas);

// Whether the driver that left keys unconsumed is a format or a protocol;
// QEMU words the two errors differently.
enum class DriverClass { kFormat, kProtocol };

// QEMU's error for an option nobody consumed:
//   "Block format 'raw' does not support the option 'x'"
//   "Block protocol 'file' doesn't support the option 'x'"
Error unsupported_option_error(DriverClass driver_class, std::string_view driver,
                               std::string_view key);
// ok if `remaining` is empty; otherwise unsupported_option_error() for the
// key QEMU would name: the first in its QDict iteration order (see
// qdict_key_order() in json_output.h), not the first in the string.
Status check_all_consumed(const OptionsTree& remaining, DriverClass driver_class,
                          std::string_view driver);

// ---------------------------------------------------------------------------
// Typed binding.

namespace detail {
inline OptionField make_field(std::string name, FieldType type,
                              std::optional<std::string> default_text, std::string help) {
    OptionField field;
    field.name = std::move(name);
    field.type = type;
    field.default_text = std::move(default_text);
    field.help = std::move(help);
    return field;
}

template <class M>
struct Unwrap {
    using type = M;
    static constexpr bool kOptional = false;
};
template <class M>
struct Unwrap<std::optional<M>> {
    using type = M;
    static constexpr bool kOptional = true;
};
}  // namespace detail

// One field of a typed schema: the table entry plus how to store a parsed
// value into the struct and read it back.
template <class T>
struct FieldBinding {
    OptionField field;
    // Stores the canonical text (from normalize_value) into the member.
    std::function<void(T&, const std::string&)> assign;
    // The member as an OptionValue, or nullopt for an empty optional.
    std::function<std::optional<OptionValue>(const T&)> read;

    FieldBinding required() && {
        field.required = true;
        return std::move(*this);
    }
};

// A typed schema. Construct once (e.g. `inline const auto kFooSchema =
// Schema<FooOptions>("foo", {...})`) and share; all methods are const.
template <class T>
class Schema {
  public:
    Schema(std::string name, std::vector<FieldBinding<T>> fields) : bindings_(std::move(fields)) {
        descriptor_.name = std::move(name);
        for (const auto& binding : bindings_)
            descriptor_.fields.push_back(binding.field);
    }

    // The field table, for help listings and check_known_keys().
    const OptionSchema& descriptor() const { return descriptor_; }
    const std::string& name() const { return descriptor_.name; }

    // Parses the fields of this schema out of `tree` into a T that starts
    // value-initialised; every key that names a field is removed from `tree`
    // (others are left for the caller: children, the block layer, or
    // check_all_consumed()). A field that is absent (or null / an empty
    // container in JSON) gets its default text parsed, keeps T's member
    // initialiser if it has no default, and fails with "Parameter 'x' is
    // missing" if required. Fields are checked in table order; on error
    // `tree` may have lost the keys parsed before the bad one.
    Result<T> parse(OptionsTree& tree) const {
        T out{};
        for (const auto& binding : bindings_) {
            const OptionField& field = binding.field;
            const OptionValue* value = tree.find(field.name);
            std::optional<std::string> text;
            if (value != nullptr) {
                if (value->is_scalar()) text = value->text;
                tree.erase(field.name);
            }
            if (!text) {
                if (field.required)
                    return invalid_argument("Parameter '" + field.name + "' is missing");
                if (!field.default_text) continue;
                text = field.default_text;
            }
            ASSIGN_OR_RETURN(OptionValue canonical, normalize_value(field, *text));
            binding.assign(out, canonical.text);
        }
        return out;
    }

    // For a tree that must hold this schema's keys only (qemu-img -o):
    // check_known_keys() first ("Invalid parameter 'x'"), then parse() of a
    // copy, so `tree` is left as it was.
    Result<T> parse_strict(const OptionsTree& tree) const {
        TRY(check_known_keys(tree, {&descriptor_}));
        OptionsTree copy = tree;
        return parse(copy);
    }

    // The struct as options: every field in table order, empty optionals
    // left out; bools as kBool "on"/"off", numbers as kNumber, the rest as
    // kString. parse() of the result gives back an equal struct.
    OptionsTree to_tree(const T& value) const {
        OptionsTree tree;
        for (const auto& binding : bindings_) {
            if (auto v = binding.read(value)) tree.set(binding.field.name, std::move(*v));
        }
        return tree;
    }

    nlohmann::ordered_json to_json(const T& value) const { return to_tree(value).to_json(); }

  private:
    OptionSchema descriptor_;
    std::vector<FieldBinding<T>> bindings_;
};

namespace detail {

// Binds a member of type M (V or std::optional<V>) with converters between
// V and canonical text.
template <class T, class M, class FromText, class ToValue>
FieldBinding<T> bind(OptionField field, M T::*member, FromText from_text, ToValue to_value) {
    FieldBinding<T> binding;
    binding.field = std::move(field);
    binding.assign = [member, from_text](T& object, const std::string& text) {
        object.*member = from_text(text);
    };
    binding.read = [member, to_value](const T& object) -> std::optional<OptionValue> {
        if constexpr (Unwrap<M>::kOptional) {
            if (!(object.*member)) return std::nullopt;
            return to_value(*(object.*member));
        } else {
            return to_value(object.*member);
        }
    };
    return binding;
}

// Canonical text is plain decimal (normalize_value made it), so these
// cannot fail; strtoull/strtoll rather than std::stoull because they never
// throw.
inline uint64_t decimal_u64(const std::string& text) {
    return std::strtoull(text.c_str(), nullptr, 10);
}
inline int64_t decimal_i64(const std::string& text) {
    return std::strtoll(text.c_str(), nullptr, 10);
}

}  // namespace detail

// Field makers. `member` is V or std::optional<V> for the V named below;
// `default_text` is user syntax ("1G", "on", "0x200") or kNoDefault.

template <class T, class M>
FieldBinding<T> string_field(std::string name, M T::*member,
                             std::optional<std::string> default_text, std::string help) {
    static_assert(std::is_same_v<typename detail::Unwrap<M>::type, std::string>);
    return detail::bind<T>(
        detail::make_field(std::move(name), FieldType::kString, std::move(default_text),
                           std::move(help)),
        member, [](const std::string& text) { return text; },
        [](const std::string& v) {
            return OptionValue{v, ValueKind::kString};
        });
}

template <class T, class M>
FieldBinding<T> bool_field(std::string name, M T::*member, std::optional<std::string> default_text,
                           std::string help) {
    static_assert(std::is_same_v<typename detail::Unwrap<M>::type, bool>);
    return detail::bind<T>(
        detail::make_field(std::move(name), FieldType::kBool, std::move(default_text),
                           std::move(help)),
        member, [](const std::string& text) { return text == "on"; },
        [](bool v) {
            return OptionValue{v ? "on" : "off", ValueKind::kBool};
        });
}

namespace detail {
template <class T, class M>
FieldBinding<T> unsigned_field(FieldType type, std::string name, M T::*member,
                               std::optional<std::string> default_text, std::string help) {
    static_assert(std::is_same_v<typename Unwrap<M>::type, uint64_t>);
    return bind<T>(
        detail::make_field(std::move(name), type, std::move(default_text), std::move(help)), member,
        &decimal_u64, [](uint64_t v) {
            return OptionValue{std::to_string(v), ValueKind::kNumber};
        });
}
}  // namespace detail

template <class T, class M>
FieldBinding<T> uint_field(std::string name, M T::*member, std::optional<std::string> default_text,
                           std::string help) {
    return detail::unsigned_field<T>(FieldType::kUint, std::move(name), member,
                                     std::move(default_text), std::move(help));
}

template <class T, class M>
FieldBinding<T> size_field(std::string name, M T::*member, std::optional<std::string> default_text,
                           std::string help) {
    return detail::unsigned_field<T>(FieldType::kSize, std::move(name), member,
                                     std::move(default_text), std::move(help));
}

template <class T, class M>
FieldBinding<T> int_field(std::string name, M T::*member, std::optional<std::string> default_text,
                          std::string help) {
    static_assert(std::is_same_v<typename detail::Unwrap<M>::type, int64_t>);
    return detail::bind<T>(detail::make_field(std::move(name), FieldType::kInt,
                                              std::move(default_text), std::move(help)),
                           member, &detail::decimal_i64, [](int64_t v) {
                               return OptionValue{std::to_string(v), ValueKind::kNumber};
                           });
}

// `choices` pairs each accepted name with its enumerator, e.g.
// {{"threads", Aio::kThreads}, {"native", Aio::kNative}}.
template <class T, class M>
FieldBinding<T> enum_field(
    std::string name, M T::*member,
    std::vector<std::pair<std::string, typename detail::Unwrap<M>::type>> choices,
    std::optional<std::string> default_text, std::string help,
    EnumErrorStyle style = EnumErrorStyle::kVisitor) {
    using E = typename detail::Unwrap<M>::type;
    OptionField field = detail::make_field(std::move(name), FieldType::kEnum,
                                           std::move(default_text), std::move(help));
    field.enum_error = style;
    for (const auto& choice : choices)
        field.choices.push_back(choice.first);
    return detail::bind<T>(
        std::move(field), member,
        [choices](const std::string& text) {
            for (const auto& [choice_name, enumerator] : choices) {
                if (choice_name == text) return enumerator;
            }
            return E{};  // unreachable: normalize_value checked the name
        },
        [choices](E v) {
            for (const auto& [choice_name, enumerator] : choices) {
                if (enumerator == v) return OptionValue{choice_name, ValueKind::kString};
            }
            return OptionValue{"", ValueKind::kString};
        });
}

}  // namespace coblock::qapi
