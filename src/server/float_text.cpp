#include "float_text.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace embd::server {
namespace {

constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Digits of n (a float's shortest significand has at most 9).
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

// A float's shortest decimal: value = significand * 10^exponent, with the fewest digits that read
// back as the same float (the closest such decimal; ties to even), no trailing zeros.
struct Decimal {
  std::uint32_t significand = 0;
  int exponent = 0;
};

// Schubfach (R. Giulietti, "The Schubfach way to render doubles", 2020; the float variant as in
// the JDK's FloatToDecimal). Chosen over Dragonbox (fmt's, used here before) because its choice
// between the candidates can be written without branches: on real embeddings, where every row
// is new, Dragonbox's branches mispredict (1.6x the time of one row printed over and over), and
// the branch-free form prints 24-27% faster (BENCHMARKS.md, session 15). Checked against
// std::to_chars for every positive float (FloatText.AllFloatsMatchToChars with
// EMBD_FLOAT_TEXT_EXHAUSTIVE=1); a sign is one character in front.

// floor(e * log10(2)), floor(log10(3/4 * 2^e)) (the narrower interval of a power of two) and
// floor(e * log2(10)), exact for the exponents a float has.
constexpr int floor_log10_pow2(int e) { return static_cast<int>((e * 661971961083LL) >> 41); }
constexpr int floor_log10_three_quarters_pow2(int e) {
  return static_cast<int>((e * 661971961083LL - 274743187321LL) >> 41);
}
constexpr int floor_log2_pow10(int e) { return static_cast<int>((e * 913124641741LL) >> 38); }

// g1(e) for e = -31 .. 45: the top 63 bits of floor(10^e * 2^(125 - floor_log2_pow10(e))) + 1
// (printed by scripts/tools/float_pow10_table.py).
constexpr std::uint64_t kPow10[] = {
    0x40E7599625A1FE7A, 0x51212FFBAF0A7E18, 0x65697BFA9ACD1D9F,
    0x7EC3DAF941806506, 0x4F3A68DBC8F03F24, 0x63090312BB2C4EED,
    0x7BCB43D769F762A8, 0x4D5F0A66A23A9DA9, 0x60B6CD004AC94513,
    0x78E480405D7B9658, 0x4B8ED0283A6D3DF7, 0x5E72843249088D75,
    0x760F253EDB4AB0D2, 0x49C97747490EAE83, 0x5C3BD5191B525A24,
    0x734ACA5F6226F0AD, 0x480EBE7B9D58566C, 0x5A126E1A84AE6C07,
    0x709709A125DA0709, 0x465E6604B7A84465, 0x57F5FF85E592557F,
    0x6DF37F675EF6EADF, 0x44B82FA09B5A52CB, 0x55E63B88C230E77E,
    0x6B5FCA6AF2BD215E, 0x431BDE82D7B634DA, 0x53E2D6238DA3C211,
    0x68DB8BAC710CB295, 0x4189374BC6A7EF9D, 0x51EB851EB851EB85,
    0x6666666666666666, 0x4000000000000000, 0x5000000000000000,
    0x6400000000000000, 0x7D00000000000000, 0x4E20000000000000,
    0x61A8000000000000, 0x7A12000000000000, 0x4C4B400000000000,
    0x5F5E100000000000, 0x7735940000000000, 0x4A817C8000000000,
    0x5D21DBA000000000, 0x746A528800000000, 0x48C2739500000000,
    0x5AF3107A40000000, 0x71AFD498D0000000, 0x470DE4DF82000000,
    0x58D15E1762800000, 0x6F05B59D3B200000, 0x4563918244F40000,
    0x56BC75E2D6310000, 0x6C6B935B8BBD4000, 0x43C33C1937564800,
    0x54B40B1F852BDA00, 0x69E10DE76676D080, 0x422CA8B0A00A4250,
    0x52B7D2DCC80CD2E4, 0x6765C793FA10079D, 0x409F9CBC7C4A04C2,
    0x50C783EB9B5C85F2, 0x64F964E68233A76F, 0x7E37BE2022C0914B,
    0x4EE2D6D415B85ACE, 0x629B8C891B267182, 0x7B426FAB61F00DE3,
    0x4D0985CB1D3608AE, 0x604BE73DE4838AD9, 0x785EE10D5DA46D90,
    0x4B3B4CA85A86C47A, 0x5E0A1FD271287598, 0x758CA7C70D7292FE,
    0x4977E8DC68679BDF, 0x5BD5E313828182D6, 0x72CB5BD86321E38C,
    0x47BF19673DF52E37, 0x59AEDFC10D7279C5};
constexpr int kPow10MinExponent = -31;

// The paper's r_o': the 64 x 64-bit product's top word shifted to 32 bits, odd when any bit
// shifted out was set (the round-to-odd that keeps interval ends exact enough).
std::uint32_t round_to_odd(std::uint64_t g, std::uint64_t cp) {
  __extension__ using Product = unsigned __int128;  // GCC and Clang have it on 64-bit targets
  const std::uint64_t high = static_cast<std::uint64_t>((static_cast<Product>(g) * cp) >> 64);
  return static_cast<std::uint32_t>((high >> 31) | (((high & 0xFFFFFFFFu) + 0xFFFFFFFFu) >> 32));
}

// The shortest decimal of c * 2^q (a positive finite float: c < 2^24, -149 <= q <= 104).
Decimal schubfach(std::uint32_t c, int q) {
  constexpr std::uint32_t kHiddenBit = 1u << 23;
  constexpr int kMinExponent = -149;
  const std::uint32_t odd = c & 1u;  // an odd significand's interval excludes its ends
  const std::uint64_t cb = std::uint64_t{c} << 2;
  const std::uint64_t cbr = cb + 2;
  // A power of two has a closer neighbour below: its interval is narrower on that side.
  const bool irregular = c == kHiddenBit && q != kMinExponent;
  const std::uint64_t cbl = irregular ? cb - 1 : cb - 2;
  const int k = irregular ? floor_log10_three_quarters_pow2(q) : floor_log10_pow2(q);
  const int h = q + floor_log2_pow10(-k) + 33;
  const std::uint64_t g = kPow10[-k - kPow10MinExponent] + 1;
  // The value and its rounding interval's ends, scaled by 10^-k, times 4.
  const std::uint32_t vb = round_to_odd(g, cb << h);
  const std::uint32_t vbl = round_to_odd(g, cbl << h) + odd;
  const std::uint32_t vbr = round_to_odd(g, cbr << h) - odd;

  // Every choice below is arithmetic on 0/1 values, so that the compiler emits no branch for it
  // (it turns ?: and && on these into jumps).
  const std::uint32_t s = vb >> 2;
  // One digit fewer: s' = floor(s / 10), and the candidates 10 s' and 10 (s' + 1); at most one
  // lies in the interval. Only the smallest subnormals have s < 10: one digit, nothing to
  // shorten (and s' = 0 is no candidate).
  const std::uint32_t sp = static_cast<std::uint32_t>((std::uint64_t{s} * 1717986919u) >> 34);
  const std::uint32_t up_in = vbl <= (sp * 10) << 2;
  const std::uint32_t wp_in = ((sp + 1) * 10) << 2 <= vbr;
  const std::uint32_t shorter = static_cast<std::uint32_t>(s >= 10) & (up_in ^ wp_in);
  // All digits: s or t = s + 1, whichever lies in the interval, the closer when both do (the
  // even one on a tie).
  const std::uint32_t u_in = vbl <= s << 2;
  const std::uint32_t w_in = (s + 1) << 2 <= vbr;
  const std::int64_t distance = static_cast<std::int64_t>(vb) - 4 * static_cast<std::int64_t>(s) - 2;
  const std::uint32_t closer_s = static_cast<std::uint32_t>(distance < 0) |
                                 (static_cast<std::uint32_t>(distance == 0) & ~s & 1u);
  const std::uint32_t pick_s = ((u_in ^ w_in) & u_in) | (~(u_in ^ w_in) & closer_s & 1u);
  const std::uint32_t short_value = sp + (up_in ^ 1u);
  const std::uint32_t long_value = s + (pick_s ^ 1u);
  Decimal d;
  d.significand = long_value + ((short_value - long_value) & (0u - shorter));
  d.exponent = k + static_cast<int>(shorter);
  // Shorter still when more zeros trail (rare for embedding values: the loop seldom runs).
  while (d.significand % 10 == 0) {
    d.significand /= 10;
    ++d.exponent;
  }
  return d;
}

// The shortest decimal of |value|; zero, infinities and NaN get a stand-in that write_decimal
// never reads.
Decimal shortest_decimal(float value) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value) & 0x7FFFFFFFu;
  if (bits == 0 || bits >= 0x7F800000u) bits = 0x3F800000u;  // 1.0f
  const std::uint32_t fraction = bits & 0x7FFFFFu;
  const int biased = static_cast<int>(bits >> 23);
  // The JDK scales the smallest subnormals' significands by 10 so that Java can print two
  // digits (1.4E-45); the shortest text needs no such step (1e-45).
  return biased != 0 ? schubfach(fraction | (1u << 23), biased - 150) : schubfach(fraction, -149);
}

// The digits of `significand` (which has `digits` of them) left-aligned in nine places: the first
// as a character and the next eight as ASCII in one word, stored whole (places past the last
// digit hold zeros: scratch that the caller's end pointer leaves out).
struct AlignedDigits {
  char lead;
  std::uint64_t rest;
};

AlignedDigits align_digits(std::uint32_t significand, int digits) {
  static constexpr std::uint32_t kScale[] = {1, 100000000, 10000000, 1000000, 100000,
                                             10000, 1000, 100, 10, 1};
  const std::uint32_t aligned = significand * kScale[digits];
  return {static_cast<char>('0' + aligned / 100000000), eight_digits(aligned % 100000000)};
}

// Every form write_decimal does not write inline: zero, whole numbers, values of 1 or more, and
// scientific notation. Out of line, so that the common form compiles without these paths'
// calls and registers.
[[gnu::noinline]] char* write_other_forms(float value, std::uint32_t significand, int exponent,
                                          int digits, char* out) {
  if (value == 0.0f) {
    if (std::signbit(value)) *out++ = '-';
    *out++ = '0';
    return out;
  }
  if (std::signbit(value)) *out++ = '-';
  value = std::fabs(value);
  const int point = digits + exponent;  // digits before the decimal point (may be <= 0)
  // std::to_chars picks the shorter of fixed and scientific, fixed on a tie. Scientific is
  // d[.ddd]e±XX: a float's decimal exponent always fits in two digits.
  const int scientific_length = digits + (digits > 1 ? 1 : 0) + 4;
  const int fixed_length = exponent >= 0 ? point : (point > 0 ? digits + 1 : 2 - exponent);
  if (exponent > 0 && fixed_length <= scientific_length) {
    // A whole number written out in fixed notation: std::to_chars's choice of trailing digits
    // there is its own, so let it write them.
    auto [end, ec] = std::to_chars(out, out + kFloatTextRoom, value);
    return ec == std::errc() ? end : out;
  }
  const auto [lead, rest] = align_digits(significand, digits);
  if (fixed_length <= scientific_length) {  // d.ddd, dd.dd, ... (1 <= value)
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

// Writes `value` given its shortest decimal (from shortest_decimal).
inline char* write_decimal(float value, const Decimal& decimal, char* out) {
  const std::uint32_t significand = decimal.significand;
  const int digits = count_digits(significand);
  const int point = digits + decimal.exponent;  // digits before the decimal point
  // Nearly every embedding value: 0.ddd with at most three zeros after the point, where fixed
  // notation is no longer than scientific (zero's stand-in decimal, 1, never gets here).
  if (point <= 0 && -point <= 2 + (digits > 1 ? 1 : 0)) [[likely]] {
    // Signs are random in an embedding: a branch on them would mispredict half the time.
    *out = '-';
    out += std::signbit(value) ? 1 : 0;
    const auto [lead, rest] = align_digits(significand, digits);
    std::memcpy(out, "0.000000", 8);
    out[2 - point] = lead;
    std::memcpy(out + 3 - point, &rest, 8);
    return out + 2 - point + digits;
  }
  return write_other_forms(value, significand, decimal.exponent, digits, out);
}

}  // namespace

char* write_shortest_float(float value, char* out) {
  return write_decimal(value, shortest_decimal(value), out);
}

char* write_float_list(std::span<const float> values, char* out) {
  // One value at a time: a value's conversion does not depend on the text before it, so the
  // processor overlaps consecutive ones by itself. (Converting a block into an array first
  // invited GCC -O3 to vectorize the branch-free conversion, without 64-bit multiplies: 40%
  // slower.)
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) *out++ = ',';
    const float value = values[i];
    if (std::isfinite(value)) [[likely]] {
      out = write_decimal(value, shortest_decimal(value), out);
    } else {
      std::memcpy(out, "null", 4);
      out += 4;
    }
  }
  return out;
}

}  // namespace embd::server
