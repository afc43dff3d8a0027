#include <sys/stat.h>

#include <fstream>
#include <iterator>

#include "otpbox/hsm/error.hpp"
#include "otpbox/hsm/hsm.hpp"

namespace otpbox::hsm {

SecureBytes read_pin_file(const std::filesystem::path& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        throw HsmError(Fault::config, "cannot read the PIN file " + path.string());
    }
    if ((info.st_mode & 077) != 0) {
        throw HsmError(Fault::config, "the PIN file " + path.string() +
                                          " may be read or written by others (chmod 600 it)");
    }
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
        text.pop_back();
    }
    SecureBytes pin(text);
    std::fill(text.begin(), text.end(), '\0');
    if (pin.empty()) {
        throw HsmError(Fault::config, "the PIN file " + path.string() + " is empty");
    }
    return pin;
}

}  // namespace otpbox::hsm
