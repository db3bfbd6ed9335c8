"""OAuth 2.1 / OpenID Connect protocol code, free of Flask."""
