"""The REST API for researchers, one module per resource; `annotation.api_urls` routes them."""
