// GPT-2's byte-level pre-tokenisation, as Hugging Face's ByteLevel pre-tokenizer does it:
// text is split with GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// and every byte of a piece becomes one character of a 256-letter alphabet (printable Latin-1
// bytes stand for themselves, the other 68 for U+0100 onwards), in which BPE vocabularies and
// merges are written.
//
// Thread-safety: pure functions. Errors: none; text must be valid UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace embd::tokenizer::byte_level {

// The end of the pattern's match that starts at text[pos] (pos < text.size()). The matches
// from 0 onwards tile the text: every character belongs to exactly one.
std::size_t pretoken_end(std::string_view text, std::size_t pos);

// The alphabet character that stands for `byte`.
char32_t byte_char(std::uint8_t byte);

// The bytes that the alphabet string `token` (UTF-8) stands for; false when some character is
// not in the alphabet (such a vocabulary entry can never come out of byte-level text).
bool decode_token(std::string_view token, std::string& bytes);

}  // namespace embd::tokenizer::byte_level
