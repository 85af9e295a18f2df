"""Rendering for people and scripts: terminal tables and JSON, Markdown and HTML reports."""
