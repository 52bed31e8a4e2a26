"""The nonmember API package."""
