"""Streamlit pages and panels of the Administration area."""
