"""methodologies."""
