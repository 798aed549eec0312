"""API keys and roles: who may write which facility and read which region."""
