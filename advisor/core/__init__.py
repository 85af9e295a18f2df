"""The pure core: models, catalog, estimators, rules engine, recommendation and planning. Never imports
the application (`advisor.app`) or the backends, and nothing heavy (torch & co.)."""
