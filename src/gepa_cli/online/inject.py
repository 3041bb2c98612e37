"""Check a chat-completions body and put a candidate's texts into its messages.

Modes (``[online] injection``):

- ``system_replace``: the candidate's text is the system message: the first system
  message's content is replaced (one is inserted first when there is none);
- ``system_prepend``: the text goes before the first system message's content, with a
  blank line between (or is inserted as the first message);
- ``placeholders``: every ``{{module}}`` in the messages' text is replaced by that
  module's text; a body with no placeholder at all is refused, since the candidate
  would not reach the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
SYSTEM_ROLES = ("system", "developer")


class BadChatBody(ValueError):
    """The body is not a chat-completions request: one line for a 400 answer."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def check_body(body: Any) -> list[dict[str, Any]]:
    """The messages of a chat-completions body; anything malformed is `BadChatBody`."""
    if not isinstance(body, dict):
        raise BadChatBody("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadChatBody("'messages' must be a non-empty list of messages", "messages")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadChatBody(f"{where} must be an object", where)
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise BadChatBody(f"{where}.role must be a string such as 'user'", f"{where}.role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise BadChatBody(
                f"{where}.content must be a string or a list of content parts", f"{where}.content"
            )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadChatBody("'stream' must be true or false", "stream")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadChatBody("'model' must be a string", "model")
    return messages


def _texts_of(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


def _map_text(content: Any, fn: Any) -> Any:
    if isinstance(content, str):
        return fn(content)
    if isinstance(content, list):
        return [
            {**part, "text": fn(part["text"])}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return content


def check_placeholders(messages: list[dict[str, Any]], names: list[str]) -> None:
    """Refuse a body in which no ``{{module}}`` of this session occurs."""
    for message in messages:
        for text in _texts_of(message.get("content")):
            if any(match.group(1) in names for match in PLACEHOLDER.finditer(text)):
                return
    shown = ", ".join("{{" + name + "}}" for name in names)
    raise BadChatBody(
        f"no message holds a placeholder of this session ({shown}), so the candidate would "
        "not reach the model",
        "messages",
    )


def inject(
    messages: list[dict[str, Any]],
    texts: Mapping[str, str],
    *,
    mode: str,
    system_module: str,
) -> list[dict[str, Any]]:
    """The messages with the candidate's texts in them (the input list is not changed)."""
    if mode == "placeholders":

        def fill(text: str) -> str:
            return PLACEHOLDER.sub(lambda m: texts.get(m.group(1), m.group(0)), text)

        return [{**m, "content": _map_text(m.get("content"), fill)} for m in messages]
    text = texts[system_module]
    out = list(messages)
    for index, message in enumerate(out):
        if message.get("role") in SYSTEM_ROLES:
            if mode == "system_replace":
                out[index] = {**message, "content": text}
            else:
                content = message.get("content")
                if isinstance(content, list):
                    new: Any = [{"type": "text", "text": text + "\n\n"}, *content]
                else:
                    new = f"{text}\n\n{content}" if content else text
                out[index] = {**message, "content": new}
            return out
    return [{"role": "system", "content": text}, *out]


def answer_of(completion: Mapping[str, Any]) -> str:
    """The assistant's text of a chat completion ("" when there is none)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return "".join(_texts_of(content)) if content is not None else ""
