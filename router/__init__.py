"""The OpenAI-compatible proxy that applies a routing policy per request."""
