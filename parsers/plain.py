"""`plain`: no function calling; the whole output is content (summaries, chat-only wrappers)."""

from . import ParseContext, ParseResult, register


@register("plain")
def parse_plain(raw: str, context: ParseContext) -> ParseResult:
    text = (context.prefix + raw).strip()
    return ParseResult(content=text or None)
