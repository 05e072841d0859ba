//! Chat templates: a model's `chat_template` (Jinja, from `tokenizer_config.json`) rendered the
//! way transformers' `apply_chat_template` renders it — `trim_blocks` and `lstrip_blocks` on,
//! `raise_exception`, transformers' `tojson` (Python's `json.dumps`, not Jinja's HTML-safe
//! one), loop controls and Python's string methods (`.strip()`, `.startswith()`, …) — with
//! minijinja, which Rust inference servers use for the same job. Mappings keep their keys'
//! order, as Python's dicts do, so JSON a template writes matches key for key.
//! Templates are untrusted text: minijinja has no file or network access and a template can
//! only produce a string or an error.

use std::path::Path;

use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{PolicyError, Result};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (or whatever roles the template knows).
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template and the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

const NAME: &str = "chat_template";

fn template_error(message: impl std::fmt::Display) -> PolicyError {
    PolicyError::ChatTemplate(message.to_string())
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token`/`eos_token` are the texts the template sees under
    /// those names.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(template_error)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", super::python_json::tojson);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(NAME, source.to_owned())
            .map_err(template_error)?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The template of a Hugging Face model directory's `tokenizer_config.json`, or `None`
    /// when it has none (a base model). A list of named templates gives its `default` one.
    pub fn from_dir(dir: &Path) -> Result<Option<ChatTemplate>> {
        let path = dir.join("tokenizer_config.json");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        let invalid = |message: String| PolicyError::InvalidFile {
            path: path.clone(),
            message,
        };
        let config: Json = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let source = match config.get("chat_template") {
            None | Some(Json::Null) => return Ok(None),
            Some(Json::String(source)) => source.clone(),
            Some(Json::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                .and_then(|t| t.get("template")?.as_str())
                .ok_or_else(|| invalid("`chat_template` lists no `default` template".into()))?
                .to_owned(),
            Some(other) => {
                return Err(invalid(format!(
                    "`chat_template` must be a string or a list of named templates, got {other}"
                )));
            }
        };
        // A special token is written as a string or as an AddedToken object with `content`.
        let token = |name: &str| match config.get(name) {
            Some(Json::String(text)) => text.clone(),
            Some(object) => object
                .get("content")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        };
        let template = ChatTemplate::new(&source, &token("bos_token"), &token("eos_token"))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Some(template))
    }

    /// The conversation as the model expects it; with `add_generation_prompt`, followed by the
    /// opening of an assistant turn (what a prompt to be completed needs).
    ///
    /// `messages` are [`ChatMessage`]s or any serializable message, such as the JSON objects
    /// of a conversational row's `prompt` (`grpo_data::Row::conversation`): the template sees
    /// every key, as transformers passes it the message dicts (`tool_calls`, `name`, …).
    pub fn render<M: Serialize>(
        &self,
        messages: &[M],
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.render_with_tools::<M, Json>(messages, &[], add_generation_prompt)
    }

    /// [`render`](Self::render) with the tools the model may call listed as the template's
    /// `tools` — OpenAI-style function specs, as transformers'
    /// `apply_chat_template(tools=...)` takes them (an environment's `tools()`); none is
    /// `None` to the template, as transformers passes it.
    pub fn render_with_tools<M: Serialize, T: Serialize>(
        &self,
        messages: &[M],
        tools: &[T],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.env.get_template(NAME).map_err(template_error)?;
        let tools = match tools {
            [] => Value::from(()),
            tools => Value::from(minijinja::value::Serde(tools)),
        };
        template
            .render(minijinja::context! {
                messages => Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
                tools => tools,
                documents => Value::from(()),
            })
            .map_err(|e| template_error(describe(&e)))
    }
}

/// minijinja's error with its causes and the template line, in one line.
fn describe(error: &minijinja::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}
