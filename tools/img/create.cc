// `coblock-img create`: qemu-img 7.2's img_create and bdrv_img_create
// (block.c): option checks in QEMU's order, the "Formatting ..." line, then
// the format's create function through block/create.h.
// Output and error texts: specs/qemu-img-output.md §1 and §2.
#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "block/create.h"
#include "block/driver.h"
#include "qapi/help.h"
#include "qapi/keyval.h"
#include "qapi/schema.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"

namespace coblock::img {
namespace {

// What qemu-img's create option list holds for one format: its own fields
// followed by the protocol's, a name listed twice kept at its first place
// (qemu_opts_append).
struct CreateOptionList {
    const BlockDriver* format = nullptr;
    const BlockDriver* protocol = nullptr;
    std::vector<const qapi::OptionField*> fields;

    const qapi::OptionField* find(std::string_view name) const {
        for (const qapi::OptionField* field : fields)
            if (field->name == name) return field;
        return nullptr;
    }
};

void append_fields(CreateOptionList& list, const qapi::OptionSchema* schema) {
    if (schema == nullptr) return;
    for (const qapi::OptionField& field : schema->fields)
        if (list.find(field.name) == nullptr) list.fields.push_back(&field);
}

// bdrv_find_protocol(filename, allow_protocol_prefix=true): a prefix names
// the protocol, anything else is a file.
Result<const BlockDriver*> find_protocol(const std::string& filename) {
    if (auto prefix = qapi::split_protocol_prefix(filename)) {
        if (const BlockDriver* driver = find_protocol_for_filename(filename)) return driver;
        return invalid_argument("Unknown protocol '" + prefix->protocol + "'");
    }
    if (const BlockDriver* driver = find_block_driver("file")) return driver;
    return invalid_argument("Unknown protocol 'file'");
}

bool can_create(const BlockDriver& driver) {
    return driver.co_create != nullptr && driver.create_options != nullptr;
}

// One -o element checked the way qemu_opts_do_parse checks it: the name
// must be in the list; sizes, numbers and booleans must parse. Strings and
// enums pass (QEMU's create options declare enums as strings; the driver
// rejects a bad choice after the Formatting line).
Status check_option(const CreateOptionList& list, const std::string& name,
                    const qapi::OptionValue& value) {
    const qapi::OptionField* field = list.find(name);
    if (field == nullptr) return invalid_argument("Invalid parameter '" + name + "'");
    switch (field->type) {
        case qapi::FieldType::kString:
        case qapi::FieldType::kEnum:
            return {};
        case qapi::FieldType::kSize: {
            bool hex_with_suffix = false;
            if (!qapi::strtosz(value.text, &hex_with_suffix).ok())
                return qapi::parse_size_option(name, value.text).error();  // QEMU's wording
            // QEMU parses -o sizes twice (QemuOpts, then the driver's QDict
            // visitor) and warns each time.
            for (int i = 0; hex_with_suffix && i < 2; ++i)
                warn_report("Using a multiplier suffix on hex numbers is deprecated: " +
                            value.text);
            return {};
        }
        default: {
            Result<qapi::OptionValue> parsed = qapi::normalize_value(*field, value.text);
            if (!parsed) return std::move(parsed).error();
            return {};
        }
    }
}

// qemu_opts_print(opts, " "): every option of the list in list order that
// was set or has a default. Set sizes and numbers print their parsed value
// as a signed 64-bit number; strings have ',' doubled; the rest as given.
std::string format_options(const CreateOptionList& list, const qapi::OptionsTree& set) {
    std::string out;
    for (const qapi::OptionField* field : list.fields) {
        const qapi::OptionValue* value = set.find(field->name);
        if (value == nullptr && !field->default_text) continue;
        std::string text = value ? value->text : *field->default_text;
        const bool numeric = field->type == qapi::FieldType::kSize ||
                             field->type == qapi::FieldType::kInt ||
                             field->type == qapi::FieldType::kUint;
        if (field->type == qapi::FieldType::kString || field->type == qapi::FieldType::kEnum) {
            std::string escaped;
            for (char ch : text) {
                escaped += ch;
                if (ch == ',') escaped += ',';
            }
            text = std::move(escaped);
        } else if (numeric && value != nullptr) {
            Result<qapi::OptionValue> normalized = qapi::normalize_value(*field, text);
            if (normalized) {
                text = std::to_string(
                    static_cast<int64_t>(std::strtoull(normalized->text.c_str(), nullptr, 10)));
            }
        }
        if (!out.empty()) out += ' ';
        out += field->name + "=" + text;
    }
    return out;
}

struct CreateRequest {
    std::string filename;
    std::string format = "raw";
    std::string backing_file;    // -b
    std::string backing_format;  // -F
    bool has_backing_file = false;
    bool has_backing_format = false;
    std::string options;           // -o, comma-joined
    std::optional<uint64_t> size;  // command-line size
    bool no_backing_open = false;  // -u
    bool quiet = false;
};

// bdrv_img_create(). Errors are returned with their text; the caller adds
// "<filename>: ". `hint` gets a second line QEMU appends (no prefix).
Status create(CreateRequest& req, std::string* hint) {
    const BlockDriver* driver = find_block_driver(req.format);
    if (driver == nullptr) return invalid_argument("Unknown file format '" + req.format + "'");
    if (!can_create(*driver))
        return unsupported_error("Format driver '" + req.format +
                                 "' does not support image creation");
    ASSIGN_OR_RETURN(const BlockDriver* protocol, find_protocol(req.filename));
    if (!can_create(*protocol))
        return unsupported_error("Protocol driver '" + protocol->name +
                                 "' does not support image creation");
    CreateOptionList list;
    list.format = driver;
    list.protocol = protocol;
    append_fields(list, driver->create_options);
    append_fields(list, protocol->create_options);

    // -o goes to QemuOpts; qemu-img passes no warning sink there.
    ASSIGN_OR_RETURN(qapi::OptionsTree options, qapi::parse_qemu_opts(req.options));
    for (const auto& [name, value] : options)
        TRY(check_option(list, name, value));

    if (!options.has("size")) {
        if (req.size) options.set("size", std::to_string(*req.size));
    } else if (req.size) {
        return invalid_argument("The image size must be specified only once");
    }
    if (req.has_backing_file) {
        if (!driver->supports_backing || !list.find("backing_file"))
            return unsupported_error("Backing file not supported for file format '" + req.format +
                                     "'");
        options.set("backing_file", req.backing_file);
    }
    if (req.has_backing_format) {
        if (!driver->supports_backing || !list.find("backing_fmt"))
            return unsupported_error("Backing file format not supported for file format '" +
                                     req.format + "'");
        options.set("backing_fmt", req.backing_format);
    }

    const std::optional<std::string> backing_file = options.get("backing_file");
    const std::optional<std::string> backing_format = options.get("backing_fmt");
    if (backing_file) {
        if (*backing_file == req.filename)
            return invalid_argument(
                "Error: Trying to create an image with the same filename as the backing file");
        if (backing_file->empty())
            return invalid_argument("Expected backing file name, got empty string");
    }
    if (backing_format && find_block_driver(*backing_format) == nullptr)
        return invalid_argument("Unknown backing file format '" + *backing_format + "'");

    std::optional<uint64_t> size;
    if (auto text = options.get("size")) size = *qapi::strtosz(*text);
    if (backing_file && !req.no_backing_open) {
        // Metadata only, shared: the backing image may be in use.
        ImageSpec spec;
        spec.filename = full_backing_filename(req.filename, *backing_file);
        spec.format = backing_format.value_or("");
        spec.flags.read_only = true;
        spec.flags.no_io = true;
        spec.flags.force_share = true;
        qapi::OptionsTree backing_options;
        if (backing_format) backing_options.set("driver", *backing_format);
        Result<std::unique_ptr<BlockBackend>> backing =
            BlockBackend::open(spec.filename, std::move(backing_options), spec.flags);
        if (!backing) {
            *hint = "Could not open backing image.\n";
            return std::move(backing).error();
        }
        if (!backing_format) {
            // QEMU's hint has no newline here.
            *hint = "Detected format of " + (*backing)->root()->driver().name + ".";
            return invalid_argument("Backing file specified without backing format");
        }
        if (!size) {
            size = (*backing)->length();
            options.set("size", std::to_string(*size));
        }
    } else if (backing_file && !backing_format) {
        return invalid_argument("Backing file specified without backing format");
    }
    if (!size) return invalid_argument("Image creation needs a size parameter");

    if (!req.quiet) {
        std::printf("Formatting '%s', fmt=%s %s\n", req.filename.c_str(), req.format.c_str(),
                    format_options(list, options).c_str());
        std::fflush(stdout);
    }

    Status status = create_image(req.format, req.filename, *size, options,
                                 backing_file.value_or(""), backing_format.value_or(""));
    if (!status && status.error().errno_value == EFBIG) {
        // QEMU replaces the driver's message: "too large" plus a hint when
        // the format has clusters.
        std::string cluster_hint;
        if (const qapi::OptionField* cluster = list.find("cluster_size")) {
            auto text = options.get("cluster_size");
            if (!text) text = cluster->default_text;
            if (text && qapi::strtosz(*text).value_or(0) != 0)
                cluster_hint = " (try using a larger cluster size)";
        }
        return Error{
            ErrorKind::kNoSpace, EFBIG,
            "The image size is too large for file format '" + req.format + "'" + cluster_hint,
            std::nullopt};
    }
    return status;
}

}  // namespace

// print_block_option_help(): `-o help`.
int print_create_help(const char* filename, const std::string& format) {
    const BlockDriver* driver = find_block_driver(format);
    if (driver == nullptr) {
        error_report("Unknown file format '" + format + "'");
        return 1;
    }
    if (!can_create(*driver)) {
        error_report("Format driver '" + format + "' does not support image creation");
        return 1;
    }
    const qapi::OptionSchema* protocol_schema = nullptr;
    if (filename != nullptr) {
        Result<const BlockDriver*> protocol = find_protocol(filename);
        if (!protocol) {
            error_report(protocol.error().to_string());
            return 1;
        }
        if (!can_create(**protocol)) {
            error_report("Protocol driver '" + (*protocol)->name +
                         "' does not support image creation");
            return 1;
        }
        protocol_schema = (*protocol)->create_options;
    }
    std::fputs(qapi::format_create_help(format, *driver->create_options, protocol_schema).c_str(),
               stdout);
    return 0;
}

int img_create(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    CreateRequest req;
    bool has_options = false;
    int c;
    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, nullptr)) continue;
        switch (c) {
            case 'F':
                req.backing_format = optarg;
                req.has_backing_format = true;
                break;
            case 'b':
                req.backing_file = optarg;
                req.has_backing_file = true;
                break;
            case 'f':
                req.format = optarg;
                break;
            case 'o':
                if (!is_valid_option_list(optarg)) {
                    error_report(std::string("Invalid option list: ") + optarg);
                    return 1;
                }
                if (has_options) req.options += ',';
                req.options += optarg;
                has_options = true;
                break;
            case 'q':
                req.quiet = true;
                break;
            case 'u':
                req.no_backing_open = true;
                break;
        }
    }

    const char* filename = optind < argc ? argv[optind] : nullptr;
    if (has_options && qapi::has_help_option(req.options))
        return print_create_help(filename, req.format);
    if (filename == nullptr) error_exit("Expecting image file name");
    req.filename = filename;
    ++optind;

    if (optind < argc) {
        std::optional<int64_t> size = cvtnum("image size", argv[optind++]);
        if (!size) return 1;
        req.size = static_cast<uint64_t>(*size);
    }
    if (optind != argc) error_exit(std::string("Unexpected argument: ") + argv[optind]);

    std::string hint;
    Status status = create(req, &hint);
    if (!status) {
        error_report(req.filename + ": " + status.error().to_string());
        std::fputs(hint.c_str(), stderr);
        return 1;
    }
    return 0;
}

}  // namespace coblock::img
