"""Product quality-safety regulator back end."""
