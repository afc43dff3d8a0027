#pragma once

// Whole-file writes that never leave a half-written file behind.

#include <filesystem>
#include <string_view>

#include <sys/types.h>

namespace otpbox::provisioning::detail {

// Writes text to a temporary file with this mode beside path, then renames
// it over path, so a reader sees the old file or the whole new one. The
// mode is set at creation: a private key is never readable by others, even
// for a moment. Throws std::system_error.
void write_file_atomically(const std::filesystem::path& path, std::string_view text, mode_t mode);

// Creates dir (and its parents) and sets its mode. Throws std::system_error.
void make_directory(const std::filesystem::path& dir, mode_t mode);

}  // namespace otpbox::provisioning::detail
