"""The service's web layer: the one base handler (identity, scopes, XSRF, errors) and the
context every handler receives through `initialize()`. Below the builds and sharing layers,
above the pure core; it imports neither."""
