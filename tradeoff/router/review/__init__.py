"""Human review in the proxy: answering with a draft (drafts.py) and the review API
(endpoints.py)."""
