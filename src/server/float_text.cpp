#include "float_text.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace embd::server {
namespace {

constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Digits of n (Dragonbox's significand of a float has at most 9).
int count_digits(std::uint32_t n) {
  static constexpr std::uint32_t kPowers[] = {1,      10,      100,      1000,     10000,
                                              100000, 1000000, 10000000, 100000000, 1000000000};
  // bit_width * log10(2) is the digit count or one more; one comparison settles it.
  const int guess = (std::bit_width(n) * 1233) >> 12;
  return guess + (n >= kPowers[guess] ? 1 : 0);
}

// The eight decimal digits of `n` (< 10^8) as ASCII, most significant first in memory, computed
// in one register (SWAR): split into two 4-digit halves, each into two 2-digit pairs, each pair
// into two digits. Stores of whole words also avoid re-reading bytes just stored.
std::uint64_t eight_digits(std::uint32_t n) {
  const std::uint64_t halves = (n / 10000) | (static_cast<std::uint64_t>(n % 10000) << 32);
  const std::uint64_t hundreds = ((halves * 10486) >> 20) & 0x0000007F0000007FULL;  // v / 100
  const std::uint64_t pairs = hundreds | ((halves - hundreds * 100) << 16);
  const std::uint64_t tens = ((pairs * 103) >> 10) & 0x000F000F000F000FULL;  // u / 10
  const std::uint64_t digits = tens | ((pairs - tens * 10) << 8);
  return digits + 0x3030303030303030ULL;
}

// fmt's Dragonbox, called directly: fmt's public formatting reaches it through a general path
// that costs as much as std::to_chars. fmt::detail is internal, but this entry point is the one
// fmt's own float formatting uses (fmt 9, as Debian 12 ships it).
using Decimal = fmt::detail::dragonbox::decimal_fp<float>;

// Dragonbox is defined for finite non-zero values; zero, infinities and NaN get a stand-in that
// write_decimal never reads.
Decimal shortest_decimal(float value) {
  const bool stand_in = value == 0.0f || !std::isfinite(value);
  return fmt::detail::dragonbox::to_decimal(stand_in ? 1.0f : std::fabs(value));
}

// Writes `value` given its shortest decimal (from shortest_decimal).
char* write_decimal(float value, const Decimal& decimal, char* out) {
  if (value == 0.0f) {
    if (std::signbit(value)) *out++ = '-';
    *out++ = '0';
    return out;
  }
  // Signs are random in an embedding: a branch on them would mispredict half the time.
  *out = '-';
  out += std::signbit(value) ? 1 : 0;
  value = std::fabs(value);
  const std::uint32_t significand = decimal.significand;
  const int exponent = decimal.exponent;  // value = significand * 10^exponent
  const int digits = count_digits(significand);
  const int point = digits + exponent;  // digits before the decimal point (may be <= 0)

  // std::to_chars picks the shorter of fixed and scientific, fixed on a tie. Scientific is
  // d[.ddd]e±XX: a float's decimal exponent always fits in two digits.
  const int scientific_length = digits + (digits > 1 ? 1 : 0) + 4;
  const int fixed_length = exponent >= 0 ? point : (point > 0 ? digits + 1 : 2 - exponent);
  if (exponent > 0 && fixed_length <= scientific_length) {
    // A whole number written out in fixed notation: rare for embeddings, and std::to_chars's
    // choice of trailing digits there is its own, so let it write them.
    auto [end, ec] = std::to_chars(out, out + kFloatTextRoom, value);
    return ec == std::errc() ? end : out;
  }

  // Left-align the digits in nine places (trailing zeros past the end are scratch): the first
  // digit and a word of eight more, stored whole; the end pointer says how many count.
  static constexpr std::uint32_t kScale[] = {1, 100000000, 10000000, 1000000, 100000,
                                             10000, 1000, 100, 10, 1};
  const std::uint32_t aligned = significand * kScale[digits];
  const char lead = static_cast<char>('0' + aligned / 100000000);
  const std::uint64_t rest = eight_digits(aligned % 100000000);
  if (fixed_length <= scientific_length) {
    if (point <= 0) {  // 0.00ddd: fixed wins only while the zeros are few (-point <= 4)
      std::memcpy(out, "0.000000", 8);
      out[2 - point] = lead;
      std::memcpy(out + 3 - point, &rest, 8);
      return out + 2 - point + digits;
    }
    char text[16];
    text[0] = lead;
    std::memcpy(text + 1, &rest, 8);
    std::memcpy(out, text, static_cast<std::size_t>(point));
    if (exponent == 0) return out + digits;
    out[point] = '.';
    std::memcpy(out + point + 1, text + point, static_cast<std::size_t>(digits - point));
    return out + digits + 1;
  }
  out[0] = lead;
  out[1] = '.';
  std::memcpy(out + 2, &rest, 8);
  out += digits > 1 ? digits + 1 : 1;
  const int scientific_exponent = point - 1;
  const int magnitude = scientific_exponent < 0 ? -scientific_exponent : scientific_exponent;
  out[0] = 'e';
  out[1] = scientific_exponent < 0 ? '-' : '+';
  std::memcpy(out + 2, kTwoDigits + magnitude * 2, 2);
  return out + 4;
}

}  // namespace

char* write_shortest_float(float value, char* out) {
  return write_decimal(value, shortest_decimal(value), out);
}

char* write_float_list(std::span<const float> values, char* out) {
  // Decimals for a block first, then the text: the block's Dragonbox runs do not wait for the
  // end pointer of the text before them.
  constexpr std::size_t kBlock = 8;
  Decimal decimals[kBlock];
  for (std::size_t begin = 0; begin < values.size(); begin += kBlock) {
    const std::size_t count = std::min(kBlock, values.size() - begin);
    for (std::size_t k = 0; k < count; ++k) decimals[k] = shortest_decimal(values[begin + k]);
    for (std::size_t k = 0; k < count; ++k) {
      if (begin + k) *out++ = ',';
      const float value = values[begin + k];
      if (std::isfinite(value)) {
        out = write_decimal(value, decimals[k], out);
      } else {
        std::memcpy(out, "null", 4);
        out += 4;
      }
    }
  }
  return out;
}

}  // namespace embd::server
