"""Export for external analysis: formats, profiles, transforms (design: External Analysis Export Architecture)."""
