#!/usr/bin/env python3
"""Prints the powers-of-ten table of src/server/float_text.cpp (Schubfach for float32).

Entry e + 31 (e = -31 .. 45, the range float32 needs) is g1(e): the top 63 bits of
G = floor(10^e * 2^(125 - floor(log2 10^e))) + 1, as in Giulietti's "The Schubfach way to render
doubles" (the float algorithm uses g1(e) + 1). Exact rational arithmetic, no floating point.
"""
from fractions import Fraction


def flog2pow10(e):
    return (e * 913124641741) >> 38  # floor(e * log2(10)), as the C++ computes it


def g1(e):
    x = Fraction(10) ** e * Fraction(2) ** (125 - flog2pow10(e))
    big = x.numerator // x.denominator + 1
    assert 2 ** 125 <= big < 2 ** 126, e
    return big >> 63


values = [g1(e) for e in range(-31, 46)]
for i in range(0, len(values), 3):
    print("    " + " ".join("0x%016X," % v for v in values[i:i + 3]))
