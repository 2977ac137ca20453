// The one error channel of coblock: Result<T> carries either a value or an
// Error (a matchable kind, the errno where one exists, a lower-case message
// naming the structure and value, and the image offset where it helps).
// Header-only and pure: it lives in formats/, the bottom layer, so parsers and
// every layer above share it.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace coblock {

enum class ErrorKind {
    kInvalidArgument,  // the caller asked for something malformed
    kCorrupt,          // image bytes violate the format (never our bug)
    kUnsupported,      // valid, but a feature we do not implement
    kIo,               // the operating system reported an I/O error
    kNoSpace,          // ENOSPC/EDQUOT
    kPermission,       // EACCES/EPERM, graph permission conflicts, lock held
    kReadOnly,         // write to a read-only node
    kOutOfRange,       // request beyond the end of a node
    kNotFound,         // file, node or key missing
    kBusy,             // resource in use
    kCancelled,        // request cancelled
    kInternal,         // an invariant of ours broke
};

const char* error_kind_name(ErrorKind kind);

struct Error {
    ErrorKind kind = ErrorKind::kInternal;
    int errno_value = 0;  // 0 when the error does not come from a syscall
    std::string message;
    std::optional<uint64_t> offset;  // image offset of the offending structure

    // errno to report to callers that speak errno (qemu-io, C ABI).
    int as_errno() const;
    // "message" or "message (at offset 0x...)".
    std::string to_string() const;
};

// Builders. Each names what went wrong; messages are lower-case.
inline Error make_error(ErrorKind kind, std::string message) {
    return Error{kind, 0, std::move(message), std::nullopt};
}
inline Error corrupt_error(std::string message, std::optional<uint64_t> offset = std::nullopt) {
    return Error{ErrorKind::kCorrupt, 0, std::move(message), offset};
}
inline Error invalid_argument(std::string message) {
    return Error{ErrorKind::kInvalidArgument, 0, std::move(message), std::nullopt};
}
inline Error unsupported_error(std::string message) {
    return Error{ErrorKind::kUnsupported, 0, std::move(message), std::nullopt};
}
// Converts an errno exactly once, at the syscall; `what` says what failed.
Error errno_error(int err, std::string what);

template <class T>
class [[nodiscard]] Result {
  public:
    using value_type = T;

    Result(const T& value) : state_(std::in_place_index<0>, value) {}
    Result(T&& value) : state_(std::in_place_index<0>, std::move(value)) {}
    template <class U, class = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                !std::is_same_v<std::decay_t<U>, Error> &&
                                                !std::is_same_v<std::decay_t<U>, Result>>>
    Result(U&& value) : state_(std::in_place_index<0>, std::forward<U>(value)) {}
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(state_); }
    Error&& error() && { return std::get<1>(std::move(state_)); }

    T value_or(T fallback) const { return ok() ? value() : std::move(fallback); }

  private:
    std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const { return !error_.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error& error() const& { return *error_; }
    Error&& error() && { return std::move(*error_); }

  private:
    std::optional<Error> error_;
};

using Status = Result<void>;

inline Status ok_status() {
    return {};
}

inline const char* error_kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::kInvalidArgument:
            return "invalid argument";
        case ErrorKind::kCorrupt:
            return "corrupt image";
        case ErrorKind::kUnsupported:
            return "unsupported";
        case ErrorKind::kIo:
            return "i/o error";
        case ErrorKind::kNoSpace:
            return "no space";
        case ErrorKind::kPermission:
            return "permission denied";
        case ErrorKind::kReadOnly:
            return "read-only";
        case ErrorKind::kOutOfRange:
            return "out of range";
        case ErrorKind::kNotFound:
            return "not found";
        case ErrorKind::kBusy:
            return "busy";
        case ErrorKind::kCancelled:
            return "cancelled";
        case ErrorKind::kInternal:
            return "internal error";
    }
    return "unknown error";
}

inline int Error::as_errno() const {
    if (errno_value != 0) return errno_value;
    switch (kind) {
        case ErrorKind::kInvalidArgument:
            return EINVAL;
        case ErrorKind::kCorrupt:
            return EIO;
        case ErrorKind::kUnsupported:
            return ENOTSUP;
        case ErrorKind::kIo:
            return EIO;
        case ErrorKind::kNoSpace:
            return ENOSPC;
        case ErrorKind::kPermission:
            return EPERM;
        case ErrorKind::kReadOnly:
            return EACCES;
        case ErrorKind::kOutOfRange:
            return EIO;
        case ErrorKind::kNotFound:
            return ENOENT;
        case ErrorKind::kBusy:
            return EBUSY;
        case ErrorKind::kCancelled:
            return ECANCELED;
        case ErrorKind::kInternal:
            return EIO;
    }
    return EIO;
}

inline std::string Error::to_string() const {
    if (!offset) return message;
    char buf[40];
    std::snprintf(buf, sizeof buf, " (at offset 0x%llx)", static_cast<unsigned long long>(*offset));
    return message + buf;
}

inline Error errno_error(int err, std::string what) {
    ErrorKind kind = ErrorKind::kIo;
    switch (err) {
        case ENOSPC:
        case EDQUOT:
            kind = ErrorKind::kNoSpace;
            break;
        case EACCES:
        case EPERM:
            kind = ErrorKind::kPermission;
            break;
        case EROFS:
            kind = ErrorKind::kReadOnly;
            break;
        case ENOENT:
            kind = ErrorKind::kNotFound;
            break;
        case EINVAL:
            kind = ErrorKind::kInvalidArgument;
            break;
        case ENOTSUP:
            kind = ErrorKind::kUnsupported;
            break;
        case EBUSY:
        case EAGAIN:
            kind = ErrorKind::kBusy;
            break;
        case ECANCELED:
            kind = ErrorKind::kCancelled;
            break;
        default:
            break;
    }
    return Error{kind, err, std::move(what) + ": " + std::strerror(err), std::nullopt};
}

}  // namespace coblock

#define COBLOCK_CONCAT_INNER(a, b) a##b
#define COBLOCK_CONCAT(a, b) COBLOCK_CONCAT_INNER(a, b)

// TRY(expr): evaluates a Result/Status and returns its error from the
// enclosing function (which must return a Result or Status).
#define TRY(expr)                                                            \
    do {                                                                     \
        auto&& COBLOCK_CONCAT(try_result_, __LINE__) = (expr);               \
        if (!COBLOCK_CONCAT(try_result_, __LINE__).ok())                     \
            return std::move(COBLOCK_CONCAT(try_result_, __LINE__)).error(); \
    } while (0)

// ASSIGN_OR_RETURN(decl, expr): `decl` is a declaration or lvalue that
// receives the value; the error returns from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr)                                         \
    auto COBLOCK_CONCAT(assign_result_, __LINE__) = (expr);                 \
    if (!COBLOCK_CONCAT(assign_result_, __LINE__).ok())                     \
        return std::move(COBLOCK_CONCAT(assign_result_, __LINE__)).error(); \
    lhs = std::move(COBLOCK_CONCAT(assign_result_, __LINE__)).value()
