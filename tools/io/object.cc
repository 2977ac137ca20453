#include "tools/io/object.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "qapi/keyval.h"
#include "tools/io/report.h"

namespace coblock::io {
namespace {

// QEMU 7.2's user-creatable types, as `--object help` lists them.
constexpr const char* kObjectTypes[] = {
    "authz-list",     "authz-list-file", "authz-simple",   "main-loop",      "pr-manager-helper",
    "secret",         "secret_keyring",  "thread-context", "throttle-group", "tls-cipher-suites",
    "tls-creds-anon", "tls-creds-psk",   "tls-creds-x509",
};

std::map<std::string, std::string>& secrets() {
    static std::map<std::string, std::string> table;
    return table;
}

bool is_identifier(const std::string& id) {
    if (id.empty() || !std::isalpha(static_cast<unsigned char>(id[0]))) return false;
    for (char c : id) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

int fail(const std::string& message) {
    error_report(message);
    return 1;
}

}  // namespace

int add_object(const char* text) {
    bool help = false;
    auto parsed = qapi::parse_keyval(text, "qom-type", &help);
    if (!parsed.ok()) return fail(parsed.error().message);
    qapi::OptionsTree& tree = *parsed;
    std::optional<std::string> type = tree.take("qom-type");
    if (!type || qapi::is_help_option(*type)) {
        if (!type && !help) return fail("Parameter 'qom-type' is missing");
        std::printf("List of user creatable objects:\n");
        for (const char* t : kObjectTypes)
            std::printf("  %s\n", t);
        return 2;
    }
    bool known = false;
    for (const char* t : kObjectTypes)
        known = known || *type == t;
    if (!known) return fail("Parameter 'qom-type' does not accept value '" + *type + "'");
    if (*type != "secret") return fail("Object type '" + *type + "' is not supported by coblock");
    if (help) {
        std::printf(
            "secret options:\n"
            "  data=<string>\n"
            "  file=<string>\n"
            "  format=<QCryptoSecretFormat>\n"
            "  iv=<string>\n"
            "  keyid=<string>\n");
        return 2;
    }
    std::optional<std::string> id = tree.take("id");
    if (!id) return fail("Parameter 'id' is missing");
    if (!is_identifier(*id))
        return fail(
            "Parameter 'id' expects an identifier\n"
            "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
    std::optional<std::string> data = tree.take("data");
    std::optional<std::string> file = tree.take("file");
    std::optional<std::string> format = tree.take("format");
    tree.take("iv");
    tree.take("keyid");
    if (!tree.empty()) return fail("Parameter '" + tree.keys().front() + "' is unexpected");
    if (format && *format != "raw" && *format != "base64")
        return fail("Parameter 'format' does not accept value '" + *format + "'");
    if (data && file) return fail("'file' and 'data' are mutually exclusive");
    if (!data && !file) return fail("Either 'file' or 'data' must be provided");
    if (file) {
        std::ifstream in(*file, std::ios::binary);
        if (!in) {
            const int err = errno;
            return fail("Unable to read " + *file + ": Failed to open file \u201c" + *file +
                        "\u201d: " + std::strerror(err));
        }
        std::ostringstream contents;
        contents << in.rdbuf();
        data = contents.str();
    }
    if (secrets().count(*id))
        return fail("attempt to add duplicate property '" + *id + "' to object (type 'container')");
    secrets()[*id] = *data;
    return 0;
}

std::optional<std::string> find_secret(const std::string& id) {
    auto it = secrets().find(id);
    if (it == secrets().end()) return std::nullopt;
    return it->second;
}

}  // namespace coblock::io
