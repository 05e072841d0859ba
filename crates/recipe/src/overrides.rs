//! `--set KEY=VALUE`: a run file's keys changed from the command line, as TRL's CLI and
//! Hydra's overrides do — a sweep is one file and a list of overrides, not a copy per variant.
//!
//! The text is edited in place (comments and layout kept), so what was run can be saved as
//! one file and an error's line refers to it.

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::error::{RecipeError, Result};

/// `text` with each `KEY=VALUE` of `overrides` applied in order. `KEY` is a dotted path
/// (`grpo.beta`, `task.settings.templates`, `seed`); missing tables are created. `VALUE` is a
/// TOML value (`0.04`, `true`, `["a", "b"]`, `"text"`); anything that does not parse as one is
/// taken as a string (`--set name=sweep-3`).
///
/// ```
/// let text = "name = \"a\"\n[grpo]\nbeta = 0.0  # no KL\n";
/// let edited = grpo_recipe::apply_overrides(text, &["grpo.beta=0.04".into()]).unwrap();
/// assert_eq!(edited, "name = \"a\"\n[grpo]\nbeta = 0.04  # no KL\n");
/// ```
pub fn apply_overrides(text: &str, overrides: &[String]) -> Result<String> {
    if overrides.is_empty() {
        return Ok(text.to_owned());
    }
    let mut document: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| RecipeError::config("run file", e.message()))?;
    for entry in overrides {
        set(document.as_table_mut(), entry)
            .map_err(|why| RecipeError::config(format!("--set {entry}"), why))?;
    }
    Ok(document.to_string())
}

fn set(root: &mut Table, entry: &str) -> std::result::Result<(), String> {
    let (path, raw) = entry
        .split_once('=')
        .ok_or("expected KEY=VALUE (`grpo.beta=0.04`)")?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(format!("`{path}` is not a dotted key path"));
    }
    let raw = raw.trim();
    let value = raw
        .parse::<Value>()
        .unwrap_or_else(|_| Value::from(raw.to_owned()));
    let (last, tables) = keys.split_last().expect("split yields one piece at least");
    let mut table: &mut dyn toml_edit::TableLike = root;
    for (depth, key) in tables.iter().enumerate() {
        let item = table.entry(key).or_insert_with(|| {
            let mut new = Table::new();
            new.set_implicit(true);
            Item::Table(new)
        });
        let at = keys[..=depth].join(".");
        table = match item {
            Item::ArrayOfTables(_) => {
                return Err(format!(
                    "`{at}` is a list of tables ([[{at}]]); edit it in the file"
                ));
            }
            other => other
                .as_table_like_mut()
                .ok_or_else(|| format!("`{at}` is a value, not a table"))?,
        };
    }
    let slot = table.entry(last).or_insert(Item::None);
    match slot {
        Item::Value(old) => {
            // Keep the line's layout and its comment.
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        Item::None => *slot = Item::Value(value),
        Item::Table(_) | Item::ArrayOfTables(_) => {
            return Err(format!(
                "`{path}` is a table; set its keys (`{path}.KEY=VALUE`)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str, overrides: &[&str]) -> Result<String> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        apply_overrides(text, &overrides)
    }

    #[test]
    fn values_are_replaced_in_place_and_new_keys_and_tables_are_added() {
        let text = "name = \"math\"\nseed = 7\n\n[grpo]\nbeta = 0.0   # none\nmax_steps = 100\n";
        let edited = applied(
            text,
            &[
                "seed=8",
                "grpo.max_steps = 300",
                "grpo.dynamic_sampling=true",
                "task.settings.templates=[\"{expr}=\", \"Sum {words}.\"]",
                "name=sweep-3",
            ],
        )
        .unwrap();
        let parsed: toml::Table = toml::from_str(&edited).unwrap();
        assert_eq!(parsed["seed"].as_integer(), Some(8));
        assert_eq!(parsed["name"].as_str(), Some("sweep-3"));
        assert_eq!(parsed["grpo"]["max_steps"].as_integer(), Some(300));
        assert_eq!(parsed["grpo"]["dynamic_sampling"].as_bool(), Some(true));
        assert_eq!(parsed["grpo"]["beta"].as_float(), Some(0.0));
        let templates = parsed["task"]["settings"]["templates"].as_array().unwrap();
        assert_eq!(templates[1].as_str(), Some("Sum {words}."));
        // The untouched lines and the comment are as they were.
        assert!(edited.contains("beta = 0.0   # none\n"), "{edited}");
    }

    #[test]
    fn bad_overrides_are_errors_naming_them() {
        let text = "name = \"a\"\n[grpo]\nbeta = 0.0\n[[verifiers]]\nkind = \"regex\"\n";
        let message = |o: &str| applied(text, &[o]).unwrap_err().to_string();
        assert_eq!(
            message("grpo.beta"),
            "--set grpo.beta: expected KEY=VALUE (`grpo.beta=0.04`)"
        );
        assert!(message("grpo..beta=1").contains("not a dotted key path"));
        assert!(message("grpo=1").contains("`grpo` is a table"));
        assert!(message("grpo.beta.x=1").contains("`grpo.beta` is a value"));
        assert!(message("verifiers.kind=x").contains("list of tables"));
        assert_eq!(applied(text, &[]).unwrap(), text);
    }
}
