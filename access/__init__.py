"""Who is asking and what they may read: identities from OIDC tokens (identity.py) and the one
rule on collections (grants.py), enforced by the library wherever content leaves the index."""
