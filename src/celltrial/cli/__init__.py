"""The ``celltrial`` command (Typer + rich). Sub-commands live in one module each."""
