#include "otpbox/provisioning/pincard_pdf.hpp"

#include <cairo-pdf.h>
#include <cairo.h>
#include <openssl/crypto.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <new>
#include <stdexcept>
#include <string_view>

#include "file_io.hpp"

namespace otpbox::provisioning {

namespace {

namespace fs = std::filesystem;

// ISO/IEC 7810 ID-1, the size of a bank card, so the card fits a wallet.
constexpr double kPointsPerMillimetre = 72.0 / 25.4;
constexpr double kCardWidth = 85.60 * kPointsPerMillimetre;
constexpr double kCardHeight = 53.98 * kPointsPerMillimetre;

// Printers cannot reach the paper's edge and cutters are off by a millimetre or so.
constexpr double kMargin = 3.0 * kPointsPerMillimetre;
constexpr double kHeaderHeight = 5.5 * kPointsPerMillimetre;

constexpr unsigned kMaxColumns = 26;
constexpr double kSerialFontSize = 9.0;
constexpr double kIssuedOnFontSize = 5.5;
constexpr double kMaxCellFontSize = 10.0;
// Smaller than this a printed 8 and B, or 1 and 7, are too easily mistaken.
constexpr double kMinCellFontSize = 6.0;
// Text takes at most these shares of a cell, so neighbouring values never touch.
constexpr double kCellWidthFill = 0.75;
constexpr double kCellHeightFill = 0.65;
constexpr double kGridLineWidth = 0.4;
// DejaVu's capitals and digits stand this share of the font size above the baseline.
constexpr double kCapHeight = 0.73;

constexpr const char* kValueFont = "DejaVu Sans Mono";
constexpr const char* kLabelFont = "DejaVu Sans";
constexpr mode_t kCardFileMode = S_IRUSR | S_IWUSR;
constexpr std::size_t kExpectedPdfSize = 64 * 1024;

struct SurfaceDestroy {
    void operator()(cairo_surface_t* surface) const noexcept { cairo_surface_destroy(surface); }
};
struct ContextDestroy {
    void operator()(cairo_t* context) const noexcept { cairo_destroy(context); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDestroy>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDestroy>;

// The PDF holds every cell, so its bytes are wiped when freed. Growth is by
// hand because a std::vector that reallocates leaves the old copy in freed memory.
class WipingBuffer {
  public:
    WipingBuffer() : m_bytes(kExpectedPdfSize) {}
    ~WipingBuffer() { OPENSSL_cleanse(m_bytes.data(), m_bytes.size()); }
    WipingBuffer(const WipingBuffer&) = delete;
    WipingBuffer& operator=(const WipingBuffer&) = delete;

    void append(const unsigned char* data, std::size_t length) {
        if (m_size + length > m_bytes.size()) {
            grow(m_size + length);
        }
        std::copy_n(data, length, m_bytes.data() + m_size);
        m_size += length;
    }
    [[nodiscard]] std::string_view view() const {
        return {reinterpret_cast<const char*>(m_bytes.data()), m_size};
    }

  private:
    void grow(std::size_t needed) {
        std::vector<unsigned char> larger(std::max(needed, 2 * m_bytes.size()));
        std::copy_n(m_bytes.data(), m_size, larger.data());
        OPENSSL_cleanse(m_bytes.data(), m_bytes.size());
        m_bytes.swap(larger);
    }

    std::vector<unsigned char> m_bytes;
    std::size_t m_size = 0;
};

// Where the grid goes on the page and how large its text prints.
struct GridLayout {
    double left = 0;
    double top = 0;
    double cell_width = 0;
    double cell_height = 0;
    double font_size = 0;
};

[[noreturn]] void throw_unfit(const fs::path& file, const std::string& reason) {
    throw std::runtime_error("cannot print a PINCard to " + file.string() + ": " + reason);
}

void check_cairo(cairo_status_t status, const fs::path& file) {
    if (status != CAIRO_STATUS_SUCCESS) {
        throw_unfit(file, std::string("cairo: ") + cairo_status_to_string(status));
    }
}

void check_fits(const fs::path& file, const PincardPrint& card) {
    if (card.serial.empty()) {
        throw_unfit(file, "the card has no serial");
    }
    if (card.columns == 0 || card.rows == 0) {
        throw_unfit(file, "the grid has no cells");
    }
    if (card.columns > kMaxColumns) {
        throw_unfit(file, std::to_string(card.columns) + " columns are more than the " +
                              std::to_string(kMaxColumns) + " letters");
    }
    const std::size_t expected = std::size_t{card.rows} * card.columns;
    if (card.cells.size() != expected) {
        throw_unfit(file, std::to_string(card.columns) + " x " + std::to_string(card.rows) +
                              " cells expected, " + std::to_string(card.cells.size()) + " given");
    }
}

// cairo calls this from C, so nothing may escape it.
cairo_status_t append_pdf_bytes(void* closure, const unsigned char* data,
                                unsigned int length) noexcept {
    try {
        static_cast<WipingBuffer*>(closure)->append(data, length);
        return CAIRO_STATUS_SUCCESS;
    } catch (const std::bad_alloc&) {
        return CAIRO_STATUS_NO_MEMORY;
    }
}

std::string column_letter(unsigned column) {
    return std::string(1, static_cast<char>('A' + column));
}

std::string row_number(unsigned row) {
    return std::to_string(row + 1);
}

double text_advance(cairo_t* context, const std::string& text) {
    cairo_text_extents_t extents{};
    cairo_text_extents(context, text.c_str(), &extents);
    return extents.x_advance;
}

// The widest value or label at a font size of 1; the grid is sized for it.
double widest_grid_text(cairo_t* context, const PincardPrint& card) {
    cairo_set_font_size(context, 1.0);
    cairo_select_font_face(context, kValueFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    double widest = 0;
    for (const auto& value : card.cells) {
        widest = std::max(widest, text_advance(context, value));
    }
    cairo_select_font_face(context, kLabelFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    widest = std::max(widest, text_advance(context, row_number(card.rows - 1)));
    for (unsigned column = 0; column < card.columns; ++column) {
        widest = std::max(widest, text_advance(context, column_letter(column)));
    }
    return widest;
}

// One column of row numbers and one row of letters frame the cells.
GridLayout lay_out_grid(cairo_t* context, const PincardPrint& card) {
    GridLayout layout;
    layout.left = kMargin;
    layout.top = kMargin + kHeaderHeight;
    layout.cell_width = (kCardWidth - 2 * kMargin) / (card.columns + 1);
    layout.cell_height = (kCardHeight - layout.top - kMargin) / (card.rows + 1);

    const double widest = widest_grid_text(context, card);
    layout.font_size = std::min(kMaxCellFontSize, kCellHeightFill * layout.cell_height);
    if (widest > 0) {
        layout.font_size = std::min(layout.font_size, kCellWidthFill * layout.cell_width / widest);
    }
    return layout;
}

// Centres on the advance rather than the ink, so every digit of a monospaced
// value sits in the same place, and on the height of a digit, so rows line up
// whatever their letters.
void show_centred(cairo_t* context, const std::string& text, double centre_x, double centre_y) {
    cairo_text_extents_t digit{};
    cairo_text_extents(context, "0", &digit);
    const double width = text_advance(context, text);
    cairo_move_to(context, centre_x - width / 2, centre_y - digit.y_bearing / 2);
    cairo_show_text(context, text.c_str());
}

void draw_header(cairo_t* context, const PincardPrint& card) {
    const double baseline = kMargin + kSerialFontSize * kCapHeight;
    double issued_width = 0;
    if (!card.issued_on.empty()) {
        cairo_select_font_face(context, kLabelFont, CAIRO_FONT_SLANT_NORMAL,
                               CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(context, kIssuedOnFontSize);
        issued_width = text_advance(context, card.issued_on);
        cairo_move_to(context, kCardWidth - kMargin - issued_width, baseline);
        cairo_show_text(context, card.issued_on.c_str());
    }

    // A long serial shrinks rather than run into the date or off the card.
    cairo_select_font_face(context, kLabelFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(context, 1.0);
    const double room = kCardWidth - 2 * kMargin - issued_width - kIssuedOnFontSize;
    const double serial_width = std::max(text_advance(context, card.serial), 1e-6);
    cairo_set_font_size(context, std::min(kSerialFontSize, room / serial_width));
    cairo_move_to(context, kMargin, baseline);
    cairo_show_text(context, card.serial.c_str());
}

// Shading the labels and every other row guides the eye along a row of a small card.
void draw_shading(cairo_t* context, const PincardPrint& card, const GridLayout& layout) {
    const double width = layout.cell_width * (card.columns + 1);
    const double height = layout.cell_height * (card.rows + 1);
    cairo_set_source_rgb(context, 0.82, 0.82, 0.82);
    cairo_rectangle(context, layout.left, layout.top, width, layout.cell_height);
    cairo_rectangle(context, layout.left, layout.top, layout.cell_width, height);
    cairo_fill(context);

    cairo_set_source_rgb(context, 0.93, 0.93, 0.93);
    for (unsigned row = 1; row < card.rows; row += 2) {
        const double y = layout.top + layout.cell_height * (row + 1);
        cairo_rectangle(context, layout.left + layout.cell_width, y, width - layout.cell_width,
                        layout.cell_height);
    }
    cairo_fill(context);
}

void draw_grid_lines(cairo_t* context, const PincardPrint& card, const GridLayout& layout) {
    const double right = layout.left + layout.cell_width * (card.columns + 1);
    const double bottom = layout.top + layout.cell_height * (card.rows + 1);
    for (unsigned column = 0; column <= card.columns + 1; ++column) {
        const double x = layout.left + layout.cell_width * column;
        cairo_move_to(context, x, layout.top);
        cairo_line_to(context, x, bottom);
    }
    for (unsigned row = 0; row <= card.rows + 1; ++row) {
        const double y = layout.top + layout.cell_height * row;
        cairo_move_to(context, layout.left, y);
        cairo_line_to(context, right, y);
    }
    cairo_set_source_rgb(context, 0.45, 0.45, 0.45);
    cairo_set_line_width(context, kGridLineWidth);
    cairo_stroke(context);
}

void draw_labels(cairo_t* context, const PincardPrint& card, const GridLayout& layout) {
    cairo_select_font_face(context, kLabelFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(context, layout.font_size);
    cairo_set_source_rgb(context, 0, 0, 0);
    const double label_y = layout.top + layout.cell_height / 2;
    for (unsigned column = 0; column < card.columns; ++column) {
        const double x = layout.left + layout.cell_width * (column + 1.5);
        show_centred(context, column_letter(column), x, label_y);
    }
    const double label_x = layout.left + layout.cell_width / 2;
    for (unsigned row = 0; row < card.rows; ++row) {
        const double y = layout.top + layout.cell_height * (row + 1.5);
        show_centred(context, row_number(row), label_x, y);
    }
}

void draw_values(cairo_t* context, const PincardPrint& card, const GridLayout& layout) {
    cairo_select_font_face(context, kValueFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(context, layout.font_size);
    cairo_set_source_rgb(context, 0, 0, 0);
    for (unsigned row = 0; row < card.rows; ++row) {
        const double y = layout.top + layout.cell_height * (row + 1.5);
        for (unsigned column = 0; column < card.columns; ++column) {
            const double x = layout.left + layout.cell_width * (column + 1.5);
            show_centred(context, card.cells[row * card.columns + column], x, y);
        }
    }
}

void draw_card(cairo_t* context, const PincardPrint& card, const GridLayout& layout) {
    draw_header(context, card);
    draw_shading(context, card, layout);
    draw_grid_lines(context, card, layout);
    draw_labels(context, card, layout);
    draw_values(context, card, layout);
    cairo_show_page(context);
}

void render_pdf(const fs::path& file, const PincardPrint& card, WipingBuffer& pdf) {
    SurfacePtr surface(
        cairo_pdf_surface_create_for_stream(&append_pdf_bytes, &pdf, kCardWidth, kCardHeight));
    check_cairo(cairo_surface_status(surface.get()), file);
    const std::string title = "PINCard " + card.serial;
    cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE, title.c_str());

    ContextPtr context(cairo_create(surface.get()));
    check_cairo(cairo_status(context.get()), file);
    const GridLayout layout = lay_out_grid(context.get(), card);
    if (layout.font_size < kMinCellFontSize) {
        throw_unfit(file, "the grid's text would print smaller than " +
                              std::to_string(static_cast<int>(kMinCellFontSize)) + " pt");
    }
    draw_card(context.get(), card, layout);
    check_cairo(cairo_status(context.get()), file);

    context.reset();
    cairo_surface_finish(surface.get());
    check_cairo(cairo_surface_status(surface.get()), file);
}

}  // namespace

void write_pincard_pdf(const fs::path& file, const PincardPrint& card) {
    check_fits(file, card);
    WipingBuffer pdf;
    render_pdf(file, card, pdf);
    detail::write_file_atomically(file, pdf.view(), kCardFileMode);
}

}  // namespace otpbox::provisioning
