// The clients file the technician console writes: read and written alike,
// refused with the file and entry named, and appended to [[api.clients]].

#include "otpbox/firmware/clients_file.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "otpbox/firmware/config.hpp"
#include "test_support.hpp"

namespace otpbox::firmware {
namespace {

using otpbox::test::read_file;
using otpbox::test::TempDir;
using otpbox::test::write_file;

const std::string kPortal = "CN=otpbox-portal,O=otpbox development";
const std::string kMonitor = "CN=otpbox-monitor,O=otpbox development";

// The message of the ConfigError that reading file gives, or "" when none.
std::string refusal_of(const std::filesystem::path& file) {
    try {
        (void)read_clients_file(file);
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "";
}

TEST(ClientsFile_Read, ListsSubjectsAndRolesInOrder) {
    TempDir dir;
    write_file(dir.path() / "clients.toml",
               "[[clients]]\nsubject = \"" + kMonitor + "\"\nrole = \"monitor\"\n\n" +
                   "[[clients]]\nsubject = \"" + kPortal + "\"\nrole = \"portal\"\n");
    const auto clients = read_clients_file(dir.path() / "clients.toml");
    ASSERT_EQ(clients.size(), 2u);
    EXPECT_EQ(clients[0].subject, kMonitor);
    EXPECT_EQ(clients[0].role, api::Role::monitor);
    EXPECT_EQ(clients[1].subject, kPortal);
    EXPECT_EQ(clients[1].role, api::Role::portal);
}

TEST(ClientsFile_Read, MissingFileMeansNoClients) {
    TempDir dir;
    EXPECT_TRUE(read_clients_file(dir.path() / "absent.toml").empty());
}

TEST(ClientsFile_Read, AFolderIsRefusedNotReadAsEmpty) {
    TempDir dir;
    EXPECT_THROW((void)read_clients_file(dir.path()), ConfigError);
}

// A file that cannot be opened has no line to name (root reads any mode,
// but nobody opens a socket as a file).
TEST(ClientsFile_Read, AFileThatCannotBeOpenedIsNamedWithoutALine) {
    TempDir dir;
    const auto file = dir.path() / "clients.toml";
    const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(file.string().size(), sizeof(address.sun_path));
    std::strcpy(address.sun_path, file.c_str());
    ASSERT_EQ(::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    const auto message = refusal_of(file);
    ::close(listener);
    EXPECT_EQ(message.rfind(file.string() + ": ", 0), 0u) << message;
    EXPECT_EQ(message.find(":0:"), std::string::npos) << message;
}

TEST(ClientsFile_Read, FileWithoutTablesMeansNoClients) {
    TempDir dir;
    write_file(dir.path() / "clients.toml", "# nobody yet\n");
    EXPECT_TRUE(read_clients_file(dir.path() / "clients.toml").empty());
}

struct BadFile {
    const char* text;
    const char* names;  // part of the message that names the place and problem
};

class ClientsFile_Refuses : public ::testing::TestWithParam<BadFile> {};

TEST_P(ClientsFile_Refuses, NamingFileEntryAndProblem) {
    TempDir dir;
    const auto file = dir.path() / "clients.toml";
    write_file(file, GetParam().text);
    const auto message = refusal_of(file);
    ASSERT_FALSE(message.empty()) << "accepted: " << GetParam().text;
    EXPECT_NE(message.find(file.string()), std::string::npos) << message;
    EXPECT_NE(message.find(GetParam().names), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ClientsFile_Refuses,
    ::testing::Values(
        BadFile{"[[clients]]\nsubject = \"CN=x\"\nrole = \"admin\"\n",
                "clients[0].role: role must be \"portal\" or \"monitor\", not \"admin\""},
        BadFile{"[[clients]]\nrole = \"portal\"\n", "clients[0].subject: is missing"},
        BadFile{"[[clients]]\nsubject = \"\"\nrole = \"portal\"\n", "clients[0].subject: is empty"},
        BadFile{"[[clients]]\nsubject = \"CN=x\"\n", "clients[0].role: is missing"},
        BadFile{"[[clients]]\nsubject = 7\nrole = \"portal\"\n",
                "clients[0].subject: must be a string"},
        BadFile{"[[clients]]\nsubject = \"CN=a\"\nrole = \"portal\"\n[[clients]]\nrole = 1\n",
                "clients[1].subject"},
        BadFile{"clients = \"CN=x\"\n", "clients: must be a list of tables"},
        BadFile{"clients = [1, 2]\n", "clients[0]: must be a table"},
        BadFile{"\x01\x02 garbage ]]]\n", ":1:"}));

TEST(ClientsFile_Write, RoundTripsWithMode0644AndNoTemporaryLeft) {
    TempDir dir;
    const auto file = dir.path() / "clients.toml";
    // Quotes and a backslash in a subject must survive TOML's escaping.
    const std::vector<api::AllowedClient> clients = {
        {kMonitor, api::Role::monitor}, {"CN=a \\\"quoted\\\" one,O=x\\2Cy", api::Role::portal}};
    ::umask(077);
    write_clients_file(file, clients);
    ::umask(022);

    const auto back = read_clients_file(file);
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(back[0].subject, clients[0].subject);
    EXPECT_EQ(back[0].role, api::Role::monitor);
    EXPECT_EQ(back[1].subject, clients[1].subject);
    EXPECT_EQ(back[1].role, api::Role::portal);

    struct stat info {};
    ASSERT_EQ(::stat(file.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0644u);
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
        ++entries;
    }
    EXPECT_EQ(entries, 1u);
}

TEST(ClientsFile_Write, ReplacesTheWholeFile) {
    TempDir dir;
    const auto file = dir.path() / "clients.toml";
    write_clients_file(file, {{kPortal, api::Role::portal}, {kMonitor, api::Role::monitor}});
    write_clients_file(file, {{kMonitor, api::Role::monitor}});
    const auto back = read_clients_file(file);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].subject, kMonitor);

    write_clients_file(file, {});
    EXPECT_TRUE(read_clients_file(file).empty());
}

TEST(ClientsFile_Write, RefusesAnEmptySubjectAndLeavesTheFile) {
    TempDir dir;
    const auto file = dir.path() / "clients.toml";
    write_clients_file(file, {{kPortal, api::Role::portal}});
    const auto before = read_file(file);
    EXPECT_THROW(write_clients_file(file, {{"", api::Role::portal}}), std::invalid_argument);
    EXPECT_EQ(read_file(file), before);
}

TEST(ClientsFile_Write, UnwritableFolderIsASystemError) {
    EXPECT_THROW(write_clients_file("/nonexistent/folder/clients.toml", {}), std::system_error);
}

constexpr const char* kConfig = R"toml(
[api]
ca = "pki/ca.pem"
certificate = "pki/server.crt"
key = "pki/server.key"
clients_file = "clients.toml"

[[api.clients]]
subject = "CN=otpbox-portal,O=otpbox development"
role = "portal"

[hsm]
pin_file = "hsm/user.pin"
)toml";

TEST(Config_ClientsFile, EntriesFollowTheConfigsOwnAndThePathIsRelative) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml", kConfig);
    write_clients_file(dir.path() / "clients.toml", {{kMonitor, api::Role::monitor}});
    const auto config = load_config(dir.path() / "otpbox.toml");
    EXPECT_EQ(config.api.clients_file, dir.path() / "clients.toml");
    ASSERT_EQ(config.api.clients.size(), 2u);
    EXPECT_EQ(config.api.clients[0].subject, kPortal);
    EXPECT_EQ(config.api.clients[1].subject, kMonitor);
    EXPECT_EQ(config.api.clients[1].role, api::Role::monitor);
}

TEST(Config_ClientsFile, MissingFileAddsNothing) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml", kConfig);
    EXPECT_EQ(load_config(dir.path() / "otpbox.toml").api.clients.size(), 1u);
}

TEST(Config_ClientsFile, BrokenFileFailsTheConfigNamingTheClientsFile) {
    TempDir dir;
    write_file(dir.path() / "otpbox.toml", kConfig);
    write_file(dir.path() / "clients.toml", "[[clients]]\nsubject = \"CN=x\"\nrole = \"root\"\n");
    try {
        (void)load_config(dir.path() / "otpbox.toml");
        FAIL() << "accepted";
    } catch (const ConfigError& error) {
        EXPECT_NE(std::string(error.what()).find("clients.toml: clients[0].role"),
                  std::string::npos)
            << error.what();
    }
}

}  // namespace
}  // namespace otpbox::firmware
