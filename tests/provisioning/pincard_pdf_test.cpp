#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "otpbox/provisioning/pincard_pdf.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace prov = otpbox::provisioning;
using otpbox::test::run_command;
using otpbox::test::TempDir;

using Words = std::vector<std::string>;

// ID-1 in points (1 pt = 25.4 / 72 mm).
constexpr double kCardWidthPoints = 85.60 * 72 / 25.4;
constexpr double kCardHeightPoints = 53.98 * 72 / 25.4;

// Distinct values, so a cell printed in the wrong place cannot pass for the right one.
std::vector<std::string> distinct_values(std::size_t count, unsigned length) {
    std::mt19937 generator(20261204);
    std::vector<std::string> values;
    const std::string alphabet = "0123456789ACEFHJKLMNPRTUVWXY";
    std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
    while (values.size() < count) {
        std::string value;
        for (unsigned index = 0; index < length; ++index) {
            value.push_back(alphabet[pick(generator)]);
        }
        if (std::find(values.begin(), values.end(), value) == values.end()) {
            values.push_back(value);
        }
    }
    return values;
}

// The default card: 8 x 8 cells of two digits with leading zeros kept.
std::vector<std::string> two_digit_values(std::size_t count) {
    std::vector<int> numbers(100);
    std::iota(numbers.begin(), numbers.end(), 0);
    std::shuffle(numbers.begin(), numbers.end(), std::mt19937(4711));
    std::vector<std::string> values;
    for (std::size_t index = 0; index < count; ++index) {
        char text[3];
        std::snprintf(text, sizeof text, "%02d", numbers[index]);
        values.emplace_back(text);
    }
    return values;
}

prov::PincardPrint make_card(unsigned columns, unsigned rows, std::vector<std::string> cells) {
    prov::PincardPrint card;
    card.serial = "PC-7Q4M-2K9X";
    card.columns = columns;
    card.rows = rows;
    card.cells = std::move(cells);
    card.issued_on = "2026-12-04";
    return card;
}

std::vector<Words> text_lines(const fs::path& pdf) {
    const auto result = run_command("pdftotext -layout '" + pdf.string() + "' - 2>&1");
    EXPECT_EQ(result.status, 0) << result.output;
    std::vector<Words> lines;
    std::istringstream text(result.output);
    for (std::string line; std::getline(text, line);) {
        std::istringstream words_of_line(line);
        Words words;
        for (std::string word; words_of_line >> word;) {
            words.push_back(word);
        }
        lines.push_back(std::move(words));
    }
    return lines;
}

bool has_line(const std::vector<Words>& lines, const Words& expected) {
    return std::find(lines.begin(), lines.end(), expected) != lines.end();
}

bool mentions(const std::vector<Words>& lines, const std::string& word) {
    return std::any_of(lines.begin(), lines.end(), [&](const Words& line) {
        return std::find(line.begin(), line.end(), word) != line.end();
    });
}

// The grid as pdftotext should lay it out: the letters, then each row's
// number followed by its values in column order.
void expect_grid(const std::vector<Words>& lines, const prov::PincardPrint& card) {
    Words header;
    for (unsigned column = 0; column < card.columns; ++column) {
        header.emplace_back(1, static_cast<char>('A' + column));
    }
    EXPECT_TRUE(has_line(lines, header)) << "no header line of column letters";
    for (unsigned row = 0; row < card.rows; ++row) {
        Words expected{std::to_string(row + 1)};
        const auto first = card.cells.begin() + row * card.columns;
        expected.insert(expected.end(), first, first + card.columns);
        EXPECT_TRUE(has_line(lines, expected)) << "row " << row + 1 << " is not in place";
    }
}

// The value of a "Name:   value" line of pdfinfo's output, or "" when it has none.
std::string pdfinfo_field(const std::string& output, const std::string& name) {
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind(name + ":", 0) == 0) {
            const auto value = line.find_first_not_of(' ', name.size() + 1);
            return value == std::string::npos ? "" : line.substr(value);
        }
    }
    return {};
}

std::string error_of(const fs::path& file, const prov::PincardPrint& card) {
    try {
        prov::write_pincard_pdf(file, card);
    } catch (const std::runtime_error& error) {
        return error.what();
    }
    return {};
}

}  // namespace

TEST(PincardPdf_Default, HoldsSerialAndEveryCellInPlace) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    const auto card = make_card(8, 8, two_digit_values(64));
    prov::write_pincard_pdf(file, card);

    const auto lines = text_lines(file);
    EXPECT_TRUE(mentions(lines, card.serial));
    EXPECT_TRUE(mentions(lines, card.issued_on));
    expect_grid(lines, card);
}

TEST(PincardPdf_FourByThree, HoldsEveryCellInPlace) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    const auto card = make_card(4, 3, distinct_values(12, 4));
    prov::write_pincard_pdf(file, card);

    const auto lines = text_lines(file);
    EXPECT_TRUE(mentions(lines, card.serial));
    expect_grid(lines, card);
}

TEST(PincardPdf_TenByTenOfFour, FitsEveryCellInPlace) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    const auto card = make_card(10, 10, distinct_values(100, 4));
    prov::write_pincard_pdf(file, card);

    expect_grid(text_lines(file), card);
}

TEST(PincardPdf_Page, IsCreditCardSize) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    prov::write_pincard_pdf(file, make_card(8, 8, two_digit_values(64)));

    const auto info = run_command("pdfinfo '" + file.string() + "' 2>&1");
    ASSERT_EQ(info.status, 0) << info.output;
    EXPECT_EQ(pdfinfo_field(info.output, "Pages"), "1") << info.output;
    double width = 0;
    double height = 0;
    const auto size = pdfinfo_field(info.output, "Page size");
    ASSERT_EQ(std::sscanf(size.c_str(), "%lf x %lf pts", &width, &height), 2) << info.output;
    EXPECT_NEAR(width, kCardWidthPoints, 0.5);
    EXPECT_NEAR(height, kCardHeightPoints, 0.5);
}

TEST(PincardPdf_File, IsReadableByTheOwnerOnly) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    prov::write_pincard_pdf(file, make_card(8, 8, two_digit_values(64)));

    struct stat info {};
    ASSERT_EQ(::stat(file.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST(PincardPdf_File, ReplacesAnEarlierCard) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    prov::write_pincard_pdf(file, make_card(8, 8, two_digit_values(64)));
    const auto second = make_card(4, 3, distinct_values(12, 4));
    prov::write_pincard_pdf(file, second);

    expect_grid(text_lines(file), second);
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(PincardPdf_WrongCellCount, ThrowsNamingTheFileAndWritesNothing) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    for (const std::size_t count : {std::size_t{0}, std::size_t{63}, std::size_t{65}}) {
        const auto message = error_of(file, make_card(8, 8, two_digit_values(count)));
        EXPECT_NE(message.find(file.string()), std::string::npos) << count << ": " << message;
    }
    EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(PincardPdf_Unfit, ThrowsForTooManyColumnsNoSerialOrNoGrid) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    auto no_serial = make_card(8, 8, two_digit_values(64));
    no_serial.serial.clear();

    EXPECT_NE(error_of(file, make_card(27, 1, distinct_values(27, 2))), "");
    EXPECT_NE(error_of(file, no_serial), "");
    EXPECT_NE(error_of(file, make_card(0, 0, {})), "");
    EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(PincardPdf_Unfit, ThrowsWhenTheTextWouldBeTooSmall) {
    TempDir dir;
    const auto file = dir.path() / "card.pdf";
    EXPECT_NE(error_of(file, make_card(26, 26, distinct_values(26 * 26, 4))), "");
    EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(PincardPdf_UnwritablePath, ThrowsNamingTheFile) {
    TempDir dir;
    const auto file = dir.path() / "missing" / "card.pdf";
    const auto message = error_of(file, make_card(8, 8, two_digit_values(64)));
    EXPECT_NE(message.find(file.string()), std::string::npos) << message;
}

TEST(PincardPdf_Errors, NeverHoldACell) {
    TempDir dir;
    auto card = make_card(4, 3, distinct_values(13, 4));
    const auto unwritable = dir.path() / "missing" / "card.pdf";
    const auto wrong_count = dir.path() / "card.pdf";
    for (const auto& file : {wrong_count, unwritable}) {
        // The path is random and may hold four characters that look like a value.
        auto message = error_of(file, card);
        ASSERT_NE(message.find(file.string()), std::string::npos) << message;
        message.erase(message.find(file.string()), file.string().size());
        for (const auto& value : card.cells) {
            EXPECT_EQ(message.find(value), std::string::npos) << message;
        }
        card.cells.pop_back();
    }
}
