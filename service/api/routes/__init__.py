"""The API's routes, one module per domain; each only translates HTTP to a use case."""
