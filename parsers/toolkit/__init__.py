"""The steps every format parser is built from, one module per concern (bottom up):

- `limits`: every size bound, and what happens past it.
- `scan`: finding markers, `Piece`s of the text with their offsets, `split_at` a marker, prose
  and OPEN…CLOSE `blocks`, markdown fences (`fence_opener`, `strip_fence`).
- `out`: the result builder `Out` and the forced-prefix step `with_prefix`.
- `sections`: reasoning blocks set apart (`split_reasoning`, `think_pieces`) and the `tagged`
  walk over OPEN body CLOSE blocks.
- `json_text`: JSON extents, the truncation scan, `load_json` with named repairs.
- `json_calls`: calls written as JSON, wherever they sit.
- `schema`: the functions' schemas, JSON type names, typing text values (`cast_value`).
- `xml_values`: XML-ish call bodies with text values.
- `python_calls`: Python-style calls read with `ast`.

Everything is linear (or bounded, see `limits`) in the input size, so parsers stay fast on huge
or adversarial outputs.
"""
