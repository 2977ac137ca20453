// qemu-img's `-o help` listings from option schemas.
// Pure. Follows QEMU 7.2 util/qemu-option.c (qemu_opts_print_help) and
// qemu-img.c (print_block_option_help, print_amend_option_help).
#include "qapi/help.h"

#include <algorithm>

namespace coblock::qapi {

namespace {

// qemu_opts_print_help pads "  name=<type>" to this many characters.
constexpr std::size_t kHelpColumn = 24;

}  // namespace

const char* option_type_name(FieldType type) {
    switch (type) {
        case FieldType::kString:
        case FieldType::kEnum:
            return "str";
        case FieldType::kBool:
            return "bool (on/off)";
        case FieldType::kInt:
        case FieldType::kUint:
            return "num";
        case FieldType::kSize:
            return "size";
    }
    return "str";
}

std::string option_help_line(const OptionField& field) {
    std::string line = "  " + field.name + "=<" + option_type_name(field.type) + ">";
    if (!field.help.empty()) {
        if (line.size() < kHelpColumn) line.append(kHelpColumn - line.size(), ' ');
        line += " - ";
        line += field.help;
    }
    return line;
}

std::string format_option_lines(const std::vector<const OptionSchema*>& schemas) {
    std::vector<std::string> names;
    std::vector<std::string> lines;
    for (const OptionSchema* schema : schemas) {
        if (schema == nullptr) continue;
        for (const auto& field : schema->fields) {
            if (std::find(names.begin(), names.end(), field.name) != names.end()) continue;
            names.push_back(field.name);
            lines.push_back(option_help_line(field));
        }
    }
    // g_ptr_array_sort with qemu_pstrcmp0: strcmp on the whole line.
    std::sort(lines.begin(), lines.end());
    if (lines.empty()) {
        std::string name =
            schemas.empty() || schemas.front() == nullptr ? "" : schemas.front()->name;
        return "There are no options for " + name + ".\n";
    }
    std::string out;
    for (const auto& line : lines) {
        out += line;
        out += '\n';
    }
    return out;
}

std::string format_create_help(std::string_view format, const OptionSchema& format_schema,
                               const OptionSchema* protocol_schema) {
    if (protocol_schema != nullptr) {
        return "Supported options:\n" + format_option_lines({&format_schema, protocol_schema});
    }
    return "Supported " + std::string(format) + " options:\n" +
           format_option_lines({&format_schema}) +
           "\nThe protocol level may support further options.\n"
           "Specify the target filename to include those options.\n";
}

std::string format_amend_help(std::string_view format, const OptionSchema& amend_schema) {
    return "Amend options for '" + std::string(format) + "':\n" +
           format_option_lines({&amend_schema});
}

}  // namespace coblock::qapi
