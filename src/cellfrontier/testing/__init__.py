"""Tools for testing code that uses cellfrontier: a fake OpenAI-compatible model endpoint."""
