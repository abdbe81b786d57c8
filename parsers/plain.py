"""`plain`: no function calling; the whole output is content (summaries, chat-only wrappers)."""

from .result import Format, ParseContext, ParseResult
from .toolkit.out import with_prefix


def parse_plain(raw: str, context: ParseContext) -> ParseResult:
    text, _ = with_prefix(raw, context.prefix)
    return ParseResult(content=text.strip() or None)


PLAIN = Format(parse_plain, ())
