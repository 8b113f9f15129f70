"""The desk console: web pages (and a JSON API) on the services the CLI uses."""
