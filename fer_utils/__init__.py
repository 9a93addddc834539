"""fer_utils."""
