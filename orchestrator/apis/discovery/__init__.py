"""The discovery API package."""
