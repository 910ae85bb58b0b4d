"""Request and response bodies of the HTTP API (pydantic), one module per domain, with
examples for the OpenAPI docs; `common` holds what they share."""
