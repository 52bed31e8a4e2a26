"""The playback API package."""
