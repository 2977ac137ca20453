// Option value parsers with QEMU's rules and messages, and the checks for
// unknown or unconsumed keys.
// Pure. Follows QEMU 7.2 util/cutils.c (do_strtosz, qemu_strtou64,
// check_strtox_error), util/qemu-option.c (parse_option_number/size),
// qapi/qapi-util.c (qapi_bool_parse, qapi_enum_parse) and block.c.
#include "qapi/schema.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "qapi/json_output.h"

namespace coblock::qapi {

namespace {

// 128-bit arithmetic for the exact size product, as QEMU's mulu64.
__extension__ typedef unsigned __int128 U128;

std::string in_quotes(std::string_view text) {
    return "'" + std::string(text) + "'";
}

// The outcome of one of QEMU's strto* helpers: 0, -EINVAL or -ERANGE.
template <class V>
struct Converted {
    V value{};
    int err = 0;
};

// check_strtox_error with endptr == NULL: no conversion or trailing text is
// -EINVAL (checked before the range), otherwise libc's errno.
int check_whole(const char* begin, const char* end, int libc_errno) {
    if (libc_errno == 0 && end == begin) return -EINVAL;
    if (*end != '\0') return -EINVAL;
    return -libc_errno;
}

Converted<uint64_t> qemu_strtou64(const std::string& text) {
    // std::string may hold a NUL; QEMU's C string would end there and the
    // rest could never be valid anyway.
    if (text.find('\0') != std::string::npos) return {0, -EINVAL};
    char* end = nullptr;
    errno = 0;
    unsigned long long value = std::strtoull(text.c_str(), &end, 0);
    int libc_errno = errno;
    return {static_cast<uint64_t>(value), check_whole(text.c_str(), end, libc_errno)};
}

Converted<int64_t> qemu_strtoi64(const std::string& text) {
    if (text.find('\0') != std::string::npos) return {0, -EINVAL};
    char* end = nullptr;
    errno = 0;
    long long value = std::strtoll(text.c_str(), &end, 0);
    int libc_errno = errno;
    return {static_cast<int64_t>(value), check_whole(text.c_str(), end, libc_errno)};
}

// suffix_mul with unit 1024; -1 for no suffix.
int64_t suffix_multiplier(char suffix) {
    switch (suffix) {
        case 'b':
        case 'B':
            return 1;
        case 'k':
        case 'K':
            return int64_t{1} << 10;
        case 'm':
        case 'M':
            return int64_t{1} << 20;
        case 'g':
        case 'G':
            return int64_t{1} << 30;
        case 't':
        case 'T':
            return int64_t{1} << 40;
        case 'p':
        case 'P':
            return int64_t{1} << 50;
        case 'e':
        case 'E':
            return int64_t{1} << 60;
        default:
            return -1;
    }
}

// do_strtosz(nptr, NULL, 'B', 1024, &result) of QEMU 7.2.
Converted<uint64_t> do_strtosz(const std::string& text, bool* hex_with_suffix) {
    if (text.find('\0') != std::string::npos) return {0, -EINVAL};
    const char* nptr = text.c_str();
    char* endptr = nullptr;
    int retval = 0;
    uint64_t val = 0;
    uint64_t valf = 0;  // fraction as 0.64 fixed point
    bool hex = false;

    // The integral part, as decimal.
    errno = 0;
    val = std::strtoull(nptr, &endptr, 10);
    if (errno == ERANGE) {
        retval = -ERANGE;
    } else if (endptr == nptr) {
        retval = -EINVAL;
    } else if (std::memchr(nptr, '-', static_cast<std::size_t>(endptr - nptr)) != nullptr) {
        endptr = const_cast<char*>(nptr);
        retval = -EINVAL;
    } else if (val == 0 && (*endptr == 'x' || *endptr == 'X')) {
        // Looks like hex: reparse, and refuse a fraction.
        errno = 0;
        val = std::strtoull(nptr, &endptr, 16);
        if (errno == ERANGE) {
            retval = -ERANGE;
        } else if (*endptr == '.') {
            endptr = const_cast<char*>(nptr);
            retval = -EINVAL;
        }
        hex = true;
    } else if (*endptr == '.') {
        // A fraction. "1.k" must work without fraction digits; an exponent
        // makes the whole input invalid.
        const char* fraction_start = endptr;
        char* fraction_end = nullptr;
        errno = 0;
        double fraction = std::strtod(fraction_start, &fraction_end);
        if (fraction_end == fraction_start || errno != 0 || !std::isfinite(fraction)) {
            endptr = const_cast<char*>(fraction_start) + 1;
        } else if (std::memchr(fraction_start, 'e',
                               static_cast<std::size_t>(fraction_end - fraction_start)) ||
                   std::memchr(fraction_start, 'E',
                               static_cast<std::size_t>(fraction_end - fraction_start))) {
            endptr = const_cast<char*>(nptr);
            retval = -EINVAL;
        } else {
            endptr = fraction_end;
            // fraction < 1, but ".99999999999999999999" rounds to 2^64,
            // which would not fit: clamp.
            double scaled = std::ldexp(fraction, 64);
            valf = scaled >= 0x1p64 ? UINT64_MAX : static_cast<uint64_t>(scaled);
        }
    }

    if (retval == 0) {
        int64_t mul = suffix_multiplier(*endptr);
        if (mul > 0) {
            if (hex && hex_with_suffix != nullptr) *hex_with_suffix = true;
            ++endptr;
        } else {
            mul = 1;
        }
        if (mul == 1) {
            // A fraction needs a scale.
            if (valf != 0) {
                endptr = const_cast<char*>(nptr);
                retval = -EINVAL;
            }
        } else {
            // 64.64 fixed point times the multiplier, rounding 0.5 up.
            U128 whole = static_cast<U128>(val) * static_cast<uint64_t>(mul);
            U128 frac = static_cast<U128>(valf) * static_cast<uint64_t>(mul);
            U128 total = whole + (frac >> 64) + ((static_cast<uint64_t>(frac) >> 63) & 1);
            if ((total >> 64) != 0) {
                retval = -ERANGE;
            } else {
                val = static_cast<uint64_t>(total);
            }
        }
    }
    // Without an end pointer QEMU wants the whole string consumed; that
    // check overrides -ERANGE ("99999999999999999999k" is invalid).
    if (*endptr != '\0') retval = -EINVAL;
    return {val, retval};
}

}  // namespace

Result<uint64_t> strtosz(std::string_view text, bool* hex_with_suffix) {
    Converted<uint64_t> converted = do_strtosz(std::string(text), hex_with_suffix);
    if (converted.err == -ERANGE)
        return make_error(ErrorKind::kOutOfRange, "size " + in_quotes(text) + " is too large");
    if (converted.err != 0) return invalid_argument("invalid size " + in_quotes(text));
    return converted.value;
}

Result<uint64_t> parse_size_option(std::string_view name, std::string_view text) {
    Converted<uint64_t> converted = do_strtosz(std::string(text), nullptr);
    if (converted.err == -ERANGE)
        return invalid_argument("Value " + in_quotes(text) + " is out of range for parameter " +
                                in_quotes(name));
    if (converted.err != 0)
        return invalid_argument("Parameter " + in_quotes(name) +
                                " expects a non-negative number below 2^64\n"
                                "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, "
                                "tera-, peta-\nand exabytes, respectively.");
    return converted.value;
}

Result<uint64_t> parse_uint_option(std::string_view name, std::string_view text) {
    Converted<uint64_t> converted = qemu_strtou64(std::string(text));
    if (converted.err == -ERANGE)
        return invalid_argument("Value " + in_quotes(text) + " is too large for parameter " +
                                in_quotes(name));
    if (converted.err != 0)
        return invalid_argument("Parameter " + in_quotes(name) + " expects a number");
    return converted.value;
}

Result<int64_t> parse_int_option(std::string_view name, std::string_view text) {
    Converted<int64_t> converted = qemu_strtoi64(std::string(text));
    if (converted.err == -ERANGE)
        return invalid_argument("Value " + in_quotes(text) + " is too large for parameter " +
                                in_quotes(name));
    if (converted.err != 0)
        return invalid_argument("Parameter " + in_quotes(name) + " expects a number");
    return converted.value;
}

Result<bool> parse_bool_option(std::string_view name, std::string_view text) {
    if (text == "on" || text == "yes" || text == "true" || text == "y") return true;
    if (text == "off" || text == "no" || text == "false" || text == "n") return false;
    return invalid_argument("Parameter " + in_quotes(name) + " expects 'on' or 'off'");
}

Result<std::size_t> parse_enum_option(std::string_view name, std::string_view text,
                                      const std::vector<std::string>& choices,
                                      EnumErrorStyle style) {
    for (std::size_t i = 0; i < choices.size(); ++i) {
        if (choices[i] == text) return i;
    }
    if (style == EnumErrorStyle::kEnumParse)
        return invalid_argument("invalid parameter value: " + std::string(text));
    return invalid_argument("Parameter " + in_quotes(name) + " does not accept value " +
                            in_quotes(text));
}

Result<OptionValue> normalize_value(const OptionField& field, std::string_view text) {
    switch (field.type) {
        case FieldType::kString:
            return OptionValue{std::string(text), ValueKind::kString};
        case FieldType::kBool: {
            ASSIGN_OR_RETURN(bool value, parse_bool_option(field.name, text));
            return OptionValue{value ? "on" : "off", ValueKind::kBool};
        }
        case FieldType::kInt: {
            ASSIGN_OR_RETURN(int64_t value, parse_int_option(field.name, text));
            return OptionValue{std::to_string(value), ValueKind::kNumber};
        }
        case FieldType::kUint: {
            ASSIGN_OR_RETURN(uint64_t value, parse_uint_option(field.name, text));
            return OptionValue{std::to_string(value), ValueKind::kNumber};
        }
        case FieldType::kSize: {
            ASSIGN_OR_RETURN(uint64_t value, parse_size_option(field.name, text));
            return OptionValue{std::to_string(value), ValueKind::kNumber};
        }
        case FieldType::kEnum: {
            ASSIGN_OR_RETURN(std::size_t index,
                             parse_enum_option(field.name, text, field.choices, field.enum_error));
            return OptionValue{field.choices[index], ValueKind::kString};
        }
    }
    return make_error(ErrorKind::kInternal, "option " + in_quotes(field.name) + " has no type");
}

const OptionField* OptionSchema::find(std::string_view field_name) const {
    for (const auto& field : fields) {
        if (field.name == field_name) return &field;
    }
    return nullptr;
}

Status check_schema(const OptionSchema& schema) {
    for (std::size_t i = 0; i < schema.fields.size(); ++i) {
        const OptionField& field = schema.fields[i];
        std::string where = "schema " + in_quotes(schema.name) + " field " + in_quotes(field.name);
        if (field.name.empty())
            return make_error(ErrorKind::kInternal,
                              "schema " + in_quotes(schema.name) + " has a field without a name");
        for (std::size_t j = 0; j < i; ++j) {
            if (schema.fields[j].name == field.name)
                return make_error(ErrorKind::kInternal, where + " is declared twice");
        }
        if (field.type == FieldType::kEnum && field.choices.empty())
            return make_error(ErrorKind::kInternal, where + " is an enum without choices");
        if (field.default_text) {
            Result<OptionValue> value = normalize_value(field, *field.default_text);
            if (!value.ok())
                return make_error(ErrorKind::kInternal,
                                  where + " has a bad default: " + value.error().message);
        }
    }
    return ok_status();
}

Status check_known_keys(const OptionsTree& tree, const std::vector<const OptionSchema*>& schemas) {
    for (const auto& [key, value] : tree) {
        bool known = false;
        for (const OptionSchema* schema : schemas) {
            if (schema != nullptr && schema->find(key) != nullptr) {
                known = true;
                break;
            }
        }
        if (!known) return invalid_argument("Invalid parameter " + in_quotes(key));
    }
    return ok_status();
}

Error unsupported_option_error(DriverClass driver_class, std::string_view driver,
                               std::string_view key) {
    if (driver_class == DriverClass::kProtocol)
        return invalid_argument("Block protocol " + in_quotes(driver) +
                                " doesn't support the option " + in_quotes(key));
    return invalid_argument("Block format " + in_quotes(driver) + " does not support the option " +
                            in_quotes(key));
}

Status check_all_consumed(const OptionsTree& remaining, DriverClass driver_class,
                          std::string_view driver) {
    if (remaining.empty()) return ok_status();
    std::vector<std::string> order = qdict_key_order(remaining.keys());
    return unsupported_option_error(driver_class, driver, order.front());
}

}  // namespace coblock::qapi
