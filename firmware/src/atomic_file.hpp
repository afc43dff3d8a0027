#pragma once

// Whole-file writes for files other processes read while they change.

#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace otpbox::firmware::detail {

// Writes text to a new temporary file beside path with exactly this mode,
// syncs it, renames it over path and syncs the folder: a reader sees the old
// file or the whole new one, and after a crash one of the two is there.
// Throws std::system_error naming the file.
void write_file_atomically(const std::filesystem::path& path, std::string_view text, mode_t mode);

}  // namespace otpbox::firmware::detail
