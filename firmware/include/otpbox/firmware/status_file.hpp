#pragma once

// otpboxd's status for the technician console: a small JSON file the daemon
// rewrites every few seconds (pid, provisioning, what is missing, health).
// The console reads it instead of calling the API, which it has no client
// certificate for; a file older than a few polls means the daemon is gone.

#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <optional>

namespace otpbox::firmware {

inline constexpr auto kStatusStale = std::chrono::seconds(10);

// otpboxd.status.json beside the configuration file.
[[nodiscard]] inline std::filesystem::path status_file_for(const std::filesystem::path& config) {
    return config.parent_path() / "otpboxd.status.json";
}

// Written atomically (temporary file, rename), mode 0644; never holds a
// secret or a phone number. Throws std::system_error.
void write_status_file(const std::filesystem::path& file, const boost::json::object& status);

struct DaemonStatus {
    boost::json::object body;  // as written, with "pid" and "written_at"
    std::chrono::seconds age{0};
    bool alive = false;    // the pid names a live process
    bool running = false;  // fresh and the pid alive
};

// nullopt when the file is absent or not the daemon's JSON.
[[nodiscard]] std::optional<DaemonStatus> read_status_file(const std::filesystem::path& file);

}  // namespace otpbox::firmware
