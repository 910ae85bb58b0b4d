"""HTTP routes: one module per domain under routes/, wired together in api.main."""
