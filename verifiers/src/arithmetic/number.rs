//! Numbers written out: parsing a literal to an exact rational, within fixed bounds.

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Pow, Zero};

/// Most digits one written number may have.
pub const MAX_DIGITS: usize = 1_000;
/// Largest |exponent| of scientific notation (`1e1000`).
pub const MAX_EXPONENT: u32 = 1_000;
/// Most bits (numerator plus denominator) any value, literal or intermediate, may have.
pub const MAX_BITS: u64 = 16_384;

/// A number as written: its exact value, and its decimal places when written as a decimal.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub value: BigRational,
    /// `Some(2)` for `3.14` or `314e-2`; `None` for integers, fractions and mixed numbers.
    pub decimal_places: Option<u32>,
}

/// Why a string is not a literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiteralError {
    #[error("not a number written out")]
    NotALiteral,
    #[error("a fraction must be in lowest terms with a denominator above 1")]
    NotLowestTerms,
    #[error("number too large (over {MAX_DIGITS} digits or exponent over {MAX_EXPONENT})")]
    TooLarge,
}

/// Parses a literal: an optionally signed integer (thousands grouped in strict 3-digit groups
/// by `,` or by single spaces), decimal (`.5`, `7.`), scientific (`1.5e-3`), fraction in
/// lowest terms (`3/4`, `\frac{3}{4}`, `\frac34`) or LaTeX mixed number (`1\frac{1}{4}`).
pub fn parse_literal(text: &str) -> Result<Literal, LiteralError> {
    let text = text.trim();
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, text[1..].trim_start()),
        Some(b'+') => (false, text[1..].trim_start()),
        _ => (false, text),
    };
    let mut literal = if body.starts_with("\\frac") {
        let (numerator, denominator, rest) = latex_fraction(body)?;
        end(rest)?;
        lowest_terms_fraction(numerator, denominator)?
    } else {
        unsigned_number(body)?
    };
    if negative {
        literal.value = -literal.value;
    }
    Ok(literal)
}

fn end(rest: &str) -> Result<(), LiteralError> {
    if rest.trim().is_empty() {
        Ok(())
    } else {
        Err(LiteralError::NotALiteral)
    }
}

/// The leading run of ASCII digits and what follows it.
fn digits(text: &str) -> (&str, &str) {
    let n = text.bytes().take_while(u8::is_ascii_digit).count();
    text.split_at(n)
}

/// An integer from decimal digits, refusing more than [`MAX_DIGITS`].
pub fn integer(digits: &str) -> Result<BigInt, LiteralError> {
    if digits.len() > MAX_DIGITS {
        return Err(LiteralError::TooLarge);
    }
    digits.parse().map_err(|_| LiteralError::NotALiteral)
}

/// `\frac{a}{b}` or `\frac ab` (single digits) with plain integers a, b; returns the rest.
fn latex_fraction(text: &str) -> Result<(BigInt, BigInt, &str), LiteralError> {
    let rest = text
        .strip_prefix("\\frac")
        .ok_or(LiteralError::NotALiteral)?
        .trim_start();
    let (a, rest) = braced_or_single_digit(rest)?;
    let (b, rest) = braced_or_single_digit(rest.trim_start())?;
    Ok((integer(a)?, integer(b)?, rest))
}

fn braced_or_single_digit(text: &str) -> Result<(&str, &str), LiteralError> {
    let (inside, rest) = if let Some(inner) = text.strip_prefix('{') {
        let close = inner.find('}').ok_or(LiteralError::NotALiteral)?;
        (inner[..close].trim(), &inner[close + 1..])
    } else {
        let first = text.bytes().next().ok_or(LiteralError::NotALiteral)?;
        text.split_at(usize::from(first.is_ascii_digit()))
    };
    if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LiteralError::NotALiteral);
    }
    Ok((inside, rest))
}

fn lowest_terms_fraction(a: BigInt, b: BigInt) -> Result<Literal, LiteralError> {
    if b <= BigInt::one() || !a.gcd(&b).is_one() {
        return Err(LiteralError::NotLowestTerms);
    }
    Ok(Literal {
        value: BigRational::new(a, b),
        decimal_places: None,
    })
}

/// Everything but the sign and a leading `\frac`.
fn unsigned_number(text: &str) -> Result<Literal, LiteralError> {
    let (integer_part, grouped, rest) = integer_part(text)?;
    // `3/4`
    if let Some(denominator) = rest.strip_prefix('/') {
        let (denominator, rest) = digits(denominator.trim_start());
        if grouped || integer_part.is_empty() || denominator.is_empty() {
            return Err(LiteralError::NotALiteral);
        }
        end(rest)?;
        return lowest_terms_fraction(integer(&integer_part)?, integer(denominator)?);
    }
    // `1\frac{1}{4}`
    if !grouped && !integer_part.is_empty() && rest.trim_start().starts_with("\\frac") {
        let (a, b, rest) = latex_fraction(rest.trim_start())?;
        end(rest)?;
        if a.is_zero() || a >= b {
            return Err(LiteralError::NotLowestTerms);
        }
        let fraction = lowest_terms_fraction(a, b)?.value;
        return Ok(Literal {
            value: BigRational::from_integer(integer(&integer_part)?) + fraction,
            decimal_places: None,
        });
    }
    // `12`, `12.5`, `.5`, `7.`, `1.5e-3`
    let (wrote_point, fraction_part, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let (fraction_part, rest) = digits(after);
            (true, fraction_part, rest)
        }
        None => (false, "", rest),
    };
    if integer_part.is_empty() && fraction_part.is_empty() {
        return Err(LiteralError::NotALiteral);
    }
    let (exponent, rest) = exponent(rest)?;
    end(rest)?;
    let mantissa = integer(&format!("{integer_part}{fraction_part}"))?;
    let scale = exponent - fraction_part.len() as i64;
    let value = if scale >= 0 {
        BigRational::from_integer(mantissa * pow10(scale as u32))
    } else {
        BigRational::new(mantissa, pow10(scale.unsigned_abs() as u32))
    };
    let decimal_places = (wrote_point && !fraction_part.is_empty()).then(|| (-scale).max(0) as u32);
    Ok(Literal {
        value,
        decimal_places,
    })
}

/// The digits of the integer part (separators removed), whether they were grouped, and the
/// rest. Grouping is strict: 1–3 leading digits, then groups of exactly 3, all separated by
/// the same `,` or single space.
fn integer_part(text: &str) -> Result<(String, bool, &str), LiteralError> {
    let (head, mut rest) = digits(text);
    let mut out = head.to_owned();
    let mut separator = None;
    while let Some(sep) = rest.chars().next().filter(|c| *c == ',' || *c == ' ') {
        let (group, after) = digits(&rest[1..]);
        if group.is_empty() || separator.is_some_and(|s| s != sep) {
            break;
        }
        if group.len() != 3 || head.is_empty() || head.len() > 3 {
            return Err(LiteralError::NotALiteral);
        }
        separator = Some(sep);
        out.push_str(group);
        rest = after;
        if out.len() > MAX_DIGITS {
            return Err(LiteralError::TooLarge);
        }
    }
    Ok((out, separator.is_some(), rest))
}

/// An optional `e±N` / `E±N`, bounded by [`MAX_EXPONENT`].
fn exponent(text: &str) -> Result<(i64, &str), LiteralError> {
    let Some(after) = text.strip_prefix(['e', 'E']) else {
        return Ok((0, text));
    };
    let (negative, after) = match after.as_bytes().first() {
        Some(b'-') => (true, &after[1..]),
        Some(b'+') => (false, &after[1..]),
        _ => (false, after),
    };
    let (n, rest) = digits(after);
    if n.is_empty() {
        return Err(LiteralError::NotALiteral);
    }
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| *n <= MAX_EXPONENT)
        .ok_or(LiteralError::TooLarge)?;
    Ok((
        if negative {
            -i64::from(n)
        } else {
            i64::from(n)
        },
        rest,
    ))
}

pub fn pow10(n: u32) -> BigInt {
    BigInt::from(10u8).pow(n)
}

/// Whether a value is within [`MAX_BITS`].
pub fn within_bounds(value: &BigRational) -> bool {
    value.numer().bits() + value.denom().bits() <= MAX_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> BigRational {
        parse_literal(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .value
    }

    fn ratio(a: i64, b: i64) -> BigRational {
        BigRational::new(a.into(), b.into())
    }

    #[test]
    fn written_numbers() {
        assert_eq!(value("1,000,000"), ratio(1_000_000, 1));
        assert_eq!(value("1 000"), ratio(1000, 1));
        assert_eq!(value("-12.50"), ratio(-25, 2));
        assert_eq!(value(".1"), ratio(1, 10));
        assert_eq!(value("7."), ratio(7, 1));
        assert_eq!(value("02"), ratio(2, 1));
        assert_eq!(value("1e2"), ratio(100, 1));
        assert_eq!(value("1.5E-3"), ratio(3, 2000));
        assert_eq!(value("3/4"), ratio(3, 4));
        assert_eq!(value("- \\frac{1}{2}"), ratio(-1, 2));
        assert_eq!(value("\\frac34"), ratio(3, 4));
        assert_eq!(value("1\\frac{1}{4}"), ratio(5, 4));
        assert_eq!(value("-2 \\frac{1}{3}"), ratio(-7, 3));
        assert_eq!(value("1,234.5"), ratio(2469, 2));
    }

    #[test]
    fn decimal_places_as_written() {
        assert_eq!(parse_literal("3.14").unwrap().decimal_places, Some(2));
        assert_eq!(parse_literal("1,000.50").unwrap().decimal_places, Some(2));
        assert_eq!(parse_literal("314e-2").unwrap().decimal_places, None);
        assert_eq!(parse_literal("3").unwrap().decimal_places, None);
        assert_eq!(parse_literal("7.").unwrap().decimal_places, None);
        assert_eq!(parse_literal("1/2").unwrap().decimal_places, None);
    }

    #[test]
    fn not_literals() {
        use LiteralError::*;
        for (text, why) in [
            ("1,0000", NotALiteral),
            ("1,5", NotALiteral),
            ("1234,567", NotALiteral),
            ("1,000 000", NotALiteral),
            ("12/1", NotLowestTerms),
            ("6/4", NotLowestTerms),
            ("\\frac{144}{12}", NotLowestTerms),
            ("1\\frac{5}{4}", NotLowestTerms),
            ("3+4", NotALiteral),
            ("", NotALiteral),
            ("-", NotALiteral),
            (".", NotALiteral),
            ("1e", NotALiteral),
            ("1e1001", TooLarge),
            ("19 apples", NotALiteral),
            ("x", NotALiteral),
        ] {
            assert_eq!(parse_literal(text), Err(why), "{text}");
        }
        assert_eq!(parse_literal(&"9".repeat(MAX_DIGITS + 1)), Err(TooLarge));
    }
}
