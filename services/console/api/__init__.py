"""The marketer's JSON API: segments and templates (``router`` factories in each module)."""
