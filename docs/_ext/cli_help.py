"""``.. kcolors-help::``: the text of ``kcolors --help`` and of each command's ``--help``, made at build time.

It runs :func:`kcolors.cli.build_parser` itself, so the page cannot fall out of step with the options; no
sphinx-argparse needed. Lines are wrapped at a fixed width, and never coloured, whatever terminal builds the docs.
"""

import os
from contextlib import contextmanager

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

# argparse wraps at $COLUMNS; Python 3.14's argparse colours its help unless NO_COLOR is set
ENVIRONMENT = {"COLUMNS": "100", "NO_COLOR": "1"}


class KcolorsHelp(SphinxDirective):
    """One section per command: its name as a title, its help as a literal block."""

    has_content = False

    def run(self):
        from kcolors.cli import COMMANDS, build_parser

        with _environment(ENVIRONMENT):
            parser = build_parser()
            commands = _subparsers(parser)
            sections = [_section("kcolors", "kcolors --help", parser.format_help())]
            sections += [_section(name, f"kcolors {name} --help", commands[name].format_help()) for name in COMMANDS]
        return sections


def _subparsers(parser):
    """Each command's own parser, by name (argparse keeps them in its subparsers action's ``choices``)."""
    for action in parser._actions:
        if action.choices is not None and hasattr(action, "add_parser"):
            return action.choices
    raise RuntimeError("kcolors.cli.build_parser() has no subcommands")


def _section(name, title, text):
    section = nodes.section(ids=[nodes.make_id(f"command-{name}")], names=[nodes.fully_normalize_name(title)])
    section += nodes.title(text=title)
    section += nodes.literal_block(text=text.rstrip(), language="text")
    return section


@contextmanager
def _environment(values):
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def setup(app):
    app.add_directive("kcolors-help", KcolorsHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
