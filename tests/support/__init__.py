"""Test helpers: local stand-ins for the Google Cloud services the app uses."""
