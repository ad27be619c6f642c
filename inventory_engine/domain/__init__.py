"""The stock domain: pure rules and values. Imports nothing outside itself but pydantic."""
