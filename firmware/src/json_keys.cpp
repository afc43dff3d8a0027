#include "json_keys.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace otpbox::firmware::detail {

namespace {

namespace json = boost::json;

// A handler for Boost.JSON's basic_parser that builds nothing: it keeps the
// keys of each open object and stops at the first one seen twice.
class KeyChecker {
  public:
    static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
    static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
    static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
    static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

    bool duplicate = false;

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }
    bool on_array_begin(json::error_code&) { return true; }
    bool on_array_end(std::size_t, json::error_code&) { return true; }
    bool on_object_begin(json::error_code&) {
        m_open.emplace_back();
        return true;
    }
    bool on_object_end(std::size_t, json::error_code&) {
        m_open.pop_back();
        return true;
    }
    bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
    bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
        m_key.append(part.data(), part.size());
        return true;
    }
    bool on_key(json::string_view last, std::size_t, json::error_code& error) {
        m_key.append(last.data(), last.size());
        const bool fresh = m_open.back().insert(std::move(m_key)).second;
        m_key.clear();
        if (!fresh) {
            duplicate = true;
            error = json::error::extra_data;  // any error: it ends the parse here
            return false;
        }
        return true;
    }
    bool on_number_part(json::string_view, json::error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
    bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
    bool on_double(double, json::string_view, json::error_code&) { return true; }
    bool on_bool(bool, json::error_code&) { return true; }
    bool on_null(json::error_code&) { return true; }
    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }

  private:
    std::vector<std::set<std::string>> m_open;  // the keys of each object still open
    std::string m_key;
};

}  // namespace

bool has_duplicate_keys(std::string_view text) {
    json::basic_parser<KeyChecker> parser{json::parse_options{}};
    json::error_code error;
    (void)parser.write_some(false, text.data(), text.size(), error);
    return parser.handler().duplicate;
}

}  // namespace otpbox::firmware::detail
