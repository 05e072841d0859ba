"""Chat-template fixtures: conversations rendered by transformers' own chat-template renderer
(the code behind `apply_chat_template`), for `tests/chat_template.rs`.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r scripts/requirements-bench.txt
    .venv-bench/bin/python crates/policy/scripts/make_chat_fixtures.py

Two templates are written in the style of Qwen2's and Llama 3's (the same markers, the same
Jinja constructs: `loop`, `set`, `trim`, `.strip()`, `raise_exception`, `bos_token`), a third
writes tool calls and messages with `tojson` and each of its keywords, a fourth lists `tools`
as Qwen2.5's does; no model is downloaded.
"""

import json
import pathlib

import transformers
from transformers.utils.chat_template_utils import render_jinja_template

QWEN2_STYLE = """{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'system' and loop.first %}
    {%- elif message.role in ['user', 'assistant'] %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content.strip() + '<|im_end|>\\n' }}
    {%- else %}
        {{- raise_exception('Conversation roles must be system, user or assistant, not ' + message.role) }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA3_STYLE = """{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"""

# transformers' own `tojson` (Python's json.dumps, no HTML escaping) as templates that write
# tool calls use it (Qwen2.5's `tool_call.arguments | tojson`), with each keyword it takes.
TOJSON_STYLE = """{%- for message in messages %}
<|im_start|>{{ message.role }}
{%- if message.content %}{{ '\\n' + message.content }}{% endif %}
{%- for tool_call in message.tool_calls | default([]) %}
{{- '\\n<tool_call>\\n{"name": "' + tool_call.function.name + '", "arguments": ' + tool_call.function.arguments | tojson + '}\\n</tool_call>' }}
{%- endfor %}
<|im_end|>
{%- endfor %}
{{ messages | tojson(indent=2) }}
{{ messages[0] | tojson(sort_keys=true, ensure_ascii=true) }}
{{ messages[1] | tojson(separators=(",", ":")) }}
{{ [] | tojson(indent=4) }}{{ {} | tojson }}
"""

# Keys out of sorted order, markup, quotes, non-ASCII (one character beyond U+FFFF), control
# characters, numbers of each kind, nested containers empty and not.
TOOL_CONVERSATION = [
    {"role": "user", "content": "Is 3 < 4 & 'x' \"quoted\"? Café 😀\tdone\n"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "type": "function",
                "function": {
                    "name": "calculator",
                    "arguments": {"expression": "3<4", "b": [1, 2.5, True, None], "a": {}, "c": {"z": -7}},
                },
            }
        ],
    },
    {"role": "tool", "content": "True"},
]

# A system block that lists `tools` as Qwen2.5's template does (each spec `| tojson` on its own
# line inside <tools></tools>, the call syntax after), in our own words.
TOOLS_STYLE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- '# Tools\\nCall a function by writing its name and arguments as JSON in <tool_call></tool_call>. The functions:\\n<tools>' }}
    {%- for tool in tools %}
        {{- '\\n' + tool | tojson }}
    {%- endfor %}
    {{- '\\n</tools><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role != 'system' %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# The calculator as grpo's tool-calling environment lists it (`Environment::tools`); the recipe's
# test renders a run with `tools = ["calculator"]` and expects exactly this case's text.
CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "evaluates `expression` (+ - * / ^ and parentheses) exactly; fractions in lowest terms",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. 12*(3+4) or 1/3+1/6"}},
            "required": ["expression"],
        },
    },
}

TOOL_CASES = [
    ([{"role": "user", "content": "What is 12*7?"}], [CALCULATOR], True),
    (
        [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "What is 1/3+1/6?"}],
        [CALCULATOR],
        True,
    ),
    ([{"role": "system", "content": "Be exact."}, {"role": "user", "content": "2+2?"}], None, True),
]

CONVERSATIONS = [
    ([{"role": "user", "content": "What is 7 * 6?"}], True),
    (
        [
            {"role": "system", "content": "Answer with a number."},
            {"role": "user", "content": "  Half of 10, plus ½?  \n"},
        ],
        True,
    ),
    (
        [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
        ],
        False,
    ),
]


def render(template, messages, add_generation_prompt, tools=None):
    rendered, _ = render_jinja_template(
        conversations=[messages],
        tools=tools,
        chat_template=template,
        add_generation_prompt=add_generation_prompt,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
    )
    return rendered[0]


def main():
    templates = []
    for name, template, conversations in [
        ("qwen2_style", QWEN2_STYLE, [(m, None, g) for m, g in CONVERSATIONS]),
        ("llama3_style", LLAMA3_STYLE, [(m, None, g) for m, g in CONVERSATIONS]),
        ("tojson_style", TOJSON_STYLE, [(TOOL_CONVERSATION, None, False)]),
        ("tools_style", TOOLS_STYLE, TOOL_CASES),
    ]:
        cases = [
            {
                "messages": messages,
                "tools": tools,
                "add_generation_prompt": generation,
                "rendered": render(template, messages, generation, tools),
            }
            for messages, tools, generation in conversations
        ]
        templates.append(
            {
                "name": name,
                "chat_template": template,
                "bos_token": "<|begin_of_text|>",
                "eos_token": "<|eot_id|>",
                "cases": cases,
            }
        )
    # A role the Qwen2-style template refuses: transformers raises with the template's message.
    try:
        render(QWEN2_STYLE, [{"role": "tool", "content": "x"}], True)
        refused = None
    except Exception as error:  # jinja2's TemplateError carries raise_exception's text
        refused = str(error)
    out = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/chat_templates.json"
    out.write_text(
        json.dumps(
            {"transformers": transformers.__version__, "templates": templates, "refused": refused},
            indent=1,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
