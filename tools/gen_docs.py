"""Regenerate docs/columns.md (from analyzer/report/schema.py), docs/cli.md (from --help) and
docs/report.schema.json (the audit JSON schema, from analyzer/report/audit.py).

    python tools/gen_docs.py          # rewrite the files
    python tools/gen_docs.py --check  # exit 1 if they are stale (tests/test_docs.py does the same)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def columns_md() -> str:
    from analyzer.report import schema

    out = ["# Output columns", "", "Generated from `analyzer/report/schema.py` by `python tools/gen_docs.py`; do not edit.", ""]
    tables = [(name, cols) for name, cols in vars(schema).items() if name.endswith("_COLUMNS") and isinstance(cols, tuple)]
    for name, cols in tables:
        out += [f"## {name.removesuffix('_COLUMNS').lower()} (`{name}`)", "", "| column | dtype | meaning |", "|---|---|---|"]
        out += [f"| `{c.name}` | `{c.dtype}` | {c.description.replace('|', '/')} |" for c in cols]
        out.append("")
    cats = ", ".join(f"`{k}`: {' / '.join(v)}" for k, v in schema.CATEGORIES.items())
    out += ["Category values: " + cats + ".", ""]
    return "\n".join(out)


def cli_md() -> str:
    import click

    from analyzer.cli import cli

    out = ["# Command line", "", "Generated from `--help` by `python tools/gen_docs.py`; do not edit.", ""]

    def walk(cmd: click.Command, path: list[str]) -> None:
        with click.Context(cmd, info_name=" ".join(path), terminal_width=100, max_content_width=100) as ctx:
            out.extend([f"## `{' '.join(path)}`", "", "```", cmd.get_help(ctx), "```", ""])
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], path + [name])

    walk(cli, ["mtls-analyzer"])
    return "\n".join(out)


def report_schema_json() -> str:
    from analyzer.report.audit import schema_text

    return schema_text()


DOCS = {"docs/columns.md": columns_md, "docs/cli.md": cli_md, "docs/report.schema.json": report_schema_json}


def main() -> int:
    stale = []
    for rel, make in DOCS.items():
        text = make()
        path = ROOT / rel
        if "--check" in sys.argv:
            if not path.exists() or path.read_text() != text:
                stale.append(rel)
        else:
            path.write_text(text)
    if stale:
        print("stale: " + ", ".join(stale) + " (run python tools/gen_docs.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
