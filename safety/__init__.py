"""Shields on input, retrieved text and output (issue "safety"). Nothing here is active yet."""
