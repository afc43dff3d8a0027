// OpenSC's pkcs11-tool, a PKCS#11 client no one here wrote, looks at the
// token after provisioning: every key is there with the attributes DESIGN.md
// asks for, and reading a key's value is refused.

#include <gtest/gtest.h>

#include <regex>

#include "otpbox/hsm/hsm.hpp"
#include "otpbox/provisioning/keys.hpp"
#include "otpbox/provisioning/tls_identity.hpp"
#include "test_support.hpp"

namespace {

namespace prov = otpbox::provisioning;
using otpbox::test::run_command;
using otpbox::test::SoftHsmToken;

std::string pkcs11_tool(const SoftHsmToken& token, const std::string& arguments) {
    return run_command("pkcs11-tool --module " + SoftHsmToken::module_path() + " --token-label " +
                       token.label() + " --login --pin " + token.user_pin() + " " + arguments +
                       " 2>&1")
        .output;
}

// The block pkcs11-tool prints for the object of that label.
std::string object_block(const std::string& listing, const std::string& label) {
    const auto at = listing.find("label:      " + label + "\n");
    if (at == std::string::npos) {
        return {};
    }
    // From the start of the object's first line to the start of the next one's.
    const auto line_start = [&](std::size_t pos) { return listing.rfind('\n', pos) + 1; };
    const auto start = line_start(listing.rfind("Object;", at));
    const auto next = listing.find("Object;", at);
    return listing.substr(start,
                          next == std::string::npos ? std::string::npos : line_start(next) - start);
}

TEST(PeerView_Pkcs11Tool, SeesEveryKeySensitiveAndNeverExtractable) {
    SoftHsmToken token;
    otpbox::hsm::HsmConfig config;
    config.module_path = SoftHsmToken::module_path();
    config.token_label = token.label();
    config.pin_file = token.pin_file();
    {
        const auto hsm = otpbox::hsm::Hsm::open(config);
        (void)prov::create_keys(*hsm);
        (void)prov::make_tls_key(*hsm, "otpbox-tls-v1");
    }

    const auto listing = pkcs11_tool(token, "--list-objects");
    for (const auto& key : prov::appliance_keys()) {
        const auto block = object_block(listing, key.label);
        ASSERT_FALSE(block.empty()) << key.label << " missing in:\n" << listing;
        EXPECT_NE(block.find("Secret Key Object"), std::string::npos) << block;
        EXPECT_NE(block.find("Access:     sensitive, always sensitive, never extractable, local"),
                  std::string::npos)
            << block;
    }
    const auto tls = listing.substr(listing.find("Private Key Object"));
    EXPECT_NE(tls.find("otpbox-tls-v1"), std::string::npos) << listing;
    EXPECT_TRUE(std::regex_search(
        tls, std::regex("Private Key Object; EC[^\\n]*\\n(.*\\n)*?\\s+Access:\\s+sensitive, "
                        "always sensitive, never extractable, local")))
        << listing;

    const auto read = pkcs11_tool(token, "--read-object --type secrkey --label otpbox-otp-mac-v1");
    EXPECT_NE(read.find("CKR_ATTRIBUTE_SENSITIVE"), std::string::npos) << read;
    EXPECT_NE(read.find("get CKA_VALUE failed"), std::string::npos) << read;
    const auto private_read =
        pkcs11_tool(token, "--read-object --type privkey --label otpbox-tls-v1");
    EXPECT_EQ(private_read.find("-----BEGIN"), std::string::npos) << private_read;
}

}  // namespace
