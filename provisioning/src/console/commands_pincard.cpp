// pincard issue, pincard block, pincard revoke.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <optional>
#include <system_error>

#include "console/console.hpp"
#include "otpbox/firmware/clock.hpp"
#include "otpbox/firmware/context.hpp"
#include "otpbox/firmware/pincard_service.hpp"
#include "otpbox/firmware/refusal.hpp"
#include "otpbox/firmware/time_format.hpp"
#include "otpbox/provisioning/pincard_pdf.hpp"

namespace otpbox::provisioning::console {

namespace {

namespace fs = std::filesystem;

// A refusal of the services, as a sentence for the technician.
std::string refusal_line(const firmware::Refused& refused) {
    std::string line = refused.what();
    if (!line.empty()) {
        line[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(line[0])));
    }
    return line + "; nothing changed.\n";
}

// The services of otpboxd, run in the console's process on the shared
// database and token. The queue never takes over the daemon's sends.
struct CardDesk {
    explicit CardDesk(Appliance& appliance)
        : queue(appliance.config().database, appliance.secrets().sms_sealer(), {},
                gsm::Recovery::leave_to_sender),
          context{appliance.database(), appliance.secrets(), clock, appliance.config(), queue,
                  appliance.audit()},
          cards(context) {}

    firmware::SystemClock clock;
    gsm::SmsQueue queue;
    firmware::Context context;
    firmware::PincardService cards;
};

PincardPrint print_of(const firmware::IssuedCard& card, const std::string& issued_on) {
    PincardPrint print;
    print.serial = card.serial;
    print.columns = card.layout.columns;
    print.rows = card.layout.rows;
    print.issued_on = issued_on;
    for (const auto& row : card.grid) {
        print.cells.insert(print.cells.end(), row.begin(), row.end());
    }
    return print;
}

void wipe(PincardPrint& print) noexcept {
    for (auto& cell : print.cells) {
        std::fill(cell.begin(), cell.end(), '\0');
    }
}

}  // namespace

void Console::pincard_issue(std::span<const std::string> arguments) {
    if (arguments.size() != 2 || arguments[1].empty()) {
        say("Usage: pincard issue USER PATH, e.g. pincard issue dr.weber /media/usb/card.pdf\n");
        return;
    }
    const auto& user = arguments[0];
    const auto path = fs::absolute(arguments[1]);
    if (!firmware::valid_user_id(user)) {
        say("A user id is 1 to 64 of A-Z a-z 0-9 . _ @ -, not . or .. alone; nothing issued.\n");
        return;
    }
    // The file is made (empty, 0600) before the card: a path that cannot be
    // written, or a name that exists (a symlink too), issues nothing.
    const int placeholder = ::open(
        path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (placeholder < 0) {
        say(path.string() + ": " + std::generic_category().message(errno) +
            "; give a new file in a folder that exists. Nothing issued.\n");
        return;
    }
    ::close(placeholder);
    std::optional<CardDesk> desk;
    firmware::IssuedCard card;
    try {
        desk.emplace(m_appliance);
        card = desk->cards.issue(user, std::string(kActor));
    } catch (...) {
        fs::remove(path);
        throw;
    }
    auto print = print_of(card, firmware::rfc3339(desk->clock.now()).substr(0, 10));
    for (auto& row : card.grid) {
        for (auto& cell : row) {
            std::fill(cell.begin(), cell.end(), '\0');
        }
    }
    try {
        write_pincard_pdf(path, print);
    } catch (const std::exception& error) {
        wipe(print);
        fs::remove(path);
        desk->cards.revoke(card.serial, std::string(kActor));
        say(std::string("The PDF cannot be written (") + error.what() + ");\ncard " + card.serial +
            " was revoked again.\n");
        return;
    }
    wipe(print);
    say("Card " + card.serial + " issued to " + user + " (pending until first use).\n" +
        "Written to " + path.string() + " (mode 0600); print it, then delete the file.\n");
}

void Console::pincard_block(std::span<const std::string> arguments) {
    if (arguments.empty()) {
        say("Usage: pincard block SERIAL [REASON]\n");
        return;
    }
    const auto reason =
        arguments.size() > 1 ? join_words(arguments.subspan(1)) : "blocked at the console";
    try {
        CardDesk desk(m_appliance);
        const auto state = desk.cards.block(arguments[0], reason, std::string(kActor));
        say("Card " + arguments[0] + " is " + state + ".\n");
    } catch (const firmware::Refused& refused) {
        say(refusal_line(refused));
    }
}

void Console::pincard_revoke(std::span<const std::string> arguments) {
    if (arguments.size() != 1) {
        say("Usage: pincard revoke SERIAL\n");
        return;
    }
    // Asked only about a card that exists and can still be revoked.
    auto& database = m_appliance.database();
    const auto current = database.read([&]() -> std::optional<std::string> {
        auto row = database.prepare("SELECT state FROM pincards WHERE serial = ?");
        row.bind(1, arguments[0]);
        return row.step() ? std::optional(row.text(0)) : std::nullopt;
    });
    if (!current) {
        say("No PINCard has this serial; nothing changed.\n");
        return;
    }
    if (*current == "revoked") {
        say("Card " + arguments[0] + " is revoked already; nothing changed.\n");
        return;
    }
    if (!confirm("Revoking is final. Revoke card " + arguments[0] + "?")) {
        say("Nothing changed.\n");
        return;
    }
    try {
        CardDesk desk(m_appliance);
        const auto state = desk.cards.revoke(arguments[0], std::string(kActor));
        say("Card " + arguments[0] + " is " + state + ".\n");
    } catch (const firmware::Refused& refused) {
        say(refusal_line(refused));
    }
}

}  // namespace otpbox::provisioning::console
