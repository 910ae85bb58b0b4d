"""The service's use cases, one module per domain (collections, documents, tuning, search, ops).

Each is a small class over the shared `Context`; routes call them and only translate HTTP.
"""
