"""Policy families: what serves a request (`Policy.plan`), registered by name."""
