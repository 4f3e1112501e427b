"""``reward-model``: scores N candidate clips per tick and picks the best (online reranking).

``config`` (preset sizes), ``modeling`` (torch modules), ``program`` (the numpy tick),
``entry`` (presets, spec and zoo registration)."""
