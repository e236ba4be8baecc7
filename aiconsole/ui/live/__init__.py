"""Streamlit pages and panels of the Live Status area."""
