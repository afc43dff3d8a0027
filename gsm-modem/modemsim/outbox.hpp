#pragma once

// The simulator's record of every message it "sent": one JSON object a
// line, each written whole, flushed and fsync'd before +CMGS is answered.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace otpbox::modemsim {

struct SentMessage {
    std::string to;
    std::string text;
    std::vector<std::string> pdus;  // each part's hex as received, in sequence order
    std::chrono::system_clock::time_point at;
};

// Opens the file for each line, so that a reader who moves or deletes the
// outbox (a test, a demo script) finds the next message in a new file.
class Outbox {
  public:
    // Creates the file when missing; throws std::system_error.
    explicit Outbox(std::filesystem::path path);

    // Throws std::system_error when the line cannot be made durable.
    void append(const SentMessage& message) const;

  private:
    std::filesystem::path m_path;
};

// {"to": ..., "text": ..., "parts": N, "pdu": [...], "at": "...Z"}
[[nodiscard]] std::string outbox_line(const SentMessage& message);

}  // namespace otpbox::modemsim
