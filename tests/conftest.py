"""Settings for every test."""
