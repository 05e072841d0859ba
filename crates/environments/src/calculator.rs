//! A calculator over exact rationals: the arithmetic checker's evaluator, so the tool and the
//! verifier agree on every value and share its bounds (no `10^10^10`).

use grpo_verifiers::arithmetic::expression::Expression;
use num_rational::BigRational;
use num_traits::One;
use serde_json::{Map, Value};

use crate::{Tool, ToolError};

/// `{"expression": "12*(3+4)"}` → `84`; `1/3+1/6` → `1/2` (exact, lowest terms). The grammar is
/// the arithmetic checker's: `+ - * / ^`, parentheses, decimals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calculator;

impl Tool for Calculator {
    fn name(&self) -> &str {
        "calculator"
    }

    fn description(&self) -> &str {
        "evaluates `expression` (+ - * / ^ and parentheses) exactly; fractions in lowest terms"
    }

    fn parameters(&self) -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "expression": {"type": "string", "description": "e.g. 12*(3+4) or 1/3+1/6"}
            },
            "required": ["expression"]
        })
    }

    fn call(&self, arguments: &Map<String, Value>) -> Result<String, ToolError> {
        let expression = arguments
            .get("expression")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::InvalidArguments("`expression` must be a string".into()))?;
        let value = Expression::parse(expression)
            .and_then(|e| e.evaluate())
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        Ok(format_rational(&value))
    }
}

/// An integer as digits, anything else as `numerator/denominator` (the sign on the numerator).
fn format_rational(value: &BigRational) -> String {
    if value.denom().is_one() {
        value.numer().to_string()
    } else {
        format!("{}/{}", value.numer(), value.denom())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(args: Value) -> Result<String, ToolError> {
        Calculator.call(args.as_object().unwrap())
    }

    #[test]
    fn evaluates_exactly() {
        assert_eq!(call(json!({"expression": "12*(3+4)"})).unwrap(), "84");
        assert_eq!(call(json!({"expression": "1/3 + 1/6"})).unwrap(), "1/2");
        assert_eq!(call(json!({"expression": "-7/2"})).unwrap(), "-7/2");
        assert_eq!(
            call(json!({"expression": "123456789*987654321"})).unwrap(),
            "121932631112635269"
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            call(json!({"expr": "1"})),
            Err(ToolError::InvalidArguments(_))
        ));
        assert_eq!(
            call(json!({"expression": "1/0"})),
            Err(ToolError::Failed("division by zero".into()))
        );
        assert!(matches!(
            call(json!({"expression": "10^10^10"})),
            Err(ToolError::Failed(_))
        ));
        assert!(matches!(
            call(json!({"expression": "import os"})),
            Err(ToolError::Failed(_))
        ));
    }
}
