"""Model card templates (Jinja2, rendered by `genomic_models.cards`), one per architecture."""
