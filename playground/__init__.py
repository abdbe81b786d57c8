"""Prompt Format Playground: the shared flow behind the page, the API and the CLI."""
