"""The Genesys Cloud side: regions, OAuth tokens, and the writes."""
