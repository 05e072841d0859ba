//! A bounded, safe evaluator of arithmetic over exact rationals.
//!
//! Grammar: numbers (`12`, `1.5`, `.5`), `+ - * /` (also `\times`, `\cdot`, `\div`, `×`, `÷`),
//! `^` with integer exponents (right-associative, binding tighter than unary minus, so
//! `-2^2 = -4`), parentheses `( ) [ ] { }` and `\frac{a}{b}`. No names, no functions, no
//! implicit multiplication. Every input is bounded: at most [`MAX_TOKENS`] tokens, nesting at
//! most [`MAX_DEPTH`], and every intermediate value within [`number::MAX_BITS`], so
//! `10^10^10` is refused at once instead of being computed.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Pow, Signed, ToPrimitive, Zero};

use super::number::{self, MAX_BITS, MAX_DIGITS, pow10};

pub const MAX_TOKENS: usize = 512;
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpressionError {
    #[error("not an arithmetic expression: {0}")]
    Syntax(String),
    #[error("expression too long or too deeply nested")]
    TooComplex,
    #[error("division by zero")]
    DivisionByZero,
    #[error("a value exceeds {MAX_BITS} bits")]
    TooLarge,
    #[error("exponent is not a small integer")]
    BadExponent,
}

/// A parsed expression: its tree and the numbers it writes, in order.
#[derive(Debug, Clone)]
pub struct Expression {
    root: Node,
    numbers: Vec<BigRational>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Debug, Clone)]
enum Node {
    Number(BigRational),
    Negate(Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(BigRational),
    Op(Op),
    Open(u8),
    Close(u8),
    Frac,
}

impl Expression {
    pub fn parse(text: &str) -> Result<Self, ExpressionError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens: &tokens,
            at: 0,
            depth: 0,
            numbers: Vec::new(),
        };
        let root = parser.sum()?;
        if parser.at != tokens.len() {
            return Err(ExpressionError::Syntax("unexpected trailing input".into()));
        }
        Ok(Expression {
            root,
            numbers: parser.numbers,
        })
    }

    /// The numbers written in the expression, in order of appearance (a unary minus is an
    /// operation, not part of the number).
    pub fn numbers(&self) -> &[BigRational] {
        &self.numbers
    }

    /// Whether the expression is one number, with nothing left to compute.
    pub fn is_single_number(&self) -> bool {
        matches!(self.root, Node::Number(_))
    }

    pub fn evaluate(&self) -> Result<BigRational, ExpressionError> {
        evaluate(&self.root)
    }
}

fn evaluate(node: &Node) -> Result<BigRational, ExpressionError> {
    let value = match node {
        Node::Number(value) => value.clone(),
        Node::Negate(inner) => -evaluate(inner)?,
        Node::Binary(op, left, right) => {
            let (a, b) = (evaluate(left)?, evaluate(right)?);
            match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div if b.is_zero() => return Err(ExpressionError::DivisionByZero),
                Op::Div => a / b,
                Op::Pow => power(a, &b)?,
            }
        }
    };
    if number::within_bounds(&value) {
        Ok(value)
    } else {
        Err(ExpressionError::TooLarge)
    }
}

/// `base ^ exponent` for an integer exponent, refused before computing if the result would
/// exceed [`MAX_BITS`].
fn power(base: BigRational, exponent: &BigRational) -> Result<BigRational, ExpressionError> {
    if !exponent.is_integer() {
        return Err(ExpressionError::BadExponent);
    }
    let e = exponent
        .to_integer()
        .abs()
        .to_u64()
        .filter(|e| *e <= MAX_BITS)
        .ok_or(ExpressionError::BadExponent)?;
    if base.is_zero() && exponent.is_negative() {
        return Err(ExpressionError::DivisionByZero);
    }
    let base_bits = base.numer().bits().saturating_sub(1) + base.denom().bits().saturating_sub(1);
    if base_bits.saturating_mul(e) > MAX_BITS {
        return Err(ExpressionError::TooLarge);
    }
    let result = Pow::pow(&base, e as u32);
    Ok(if exponent.is_negative() {
        result.recip()
    } else {
        result
    })
}

fn tokenize(text: &str) -> Result<Vec<Token>, ExpressionError> {
    const COMMANDS: [(&str, Token); 5] = [
        ("\\times", Token::Op(Op::Mul)),
        ("\\cdot", Token::Op(Op::Mul)),
        ("\\ast", Token::Op(Op::Mul)),
        ("\\div", Token::Op(Op::Div)),
        ("\\frac", Token::Frac),
    ];
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if tokens.len() > MAX_TOKENS {
            return Err(ExpressionError::TooComplex);
        }
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            let (token, after) = decimal(rest)?;
            tokens.push(token);
            rest = after;
            continue;
        }
        if let Some((name, token)) = COMMANDS.iter().find(|(name, _)| rest.starts_with(name)) {
            let after = &rest[name.len()..];
            if after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            {
                return Err(ExpressionError::Syntax(format!(
                    "unknown command near `{}`",
                    prefix(rest)
                )));
            }
            tokens.push(token.clone());
            rest = after;
            continue;
        }
        let token = match c {
            '+' => Token::Op(Op::Add),
            '-' => Token::Op(Op::Sub),
            '*' | '×' => Token::Op(Op::Mul),
            '/' | '÷' => Token::Op(Op::Div),
            '^' => Token::Op(Op::Pow),
            '(' | '[' | '{' => Token::Open(c as u8),
            ')' | ']' | '}' => Token::Close(c as u8),
            _ => {
                return Err(ExpressionError::Syntax(format!(
                    "unexpected `{}`",
                    prefix(rest)
                )));
            }
        };
        tokens.push(token);
        rest = &rest[c.len_utf8()..];
    }
    Ok(tokens)
}

/// A short head of `text` for error messages.
fn prefix(text: &str) -> &str {
    let end = text.char_indices().nth(12).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// `12`, `1.5`, `.5`, `7.` at the start of `text`.
fn decimal(text: &str) -> Result<(Token, &str), ExpressionError> {
    let int_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let (int_part, rest) = text.split_at(int_len);
    let (frac_part, rest) = match rest.strip_prefix('.') {
        Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
        None => ("", rest),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(ExpressionError::Syntax("a lone `.`".into()));
    }
    if int_part.len() + frac_part.len() > MAX_DIGITS {
        return Err(ExpressionError::TooLarge);
    }
    let mantissa: BigInt = format!("{int_part}{frac_part}")
        .parse()
        .map_err(|_| ExpressionError::Syntax("bad number".into()))?;
    let value = BigRational::new(mantissa, pow10(frac_part.len() as u32));
    Ok((Token::Number(value), rest))
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
    depth: usize,
    numbers: Vec<BigRational>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        token
    }

    fn eat_op(&mut self, ops: &[Op]) -> Option<Op> {
        match self.peek() {
            Some(Token::Op(op)) if ops.contains(op) => {
                let op = *op;
                self.at += 1;
                Some(op)
            }
            _ => None,
        }
    }

    fn enter(&mut self) -> Result<(), ExpressionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(ExpressionError::TooComplex)
        } else {
            Ok(())
        }
    }

    // sum := product (('+' | '-') product)*
    fn sum(&mut self) -> Result<Node, ExpressionError> {
        self.enter()?;
        let mut node = self.product()?;
        while let Some(op) = self.eat_op(&[Op::Add, Op::Sub]) {
            node = Node::Binary(op, Box::new(node), Box::new(self.product()?));
        }
        self.depth -= 1;
        Ok(node)
    }

    // product := unary (('*' | '/') unary)*
    fn product(&mut self) -> Result<Node, ExpressionError> {
        let mut node = self.unary()?;
        while let Some(op) = self.eat_op(&[Op::Mul, Op::Div]) {
            node = Node::Binary(op, Box::new(node), Box::new(self.unary()?));
        }
        Ok(node)
    }

    // unary := ('-' | '+') unary | power
    fn unary(&mut self) -> Result<Node, ExpressionError> {
        self.enter()?;
        let node = match self.eat_op(&[Op::Sub, Op::Add]) {
            Some(Op::Sub) => Node::Negate(Box::new(self.unary()?)),
            Some(_) => self.unary()?,
            None => self.power()?,
        };
        self.depth -= 1;
        Ok(node)
    }

    // power := atom ('^' unary)?
    fn power(&mut self) -> Result<Node, ExpressionError> {
        let base = self.atom()?;
        if self.eat_op(&[Op::Pow]).is_some() {
            let exponent = self.unary()?;
            return Ok(Node::Binary(Op::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    // atom := number | open sum close | '\frac' atom atom
    fn atom(&mut self) -> Result<Node, ExpressionError> {
        match self.next().cloned() {
            Some(Token::Number(value)) => {
                self.numbers.push(value.clone());
                Ok(Node::Number(value))
            }
            Some(Token::Open(open)) => {
                let inner = self.sum()?;
                let expected = match open {
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                };
                match self.next() {
                    Some(Token::Close(close)) if *close == expected => Ok(inner),
                    _ => Err(ExpressionError::Syntax(format!(
                        "`{}` is not closed",
                        open as char
                    ))),
                }
            }
            Some(Token::Frac) => {
                self.enter()?;
                let numerator = self.atom()?;
                let denominator = self.atom()?;
                self.depth -= 1;
                Ok(Node::Binary(
                    Op::Div,
                    Box::new(numerator),
                    Box::new(denominator),
                ))
            }
            Some(token) => Err(ExpressionError::Syntax(format!("unexpected {token:?}"))),
            None => Err(ExpressionError::Syntax("unexpected end".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Result<BigRational, ExpressionError> {
        Expression::parse(text).and_then(|e| e.evaluate())
    }

    fn ratio(a: i64, b: i64) -> BigRational {
        BigRational::new(a.into(), b.into())
    }

    #[test]
    fn precedence_and_notation() {
        assert_eq!(eval("37 \\times 91"), Ok(ratio(3367, 1)));
        assert_eq!(eval("1 + 2 * 3"), Ok(ratio(7, 1)));
        assert_eq!(eval("(1 + 2) * 3"), Ok(ratio(9, 1)));
        assert_eq!(eval("-2^2"), Ok(ratio(-4, 1)));
        assert_eq!(eval("2^3^2"), Ok(ratio(512, 1)));
        assert_eq!(eval("2^{-2}"), Ok(ratio(1, 4)));
        assert_eq!(eval("8 / 4 / 2"), Ok(ratio(1, 1)));
        assert_eq!(eval("\\frac{144}{12}"), Ok(ratio(12, 1)));
        assert_eq!(eval("\\frac{1+1}{3} \\cdot [3]"), Ok(ratio(2, 1)));
        assert_eq!(eval("6 ÷ 4 × 2"), Ok(ratio(3, 1)));
        assert_eq!(eval(".5 + 1.25"), Ok(ratio(7, 4)));
    }

    #[test]
    fn numbers_written() {
        let e = Expression::parse("(25 - 5) * -3 + 4").unwrap();
        assert_eq!(
            e.numbers(),
            &[ratio(25, 1), ratio(5, 1), ratio(3, 1), ratio(4, 1)]
        );
        assert!(!e.is_single_number());
        assert!(Expression::parse("(7)").unwrap().is_single_number());
    }

    #[test]
    fn refusals() {
        use ExpressionError::*;
        assert_eq!(eval("1/0"), Err(DivisionByZero));
        assert_eq!(eval("0^-1"), Err(DivisionByZero));
        assert_eq!(eval("10^10^10"), Err(BadExponent));
        assert_eq!(eval("10^5000"), Err(TooLarge));
        assert_eq!(eval("2^(1/2)"), Err(BadExponent));
        assert_eq!(eval(&"(".repeat(100)), Err(TooComplex));
        assert_eq!(eval(&"1+".repeat(600)), Err(TooComplex));
        assert!(matches!(eval("2x"), Err(Syntax(_))));
        assert!(matches!(eval("sqrt(4)"), Err(Syntax(_))));
        assert!(matches!(eval("\\timesx"), Err(Syntax(_))));
        assert!(matches!(eval("(1+2"), Err(Syntax(_))));
        assert!(matches!(eval("1 2"), Err(Syntax(_))));
        assert!(matches!(eval(""), Err(Syntax(_))));
    }

    #[test]
    fn repeated_squaring_stays_bounded() {
        // Each step squares: refused once the bit bound would be crossed, not after.
        let squarings = |n: usize| format!("{}2{}", "(".repeat(n), ")^2".repeat(n));
        assert!(eval(&squarings(10)).is_ok()); // 2^1024
        assert_eq!(eval(&squarings(20)), Err(ExpressionError::TooLarge));
    }
}
