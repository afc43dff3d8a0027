#pragma once

// The printable PINCard a technician hands over when issuing a card at the
// console (`pincard issue USER PATH`): the one time a grid leaves the
// appliance other than in the issuance answer (DESIGN.md, PINCard).

#include <filesystem>
#include <string>
#include <vector>

namespace otpbox::provisioning {

struct PincardPrint {
    std::string serial;
    unsigned columns = 8;            // column letters A, B, ...
    unsigned rows = 8;               // row numbers 1, 2, ...
    std::vector<std::string> cells;  // row-major: cells[row * columns + column], the value of cell
                                     // <letter><row+1>
    std::string issued_on;           // "2026-12-04", printed small
};

// Writes a one-page PDF of credit-card size (ID-1, 85.60 x 53.98 mm) with the serial and the
// grid (column letters on top, row numbers on the left), fit for printing. The file is written
// beside its final name and renamed into place, mode 0600: the card is a secret. Up to 10 x 10
// cells of 4 characters print at a legible size; a grid whose text would print smaller does
// not fit.
//
// Throws std::runtime_error naming the file when the print does not fit (no serial, no rows or
// columns, more than 26 columns, cells.size() != rows * columns, text too small) or cairo fails,
// and std::system_error (one too) when the file cannot be written. No message holds a cell.
void write_pincard_pdf(const std::filesystem::path& file, const PincardPrint& card);

}  // namespace otpbox::provisioning
