"""Model adapters: one per unified model family (see ``base.UnifiedModelAdapter``; ``registry`` picks one)."""
