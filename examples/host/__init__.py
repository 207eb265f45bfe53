"""A host application that embeds Rhythm in plugin mode (docs/plugin-mode.md)."""
